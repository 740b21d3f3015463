//! DynamoDB adapter: one table, `pk`/`sk`, one index `gsi1` (a user's sessions, newest first), a
//! sparse index `gsi2` (open sessions by when their next check is due), both projecting keys
//! only; TTL on `ttl`. Every state change is one conditional write on `version`, of one item
//! where it can (a transaction bills each of its items twice).
//!
//! | item              | pk                          | sk            | notes                     |
//! |-------------------|-----------------------------|---------------|---------------------------|
//! | session           | `SES#<id>`                  | `SES`         | its history in `h`, appended by each write; gsi1: `USR#<tenant>#<user>` / `<created ns>#<id>` |
//! |                   |                             |               | gsi2 (open sessions with a next check only): `DUE#<shard>` / `<filed ms>#<id>`, filed at or before the next check |
//! | provider ref      | `REF#<key>`                 | `REF`         | provider identity -> session |
//! | webhook delivery  | `WH#<provider>#<event id>`  | `WH`          | state, lease, what a retry needs; TTL; gsi2 while unsettled: `RETRY#<shard>` / `<due ms>#<pk>` |
//! | delivery token    | `TOK#<provider>#<token hash>` | `TOK`       | the body a token came with (Prove), TTL |
//! | idempotency key   | `IDEM#<tenant>#<key>`       | `IDEM`        | in progress (lease) or done; TTL |
//! | identity event    | `SES#<id>`                  | `IE#<event id>` | Prove Identity Manager  |
//! | unmatched delivery| `UNM#<provider>#<subject>`  | `WH#<event id>` | finds kept deliveries on link, TTL |
//! | reauthentication  | `RA#<tenant>#<user>`        | `<at ns>#<event id>` | newest first by query |

mod deliveries;
mod idempotency;

use super::*;
use crate::session::{
    DueKey, HistoryMark, LastError, MAX_HISTORY, Provider, ProviderData, Reauthentication, Source,
    Status,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem, Update,
};
use idempotency::idem_complete_put;
use std::collections::HashMap;

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

    /// A session write as a transaction item (written together with another item).
    fn session_update_item(&self, w: &SessionWrite<'_>) -> StoreResult<TransactWriteItem> {
        let e = session_update(w);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(&w.session.id), "SES")))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Items by key, strongly consistent, in one BatchGetItem per 100 keys; keys not found are
    /// left out. Unprocessed keys (DynamoDB may leave some under load) are asked again.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            for attempt in 0..5u32 {
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

    /// Sessions by id in the order asked, through `batch_get` (for the indexes, which hold keys
    /// only). A session the index names but the table no longer has is left out.
    async fn sessions_by_id(&self, ids: &[SessionId]) -> StoreResult<Vec<Session>> {
        let keys = ids.iter().map(|id| key(session_pk(id), "SES")).collect();
        let mut by_pk: HashMap<String, Item> = self
            .batch_get(keys)
            .await?
            .into_iter()
            .filter_map(|i| Some((opt_s(&i, "pk")?, i)))
            .collect();
        ids.iter()
            .filter_map(|id| by_pk.remove(&session_pk(id)))
            .map(|i| session_from(&i))
            .collect()
    }

    /// One item by key, strongly consistent (a read after a write must see it).
    async fn get(&self, k: Item) -> StoreResult<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(read_error)
    }

    /// Moves a session's due filing to `at`, if its version is still the one read.
    async fn refile(&self, session: &Session, at: OffsetDateTime) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(&session.id), "SES")))
            .update_expression("SET #dsk = :dsk")
            .condition_expression("#v = :v AND attribute_exists(#dsk)")
            .expression_attribute_names("#dsk", "gsi2sk")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":dsk", s(due_sk(at, &session.id)))
            .expression_attribute_values(":v", n(session.version))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
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
    // `gsi1`: a user's sessions; `gsi2`: the due index. Keys `<name>pk` / `<name>sk`. Keys only:
    // a write that does not move an index key then writes nothing to the index, and the
    // sessions an index names are read with one BatchGetItem.
    let index = |name: &str| -> Result<GlobalSecondaryIndex, String> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
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
/// Times are stored as Unix nanoseconds: exact, and a third of an RFC 3339 string's size (the
/// session item must stay under the 1 KB that one write unit covers).
fn ts(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp_nanos())
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
fn from_nanos(k: &str, nanos: i128) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| StoreError::Corrupt(format!("bad time {k}: {e}")))
}
fn get_ts(item: &Item, k: &str) -> StoreResult<OffsetDateTime> {
    from_nanos(k, get_n(item, k)?)
}
fn opt_ts(item: &Item, k: &str) -> StoreResult<Option<OffsetDateTime>> {
    opt_n::<i128>(item, k).map(|v| from_nanos(k, v)).transpose()
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
    user_sk_at(s.created_at.unix_timestamp_nanos().max(0), &s.id)
}
fn user_sk_at(created_ns: i128, id: &SessionId) -> String {
    format!("{created_ns:020}#{id}")
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
    put_opt(&mut item, "provider_ref", x.provider_ref.clone().map(s));
    item.insert("created_at".into(), ts(x.created_at));
    item.insert("updated_at".into(), ts(x.updated_at));
    put_opt(&mut item, "expires_at", x.expires_at.map(ts));
    put_opt(&mut item, "last_checked_at", x.last_checked_at.map(ts));
    put_opt(&mut item, "provider_seen_ms", x.provider_seen_ms.map(n));
    if !x.data.is_empty() {
        // The provider's own facts, as its adapter wrote them (one JSON object).
        item.insert("pd".into(), s(x.data.to_json()));
    }
    put_opt(&mut item, "next_check_at", x.next_check_at.map(ts));
    if x.check_attempts > 0 {
        item.insert("check_attempts".into(), n(x.check_attempts));
    }
    put_opt(&mut item, "unclear", x.unclear.clone().map(s));
    item.insert("version".into(), n(x.version));
    item
}

