//! Refs in memory.

use super::super::{ProviderRef, RefClaim, Refs, StoreError, StoreResult};
use super::MemoryStore;
use crate::session::Session;
use async_trait::async_trait;

#[async_trait]
impl Refs for MemoryStore {
    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>> {
        Ok(self.lock().refs.get(key).cloned())
    }

    async fn get_refs(&self, keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        let g = self.lock();
        Ok(keys.iter().map(|k| g.refs.get(k).cloned()).collect())
    }

    async fn claim_ref(&self, c: &RefClaim, session: &Session) -> StoreResult<()> {
        let session_id = &session.id;
        let mut g = self.lock();
        let current = g.refs.get(&c.key).map(|r| r.session_id.clone());
        match current {
            None => {}
            Some(id) if &id == session_id || Some(&id) == c.replaces.as_ref() => {}
            Some(_) => return Err(StoreError::Conflict),
        }
        g.refs.insert(
            c.key.clone(),
            ProviderRef {
                key: c.key.clone(),
                session_id: session_id.clone(),
                tenant: c.tenant.clone(),
            },
        );
        Ok(())
    }
}
