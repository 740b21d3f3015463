//! DynamoDB adapter: one table, `pk`/`sk`, one index `gsi1` (a user's sessions, newest first), a
//! sparse index `gsi2` (open sessions by when their next check is due, and deliveries awaiting a
//! retry), both projecting keys only, and `gsi3` (a tenant's sessions, newest first: the
//! session's own `tenant` and `gsi1sk`, projecting `status` and `provider`); TTL on `ttl`. Every
//! state change is one conditional write on `version`, of one item where it can (a transaction
//! bills each of its items twice).
//!
//! | item              | pk                          | sk            | notes                     |
//! |-------------------|-----------------------------|---------------|---------------------------|
//! | session           | `SES#<id>`                  | `SES`         | its history in `h`, appended by each write; gsi1: `USR#<tenant>#<user>` / `<created ns>#<id>` |
//! |                   |                             |               | gsi2 (open sessions with a next check only): `DUE#<shard>` / `<filed ms>#<id>`, filed at or before the next check |
//! |                   |                             |               | gsi3: `<tenant>` / its `gsi1sk`, with `status` and `provider` |
//! | identity event    | `SES#<id>`                  | `IE#<event id>` | Prove Identity Manager  |
//! | verified-data access | `SES#<id>`               | `VDA#<access id>` | who read the session's verified data, when; TTL |
//! | provider ref      | `REF#<key>`                 | `REF`         | provider identity -> session; `<key>` is `<provider>#...` |
//! | webhook delivery  | `WH#<provider>#<event id>`  | `WH`          | state, lease, what a retry needs; TTL; gsi2 while unsettled: `RETRY#<shard>` / `<due ms>#<pk>` |
//! | unmatched delivery| `UNM#<provider>#<subject>`  | `WH#<event id>` | finds kept deliveries on link, TTL |
//! | delivery token    | `TOK#<provider>#<token hash>` | `TOK`       | the body a token came with (Prove), TTL |
//! | idempotency key   | `IDEM#<tenant>#<key>`       | `IDEM`        | in progress (lease) or done; TTL |
//! | reauthentication  | `RA#<tenant>#<user>`        | `<at ns>#<event id>` | newest first by query |
//! | webhook endpoint  | `EP#<tenant>`               | `<endpoint id>` | its secret sealed (`events::seal`) |
//! | outbound event    | `EVT#<tenant>`              | `<event id>`  | body as sent; ids sort by time; TTL |
//! | outbound delivery | `EVD#<tenant>#<event id>`   | `<endpoint id>` | attempts; TTL; gsi2 while pending: `OUT#<shard>` / `<due ms>#...` |
//!
//! Where things are: the table's definition (`schema`), every key (`keys`), attribute helpers
//! (`attr`), items to values and back (`codec`), the session write (`update`), reads by key in
//! batches (`batch`), SDK errors (`errors`), and one file per capability of the port (`listing`:
//! a tenant's sessions).

mod accesses;
mod attr;
mod batch;
mod codec;
mod deliveries;
mod due;
mod errors;
mod idempotency;
mod inspect;
mod journal;
mod keys;
mod listing;
mod outbox;
mod redactions;
mod refs;
mod schema;
mod sessions;
pub mod stream;
mod update;

pub use schema::{SchemaError, create_table, ensure_stream};

use super::{StoreError, StoreResult};
use attr::Item;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use errors::{read_error, write_error};
use std::collections::HashMap;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long a session and what is kept about it stay after the session was created (the
    /// `ttl` written on them; `None`: no `ttl`, kept until redacted).
    retention: Option<time::Duration>,
}

impl DynamoStore {
    /// A store that keeps sessions until they are redacted (`with_retention` sets a period).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: None,
        }
    }

    /// Sessions, their refs and identity events, and reauthentications are written with a `ttl`
    /// of their session's creation (a reauthentication: its own time) plus `retention`.
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention.and_then(|r| time::Duration::try_from(r).ok());
        self
    }

    /// `item` with the `ttl` (Unix seconds) of a record kept from `from`, if the store has a
    /// retention.
    fn retain(&self, mut item: Item, from: time::OffsetDateTime) -> Item {
        if let Some(r) = self.retention {
            item.insert("ttl".into(), attr::n((from + r).unix_timestamp()));
        }
        item
    }

    /// A ref `claim` pointing at `session`, kept as long as that session.
    fn claimed_ref(&self, claim: &super::RefClaim, session: &crate::session::Session) -> Item {
        let item = codec::ref_item(&claim.key, &session.id, &claim.tenant);
        self.retain(item, session.created_at)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A conditional put as a transaction item.
    fn put(&self, item: Item, condition: Option<&str>) -> PutBuilder {
        PutBuilder {
            table: self.table.clone(),
            item,
            condition: condition.map(str::to_owned),
            names: HashMap::new(),
            values: HashMap::new(),
        }
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

    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// One Update as a plain UpdateItem (a transaction of one item would bill twice).
    async fn update_one(&self, u: Update) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }
}

/// A put of a transaction, with its condition's placeholders.
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
