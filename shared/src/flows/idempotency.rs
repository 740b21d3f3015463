//! `Idempotency-Key` on app POST routes. A key is bound to the tenant, the method, the full path
//! and the body, by a MAC keyed with the secret's `fingerprint_key` (what is stored says nothing
//! about a body full of personal data). The first request takes the key *before* it calls any
//! provider; its twins get 409 with `Retry-After` while it runs, and its answer once it finished
//! (no second provider call, no second session, no second SMS); another request under the key is
//! 409. A request that fails releases the key, so that the app can retry it.

use crate::session::{Session, SessionId};
use crate::store::{Begun, Idempotency, IdempotencyRecord, IdempotencyState, Sessions, StoreError};
use crate::{App, Error};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

/// How long the first request holds a key: longer than any function may run (their timeouts
/// are at most a minute), so a live request is never overtaken, and a dead one's key is free
/// again soon after.
pub const LEASE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// Validates the header and binds it to this request (method, path, body).
    pub fn new(
        header: &str,
        method: &str,
        path: &str,
        body: &[u8],
        fingerprint_key: &str,
    ) -> Result<Self, Error> {
        if header.is_empty() || header.len() > 255 || !header.bytes().all(|c| c.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "Idempotency-Key",
                "invalid_format",
                "1-255 visible ASCII characters",
            ));
        }
        if fingerprint_key.is_empty() {
            return Err(Error::Internal("the secret has no fingerprint_key".into()));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(fingerprint_key.as_bytes())
            .map_err(|_| Error::Internal("fingerprint key".into()))?;
        for part in [method.as_bytes(), path.as_bytes(), body] {
            // Length-framed: no two requests share a fingerprint by moving bytes between parts.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Ok(Self {
            key: header.to_owned(),
            fingerprint: hex::encode(mac.finalize().into_bytes()),
        })
    }
}

/// The first answer to a key, for a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub session_id: SessionId,
    pub status: u16,
    pub issued_at: Option<i64>,
    pub replay: Option<String>,
}

/// A key this request holds: completed with its answer, or released when it fails.
#[derive(Debug, Clone)]
pub struct Held {
    tenant: String,
    key: IdempotencyKey,
    owner: String,
}

pub enum Claim {
    /// The key is this request's: go on, then complete or release it.
    Fresh(Held),
    /// The key's request finished before: answer it again.
    Replay(Done),
}

