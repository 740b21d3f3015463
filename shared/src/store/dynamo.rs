//! DynamoDB adapter: one table, `pk`/`sk`, one index `gsi1` (a user's sessions, newest first), a
//! sparse index `gsi2` (open sessions by when their next check is due), TTL on `ttl`. Every state change is a conditional write on `version`.
//!
//! | item              | pk                          | sk            | notes                     |
//! |-------------------|-----------------------------|---------------|---------------------------|
//! | session           | `SES#<id>`                  | `SES`         | gsi1: `USR#<tenant>#<user>` / `<created ns>#<id>` |
//! |                   |                             |               | gsi2 (open sessions with a next check only): `DUE#<shard>` / `<next check ms>#<id>` |
//! | history entry     | `SES#<id>`                  | `H#<version>` | append-only               |
//! | provider ref      | `REF#<key>`                 | `REF`         | provider identity -> session |
//! | webhook delivery  | `WH#<provider>#<event id>`  | `WH`          | dedupe, TTL               |
//! | idempotency key   | `IDEM#<tenant>#<key>`       | `IDEM`        | TTL                       |
//! | identity event    | `SES#<id>`                  | `IE#<event id>` | Prove Identity Manager  |
//! | unmatched delivery| `UNM#<provider>#<subject>`  | `WH#<event id>` | finds kept deliveries on link, TTL |
//! | reauthentication  | `RA#<tenant>#<user>`        | `<at ns>#<event id>` | newest first by query |

use super::*;
use crate::session::{
    Evidence, LastError, Possession, ProveDetails, ProveRegion, Provider, Reauthentication, Source,
    Status, VerificationType,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem, Update,
};
use base64::Engine;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn put(&self, item: Item, condition: Option<&str>) -> PutBuilder {
        PutBuilder {
            table: self.table.clone(),
            item,
            condition: condition.map(str::to_owned),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// One session write as transaction items: the version-checked put, then `extra`, its history
    /// entry and the delivery it applies.
    fn session_write_items(
        &self,
        w: &SessionWrite<'_>,
        extra: Option<TransactWriteItem>,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let mut items = vec![
            self.put(session_item(w.session), Some("#v = :expected"))
                .name("#v", "version")
                .value(":expected", n(w.expected_version))
                .build()?,
        ];
        items.extend(extra);
        if let Some(h) = w.history {
            items.push(
                self.put(history_item(h), Some("attribute_not_exists(pk)"))
                    .build()?,
            );
        }
        if let Some((provider, event_id)) = w.applies_delivery {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(delivery_pk(provider, event_id), "WH")))
                .update_expression("SET #st = :applied, session_id = :sid")
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":applied", s(DeliveryState::Applied.as_str()))
                .expression_attribute_values(":sid", s(w.session.id.as_str()))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(items)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }
}

/// Creates the table with the same schema as `template.yaml` (for DynamoDB Local and tests).
pub async fn create_table(client: &Client, table: &str) -> Result<(), String> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| e.to_string())
    };
    // `gsi1`: a user's sessions; `gsi2`: the due index. Keys `<name>pk` / `<name>sk`.
    let index = |name: &str| -> Result<GlobalSecondaryIndex, String> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())
    };
    let gsi = index("gsi1")?;
    let due = index("gsi2")?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .global_secondary_indexes(due)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

struct PutBuilder {
    table: String,
    item: Item,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl PutBuilder {
    fn name(mut self, k: &str, v: &str) -> Self {
        self.names.insert(k.into(), v.into());
        self
    }
    fn value(mut self, k: &str, v: AttributeValue) -> Self {
        self.values.insert(k.into(), v);
        self
    }
    fn build(self) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(self.item))
            .set_condition_expression(self.condition)
            .set_expression_attribute_names((!self.names.is_empty()).then_some(self.names))
            .set_expression_attribute_values((!self.values.is_empty()).then_some(self.values))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

// ---- errors --------------------------------------------------------------------------------

fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    matches!(e.code(), Some("ConditionalCheckFailedException"))
}

