//! Sessions: one item each (`SES#<id>` / `SES`, its history inside), created alone with a
//! conditional put or in one transaction with its refs and its idempotency key (and, for a retry,
//! the write of the session it retries), written with one conditional UpdateItem (listed in
//! `listing`).

use super::super::{
    IdempotencyRecord, RefClaim, SessionWrite, Sessions, StoreError, StoreResult, Stored,
};
use super::DynamoStore;
use super::attr::{Item, s};
use super::codec::{history_from, new_session_item, session_from};
use super::errors::write_error;
use super::idempotency::complete_put;
use super::keys::session_key;
use super::update::session_update;
use crate::session::{HistoryEntry, Session, SessionId};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

impl DynamoStore {
    /// A new session's item: with its retention's `ttl` and, when a key started it, that key.
    fn new_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> Item {
        let mut item = self.retain(new_session_item(session, history), session.created_at);
        if let Some((r, _)) = idempotency {
            // Which key started it: a redaction erases that record's replay value.
            item.insert("idem".into(), s(&r.key));
        }
        item
    }

    /// The transaction items that create a session: its item, its ref claims, its key's
    /// completion.
    fn creation(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let item = self.new_session(session, history, idempotency);
        let mut items = vec![self.put(item, Some("attribute_not_exists(pk)")).build()?];
        for c in claims {
            let item = self.claimed_ref(c, session);
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
        Ok(items)
    }
}

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
        if claims.is_empty() && idempotency.is_none() {
            // The session alone: a plain conditional put, half a transaction's units.
            return self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.new_session(session, history, None)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(write_error);
        }
        let items = self.creation(session, history, claims, idempotency)?;
        self.transact(items).await
    }

    async fn create_retry(
        &self,
        previous: SessionWrite<'_>,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<Stored<Session>> {
        let mut items = self.creation(session, history, claims, idempotency)?;
        items.push(self.session_update_item(&previous)?);
        self.transact(items).await?;
        Ok(Stored {
            value: previous.session.clone(),
            version: previous.version(),
            filing: session_update(&previous).filing,
        })
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
