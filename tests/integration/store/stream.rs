//! The table's stream, decoded (DynamoDB only: the memory store logs its changes itself). The
//! same writes made to both adapters: what DynamoDB Local's real stream carries, converted to
//! the JSON a Lambda event holds and decoded by `idv::store::change_of`, is what the memory
//! store logs (`MemoryStore::changes_after`): the same session versions with the same history
//! entries, the identity event and the reauthentication once each; every other item
//! (refs, webhook deliveries, verified-data accesses, endpoints, events, outbound deliveries)
//! decodes to no change.

use super::*;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use base64::Engine;
use idv::events::derive::event_id;
use idv::events::{Endpoint, Event, EventType, OutboundDelivery, OutboundKey};
use idv::session::{IdentityEvent, Reauthentication};
use idv::store::{Change, Delivery, MemoryStore, RefClaim};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A change as compared: the session's value and version (not the adapter's filing hints).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Session {
        session: Box<Session>,
        version: u64,
        entry: Option<HistoryEntry>,
    },
    Identity(IdentityEvent),
    Reauth(Reauthentication),
}

fn seen(c: &Change) -> Seen {
    match c {
        Change::Session { session, entry } => Seen::Session {
            session: Box::new(session.value.clone()),
            version: session.version,
            entry: entry.clone(),
        },
        Change::IdentityEvent(e) => Seen::Identity(e.clone()),
        Change::Reauthentication(r) => Seen::Reauth(r.clone()),
    }
}

/// The writes, made alike to either adapter: every value is fixed here, so both stores are
/// given the same sessions, entries and times.
struct Script {
    created: Session,
    claim: RefClaim,
    verified: Session,
    verified_entry: HistoryEntry,
    reverify: Session,
    reverify_entry: HistoryEntry,
    identity_event: IdentityEvent,
    delivery: Delivery,
    reauth: Reauthentication,
    endpoint: Endpoint,
    event: Event,
}

