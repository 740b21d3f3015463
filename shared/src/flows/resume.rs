//! `POST /v1/sessions/{id}/resume`: a fresh client step for an open session, where its provider
//! has one (Authento: a new token; Nevis: its start URL again; Stripe: a fresh page, read from
//! Stripe), whatever the provider. Each resume is a change in the session's history (source
//! `app`, reason `resumed`); its status does not move. A session that is over is 409 `conflict`
//! (a retry is the way on), a provider with no such step 409 `not_supported`.

use super::contention::Contention;
use super::idempotency::{self, Claim as KeyClaim, Held, IdempotencyKey};
use super::sessions::expire_if_due;
use super::start::{self, Started};
use super::{load_owned, read};
use crate::providers::adapter::{Cx, Resume};
use crate::session::{HistoryEntry, Session, Source, Status};
use crate::store::{SessionWrite, StoreError, Stored};
use crate::{App, Error};

/// Resumes the session `id` of `tenant`: the session as it is now and its new `client`.
pub async fn resume(
    app: &App,
    tenant: &str,
    id: &str,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    // Read before the key is taken, so that a refusal for what the session is (another
    // tenant's, redacted) leaves no key behind: it changes nothing.
    let session = load_owned(&*app.store, tenant, id).await?;
    if session.is_redacted() {
        // Not moved, not read from its provider: as redacted.
        return Err(redacted());
    }
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let held = match idempotency::claim(app, tenant, idem).await? {
        // The first answer again: the same token (signed again), URL or page.
        Some(KeyClaim::Replay(done)) => return start::replay(app, &cx, tenant, &done).await,
        Some(KeyClaim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = run(app, &cx, session, held.as_ref()).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

async fn run(
    app: &App,
    cx: &Cx<'_>,
    session: Stored<Session>,
    held: Option<&Held>,
) -> Result<Started, Error> {
    let session = expire_if_due(app, session).await?;
    still_open(&session)?;
    let adapter = app.providers.get(&session.provider)?;
    let (session, read) = match adapter.resume() {
        Resume::Unsupported(why) => return Err(Error::NotResumable(why)),
        Resume::Here => (session, None),
        Resume::AfterRead => {
            let (session, read) = read::refresh_with(app, cx, session).await?;
            // What the provider said is stored first, and may have ended the session.
            still_open(&session)?;
            (session, read)
        }
    };
    let resumed = adapter.resumed(cx, &session, read.as_ref().map(|r| &r.answer))?;
    let session = record(app, session).await?;
    tracing::info!(session_id = %session.id, provider = %session.provider, "session resumed");
    if let Some(h) = held {
        let done = h.done(app, &session.id, 200, resumed.issued_at, resumed.replay);
        h.complete(&*app.store, &done).await?;
    }
    Ok(Started {
        session: session.into_value(),
        client: resumed.client,
    })
}

/// A session that is over has no step left: a retry is a new attempt (of one not verified). A
/// redacted one has none either, whatever its status, and its provider is not read again.
fn still_open(s: &Session) -> Result<(), Error> {
    if s.is_redacted() {
        return Err(redacted());
    }
    match s.status {
        Status::Verified => Err(Error::Conflict(
            "the session is already verified: there is nothing to resume".into(),
        )),
        done if done.is_terminal() => Err(Error::Conflict(format!(
            "the session is already {}: only an open session is resumed (retry it for a new attempt)",
            done.as_str()
        ))),
        _ => Ok(()),
    }
}

fn redacted() -> Error {
    Error::Conflict("the session was redacted".into())
}

/// The resume in the session's history: a change of its own, the status unchanged.
async fn record(app: &App, mut s: Stored<Session>) -> Result<Stored<Session>, Error> {
    let mut contention = Contention::new("session");
    loop {
        let at = app.clock.now();
        let entry = HistoryEntry {
            session_id: s.id.clone(),
            version: s.next_version(),
            at,
            from: s.status,
            to: s.status,
            provider_status: s.provider_status.clone(),
            source: Source::App,
            reason: Some("resumed".into()),
            provider_event: None,
        };
        let write = SessionWrite {
            read: &s,
            session: &s.value,
            history: Some(&entry),
            at,
        };
        match app.store.update_session(write).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict) => {
                contention.lost().await?;
                s = app.store.get_session(&s.id).await?.ok_or(Error::NotFound)?;
                // It may have ended meanwhile: then the step just made is no longer the user's.
                still_open(&s)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
