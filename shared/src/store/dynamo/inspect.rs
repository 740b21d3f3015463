//! What tests look at (`Inspect`): the history list of a session item, a delivery's state, an
//! idempotency record, the shards.

use super::super::shard::{delivery_shard, session_shard};
use super::super::{DeliveryState, IdempotencyRecord, Inspect, StoreResult};
use super::DynamoStore;
use super::codec::{delivery_state_of, idem_from};
use super::keys::{delivery_key, idem_key};
use crate::session::{HistoryEntry, SessionId};
use async_trait::async_trait;

#[async_trait]
impl Inspect for DynamoStore {
    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>> {
        let read = super::super::Sessions::get_session_with_history(self, id).await?;
        Ok(read.map(|(_, history)| history).unwrap_or_default())
    }

    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        let item = self.get(delivery_key(provider, event_id)).await?;
        Ok(item.as_ref().and_then(delivery_state_of))
    }

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let item = self.get(idem_key(tenant, key)).await?;
        item.as_ref().map(|i| idem_from(tenant, key, i)).transpose()
    }

    fn due_shard_of(&self, id: &SessionId) -> u16 {
        session_shard(id)
    }

    fn retry_shard_of(&self, provider: &str, event_id: &str) -> u16 {
        delivery_shard(provider, event_id)
    }
}