/// Maps an SDK error of a write: a lost condition or a transaction conflict is `Conflict`,
/// everything else is `Unavailable` (a retryable 503 for the caller).
fn write_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E>,
) -> StoreError {
    if is_condition_failure(&e) {
        return StoreError::Conflict;
    }
    if e.code() == Some("TransactionCanceledException") {
        // "Transaction cancelled, please refer cancellation reasons for specific reasons
        // [ConditionalCheckFailed, None]": conflicts show in the message's reason list.
        let msg = e.message().unwrap_or_default();
        if msg.contains("ConditionalCheckFailed") || msg.contains("TransactionConflict") {
            return StoreError::Conflict;
        }
    }
    read_error(e)
}

fn read_error<E: std::error::Error + Send + Sync + 'static>(e: SdkError<E>) -> StoreError {
    StoreError::Unavailable(format!(
        "{}",
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    ))
}

// ---- attribute helpers ----------------------------------------------------------------------

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn ts(t: OffsetDateTime) -> AttributeValue {
    s(t.format(&Rfc3339).unwrap_or_default())
}
fn put_opt(item: &mut Item, k: &str, v: Option<AttributeValue>) {
    if let Some(v) = v {
        item.insert(k.into(), v);
    }
}

fn get_s<'a>(item: &'a Item, k: &str) -> StoreResult<&'a str> {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {k}")))
}
fn opt_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("missing number attribute {k}")))
}
fn opt_n<T: std::str::FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
fn parse_ts(v: &str) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("bad time {v}: {e}")))
}
fn opt_ts(item: &Item, k: &str) -> StoreResult<Option<OffsetDateTime>> {
    opt_s(item, k).map(|v| parse_ts(&v)).transpose()
}

// ---- keys -----------------------------------------------------------------------------------

fn session_pk(id: &SessionId) -> String {
    format!("SES#{id}")
}
fn user_pk(tenant: &str, user_id: &str) -> String {
    format!("USR#{tenant}#{user_id}")
}
/// Fixed width so that string order is time order.
fn user_sk(s: &Session) -> String {
    format!(
        "{:020}#{}",
        s.created_at.unix_timestamp_nanos().max(0),
        s.id
    )
}
fn due_pk(shard: u16) -> String {
    format!("DUE#{shard:02}")
}
/// Fixed-width milliseconds, so that string order is time order; the id keeps keys unique.
fn due_sk(at: OffsetDateTime, id: &SessionId) -> String {
    format!("{:015}#{id}", unix_ms(at))
}
/// Everything due at or before `at`: `~` sorts after every session id character.
fn due_upto(at: OffsetDateTime) -> String {
    format!("{:015}#~", unix_ms(at))
}
fn unix_ms(at: OffsetDateTime) -> i128 {
    (at.unix_timestamp_nanos() / 1_000_000).max(0)
}
fn delivery_pk(provider: &str, event_id: &str) -> String {
    format!("WH#{provider}#{event_id}")
}
fn idem_pk(tenant: &str, key: &str) -> String {
    format!("IDEM#{tenant}#{key}")
}
fn unmatched_pk(provider: &str, subject: &str) -> String {
    format!("UNM#{provider}#{subject}")
}
fn reauth_pk(tenant: &str, user_id: &str) -> String {
    format!("RA#{tenant}#{user_id}")
}
fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

// ---- items ----------------------------------------------------------------------------------

