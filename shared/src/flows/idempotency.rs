//! `Idempotency-Key` on app POST routes: the same key with the same body answers the first
//! response again (no second provider call, no second session); with another body, 409.

use crate::session::SessionId;
use crate::store::{IdempotencyRecord, StoreError};
use crate::{App, Error};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

impl IdempotencyKey {
    /// Validates the header and binds it to this route and body.
    pub fn new(header: &str, route: &str, body: &[u8]) -> Result<Self, Error> {
        if header.is_empty() || header.len() > 255 || !header.bytes().all(|c| c.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "Idempotency-Key",
                "invalid_format",
                "1-255 visible ASCII characters",
            ));
        }
        let mut h = Sha256::new();
        h.update(route.as_bytes());
        h.update([0]);
        h.update(body);
        Ok(Self {
            key: header.to_owned(),
            request_hash: hex::encode(h.finalize()),
        })
    }
}

/// The record for a replay, or `None` if the key is new. Another body under the key is 409.
pub async fn lookup(
    app: &App,
    tenant: &str,
    key: &IdempotencyKey,
) -> Result<Option<IdempotencyRecord>, Error> {
    let now = app.clock.now();
    match app.store.get_idempotency(tenant, &key.key).await? {
        // DynamoDB's TTL deletes late: an expired record counts as gone.
        Some(r) if r.expires_at <= now => Ok(None),
        Some(r) if r.request_hash != key.request_hash => Err(Error::Conflict(
            "this Idempotency-Key was used with another request".into(),
        )),
        other => Ok(other),
    }
}

impl IdempotencyKey {
    /// The record binding this key to the answer about `session_id`, kept for the configured TTL.
    pub fn record(
        &self,
        app: &App,
        tenant: &str,
        session_id: &SessionId,
        status: u16,
        issued_at: Option<i64>,
    ) -> IdempotencyRecord {
        let now = app.clock.now();
        IdempotencyRecord {
            tenant: tenant.to_owned(),
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            session_id: session_id.clone(),
            status,
            issued_at,
            created_at: now,
            expires_at: now + app.config.idempotency_ttl,
        }
    }
}

/// Binds a key after an operation that is safe to repeat (cancel, link): the operation happened,
/// so a twin request that bound the key first changes nothing for this answer.
pub async fn bind_after(
    app: &App,
    tenant: &str,
    key: &IdempotencyKey,
    session_id: &SessionId,
    status: u16,
) -> Result<(), Error> {
    match app
        .store
        .put_idempotency(&key.record(app, tenant, session_id, status, None))
        .await
    {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
