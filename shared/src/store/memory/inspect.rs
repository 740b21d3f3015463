//! What tests look at, in memory.

use super::super::shard::{delivery_shard, session_shard};
use super::super::{DeliveryState, IdempotencyRecord, Inspect, StoreResult};
use super::{MemoryStore, delivery_key};
use crate::session::{HistoryEntry, SessionId};
use async_trait::async_trait;

#[async_trait]
impl Inspect for MemoryStore {
    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>> {
        let read = super::super::Sessions::get_session_with_history(self, id).await?;
        Ok(read.map(|(_, history)| history).unwrap_or_default())
    }

    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        Ok(self
            .lock()
            .deliveries
            .get(&delivery_key(provider, event_id))
            .map(|r| r.state))
    }

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self
            .lock()
            .idempotency
            .get(&(tenant.to_owned(), key.to_owned()))
            .cloned())
    }

    fn due_shard_of(&self, id: &SessionId) -> u16 {
        session_shard(id)
    }

    fn retry_shard_of(&self, provider: &str, event_id: &str) -> u16 {
        delivery_shard(provider, event_id)
    }
}