fn session_item(x: &Session) -> Item {
    let mut item = key(session_pk(&x.id), "SES");
    item.insert("gsi1pk".into(), s(user_pk(&x.tenant, &x.user_id)));
    item.insert("gsi1sk".into(), s(user_sk(x)));
    item.insert("id".into(), s(x.id.as_str()));
    item.insert("tenant".into(), s(&x.tenant));
    item.insert("provider".into(), s(x.provider.as_str()));
    item.insert("user_id".into(), s(&x.user_id));
    item.insert("status".into(), s(x.status.as_str()));
    put_opt(
        &mut item,
        "provider_status",
        x.provider_status.clone().map(s),
    );
    put_opt(
        &mut item,
        "error_code",
        x.last_error.as_ref().map(|e| s(&e.code)),
    );
    put_opt(
        &mut item,
        "error_message",
        x.last_error.as_ref().map(|e| s(&e.message)),
    );
    put_opt(
        &mut item,
        "verification_type",
        x.verification_type.map(|v| s(v.as_str())),
    );
    put_opt(&mut item, "user_type", x.user_type.clone().map(s));
    put_opt(&mut item, "lang", x.lang.clone().map(s));
    put_opt(&mut item, "provider_ref", x.provider_ref.clone().map(s));
    item.insert("created_at".into(), ts(x.created_at));
    item.insert("updated_at".into(), ts(x.updated_at));
    put_opt(&mut item, "expires_at", x.expires_at.map(ts));
    put_opt(&mut item, "last_checked_at", x.last_checked_at.map(ts));
    put_opt(&mut item, "provider_seen_ms", x.provider_seen_ms.map(n));
    if let Some(p) = &x.prove {
        prove_attributes(&mut item, p);
    }
    put_opt(&mut item, "next_check_at", x.next_check_at.map(ts));
    if x.check_attempts > 0 {
        item.insert("check_attempts".into(), n(x.check_attempts));
    }
    // Sparse: a session leaves the due index by writing it without these (a put replaces the item).
    if let (true, Some(at)) = (is_scheduled(x), x.next_check_at) {
        item.insert("gsi2pk".into(), s(due_pk(due_shard(&x.id))));
        item.insert("gsi2sk".into(), s(due_sk(at, &x.id)));
    }
    if let Some(e) = &x.evidence {
        put_opt(&mut item, "score", e.score.map(n));
        put_opt(&mut item, "document_type", e.document_type.clone().map(s));
        put_opt(
            &mut item,
            "document_country",
            e.document_country.clone().map(s),
        );
    }
    item.insert("version".into(), n(x.version));
    item
}

/// A Prove session's own attributes, `prove_`-prefixed. No phone number but the masked one.
fn prove_attributes(item: &mut Item, p: &ProveDetails) {
    item.insert("prove_possession".into(), s(p.possession.as_str()));
    item.insert("prove_region".into(), s(p.region.as_str()));
    item.insert("prove_phone_masked".into(), s(&p.phone_masked));
    put_opt(
        item,
        "prove_possession_deadline",
        p.possession_deadline.map(ts),
    );
    put_opt(item, "prove_identity_id", p.identity_id.clone().map(s));
    if p.reverification_recommended {
        item.insert(
            "prove_reverification_recommended".into(),
            AttributeValue::Bool(true),
        );
    }
}

fn prove_from(item: &Item) -> StoreResult<Option<ProveDetails>> {
    let Some(possession) = opt_s(item, "prove_possession") else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad {what}"));
    Ok(Some(ProveDetails {
        possession: Possession::parse(&possession).ok_or_else(|| corrupt("prove_possession"))?,
        region: ProveRegion::parse(get_s(item, "prove_region")?)
            .ok_or_else(|| corrupt("prove_region"))?,
        phone_masked: get_s(item, "prove_phone_masked")?.to_owned(),
        possession_deadline: opt_ts(item, "prove_possession_deadline")?,
        identity_id: opt_s(item, "prove_identity_id"),
        reverification_recommended: item
            .get("prove_reverification_recommended")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    }))
}

fn identity_event_item(e: &IdentityEvent) -> Item {
    let mut item = key(session_pk(&e.session_id), &format!("IE#{}", e.event_id));
    item.insert("event_id".into(), s(&e.event_id));
    item.insert("event_type".into(), s(&e.event_type));
    put_opt(&mut item, "occurred_at", e.occurred_at.map(ts));
    item.insert("received_at".into(), ts(e.received_at));
    item
}

