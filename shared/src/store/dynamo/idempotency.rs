//! `Idempotency-Key` records (`IDEM#<tenant>#<key>` / `IDEM`, TTL): taken by the first request
//! with a conditional put before it calls any provider, completed with what it answered (in the
//! same transaction as the session it created, or alone), or released when it failed. Tenant
//! names never hold `#` (the secret's rules), so tenants cannot share an item.

use super::super::{Begun, Idempotency, IdempotencyRecord, StoreError, StoreResult};
use super::DynamoStore;
use super::attr::{n, s};
use super::codec::{IN_PROGRESS, idem_from, idem_item};
use super::errors::{is_condition_failure, write_error};
use super::keys::{idem_key, unix_ms};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use time::OffsetDateTime;

/// A key is free if unused, expired (DynamoDB's TTL deletes up to days late), or held by an
/// abandoned attempt of the same request (its lease ran out: the process died).
const FREE: &str = "attribute_not_exists(pk) OR #ttl < :now_s \
    OR (#st = :inprog AND #lease < :now_ms AND #fp = :fp)";

/// Completing or releasing needs the key still held by this request.
const HELD: &str = "#st = :inprog AND #owner = :owner";

/// The completing put of a session's request, as a transaction item.
pub(super) fn complete_put(
    store: &DynamoStore,
    r: &IdempotencyRecord,
    owner: &str,
) -> StoreResult<TransactWriteItem> {
    store
        .put(idem_item(r), Some(HELD))
        .name("#st", "state")
        .name("#owner", "owner")
        .value(":inprog", s(IN_PROGRESS))
        .value(":owner", s(owner))
        .build()
}

#[async_trait]
impl Idempotency for DynamoStore {
    async fn begin_idempotency(
        &self,
        r: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item(r)))
            .condition_expression(FREE)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#fp", "fingerprint")
            .expression_attribute_values(":now_s", n(now.unix_timestamp()))
            .expression_attribute_values(":now_ms", n(unix_ms(now)))
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":fp", s(&r.fingerprint))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Begun::Started),
            Err(e) if is_condition_failure(&e) => {
                let stored = match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                    _ => None,
                };
                let stored = match stored {
                    Some(item) => Some(item),
                    None => self.get(idem_key(&r.tenant, &r.key)).await?,
                };
                match stored {
                    Some(item) => Ok(Begun::Existing(idem_from(&r.tenant, &r.key, &item)?)),
                    // Gone between the put and the read (TTL): try again as new.
                    None => Err(StoreError::Conflict),
                }
            }
            Err(e) => Err(write_error(e)),
        }
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord, owner: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item(r)))
            .condition_expression(HELD)
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Ends the lease at once (an UpdateItem, not a delete: the functions need no DeleteItem):
    /// the same request may then take the key again; another request under it stays a conflict.
    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(idem_key(tenant, key)))
            .update_expression("SET #lease = :zero")
            .condition_expression(HELD)
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }
}
