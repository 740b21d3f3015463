//! The journal: identity events as items under their session (`SES#<id>` / `IE#<event id>`),
//! written in one transaction with the session and the settling of their delivery; a user's
//! reauthentications under `RA#<tenant>#<user>`, newest first by query.

use super::super::{Delivery, DeliveryState, Journal, SessionWrite, StoreResult};
use super::DynamoStore;
use super::attr::s;
use super::codec::{identity_event_from, identity_event_item, reauth_from, reauth_item};
use super::errors::{is_condition_failure, read_error, write_error};
use super::keys::{IDENTITY_EVENT_PREFIX, reauth_pk, session_key, session_pk};
use super::update::session_update;
use crate::session::{IdentityEvent, Reauthentication, SessionId};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

/// Most identity events one read looks at (one page).
const IDENTITY_EVENTS_READ: i32 = 200;

impl DynamoStore {
    /// A session write as a transaction item (written together with other items).
    pub(super) fn session_update_item(
        &self,
        w: &SessionWrite<'_>,
    ) -> StoreResult<TransactWriteItem> {
        let e = session_update(w);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(&w.session.id)))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .map_err(|e| super::super::StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl Journal for DynamoStore {
    async fn add_identity_event(
        &self,
        w: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        // Unconditional: the same event stored again is the same item. The delivery is settled
        // in the same transaction, so a stored event is never processed twice.
        // Kept as long as the session it was recorded on.
        let item = self.retain(identity_event_item(event), w.session.created_at);
        let event = self.put(item, None).build()?;
        let settle = self.settle_update(delivery, DeliveryState::Applied)?;
        self.transact(vec![
            self.session_update_item(&w)?,
            event,
            TransactWriteItem::builder().update(settle).build(),
        ])
        .await
    }

    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>> {
        // One page, bounded: the cost of a read never grows with what accumulated. (Identity
        // Manager sends nothing more for an identity after a disconnect until it is enrolled
        // again, so a session holding more than this is not expected.)
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :ie)")
            .expression_attribute_values(":pk", s(session_pk(id)))
            .expression_attribute_values(":ie", s(IDENTITY_EVENT_PREFIX))
            .consistent_read(true)
            .limit(IDENTITY_EVENTS_READ)
            .send()
            .await
            .map_err(read_error)?;
        let mut out = page
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| identity_event_from(id, item))
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| (b.received_at, &b.event_id).cmp(&(a.received_at, &a.event_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.retain(reauth_item(r), r.at)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // The same event, recorded by an earlier attempt.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }

    async fn list_reauthentications(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Reauthentication>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(reauth_pk(tenant, user_id)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(100))
            .send()
            .await
            .map_err(read_error)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|i| reauth_from(tenant, user_id, i))
            .collect()
    }
}