impl Script {
    fn new() -> Self {
        let created = prove_session("user-stream");
        let at = now();
        let mut verified = created.clone();
        verified.status = Status::Verified;
        verified.updated_at = at;
        let verified_entry = HistoryEntry {
            session_id: created.id.clone(),
            version: 2,
            at,
            from: Status::Created,
            to: Status::Verified,
            provider_status: Some("success".into()),
            source: Source::Webhook,
            reason: None,
            provider_event: None,
        };
        let mut reverify = verified.clone();
        reverify.provider_status = Some("reverify".into());
        reverify.updated_at = at + Duration::seconds(2);
        let reverify_entry = HistoryEntry {
            version: 4,
            at: at + Duration::seconds(2),
            from: Status::Verified,
            to: Status::Verified,
            provider_status: Some("reverify".into()),
            reason: Some("identity_event".into()),
            provider_event: Some("PORT".into()),
            ..verified_entry.clone()
        };
        let delivery = Delivery {
            provider: Provider::named("prove"),
            event_id: "im-1".into(),
            subjects: vec!["identity:identity-1".into()],
            payload: r#"{"t":"PORT"}"#.into(),
            mark: None,
            received_at: at,
            expires_at: at + Duration::days(1),
        };
        let identity_event = IdentityEvent {
            session_id: created.id.clone(),
            event_id: "im-1".into(),
            event_type: "PORT".into(),
            occurred_at: Some(at - Duration::minutes(1)),
            received_at: at + Duration::seconds(1),
        };
        let reauth = Reauthentication {
            tenant: created.tenant.clone(),
            user_id: created.user_id.clone(),
            provider: Provider::named("passbase"),
            identity_id: "k1".into(),
            session_id: created.id.clone(),
            at: at + Duration::seconds(3),
            outcome: "approved".into(),
            event_id: "k1#IDENTITY_AUTHENTICATED#3".into(),
        };
        let endpoint = Endpoint {
            id: "ep_stream".into(),
            tenant: created.tenant.clone(),
            url: "https://hooks.example.com/in".into(),
            event_types: vec![],
            description: None,
            enabled: true,
            disabled_reason: None,
            secret: "sealed".into(),
            previous_secret: None,
            failing_since: None,
            created_at: at,
            updated_at: at,
            version: 0,
        };
        let id = event_id(at, "stream");
        let event = Event {
            body: format!(r#"{{"id":"{id}"}}"#),
            id,
            tenant: created.tenant.clone(),
            event_type: EventType::SessionVerified,
            session_id: Some(created.id.clone()),
            created_at: at,
        };
        Script {
            claim: RefClaim {
                key: "prove#identity#identity-1".into(),
                tenant: created.tenant.clone(),
                replaces: None,
            },
            created,
            verified,
            verified_entry,
            reverify,
            reverify_entry,
            identity_event,
            delivery,
            reauth,
            endpoint,
            event,
        }
    }

    async fn run(&self, store: &dyn Adapter) {
        let id = &self.created.id;
        let at = self.verified_entry.at;
        store
            .create_session(
                &self.created,
                &first_entry(&self.created),
                std::slice::from_ref(&self.claim),
                None,
            )
            .await
            .unwrap();
        let read1 = read(store, id).await;
        let mut w = write(&read1, &self.verified, Some(&self.verified_entry));
        w.at = at;
        store.update_session(w).await.unwrap();

        // An identity event with a write of the session that adds no entry, then the same
        // event redelivered (received later) with one: an identity event is a change once.
        store
            .record_delivery(&self.delivery, at, at + Duration::minutes(2))
            .await
            .unwrap();
        let read2 = read(store, id).await;
        let mut w = write(&read2, &self.verified, None);
        w.at = at;
        store
            .add_identity_event(w, &self.identity_event, &self.delivery)
            .await
            .unwrap();
        let read3 = read(store, id).await;
        let mut w = write(&read3, &self.reverify, Some(&self.reverify_entry));
        w.at = at;
        let redelivered = IdentityEvent {
            received_at: self.identity_event.received_at + Duration::seconds(10),
            ..self.identity_event.clone()
        };
        store
            .add_identity_event(w, &redelivered, &self.delivery)
            .await
            .unwrap();

        // A reauthentication, twice (once a change).
        store.add_reauthentication(&self.reauth).await.unwrap();
        store.add_reauthentication(&self.reauth).await.unwrap();

        // A read of the session's verified data: its record is bookkeeping, no change.
        let access =
            idv::verified::DataAccess::new(id.clone(), &self.created.tenant, "0123456789ab", at);
        store.record_access(&access).await.unwrap();

        // Outbound bookkeeping: an endpoint, an event with its delivery, an attempt's lease.
        store.put_endpoint(&self.endpoint, None).await.unwrap();
        let key = OutboundKey {
            tenant: self.event.tenant.clone(),
            event_id: self.event.id.clone(),
            endpoint_id: self.endpoint.id.clone(),
        };
        let d = OutboundDelivery::new(key.clone(), at);
        assert!(store.add_event(&self.event, &[d]).await.unwrap());
        store
            .lease_outbound(&key, "lease", at, at + Duration::seconds(30))
            .await
            .unwrap()
            .expect("leased");
    }
}

/// One stream record as the test reads it.
struct Record {
    sequence: String,
    inserted: bool,
    /// The new image, as DynamoDB's JSON (what a Lambda event carries).
    image: Value,
}

/// Every record of the table's stream, in sequence order.
async fn stream_records(table: &str) -> Vec<Record> {
    let endpoint = idv_tests::dynamodb_endpoint();
    let arn = idv::store::ensure_stream(&dynamo_client().await, table)
        .await
        .expect("the table's stream");
    let client = idv_tests::idv_local::streams_client(&endpoint).await;
    let shards = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut it = client
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(i) = it.take() {
            let got = client
                .get_records()
                .shard_iterator(i)
                .send()
                .await
                .expect("records");
            let records = got.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            for r in records {
                let d = r.dynamodb.expect("the record's data");
                out.push(Record {
                    sequence: d.sequence_number.expect("a sequence number"),
                    inserted: r.event_name.as_ref().map(|n| n.as_str()) == Some("INSERT"),
                    image: Value::Object(
                        d.new_image
                            .unwrap_or_default()
                            .iter()
                            .map(|(k, v)| (k.clone(), to_json(v)))
                            .collect(),
                    ),
                });
            }
            it = got.next_shard_iterator;
        }
    }
    // Sequence numbers are decimal strings of any length.
    out.sort_by(|a, b| {
        let n = |s: &str| s.trim_start_matches('0').to_owned();
        let (a, b) = (n(&a.sequence), n(&b.sequence));
        (a.len(), a).cmp(&(b.len(), b))
    });
    out
}

