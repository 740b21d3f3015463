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

/// How a batch reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchRead {
    /// Strongly consistent, or not (half the read units: for what an eventually consistent index
    /// named, which lags the table anyway).
    pub consistent: bool,
    /// Only these attributes (a projection expression and its names): the read units are the
    /// whole item's all the same, the bytes sent are not.
    pub projection: Option<(&'static str, &'static [(&'static str, &'static str)])>,
}

impl BatchRead {
    pub const CONSISTENT: BatchRead = BatchRead {
        consistent: true,
        projection: None,
    };
    pub const EVENTUAL: BatchRead = BatchRead {
        consistent: false,
        projection: None,
    };
}

impl DynamoStore {
    /// Items by key, strongly consistent; keys not found are left out.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        self.batch_get_with(keys, BatchRead::CONSISTENT).await
    }

    /// Items by key, as `read` says; keys not found are left out.
    pub(super) async fn batch_get_with(
        &self,
        keys: Vec<Item>,
        read: BatchRead,
    ) -> StoreResult<Vec<Item>> {
        let (projection, names) = match read.projection {
            Some((p, names)) => (
                Some(p.to_owned()),
                Some(
                    names
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<HashMap<_, _>>(),
                ),
            ),
            None => (None, None),
        };
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(read.consistent)
                    .set_projection_expression(projection.clone())
                    .set_expression_attribute_names(names.clone())
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
        self.sessions_by_id_with(ids, BatchRead::CONSISTENT).await
    }

    /// `sessions_by_id`, read as `read` says (whole items).
    pub(super) async fn sessions_by_id_with(
        &self,
        ids: &[SessionId],
        read: BatchRead,
    ) -> StoreResult<Vec<Stored<Session>>> {
        let keys = ids.iter().map(session_key).collect();
        let mut by_pk: HashMap<String, Item> = self
            .batch_get_with(keys, read)
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