/// Takes the key for this request, or finds why not. `None` when the request has no key.
pub async fn claim(
    app: &App,
    tenant: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Claim>, Error> {
    let Some(key) = key else {
        return Ok(None);
    };
    let held = Held {
        tenant: tenant.to_owned(),
        key: key.clone(),
        owner: crate::ids::random_token(),
    };
    // Twice at most: a record that expired between our put and our read is simply taken.
    for _ in 0..2 {
        let now = app.clock.now();
        let record = IdempotencyRecord {
            tenant: tenant.to_owned(),
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            state: IdempotencyState::InProgress {
                lease_until: now + LEASE,
                owner: held.owner.clone(),
            },
            created_at: now,
            expires_at: now + app.config.idempotency_ttl,
        };
        match app.store.begin_idempotency(&record, now).await {
            Ok(Begun::Started) => return Ok(Some(Claim::Fresh(held))),
            Ok(Begun::Existing(r)) if r.fingerprint != key.fingerprint => {
                return Err(Error::Conflict(
                    "this Idempotency-Key was used with another request".into(),
                ));
            }
            Ok(Begun::Existing(r)) => {
                return match r.state {
                    IdempotencyState::Done {
                        session_id,
                        status,
                        issued_at,
                        replay,
                    } => Ok(Some(Claim::Replay(Done {
                        session_id,
                        status,
                        issued_at,
                        replay,
                    }))),
                    IdempotencyState::InProgress { lease_until, .. } => {
                        let left = (lease_until - now).whole_seconds().max(1);
                        Err(Error::InProgress {
                            retry_after: Duration::from_secs(left.unsigned_abs()),
                        })
                    }
                };
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one idempotency key".into(),
    ))
}

impl Held {
    /// The record that marks this request done with its answer.
    pub fn done(
        &self,
        app: &App,
        session_id: &SessionId,
        status: u16,
        issued_at: Option<i64>,
        replay: Option<String>,
    ) -> IdempotencyRecord {
        let now = app.clock.now();
        IdempotencyRecord {
            tenant: self.tenant.clone(),
            key: self.key.key.clone(),
            fingerprint: self.key.fingerprint.clone(),
            state: IdempotencyState::Done {
                session_id: session_id.clone(),
                status,
                issued_at,
                replay,
            },
            created_at: now,
            expires_at: now + app.config.idempotency_ttl,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Completes the key alone (when no session is created with it: cancel, link, a reused
    /// session). Losing the key meanwhile is not this request's failure: what it did is done.
    pub async fn complete(
        &self,
        store: &dyn Idempotency,
        record: &IdempotencyRecord,
    ) -> Result<(), Error> {
        match store.complete_idempotency(record, &self.owner).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Frees the key after a failure, so that the app's retry runs. Best effort: if this fails
    /// too, the lease runs out on its own.
    pub async fn release(&self, store: &dyn Idempotency) {
        if let Err(e) = store
            .release_idempotency(&self.tenant, &self.key.key, &self.owner)
            .await
        {
            tracing::warn!(error = %e, "idempotency key not released; its lease runs out");
        }
    }
}

/// Runs `work` under the claim: a failure releases the key.
pub async fn releasing<T>(
    app: &App,
    held: Option<&Held>,
    result: Result<T, Error>,
) -> Result<T, Error> {
    if result.is_err()
        && let Some(h) = held
    {
        h.release(&*app.store).await;
    }
    result
}

/// Runs an operation that answers a session (a cancel, a link) at most once per key: a replay
/// answers the session as it is now.
pub async fn once<F, Fut>(
    app: &App,
    tenant: &str,
    key: Option<&IdempotencyKey>,
    status: u16,
    op: F,
) -> Result<Session, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Session, Error>>,
{
    let held = match claim(app, tenant, key).await? {
        Some(Claim::Replay(done)) => return replayed_session(&*app.store, tenant, &done).await,
        Some(Claim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = op().await;
    if let (Ok(s), Some(h)) = (&result, &held) {
        h.complete(&*app.store, &h.done(app, &s.id, status, None, None))
            .await?;
    }
    releasing(app, held.as_ref(), result).await
}

/// The session a replay answers, if it is the tenant's (defense in depth: keys are per tenant).
pub async fn replayed_session(
    sessions: &dyn Sessions,
    tenant: &str,
    done: &Done,
) -> Result<Session, Error> {
    match sessions.get_session(&done.session_id).await? {
        Some(s) if s.tenant == tenant => Ok(s.into_value()),
        _ => Err(Error::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_binds_method_path_and_body_under_the_key() {
        let k = |m: &str, p: &str, b: &[u8], key: &str| {
            IdempotencyKey::new("k", m, p, b, key).unwrap().fingerprint
        };
        let base = k("POST", "/v1/sessions/a/cancel", b"{}", "secret-1");
        assert_eq!(base, k("POST", "/v1/sessions/a/cancel", b"{}", "secret-1"));
        assert_ne!(base, k("POST", "/v1/sessions/b/cancel", b"{}", "secret-1"));
        assert_ne!(base, k("PUT", "/v1/sessions/a/cancel", b"{}", "secret-1"));
        assert_ne!(base, k("POST", "/v1/sessions/a/cancel", b"{ }", "secret-1"));
        assert_ne!(base, k("POST", "/v1/sessions/a/cancel", b"{}", "secret-2"));
        assert_ne!(k("POST", "/a", b"b", "s"), k("POST", "/ab", b"", "s"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "has space", &"x".repeat(256)] {
            assert!(IdempotencyKey::new(bad, "POST", "/", b"", "s").is_err());
        }
    }
}