/// A Streams API value as DynamoDB's JSON.
fn to_json(v: &StreamValue) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        StreamValue::S(s) => json!({"S": s}),
        StreamValue::N(n) => json!({"N": n}),
        StreamValue::Bool(b) => json!({"BOOL": b}),
        StreamValue::Null(_) => json!({"NULL": true}),
        StreamValue::B(b) => json!({"B": b64(b.as_ref())}),
        StreamValue::Ss(l) => json!({"SS": l}),
        StreamValue::Ns(l) => json!({"NS": l}),
        StreamValue::Bs(l) => json!({"BS": l.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()}),
        StreamValue::L(l) => json!({"L": l.iter().map(to_json).collect::<Vec<_>>()}),
        StreamValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<Map<_, _>>()})
        }
        other => panic!("an attribute type DynamoDB's JSON has no tag for: {other:?}"),
    }
}

/// What a record decodes to, and which kind of item it is about (its key's prefix).
fn decode(r: &Record) -> (String, Option<Seen>) {
    let image = idv::store::item_from_json(&r.image).expect("DynamoDB JSON");
    let pk = image
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .expect("a key")
        .clone();
    let sk = image
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .expect("a key")
        .clone();
    let change = idv::store::change_of(r.inserted, &image).expect("decodes");
    let kind = match pk.split_once('#') {
        Some(("SES", _)) if sk.starts_with("IE#") => "IE".to_owned(),
        Some((prefix, _)) => prefix.to_owned(),
        None => pk,
    };
    (kind, change.as_ref().map(seen))
}

#[tokio::test]
async fn the_tables_stream_decodes_to_the_changes_the_memory_store_logs() {
    let script = Script::new();
    let memory = MemoryStore::new();
    script.run(&memory).await;
    let (logged, _) = memory.changes_after(0);
    let expected: Vec<Seen> = logged.iter().map(seen).collect();

    let client = dynamo_client().await;
    let table = unique_table("idv-stream");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    let store = DynamoStore::new(client, table.clone());
    script.run(&store).await;

    // The stream is written as the table is; read again for a while if a record lags.
    let mut decoded = Vec::new();
    for _ in 0..50 {
        decoded = stream_records(&table).await.iter().map(decode).collect();
        if decoded.iter().filter(|(_, c)| c.is_some()).count() >= expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let changes: Vec<Seen> = decoded.iter().filter_map(|(_, c)| c.clone()).collect();

    // What the memory store logs, written out: the test's own account of the script.
    let s = &script;
    let session = |value: &Session, version, entry: Option<&HistoryEntry>| Seen::Session {
        session: Box::new(value.clone()),
        version,
        entry: entry.cloned(),
    };
    assert_eq!(
        expected,
        [
            session(&s.created, 1, Some(&first_entry(&s.created))),
            session(&s.verified, 2, Some(&s.verified_entry)),
            session(&s.verified, 3, None),
            Seen::Identity(s.identity_event.clone()),
            session(&s.reverify, 4, Some(&s.reverify_entry)),
            Seen::Reauth(s.reauth.clone()),
        ]
    );

    // The stream keeps each item's records in order (not the order of items written in one
    // transaction): each session's versions in order, every change exactly once.
    let sessions = |l: &[Seen]| -> Vec<Seen> {
        l.iter()
            .filter(|c| matches!(c, Seen::Session { .. }))
            .cloned()
            .collect()
    };
    assert_eq!(sessions(&changes), sessions(&expected));
    assert_eq!(changes.len(), expected.len(), "{changes:#?}");
    for c in &expected {
        assert!(changes.contains(c), "{c:?} is in the stream");
    }

    // Everything else is bookkeeping: no change, whatever its record.
    let kinds_without_change: BTreeSet<&str> = decoded
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let kinds_with_change: BTreeSet<&str> = decoded
        .iter()
        .filter(|(_, c)| c.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        kinds_with_change,
        BTreeSet::from(["IE", "RA", "SES"]),
        "only sessions, identity events and reauthentications are changes"
    );
    for bookkeeping in ["REF", "WH", "EP", "EVT", "EVD"] {
        assert!(
            kinds_without_change.contains(bookkeeping),
            "a {bookkeeping} record was read, and is no change: {kinds_without_change:?}"
        );
    }
}