fn identity_event_from(id: &SessionId, item: &Item) -> StoreResult<IdentityEvent> {
    Ok(IdentityEvent {
        session_id: id.clone(),
        event_id: get_s(item, "event_id")?.to_owned(),
        event_type: get_s(item, "event_type")?.to_owned(),
        occurred_at: opt_ts(item, "occurred_at")?,
        received_at: parse_ts(get_s(item, "received_at")?)?,
    })
}

fn session_from(item: &Item) -> StoreResult<Session> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad {what}"));
    let id = SessionId::parse(get_s(item, "id")?).ok_or_else(|| corrupt("id"))?;
    let last_error = match (opt_s(item, "error_code"), opt_s(item, "error_message")) {
        (Some(code), message) => Some(LastError {
            code,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Session {
        id,
        tenant: get_s(item, "tenant")?.to_owned(),
        provider: Provider::parse(get_s(item, "provider")?).ok_or_else(|| corrupt("provider"))?,
        user_id: get_s(item, "user_id")?.to_owned(),
        status: Status::parse(get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        provider_status: opt_s(item, "provider_status"),
        last_error,
        verification_type: opt_s(item, "verification_type")
            .map(|v| VerificationType::parse(&v).ok_or_else(|| corrupt("verification_type")))
            .transpose()?,
        user_type: opt_s(item, "user_type"),
        lang: opt_s(item, "lang"),
        provider_ref: opt_s(item, "provider_ref"),
        created_at: parse_ts(get_s(item, "created_at")?)?,
        updated_at: parse_ts(get_s(item, "updated_at")?)?,
        expires_at: opt_ts(item, "expires_at")?,
        last_checked_at: opt_ts(item, "last_checked_at")?,
        provider_seen_ms: opt_n(item, "provider_seen_ms"),
        prove: prove_from(item)?,
        next_check_at: opt_ts(item, "next_check_at")?,
        check_attempts: opt_n(item, "check_attempts").unwrap_or(0),
        evidence: {
            let e = Evidence {
                score: opt_n(item, "score"),
                document_type: opt_s(item, "document_type"),
                document_country: opt_s(item, "document_country"),
            };
            (e != Evidence::default()).then_some(e)
        },
        version: get_n(item, "version")?,
    })
}

fn history_item(h: &HistoryEntry) -> Item {
    let mut item = key(session_pk(&h.session_id), &format!("H#{:010}", h.version));
    item.insert("version".into(), n(h.version));
    item.insert("at".into(), ts(h.at));
    item.insert("from".into(), s(h.from.as_str()));
    item.insert("to".into(), s(h.to.as_str()));
    put_opt(
        &mut item,
        "provider_status",
        h.provider_status.clone().map(s),
    );
    item.insert("source".into(), s(source_str(h.source)));
    put_opt(&mut item, "reason", h.reason.clone().map(s));
    item
}

fn source_str(x: Source) -> &'static str {
    match x {
        Source::Webhook => "webhook",
        Source::ProviderRead => "provider_read",
        Source::App => "app",
        Source::Deadline => "deadline",
    }
}

fn history_from(id: &SessionId, item: &Item) -> StoreResult<HistoryEntry> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad history {what}"));
    let source = match get_s(item, "source")? {
        "webhook" => Source::Webhook,
        "provider_read" => Source::ProviderRead,
        "app" => Source::App,
        "deadline" => Source::Deadline,
        _ => return Err(corrupt("source")),
    };
    Ok(HistoryEntry {
        session_id: id.clone(),
        version: get_n(item, "version")?,
        at: parse_ts(get_s(item, "at")?)?,
        from: Status::parse(get_s(item, "from")?).ok_or_else(|| corrupt("from"))?,
        to: Status::parse(get_s(item, "to")?).ok_or_else(|| corrupt("to"))?,
        provider_status: opt_s(item, "provider_status"),
        source,
        reason: opt_s(item, "reason"),
    })
}

/// A key is free if unused, or if its record expired: DynamoDB's TTL deletes up to days late.
const IDEM_FREE: &str = "attribute_not_exists(pk) OR #ttl < :now";

