//! `Idempotency-Key` records in memory.

use super::super::{
    Begun, Idempotency, IdempotencyRecord, IdempotencyState, StoreError, StoreResult,
};
use super::MemoryStore;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
impl Idempotency for MemoryStore {
    async fn begin_idempotency(
        &self,
        r: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        let mut g = self.lock();
        let k = (r.tenant.clone(), r.key.clone());
        if let Some(old) = g.idempotency.get(&k).filter(|old| old.expires_at > now) {
            let abandoned = matches!(old.state, IdempotencyState::InProgress { lease_until, .. } if lease_until <= now)
                && old.fingerprint == r.fingerprint;
            if !abandoned {
                return Ok(Begun::Existing(old.clone()));
            }
        }
        g.idempotency.insert(k, r.clone());
        Ok(Begun::Started)
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord, owner: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (r.tenant.clone(), r.key.clone());
        match g.idempotency.get(&k) {
            Some(old) if old.owner() == owner && !owner.is_empty() => {
                g.idempotency.insert(k, r.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (tenant.to_owned(), key.to_owned());
        if let Some(old) = g.idempotency.get_mut(&k)
            && old.owner() == owner
            && !owner.is_empty()
        {
            // The lease ends now: the same request may take the key again.
            old.state = IdempotencyState::InProgress {
                lease_until: OffsetDateTime::UNIX_EPOCH,
                owner: owner.to_owned(),
            };
        }
        Ok(())
    }
}
