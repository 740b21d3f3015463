//! Reads by key in batches: what the keys-only indexes name is read with one BatchGetItem per
//! 100 keys instead of one GetItem each.

use super::super::{StoreError, StoreResult, Stored};
use super::DynamoStore;
use super::attr::{Item, opt_s};
use super::codec::session_from;
use super::errors::read_error;
use super::keys::{session_key, session_pk};
use crate::session::{Session, SessionId};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use std::collections::HashMap;

/// How often unprocessed keys (DynamoDB may leave some under load) are asked again.
const ATTEMPTS: u32 = 5;

impl DynamoStore {
    /// Items by key, strongly consistent; keys not found are left out.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        self.batch_get_with(keys, true).await
    }

    /// Items by key, `consistent` or not (half the read units: for what an eventually
    /// consistent index named, which lags the table anyway).
    pub(super) async fn batch_get_with(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            for attempt in 0..ATTEMPTS {
                let Some(wanted) = request.take() else { break };
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(read_error)?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                request = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .filter(|k| !k.keys.is_empty());
            }
            if request.is_some() {
                return Err(StoreError::Unavailable(
                    "DynamoDB left keys unprocessed".into(),
                ));
            }
        }
        Ok(found)
    }

    /// Sessions by id in the order asked (for the indexes, which hold keys only). A session the
    /// index names but the table no longer has is left out.
    pub(super) async fn sessions_by_id(
        &self,
        ids: &[SessionId],
    ) -> StoreResult<Vec<Stored<Session>>> {
        self.sessions_by_id_with(ids, true).await
    }

    /// `sessions_by_id`, `consistent` or not (`batch_get_with`).
    pub(super) async fn sessions_by_id_with(
        &self,
        ids: &[SessionId],
        consistent: bool,
    ) -> StoreResult<Vec<Stored<Session>>> {
        let keys = ids.iter().map(session_key).collect();
        let mut by_pk: HashMap<String, Item> = self
            .batch_get_with(keys, consistent)
            .await?
            .into_iter()
            .filter_map(|i| Some((opt_s(&i, "pk")?, i)))
            .collect();
        ids.iter()
            .filter_map(|id| by_pk.remove(&session_pk(id)))
            .map(|i| session_from(&i))
            .collect()
    }
}