fn idem_item(r: &IdempotencyRecord) -> Item {
    let mut item = key(idem_pk(&r.tenant, &r.key), "IDEM");
    item.insert("request_hash".into(), s(&r.request_hash));
    item.insert("session_id".into(), s(r.session_id.as_str()));
    item.insert("status".into(), n(r.status));
    put_opt(&mut item, "issued_at", r.issued_at.map(n));
    item.insert("created_at".into(), ts(r.created_at));
    item.insert("expires_at".into(), ts(r.expires_at));
    item.insert("ttl".into(), n(r.expires_at.unix_timestamp()));
    item
}

fn idem_from(tenant: &str, key: &str, item: &Item) -> StoreResult<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        tenant: tenant.to_owned(),
        key: key.to_owned(),
        request_hash: get_s(item, "request_hash")?.to_owned(),
        session_id: SessionId::parse(get_s(item, "session_id")?)
            .ok_or_else(|| StoreError::Corrupt("bad idempotency session id".into()))?,
        status: get_n(item, "status")?,
        issued_at: opt_n(item, "issued_at"),
        created_at: parse_ts(get_s(item, "created_at")?)?,
        expires_at: parse_ts(get_s(item, "expires_at")?)?,
    })
}

fn reauth_item(r: &Reauthentication) -> Item {
    let sk = format!("{:020}#{}", r.at.unix_timestamp_nanos().max(0), r.event_id);
    let mut item = key(reauth_pk(&r.tenant, &r.user_id), &sk);
    item.insert("provider".into(), s(r.provider.as_str()));
    item.insert("identity_id".into(), s(&r.identity_id));
    item.insert("session_id".into(), s(r.session_id.as_str()));
    item.insert("at".into(), ts(r.at));
    item.insert("outcome".into(), s(&r.outcome));
    item.insert("event_id".into(), s(&r.event_id));
    item
}

