//! Sessions: one item each (`SES#<id>` / `SES`, its history inside), created alone with a
//! conditional put or in one transaction with its refs and its idempotency key, written with one
//! conditional UpdateItem (listed in `listing`).

use super::super::{
    IdempotencyRecord, RefClaim, SessionWrite, Sessions, StoreError, StoreResult, Stored,
};
use super::DynamoStore;
use super::attr::s;
use super::codec::{history_from, new_session_item, ref_item, session_from};
use super::errors::write_error;
use super::idempotency::complete_put;
use super::keys::session_key;
use super::update::session_update;
use crate::session::{HistoryEntry, Session, SessionId};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

#[async_trait]
impl Sessions for DynamoStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Stored<Session>>> {
        let item = self.get(session_key(id)).await?;
        item.as_ref().map(session_from).transpose()
    }

    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()> {
        let mut item = self.retain(new_session_item(session, history), session.created_at);
        if let Some((r, _)) = idempotency {
            // Which key started it: a redaction erases that record's replay value.
            item.insert("idem".into(), s(&r.key));
        }
        if claims.is_empty() && idempotency.is_none() {
            // The session alone: a plain conditional put, half a transaction's units.
            return self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(write_error);
        }
        let mut items = vec![self.put(item, Some("attribute_not_exists(pk)")).build()?];
        for c in claims {
            let item = self.retain(ref_item(&c.key, &session.id, &c.tenant), session.created_at);
            let put = match &c.replaces {
                None => self.put(item, Some("attribute_not_exists(pk)")),
                Some(old) => self
                    .put(item, Some("session_id = :old"))
                    .value(":old", s(old.as_str())),
            };
            items.push(put.build()?);
        }
        if let Some((r, owner)) = idempotency {
            items.push(complete_put(self, r, owner)?);
        }
        self.transact(items).await
    }

    async fn update_session(&self, w: SessionWrite<'_>) -> StoreResult<Stored<Session>> {
        self.write_session(&w, session_update(&w)).await
    }

    async fn get_session_with_history(
        &self,
        id: &SessionId,
    ) -> StoreResult<Option<(Stored<Session>, Vec<HistoryEntry>)>> {
        let Some(item) = self.get(session_key(id)).await? else {
            return Ok(None);
        };
        let entries = match item.get("h") {
            Some(AttributeValue::L(entries)) => entries.as_slice(),
            _ => &[],
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
        Ok(Some((session_from(&item)?, history)))
    }
}
