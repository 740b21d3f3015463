//! What tests look at (`Inspect`): the history list of a session item, a delivery's state, an
//! idempotency record, the shards.

use super::super::shard::{delivery_shard, session_shard};
use super::super::{DeliveryState, IdempotencyRecord, Inspect, StoreError, StoreResult};
use super::DynamoStore;
use super::codec::{delivery_state_of, history_from, idem_from};
use super::errors::read_error;
use super::keys::{delivery_key, idem_key, session_key};
use crate::session::{HistoryEntry, SessionId};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

#[async_trait]
impl Inspect for DynamoStore {
    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id)))
            .projection_expression("#h")
            .expression_attribute_names("#h", "h")
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let Some(AttributeValue::L(entries)) = out.item.and_then(|mut i| i.remove("h")) else {
            return Ok(Vec::new());
        };
        let mut history = entries
            .iter()
            .map(|e| match e {
                AttributeValue::M(m) => history_from(id, m),
                _ => Err(StoreError::Corrupt("bad history entry".into())),
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // A full history reuses the oldest slot: versions order it.
        history.sort_by_key(|h| h.version);
        Ok(history)
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