fn reauth_from(tenant: &str, user_id: &str, item: &Item) -> StoreResult<Reauthentication> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad reauthentication {what}"));
    Ok(Reauthentication {
        tenant: tenant.to_owned(),
        user_id: user_id.to_owned(),
        provider: Provider::parse(get_s(item, "provider")?).ok_or_else(|| corrupt("provider"))?,
        identity_id: get_s(item, "identity_id")?.to_owned(),
        session_id: SessionId::parse(get_s(item, "session_id")?)
            .ok_or_else(|| corrupt("session id"))?,
        at: parse_ts(get_s(item, "at")?)?,
        outcome: get_s(item, "outcome")?.to_owned(),
        event_id: get_s(item, "event_id")?.to_owned(),
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
}

// ---- the port -------------------------------------------------------------------------------

#[async_trait]
impl Store for DynamoStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(id), "SES")))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        out.item.as_ref().map(session_from).transpose()
    }

    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claim: Option<&RefClaim>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let mut items = vec![
            self.put(session_item(session), Some("attribute_not_exists(pk)"))
                .build()?,
            self.put(history_item(history), Some("attribute_not_exists(pk)"))
                .build()?,
        ];
        if let Some(c) = claim {
            let mut item = key(format!("REF#{}", c.key), "REF");
            item.insert("session_id".into(), s(session.id.as_str()));
            item.insert("tenant".into(), s(&c.tenant));
            let put = match &c.replaces {
                None => self.put(item, Some("attribute_not_exists(pk)")),
                Some(old) => self
                    .put(item, Some("session_id = :old"))
                    .value(":old", s(old.as_str())),
            };
            items.push(put.build()?);
        }
        if let Some(r) = idempotency {
            items.push(
                self.put(idem_item(r), Some(IDEM_FREE))
                    .name("#ttl", "ttl")
                    .value(":now", n(r.created_at.unix_timestamp()))
                    .build()?,
            );
        }
        self.transact(items).await
    }

    async fn update_session(&self, w: SessionWrite<'_>) -> StoreResult<()> {
        if w.history.is_none() && w.applies_delivery.is_none() {
            // One plain conditional put: half the cost of a transaction.
            return self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(session_item(w.session)))
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", n(w.expected_version))
                .send()
                .await
                .map(|_| ())
                .map_err(write_error);
        }
        self.transact(self.session_write_items(&w, None)?).await
    }

    async fn list_user_sessions(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>> {
        let gsi1pk = user_pk(tenant, user_id);
        let start = match cursor {
            None => None,
            Some(c) => {
                let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok());
                match decoded {
                    // A cursor is only good for the listing that handed it out.
                    Some(c) if c.gsi1pk == gsi1pk && c.pk.starts_with("SES#") => {
                        Some(HashMap::from([
                            ("pk".to_owned(), s(c.pk)),
                            ("sk".to_owned(), s(c.sk)),
                            ("gsi1pk".to_owned(), s(c.gsi1pk)),
                            ("gsi1sk".to_owned(), s(c.gsi1sk)),
                        ]))
                    }
                    _ => return Ok(None),
                }
            }
        };
        // One more than asked tells whether a next page exists without a second query.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :u")
            .expression_attribute_values(":u", s(&gsi1pk))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(read_error)?;
        let items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        let sessions: Vec<Session> = items
            .iter()
            .take(limit)
            .map(session_from)
            .collect::<StoreResult<_>>()?;
        let next_cursor = if more {
            sessions.last().map(|last| {
                let c = Cursor {
                    pk: session_pk(&last.id),
                    sk: "SES".into(),
                    gsi1pk: gsi1pk.clone(),
                    gsi1sk: user_sk(last),
                };
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&c).unwrap_or_default())
            })
        } else {
            None
        };
        Ok(Some(Page {
            sessions,
            next_cursor,
        }))
    }

    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :h)")
            .expression_attribute_values(":pk", s(session_pk(id)))
            .expression_attribute_values(":h", s("H#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|i| history_from(id, i))
            .collect()
    }

    async fn get_ref(&self, ref_key: &str) -> StoreResult<Option<ProviderRef>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("REF#{ref_key}"), "REF")))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(Some(ProviderRef {
            key: ref_key.to_owned(),
            session_id: SessionId::parse(get_s(&item, "session_id")?)
                .ok_or_else(|| StoreError::Corrupt("bad ref session id".into()))?,
            tenant: get_s(&item, "tenant")?.to_owned(),
        }))
    }

    async fn get_refs(&self, ref_keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        if ref_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted = KeysAndAttributes::builder().consistent_read(true);
        // BatchGetItem refuses a key asked twice.
        let unique: std::collections::BTreeSet<&String> = ref_keys.iter().collect();
        for k in unique {
            wanted = wanted.keys(key(format!("REF#{k}"), "REF"));
        }
        let mut request = Some(
            wanted
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        let mut found: HashMap<String, ProviderRef> = HashMap::new();
        // DynamoDB may leave keys unprocessed under load: ask again for those only.
        for attempt in 0..5u32 {
            let Some(keys) = request.take() else { break };
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(read_error)?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                let ref_key = get_s(&item, "pk")?
                    .strip_prefix("REF#")
                    .ok_or_else(|| StoreError::Corrupt("bad ref key".into()))?
                    .to_owned();
                let r = ProviderRef {
                    key: ref_key.clone(),
                    session_id: SessionId::parse(get_s(&item, "session_id")?)
                        .ok_or_else(|| StoreError::Corrupt("bad ref session id".into()))?,
                    tenant: get_s(&item, "tenant")?.to_owned(),
                };
                found.insert(ref_key, r);
            }
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
        Ok(ref_keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn record_delivery(&self, d: &Delivery) -> StoreResult<DeliveryOutcome> {
        let mut item = key(delivery_pk(d.provider, &d.event_id), "WH");
        item.insert("state".into(), s(DeliveryState::Received.as_str()));
        put_opt(&mut item, "subject", d.subject.clone().map(s));
        item.insert("received_at".into(), ts(d.received_at));
        item.insert("ttl".into(), n(d.expires_at.unix_timestamp()));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // A delivery recorded but never applied (its processing failed) is processed again.
            .condition_expression("attribute_not_exists(pk) OR #st <> :applied")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":applied", s(DeliveryState::Applied.as_str()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(DeliveryOutcome::New),
            Err(e) if is_condition_failure(&e) => Ok(DeliveryOutcome::Duplicate),
            Err(e) => Err(read_error(e)),
        }
    }

    async fn set_delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
        state: DeliveryState,
    ) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(delivery_pk(provider, event_id), "WH")))
            .update_expression("SET #st = :st")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":st", s(state.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(delivery_pk(provider, event_id), "WH")))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        Ok(out
            .item
            .and_then(|i| opt_s(&i, "state"))
            .and_then(|v| DeliveryState::parse(&v)))
    }

    async fn get_idempotency(
        &self,
        tenant: &str,
        idem_key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(idem_pk(tenant, idem_key), "IDEM")))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        out.item
            .as_ref()
            .map(|i| idem_from(tenant, idem_key, i))
            .transpose()
    }

    async fn put_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item(r)))
            .condition_expression(IDEM_FREE)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(r.created_at.unix_timestamp()))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn claim_ref(&self, c: &RefClaim, session_id: &SessionId) -> StoreResult<()> {
        let mut item = key(format!("REF#{}", c.key), "REF");
        item.insert("session_id".into(), s(session_id.as_str()));
        item.insert("tenant".into(), s(&c.tenant));
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_values(":sid", s(session_id.as_str()));
        req = match &c.replaces {
            None => req.condition_expression("attribute_not_exists(pk) OR session_id = :sid"),
            Some(old) => req
                .condition_expression(
                    "attribute_not_exists(pk) OR session_id = :sid OR session_id = :old",
                )
                .expression_attribute_values(":old", s(old.as_str())),
        };
        req.send().await.map(|_| ()).map_err(write_error)
    }

    async fn add_identity_event(
        &self,
        w: SessionWrite<'_>,
        event: &IdentityEvent,
    ) -> StoreResult<()> {
        // Unconditional: the same event stored again is the same item.
        let event = self.put(identity_event_item(event), None).build()?;
        self.transact(self.session_write_items(&w, Some(event))?)
            .await
    }

    async fn keep_unmatched(&self, d: &Delivery) -> StoreResult<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(delivery_pk(d.provider, &d.event_id), "WH")))
            .update_expression("SET #st = :st")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":st", s(DeliveryState::Unmatched.as_str()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(subject) = &d.subject {
            let mut item = key(
                unmatched_pk(d.provider, subject),
                &format!("WH#{}", d.event_id),
            );
            item.insert("event_id".into(), s(&d.event_id));
            item.insert("received_at".into(), ts(d.received_at));
            item.insert("ttl".into(), n(d.expires_at.unix_timestamp()));
            items.push(self.put(item, None).build()?);
        }
        self.transact(items).await
    }

    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :ie)")
                .expression_attribute_values(":pk", s(session_pk(id)))
                .expression_attribute_values(":ie", s("IE#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(read_error)?;
            for item in page.items.unwrap_or_default() {
                out.push(identity_event_from(id, &item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| (b.received_at, &b.event_id).cmp(&(a.received_at, &a.event_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Session>> {
        // One page: what does not fit is due on the next run (earliest first, so nothing starves).
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :pk AND gsi2sk <= :upto")
            .expression_attribute_values(":pk", s(due_pk(shard)))
            .expression_attribute_values(":upto", s(due_upto(now)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(read_error)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(session_from)
            .collect()
    }

    async fn unmatched_deliveries(
        &self,
        provider: &'static str,
        subject: &str,
    ) -> StoreResult<Vec<String>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(unmatched_pk(provider, subject)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let mut ids = Vec::new();
        for item in out.items.unwrap_or_default() {
            let id = get_s(&item, "event_id")?.to_owned();
            // The filing stays behind once matched; the delivery's own state is the truth.
            if self.delivery_state(provider, &id).await? == Some(DeliveryState::Unmatched) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(reauth_item(r)))
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
