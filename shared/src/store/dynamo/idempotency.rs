//! `Idempotency-Key` records in DynamoDB (`IDEM#<tenant>#<key>` / `IDEM`, TTL): taken by the
//! first request with a conditional put before it calls any provider, completed with what it
//! answered (in the same transaction as the session it created, or alone), or released when it
//! failed. Tenant names never hold `#` (the secret's rules), so tenants cannot share an item.

use super::*;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

pub(super) fn idem_pk(tenant: &str, key: &str) -> String {
    format!("IDEM#{tenant}#{key}")
}

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

/// A key is free if unused, expired (DynamoDB's TTL deletes up to days late), or held by an
/// abandoned attempt of the same request (its lease ran out: the process died).
const IDEM_FREE: &str = "attribute_not_exists(pk) OR #ttl < :now_s \
    OR (#st = :inprog AND #lease < :now_ms AND #fp = :fp)";

/// Completing or releasing needs the key still held by this request.
const IDEM_HELD: &str = "#st = :inprog AND #owner = :owner";

pub(super) fn idem_item(r: &IdempotencyRecord) -> Item {
    let mut item = key(idem_pk(&r.tenant, &r.key), "IDEM");
    item.insert("fingerprint".into(), s(&r.fingerprint));
    match &r.state {
        IdempotencyState::InProgress { lease_until, owner } => {
            item.insert("state".into(), s(IN_PROGRESS));
            item.insert("lease".into(), n(unix_ms(*lease_until)));
            item.insert("owner".into(), s(owner));
        }
        IdempotencyState::Done {
            session_id,
            status,
            issued_at,
            replay,
        } => {
            item.insert("state".into(), s(DONE));
            item.insert("session_id".into(), s(session_id.as_str()));
            item.insert("status".into(), n(*status));
            put_opt(&mut item, "issued_at", issued_at.map(n));
            put_opt(&mut item, "replay", replay.clone().map(s));
        }
    }
    item.insert("created_at".into(), ts(r.created_at));
    item.insert("expires_at".into(), ts(r.expires_at));
    item.insert("ttl".into(), n(r.expires_at.unix_timestamp()));
    item
}

fn idem_from(tenant: &str, key: &str, item: &Item) -> StoreResult<IdempotencyRecord> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad idempotency {what}"));
    let state = match get_s(item, "state")? {
        IN_PROGRESS => IdempotencyState::InProgress {
            lease_until: from_nanos("lease", get_n::<i128>(item, "lease")? * 1_000_000)?,
            owner: get_s(item, "owner")?.to_owned(),
        },
        DONE => IdempotencyState::Done {
            session_id: SessionId::parse(get_s(item, "session_id")?)
                .ok_or_else(|| corrupt("session id"))?,
            status: get_n(item, "status")?,
            issued_at: opt_n(item, "issued_at"),
            replay: opt_s(item, "replay"),
        },
        _ => return Err(corrupt("state")),
    };
    Ok(IdempotencyRecord {
        tenant: tenant.to_owned(),
        key: key.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        state,
        created_at: get_ts(item, "created_at")?,
        expires_at: get_ts(item, "expires_at")?,
    })
}

/// The completing put of a session's request, as a transaction item.
pub(super) fn idem_complete_put(
    store: &DynamoStore,
    r: &IdempotencyRecord,
    owner: &str,
) -> StoreResult<TransactWriteItem> {
    store
        .put(idem_item(r), Some(IDEM_HELD))
        .name("#st", "state")
        .name("#owner", "owner")
        .value(":inprog", s(IN_PROGRESS))
        .value(":owner", s(owner))
        .build()
}

impl DynamoStore {
    pub(super) async fn idem_begin(
        &self,
        r: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item(r)))
            .condition_expression(IDEM_FREE)
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
                    None => self.get(key(idem_pk(&r.tenant, &r.key), "IDEM")).await?,
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

    pub(super) async fn idem_complete(
        &self,
        r: &IdempotencyRecord,
        owner: &str,
    ) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item(r)))
            .condition_expression(IDEM_HELD)
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
    pub(super) async fn idem_release(
        &self,
        tenant: &str,
        idem_key: &str,
        owner: &str,
    ) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(idem_pk(tenant, idem_key), "IDEM")))
            .update_expression("SET #lease = :zero")
            .condition_expression(IDEM_HELD)
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

    pub(super) async fn idem_get(
        &self,
        tenant: &str,
        idem_key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let item = self.get(key(idem_pk(tenant, idem_key), "IDEM")).await?;
        item.as_ref()
            .map(|i| idem_from(tenant, idem_key, i))
            .transpose()
    }
}