fn ref_from(item: &Item) -> StoreResult<ProviderRef> {
    Ok(ProviderRef {
        key: get_s(item, "pk")?
            .strip_prefix("REF#")
            .ok_or_else(|| StoreError::Corrupt("bad ref key".into()))?
            .to_owned(),
        session_id: SessionId::parse(get_s(item, "session_id")?)
            .ok_or_else(|| StoreError::Corrupt("bad ref session id".into()))?,
        tenant: get_s(item, "tenant")?.to_owned(),
    })
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
        received_at: get_ts(item, "received_at")?,
    })
}

fn session_from(item: &Item) -> StoreResult<Session> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad {what}"));
    let id = session_id_of(item).ok_or_else(|| corrupt("id"))?;
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
        provider_ref: opt_s(item, "provider_ref"),
        created_at: get_ts(item, "created_at")?,
        updated_at: get_ts(item, "updated_at")?,
        expires_at: opt_ts(item, "expires_at")?,
        last_checked_at: opt_ts(item, "last_checked_at")?,
        provider_seen_ms: opt_n(item, "provider_seen_ms"),
        next_check_at: opt_ts(item, "next_check_at")?,
        check_attempts: opt_n(item, "check_attempts").unwrap_or(0),
        data: match opt_s(item, "pd") {
            Some(json) => ProviderData::from_json(&json).map_err(|_| corrupt("provider data"))?,
            None => ProviderData::default(),
        },
        unclear: opt_s(item, "unclear"),
        version: get_n(item, "version")?,
        due_key: DueKey(filed_due(item)),
        history_mark: history_mark(item),
    })
}

/// How the item's history list is laid out: its length, and the slot of the oldest entry after
/// the first (by version), which a write replaces once the list is full.
fn history_mark(item: &Item) -> HistoryMark {
    let Some(AttributeValue::L(entries)) = item.get("h") else {
        return HistoryMark::default();
    };
    let version = |e: &AttributeValue| -> u64 {
        e.as_m()
            .ok()
            .and_then(|m| opt_n(m, "v"))
            .unwrap_or(u64::MAX)
    };
    let oldest_slot = entries
        .iter()
        .enumerate()
        .skip(1)
        .min_by_key(|(_, e)| version(e))
        .map_or(0, |(i, _)| i);
    HistoryMark {
        len: entries.len(),
        oldest_slot,
    }
}

/// The session a session item, or an index entry naming one, is about.
fn session_id_of(item: &Item) -> Option<SessionId> {
    opt_s(item, "pk")?
        .strip_prefix("SES#")
        .and_then(SessionId::parse)
}

/// When the item is filed in the due index (`gsi2sk`'s time), if it is.
fn filed_due(item: &Item) -> Option<OffsetDateTime> {
    let ms: i128 = opt_s(item, "gsi2sk")?.split('#').next()?.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
}

/// Attributes of `session_item` that a session may lack: an update removes those its new state
/// lacks (the test `every_optional_session_attribute_is_listed` keeps this list whole).
const SESSION_OPTIONAL: &[&str] = &[
    "provider_status",
    "error_code",
    "error_message",
    "provider_ref",
    "expires_at",
    "last_checked_at",
    "provider_seen_ms",
    "pd",
    "next_check_at",
    "check_attempts",
    "unclear",
];

/// Written once, when the session is created: an update leaves them (and so the user index,
/// which projects only keys) untouched.
const SESSION_FIXED: &[&str] = &[
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "tenant",
    "provider",
    "user_id",
    "created_at",
];

/// The item that creates a session: its state, its first history entry, and its filing in the
/// due index when it has a next check.
fn new_session_item(x: &Session, first: &HistoryEntry) -> Item {
    let mut item = session_item(x);
    item.insert("h".into(), AttributeValue::L(vec![history_value(first)]));
    if let (true, Some(at)) = (is_scheduled(x), x.next_check_at) {
        item.insert("gsi2pk".into(), s(due_pk(due_shard(&x.id))));
        item.insert("gsi2sk".into(), s(due_sk(at, &x.id)));
    }
    item
}

/// An update expression with its condition and placeholders.
#[derive(Default)]
struct Expr {
    update: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// One session write as a single UpdateItem, conditional on the version read: the new state,
/// its history entry appended to the item's own list (no second item, so no transaction), and
/// the due filing moved only when it must. A write that postpones the next check keeps the
/// current filing (checked here: `gsi2sk <= ` the new one), since moving an index key costs a
/// delete and a put in the index; reconcile re-files a session it finds early. A wrong `due_key`
/// hint fails the condition, and the caller re-reads and writes again.
fn session_update(w: &SessionWrite<'_>) -> Expr {
    let x = w.session;
    let mut e = Expr::default();
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let item = session_item(x);
    for (i, k) in SESSION_OPTIONAL
        .iter()
        .filter(|k| !item.contains_key(**k))
        .enumerate()
    {
        removes.push(format!("#r{i}"));
        e.names.insert(format!("#r{i}"), (*k).to_owned());
    }
    let mut state: Vec<(String, AttributeValue)> = item
        .into_iter()
        .filter(|(k, _)| !SESSION_FIXED.contains(&k.as_str()) && k != "version")
        .collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in state.into_iter().enumerate() {
        sets.push(format!("#a{i} = :a{i}"));
        e.names.insert(format!("#a{i}"), k);
        e.values.insert(format!(":a{i}"), v);
    }
    sets.push("#v = :next".into());
    e.names.insert("#v".into(), "version".into());
    e.values.insert(":next".into(), n(x.version));
    e.values.insert(":expected".into(), n(w.expected_version));
    e.condition = "#v = :expected".into();
    if let Some(h) = w.history {
        e.names.insert("#h".into(), "h".into());
        let mark = x.history_mark;
        if mark.len >= MAX_HISTORY && mark.oldest_slot > 0 {
            // Full: the oldest entry after the first (creation) makes room. The version
            // condition guarantees the layout read is the one stored.
            sets.push(format!("#h[{}] = :h", mark.oldest_slot));
            e.values.insert(":h".into(), history_value(h));
        } else {
            sets.push("#h = list_append(if_not_exists(#h, :nil), :h)".into());
            e.values
                .insert(":h".into(), AttributeValue::L(vec![history_value(h)]));
            e.values
                .insert(":nil".into(), AttributeValue::L(Vec::new()));
        }
    }
    e.names.insert("#dsk".into(), "gsi2sk".into());
    match (is_scheduled(x), x.next_check_at) {
        (true, Some(at)) => {
            e.values.insert(":dsk".into(), s(due_sk(at, &x.id)));
            match x.due_key.0 {
                Some(filed) if filed <= at => e.condition.push_str(" AND #dsk <= :dsk"),
                _ => {
                    sets.push("#dpk = :dpk, #dsk = :dsk".into());
                    e.names.insert("#dpk".into(), "gsi2pk".into());
                    e.values.insert(":dpk".into(), s(due_pk(due_shard(&x.id))));
                }
            }
        }
        _ => {
            // Closed or nothing left to check: out of the (sparse) due index.
            removes.push("#dpk, #dsk".into());
            e.names.insert("#dpk".into(), "gsi2pk".into());
        }
    }
    e.update = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        e.update
            .push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    e
}

/// One history entry as an element of the session item's `h` list. Short names: the list is
/// part of every write of the session, which should stay within one 1 KB write unit.
fn history_value(h: &HistoryEntry) -> AttributeValue {
    let mut m: Item = HashMap::new();
    m.insert("v".into(), n(h.version));
    m.insert("at".into(), ts(h.at));
    m.insert("from".into(), s(h.from.as_str()));
    m.insert("to".into(), s(h.to.as_str()));
    put_opt(&mut m, "ps", h.provider_status.clone().map(s));
    m.insert("src".into(), s(source_str(h.source)));
    put_opt(&mut m, "why", h.reason.clone().map(s));
    AttributeValue::M(m)
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
    let source = match get_s(item, "src")? {
        "webhook" => Source::Webhook,
        "provider_read" => Source::ProviderRead,
        "app" => Source::App,
        "deadline" => Source::Deadline,
        _ => return Err(corrupt("source")),
    };
    Ok(HistoryEntry {
        session_id: id.clone(),
        version: get_n(item, "v")?,
        at: get_ts(item, "at")?,
        from: Status::parse(get_s(item, "from")?).ok_or_else(|| corrupt("from"))?,
        to: Status::parse(get_s(item, "to")?).ok_or_else(|| corrupt("to"))?,
        provider_status: opt_s(item, "ps"),
        source,
        reason: opt_s(item, "why"),
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
        at: get_ts(item, "at")?,
        outcome: get_s(item, "outcome")?.to_owned(),
        event_id: get_s(item, "event_id")?.to_owned(),
    })
}

/// Most identity events one read looks at (one page).
const IDENTITY_EVENTS_READ: i32 = 200;

// ---- the port -------------------------------------------------------------------------------

#[async_trait]
impl Store for DynamoStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let item = self.get(key(session_pk(id), "SES")).await?;
        item.as_ref().map(session_from).transpose()
    }

    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()> {
        let item = new_session_item(session, history);
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
        if let Some((r, owner)) = idempotency {
            items.push(idem_complete_put(self, r, owner)?);
        }
        self.transact(items).await
    }

    async fn update_session(&self, w: SessionWrite<'_>) -> StoreResult<()> {
        let e = session_update(&w);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(&w.session.id), "SES")))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
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
            Some(c) => match super::cursor::decode(tenant, user_id, c) {
                // A cursor is only good for the listing that handed it out.
                Some(at) => Some(HashMap::from([
                    ("pk".to_owned(), s(session_pk(&at.id))),
                    ("sk".to_owned(), s("SES")),
                    ("gsi1pk".to_owned(), s(&gsi1pk)),
                    ("gsi1sk".to_owned(), s(user_sk_at(at.created_ns, &at.id))),
                ])),
                None => return Ok(None),
            },
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
        let keys = out.items.unwrap_or_default();
        let more = keys.len() > limit;
        let ids: Vec<SessionId> = keys
            .iter()
            .take(limit)
            .map(|k| {
                session_id_of(k).ok_or_else(|| StoreError::Corrupt("bad user index key".into()))
            })
            .collect::<StoreResult<_>>()?;
        let sessions = self.sessions_by_id(&ids).await?;
        let next_cursor = if more {
            sessions.last().map(|last| {
                let at = super::cursor::Position {
                    created_ns: last.created_at.unix_timestamp_nanos().max(0),
                    id: last.id.clone(),
                };
                super::cursor::encode(tenant, user_id, &at)
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
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(id), "SES")))
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

    async fn get_ref(&self, ref_key: &str) -> StoreResult<Option<ProviderRef>> {
        let item = self.get(key(format!("REF#{ref_key}"), "REF")).await?;
        item.as_ref().map(ref_from).transpose()
    }

    async fn get_refs(&self, ref_keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        match ref_keys {
            [] => return Ok(Vec::new()),
            // One key: a plain read (a batch of one costs the same and says less).
            [one] => return Ok(vec![self.get_ref(one).await?]),
            _ => {}
        }
        // BatchGetItem refuses a key asked twice.
        let unique: std::collections::BTreeSet<&String> = ref_keys.iter().collect();
        let keys = unique
            .into_iter()
            .map(|k| key(format!("REF#{k}"), "REF"))
            .collect();
        let mut found: HashMap<String, ProviderRef> = HashMap::new();
        for item in self.batch_get(keys).await? {
            let r = ref_from(&item)?;
            found.insert(r.key.clone(), r);
        }
        Ok(ref_keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn record_delivery(
        &self,
        d: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded> {
        self.delivery_record(d, now, lease_until).await
    }

    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.delivery_lease(provider, event_id, now, lease_until)
            .await
    }

    async fn settle_delivery(&self, d: &Delivery, state: DeliveryState) -> StoreResult<()> {
        self.delivery_settle(d, state).await
    }

    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.delivery_defer(provider, event_id, retry_at).await
    }

    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>> {
        self.deliveries_due(shard, now, limit).await
    }

    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.token_bind(provider, token_hash, body_hash, expires_at)
            .await
    }

    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        self.delivery_state_of(provider, event_id).await
    }

    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>> {
        self.deliveries_unmatched(provider, subject).await
    }

    async fn begin_idempotency(
        &self,
        r: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        self.idem_begin(r, now).await
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord, owner: &str) -> StoreResult<()> {
        self.idem_complete(r, owner).await
    }

    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()> {
        self.idem_release(tenant, key, owner).await
    }

    async fn get_idempotency(
        &self,
        tenant: &str,
        idem_key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        self.idem_get(tenant, idem_key).await
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
        delivery: &Delivery,
    ) -> StoreResult<()> {
        // Unconditional: the same event stored again is the same item. The delivery is settled
        // in the same transaction, so a stored event is never processed twice.
        let event = self.put(identity_event_item(event), None).build()?;
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
            .expression_attribute_values(":ie", s("IE#"))
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
        let ids: Vec<SessionId> = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(session_id_of)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(ids.len());
        for session in self.sessions_by_id(&ids).await? {
            let filed_by_now = session.due_key.0.is_some_and(|filed| filed <= now);
            let Some(at) = session
                .next_check_at
                .filter(|_| filed_by_now && is_scheduled(&session))
            else {
                // The index lags the table (it is eventually consistent): nothing to do.
                continue;
            };
            if at <= now {
                due.push(session);
                continue;
            }
            // Filed early (a write postponed its check and kept the filing): file it where it
            // belongs. A lost race means a writer filed it itself.
            match self.refile(&session, at).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(due)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Session {
        let now = OffsetDateTime::now_utc();
        let mut x = Session::new("t", Provider::named("p"), "u", now);
        x.provider_status = Some("p".into());
        x.last_error = Some(LastError {
            code: "c".into(),
            message: "m".into(),
        });
        x.provider_ref = Some("r".into());
        x.expires_at = Some(now);
        x.last_checked_at = Some(now);
        x.provider_seen_ms = Some(1);
        x.data = ProviderData::of(
            &serde_json::json!({"masked": "+1*******011", "n": 0.5, "flag": true}),
        );
        x.next_check_at = Some(now);
        x.check_attempts = 2;
        x.unclear = Some("not_found".into());
        x
    }

    #[test]
    fn every_optional_session_attribute_is_listed() {
        // An attribute missing from SESSION_OPTIONAL would survive an update that cleared it.
        let always = ["status", "updated_at", "version"];
        for k in session_item(&full()).keys() {
            assert!(
                SESSION_FIXED.contains(&k.as_str())
                    || SESSION_OPTIONAL.contains(&k.as_str())
                    || always.contains(&k.as_str()),
                "{k} is neither fixed nor listed as optional"
            );
        }
        let bare = session_item(&Session::new(
            "t",
            Provider::named("p"),
            "u",
            OffsetDateTime::now_utc(),
        ));
        for k in SESSION_OPTIONAL {
            assert!(!bare.contains_key(*k), "{k} is always written");
        }
    }

    #[test]
    fn a_session_round_trips_through_its_item() {
        let x = full();
        assert_eq!(session_from(&session_item(&x)).unwrap(), x);
    }

    #[test]
    fn a_postponed_check_keeps_the_filing_and_an_earlier_one_moves_it() {
        let mut x = full();
        let at = x.next_check_at.unwrap();
        x.status = Status::Pending;
        x.due_key = DueKey(Some(at - time::Duration::seconds(5)));
        let w = |x: &Session| {
            session_update(&SessionWrite {
                session: x,
                expected_version: 1,
                history: None,
            })
        };
        let kept = w(&x);
        assert!(!kept.update.contains("#dpk"), "{}", kept.update);
        assert!(
            kept.condition.contains("#dsk <= :dsk"),
            "{}",
            kept.condition
        );
        x.due_key = DueKey(Some(at + time::Duration::seconds(5)));
        let moved = w(&x);
        assert!(
            moved.update.contains("#dpk = :dpk, #dsk = :dsk"),
            "{}",
            moved.update
        );
        // A decided session with an open reason to re-read stays filed; a final one leaves.
        x.status = Status::Verified;
        assert!(!w(&x).update.contains("REMOVE #dpk"), "{}", w(&x).update);
        x.status = Status::Canceled;
        let closed = w(&x);
        assert!(closed.update.contains("REMOVE") && closed.update.contains("#dpk, #dsk"));
    }
}
