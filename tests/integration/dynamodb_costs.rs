//! What each operation costs in DynamoDB, counted on the wire (the bill): every request of the
//! counted client, by operation, retries included. Each test pins one operation's count, so a
//! change that adds a call fails here; BENCHMARKS.md explains why each count is the minimum for
//! what docs/api.md makes the operation guarantee.
//!
//! The handler runs in-process (`idv::http::handle`, what a Lambda main and the local server
//! call), over a `DynamoStore` whose client is counted, with the same configuration, secret and
//! simulators as the running local server.

use super::passbase_support;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use idv::App;
use idv::http::{ApiRequest, Function, handle};
use idv::store::DynamoStore;
use idv_tests::ProveOf;
use idv_tests::capacity::{ConsumedCapacity, Units};
use idv_tests::{Backend, DynamoCalls, Gateway};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::Duration;

struct Counted {
    gw: Gateway,
    app: Arc<App>,
    calls: DynamoCalls,
    units: ConsumedCapacity,
}

/// One operation's DynamoDB requests, by operation name, and the handler's answer.
struct Cost {
    status: u16,
    body: Value,
    ops: BTreeMap<String, u64>,
    units: Units,
}

impl Cost {
    /// For scripts/bench: with `IDV_BENCH_DYNAMODB_OUT` set, appends this operation's calls and
    /// capacity units to that file as one JSON line (BENCHMARKS.md's per-operation table).
    fn record(&self, operation: &str) -> &Self {
        if let Ok(path) = std::env::var("IDV_BENCH_DYNAMODB_OUT") {
            use std::io::Write;
            let line = json!({"operation": operation, "calls": self.ops, "capacity_units": self.units.by_operation,
                              "index_units": self.units.by_index, "refused": self.units.refused});
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("bench output");
            writeln!(f, "{line}").expect("bench output");
        }
        self
    }
}

impl Counted {
    async fn start(settings: &[(&str, &str)]) -> Counted {
        let gw = Gateway::start_with(Backend::Dynamo, settings).await;
        let (client, calls, units) = ConsumedCapacity::client().await;
        let store = Arc::new(DynamoStore::new(client, gw.table.clone().unwrap()));
        let app = gw.app_with(store, Duration::ZERO);
        Counted {
            gw,
            app,
            calls,
            units,
        }
    }

    /// The same gateway `ahead` of now (e.g. once a stored status is stale), counted apart.
    async fn later(&self, ahead: Duration) -> (Arc<App>, DynamoCalls, ConsumedCapacity) {
        let (client, calls, units) = ConsumedCapacity::client().await;
        let store = Arc::new(DynamoStore::new(client, self.gw.table.clone().unwrap()));
        (self.gw.app_with(store, ahead), calls, units)
    }

    async fn call_on(
        &self,
        (app, calls, units): (&App, &DynamoCalls, &ConsumedCapacity),
        function: Function,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Cost {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let req = ApiRequest {
            method,
            path: path.to_owned(),
            query: ApiRequest::parse_query(Some(query)),
            headers: map,
            body: Bytes::from(body.to_owned()),
        };
        calls.reset();
        units.reset();
        let resp = handle(app, function, req).await;
        let body = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        Cost {
            status: resp.status.as_u16(),
            body,
            ops: calls.counts(),
            units: units.units(),
        }
    }

    async fn api(&self, function: Function, method: Method, path: &str, body: &Value) -> Cost {
        let auth = format!("Bearer {}", self.gw.key);
        let mut headers = vec![("authorization", auth.as_str())];
        let text = if body.is_null() {
            String::new()
        } else {
            headers.push(("content-type", "application/json"));
            body.to_string()
        };
        self.call_on(
            (&self.app, &self.calls, &self.units),
            function,
            method,
            path,
            &headers,
            &text,
        )
        .await
    }

    async fn webhook(
        &self,
        function: Function,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Cost {
        self.call_on(
            (&self.app, &self.calls, &self.units),
            function,
            Method::POST,
            path,
            headers,
            body,
        )
        .await
    }
}

/// `[("GetItem", 1), ...]` as the counter reports it.
fn ops(expected: &[(&str, u64)]) -> BTreeMap<String, u64> {
    expected.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .or(body["session"]["id"].as_str())
        .expect("a session id")
        .to_owned()
}

fn prove_start(user: &str, possession: &str) -> Value {
    json!({"provider": "prove", "user_id": user, "phone_number": "+12001004011",
           "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": possession})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_issue_is_one_lookup_and_one_transaction() {
    let c = Counted::start(&[]).await;
    let body = json!({"user_id": "user-c1", "verification_type": "BASIC"});
    // New: the (user, type) reference is read (a live session is answered again: docs/providers/authento.md#starting), then
    // session + history + reference are written in one transaction, so none exists without the
    // others.
    let t = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &body,
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    assert_eq!(t.ops, ops(&[("GetItem", 1), ("TransactWriteItems", 1)]));
    t.record("token issue");
    // The capacity figures come from DynamoDB's own answers: a write consumed some.
    assert!(
        t.units.by_operation["TransactWriteItems"] > 0.0,
        "{:?}",
        t.units
    );
    // Again while it is live: reference, then its session; nothing written.
    let again = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &body,
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(id_of(&again.body), id_of(&t.body));
    assert_eq!(again.ops, ops(&[("GetItem", 2)]));
    again.record("token issue, live session answered again");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_start_is_one_write_for_each_provider() {
    let c = Counted::start(&[]).await;
    // Authento through `POST /v1/sessions`: as a token issue (the ref read, one transaction).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "authento", "user_id": "user-c1b", "verification_type": "POA"}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.ops, ops(&[("GetItem", 1), ("TransactWriteItems", 1)]));
    s.record("session start, authento");
    // Nevis: the session and its Nevis-session ref, one transaction. Passbase without a key:
    // the session alone, one conditional put (half a transaction's units).
    for (provider, write) in [("nevis", "TransactWriteItems"), ("passbase", "PutItem")] {
        let s = c
            .api(
                Function::START_SESSION,
                Method::POST,
                "/v1/sessions",
                &json!({"provider": provider, "user_id": "user-c2"}),
            )
            .await;
        assert_eq!(s.status, 201, "{provider}: {}", s.body);
        assert_eq!(s.ops, ops(&[(write, 1)]), "{provider}");
        s.record(&format!("session start, {provider}"));
    }
    // Prove's possession check runs inside the start; a mobile flow is stored pending, the
    // session alone (no ref until an identity is enrolled): one conditional put.
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-c3", "mobile"),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.ops, ops(&[("PutItem", 1)]));
    s.record("session start, prove mobile");
    // A flow Prove verifies at once also enrols the identity: its identity and customer
    // references are read first in one batch (a re-verification moves them), then written in the
    // same transaction as the session; Identity Manager events kept for the identity or the
    // customer before any session knew them are looked up (one query each).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-c4", "none"),
        )
        .await;
    assert_eq!(
        (s.status, s.body["status"].as_str()),
        (201, Some("verified")),
        "{}",
        s.body
    );
    assert_eq!(
        s.ops,
        ops(&[("BatchGetItem", 1), ("Query", 2), ("TransactWriteItems", 1)])
    );
    s.record("session start, prove verified at once");
    // Passbase with the identity already known: its reference is read (one identity, one
    // session), the deliveries kept for it are queried, and all of it is one transaction.
    let key = passbase_support::new_identity(&c.gw, None).await;
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-c5", "identity_access_key": key}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(
        s.ops,
        ops(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
    );
    s.record("session start, passbase with identity");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_status_read_is_one_get_and_a_stale_one_adds_one_write() {
    let c = Counted::start(&[]).await;
    let t = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &json!({"user_id": "user-c6", "verification_type": "BASIC"}),
        )
        .await;
    let id = id_of(&t.body);
    let path = format!("/v1/sessions/{id}");
    // The first read refreshes (never checked yet) and stores the check; the next is fresh.
    c.api(Function::GET_SESSION, Method::GET, &path, &Value::Null)
        .await;
    let fresh = c
        .api(Function::GET_SESSION, Method::GET, &path, &Value::Null)
        .await;
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.ops, ops(&[("GetItem", 1)]));
    fresh.record("status read fresh");
    let stored = c
        .api(
            Function::GET_SESSION,
            Method::GET,
            &format!("{path}?refresh=false"),
            &Value::Null,
        )
        .await;
    assert_eq!(stored.ops, ops(&[("GetItem", 1)]));

    // A minute later it is stale: the provider is read and the check stored, one conditional
    // write of the session item (with its history entry appended when the status moves).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-c7"}),
        )
        .await;
    let nevis = id_of(&s.body);
    let (later, calls, units) = c.later(Duration::seconds(60)).await;
    let auth = format!("Bearer {}", c.gw.key);
    let headers = [("authorization", auth.as_str())];
    let stale = c
        .call_on(
            (&later, &calls, &units),
            Function::GET_SESSION,
            Method::GET,
            &path,
            &headers,
            "",
        )
        .await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(stale.ops, ops(&[("GetItem", 1), ("UpdateItem", 1)]));
    stale.record("status read stale, authento");
    let stale = c
        .call_on(
            (&later, &calls, &units),
            Function::GET_SESSION,
            Method::GET,
            &format!("/v1/sessions/{nevis}"),
            &headers,
            "",
        )
        .await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(stale.ops, ops(&[("GetItem", 1), ("UpdateItem", 1)]));
    stale.record("status read stale, nevis (status moved)");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prove_status_read_also_queries_the_identity_events_it_shows() {
    let c = Counted::start(&[]).await;
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-c8", "none"),
        )
        .await;
    let g = c
        .api(
            Function::GET_SESSION,
            Method::GET,
            &format!("/v1/sessions/{}", id_of(&s.body)),
            &Value::Null,
        )
        .await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.ops, ops(&[("GetItem", 1), ("Query", 1)]));
    g.record("status read, prove (identity events shown)");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_webhook_is_recorded_looked_up_and_applied_and_a_duplicate_is_refused_at_once() {
    let c = Counted::start(&[]).await;
    // Authento: the user's two (user, type) references in one batch read and the open session
    // (where they stand is part of the delivery's identity: the same body after a change is a
    // new event), the delivery recorded under its lease, one conditional write of the session
    // (history entry appended), then the delivery settled.
    c.api(
        Function::named("issue-token").unwrap(),
        Method::POST,
        "/v1/tokens",
        &json!({"user_id": "user-c9", "verification_type": "BASIC"}),
    )
    .await;
    let sim = c.gw.authento("user-c9", "BASIC", "submit", false).await;
    let body = sim["webhook"]["body"].as_str().unwrap().to_owned();
    let digest = sim["webhook"]["digest"].as_str().unwrap().to_owned();
    let headers = [
        ("content-type", "application/json"),
        ("x-payload-digest", digest.as_str()),
    ];
    let new = c
        .webhook(
            Function::named("webhook-authento").unwrap(),
            "/v1/webhooks/authento",
            &headers,
            &body,
        )
        .await;
    assert_eq!(
        (new.status, &new.body["duplicate"]),
        (200, &json!(false)),
        "{}",
        new.body
    );
    assert_eq!(
        new.ops,
        // The delivery's filing under its subject, for redaction: one BatchWriteItem.
        ops(&[
            ("BatchGetItem", 1),
            ("BatchWriteItem", 1),
            ("GetItem", 1),
            ("UpdateItem", 3)
        ])
    );
    new.record("webhook new, authento");
    let dup = c
        .webhook(
            Function::named("webhook-authento").unwrap(),
            "/v1/webhooks/authento",
            &headers,
            &body,
        )
        .await;
    assert_eq!(
        (dup.status, &dup.body["duplicate"]),
        (200, &json!(true)),
        "{}",
        dup.body
    );
    // A duplicate only while what it concerns stands where it left it: the references and the
    // session are read, then the refused conditional update says so.
    assert_eq!(
        dup.ops,
        ops(&[("BatchGetItem", 1), ("GetItem", 1), ("UpdateItem", 1)])
    );
    dup.record("webhook duplicate, authento");

    // Prove: the token bound to its body (a conditional put), the delivery recorded under its
    // lease, identity reference, session, one transaction (event + session + the delivery
    // settled).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-c10", "none"),
        )
        .await;
    let sid = idv::session::SessionId::parse(&id_of(&s.body)).unwrap();
    let identity =
        c.gw.running
            .app
            .store
            .get_session(&sid)
            .await
            .unwrap()
            .unwrap()
            .prove()
            .and_then(|p| p.identity_id)
            .unwrap();
    let sim = c.gw.prove_webhook(&identity, "DISCONNECT", false).await;
    let body = sim["body"].as_str().unwrap().to_owned();
    let auth = sim["authorization"].as_str().unwrap().to_owned();
    let headers = [
        ("content-type", "application/json"),
        ("x-prove-authorization", auth.as_str()),
    ];
    let new = c
        .webhook(
            Function::named("webhook-prove").unwrap(),
            "/v1/webhooks/prove",
            &headers,
            &body,
        )
        .await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert_eq!(
        new.ops,
        ops(&[
            ("BatchWriteItem", 1),
            ("GetItem", 2),
            ("PutItem", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1)
        ])
    );
    new.record("webhook new, prove");
    let dup = c
        .webhook(
            Function::named("webhook-prove").unwrap(),
            "/v1/webhooks/prove",
            &headers,
            &body,
        )
        .await;
    assert_eq!(dup.status, 200, "{}", dup.body);
    // The token's binding checked again (the same body: accepted), the record refused.
    assert_eq!(dup.ops, ops(&[("PutItem", 1), ("UpdateItem", 1)]));
    dup.record("webhook duplicate, prove");

    // Passbase: the delivery recorded under its lease, identity reference, session, one
    // conditional write, the query for deliveries kept for this identity before it was linked,
    // and the delivery settled.
    let key = passbase_support::new_identity(&c.gw, None).await;
    c.api(
        Function::START_SESSION,
        Method::POST,
        "/v1/sessions",
        &json!({"provider": "passbase", "user_id": "user-c11", "identity_access_key": key}),
    )
    .await;
    let report = passbase_support::act(&c.gw, &key, &["approve"], "none").await;
    let body = passbase_support::bodies(&report).remove(0);
    let headers = [("content-type", "text/plain")];
    let new = c
        .webhook(
            Function::named("webhook-passbase").unwrap(),
            "/v1/webhooks/passbase",
            &headers,
            &body,
        )
        .await;
    assert_eq!(
        (new.status, &new.body["duplicate"]),
        (200, &json!(false)),
        "{}",
        new.body
    );
    // Lowered by the provider seam (was GetItem 2, Query 1, UpdateItem 3): deliveries kept for an
    // identity are acted on when a session claims its ref, not looked up on every delivery.
    // ... and its filing under its subject, for redaction (one BatchWriteItem).
    assert_eq!(
        new.ops,
        ops(&[("BatchWriteItem", 1), ("GetItem", 2), ("UpdateItem", 3)])
    );
    new.record("webhook new, passbase");
    let dup = c
        .webhook(
            Function::named("webhook-passbase").unwrap(),
            "/v1/webhooks/passbase",
            &headers,
            &body,
        )
        .await;
    assert_eq!(
        (dup.status, &dup.body["duplicate"]),
        (200, &json!(true)),
        "{}",
        dup.body
    );
    assert_eq!(dup.ops, ops(&[("UpdateItem", 1)]));
    dup.record("webhook duplicate, passbase");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_is_one_query_per_due_shard_and_one_write_per_due_session() {
    let c = Counted::start(&[]).await;
    let mut started = Vec::new();
    for i in 0..3 {
        let s = c
            .api(
                Function::START_SESSION,
                Method::POST,
                "/v1/sessions",
                &json!({"provider": "nevis", "user_id": format!("user-r{i}")}),
            )
            .await;
        started.push(id_of(&s.body));
    }
    let (later, calls, units) = c.later(Duration::seconds(60)).await;
    let run = idv::flows::reconcile::run(later).await;
    assert_eq!((run.due, run.refreshed, run.failed), (3, 3, 0), "{run:?}");
    // The due index is sharded (16 queries whatever is due) and holds keys only: each shard
    // with due sessions reads them in one BatchGetItem; each due session is then one
    // conditional write of its new state.
    let shards = 16;
    // (and the retry index of webhook deliveries, sharded the same way: 16 queries more)
    let due_shards = started
        .iter()
        .map(|id| {
            c.gw.inspect()
                .due_shard_of(&idv::session::SessionId::parse(id).unwrap())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert_eq!(
        calls.counts(),
        ops(&[
            ("BatchGetItem", due_shards),
            ("Query", 2 * shards),
            ("UpdateItem", 3)
        ])
    );
    Cost {
        status: 200,
        body: Value::Null,
        ops: calls.counts(),
        units: units.units(),
    }
    .record("reconcile, 3 due sessions");
    c.gw.stop().await;
}

#[tokio::test]
async fn a_stripe_start_is_one_transaction_and_its_event_costs_what_a_passbase_one_does() {
    let c = Counted::start(&[]).await;
    // The session and its VerificationSession's ref, one transaction; and the query for events
    // kept for that VerificationSession before the session was stored (Stripe may send
    // `identity.verification_session.created` while the create is still being answered).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-cs1"}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.ops, ops(&[("Query", 1), ("TransactWriteItems", 1)]));
    s.record("session start, stripe");
    let id = idv::session::SessionId::parse(&id_of(&s.body)).unwrap();
    let vs = c
        .app
        .store
        .get_session(&id)
        .await
        .unwrap()
        .unwrap()
        .value
        .provider_ref
        .unwrap();
    // Stripe verifies; its events are signed but not sent: the last one is delivered here.
    let acted =
        c.gw.stripe_control(
            &format!("/sessions/{vs}"),
            json!({"action": "verify", "deliver": false}),
        )
        .await;
    let event = acted["events"].as_array().unwrap().last().cloned().unwrap();
    let signature = event["stripe_signature"].as_str().unwrap().to_owned();
    let headers = [
        ("content-type", "application/json"),
        ("stripe-signature", signature.as_str()),
    ];
    let body = event["body"].as_str().unwrap();
    let webhook = Function::named("webhook-stripe").unwrap();
    // The delivery recorded under its lease, the ref, the session, one conditional write, the
    // delivery settled.
    let new = c
        .webhook(webhook, "/v1/webhooks/stripe", &headers, body)
        .await;
    assert_eq!(
        (new.status, &new.body["duplicate"]),
        (200, &json!(false)),
        "{}",
        new.body
    );
    assert_eq!(
        new.ops,
        ops(&[("BatchWriteItem", 1), ("GetItem", 2), ("UpdateItem", 3)])
    );
    new.record("webhook new, stripe");
    let dup = c
        .webhook(webhook, "/v1/webhooks/stripe", &headers, body)
        .await;
    assert_eq!(
        (dup.status, &dup.body["duplicate"]),
        (200, &json!(true)),
        "{}",
        dup.body
    );
    assert_eq!(dup.ops, ops(&[("UpdateItem", 1)]));
    dup.record("webhook duplicate, stripe");
    c.gw.stop().await;
}

#[tokio::test]
async fn a_sessions_history_is_one_read_of_its_item() {
    let c = Counted::start(&[]).await;
    let t = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &json!({"user_id": "user-c13", "verification_type": "BASIC"}),
        )
        .await;
    let id = id_of(&t.body);
    // The session and its history are one item: the tenant check and the history, one GetItem.
    let h = c
        .api(
            Function::GET_SESSION,
            Method::GET,
            &format!("/v1/sessions/{id}/history"),
            &Value::Null,
        )
        .await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.body["data"][0]["reason"], "created");
    assert_eq!(h.ops, ops(&[("GetItem", 1)]));
    h.record("session history");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_one_write_and_one_per_endpoint_with_two_per_attempt() {
    let c = Counted::start(&[]).await;
    let start = |user: &str| json!({"provider": "nevis", "user_id": user});
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &start("user-c14"),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    // notify, the batch with that creation: the tenant's endpoints (none), the event.
    let pump = || async {
        c.calls.reset();
        c.units.reset();
        // The stream's records of the start (the session, its ref): one change.
        c.gw.running.feed.lock().await.pump(&c.app).await.unwrap();
        Cost {
            status: 200,
            body: Value::Null,
            ops: c.calls.counts(),
            units: c.units.units(),
        }
    };
    let none = pump().await;
    assert_eq!(none.ops, ops(&[("PutItem", 1), ("Query", 1)]));
    none.record("outbound event, no endpoint");

    // With an endpoint: the event and its delivery in one transaction, then the attempt's lease
    // and its record.
    let rx = idv_tests::receiver::Receiver::start().await;
    let e = c
        .api(
            Function::EVENTS_API,
            Method::POST,
            "/v1/endpoints",
            &json!({"url": rx.url}),
        )
        .await;
    assert_eq!(e.status, 201, "{}", e.body);
    c.api(
        Function::START_SESSION,
        Method::POST,
        "/v1/sessions",
        &start("user-c15"),
    )
    .await;
    let one = pump().await;
    assert_eq!(rx.received().len(), 1);
    assert_eq!(
        one.ops,
        ops(&[
            ("PutItem", 1),
            ("Query", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 1)
        ])
    );
    one.record("outbound event, one endpoint, delivered");

    // The schedule's sweep with nothing due: one query per shard of the retry index.
    c.calls.reset();
    c.units.reset();
    idv::events::deliver::sweep(&c.app).await.unwrap();
    let sweep = Cost {
        status: 200,
        body: Value::Null,
        ops: c.calls.counts(),
        units: c.units.units(),
    };
    assert_eq!(sweep.ops, ops(&[("Query", 16)]));
    sweep.record("outbound sweep, nothing due");
    c.gw.stop().await;
}

/// What the tenant index (`gsi3`, docs/operate.md#the-listing-index) costs: one index write when
/// a session is created and one when its status changes, none for a write that leaves the status
/// (the index projects `status` and `provider`, never the history); a page of the listing is one
/// Query of an index and one BatchGetItem of the sessions it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_index_costs_a_write_per_creation_and_status_change_and_a_page_two_reads() {
    let c = Counted::start(&[]).await;
    let gsi3 = |cost: &Cost| cost.units.by_index.get("gsi3").copied().unwrap_or(0.0);
    // A session created alone: the item, its user index entry, its due filing, its tenant index
    // entry (each under 1 KB: one unit).
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-c15", "mobile"),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.ops, ops(&[("PutItem", 1)]));
    assert_eq!(gsi3(&s), 1.0, "{:?}", s.units);
    // A stale read that moves the status writes the index entry again; one that leaves the
    // status writes only the item.
    let s = c
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-c15"}),
        )
        .await;
    let nevis = id_of(&s.body);
    // The user completes the flow at Nevis: the next read moves the status.
    let nevis_session = s.body["provider_ref"].as_str().unwrap().to_owned();
    c.gw.nevis(&nevis_session, "complete", None).await;
    let t = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &json!({"user_id": "user-c15", "verification_type": "BASIC"}),
        )
        .await;
    let authento = id_of(&t.body);
    let (later, calls, units) = c.later(Duration::seconds(60)).await;
    let auth = format!("Bearer {}", c.gw.key);
    let headers = [("authorization", auth.as_str())];
    let read = |id: String| {
        let (later, calls, units) = (&later, &calls, &units);
        let headers = &headers;
        let c = &c;
        async move {
            c.call_on(
                (later, calls, units),
                Function::GET_SESSION,
                Method::GET,
                &format!("/v1/sessions/{id}"),
                headers,
                "",
            )
            .await
        }
    };
    let moved = read(nevis).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.ops, ops(&[("GetItem", 1), ("UpdateItem", 1)]));
    assert_eq!(moved.body["status"], "verified", "{}", moved.body);
    assert_eq!(gsi3(&moved), 1.0, "{:?}", moved.units);
    let kept = read(authento).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.ops, ops(&[("GetItem", 1), ("UpdateItem", 1)]));
    assert_eq!(kept.body["status"], "created", "{}", kept.body);
    assert_eq!(gsi3(&kept), 0.0, "{:?}", kept.units);

    // 60 more sessions of the tenant, one in ten verified, stored directly (not counted).
    let t0 = time::OffsetDateTime::now_utc();
    for i in 0..60 {
        let provider = if i % 2 == 0 { "stripe" } else { "nevis" };
        let mut s = idv::session::Session::new(
            idv_tests::TENANT,
            idv::session::Provider::named(provider),
            &format!("user-l{}", i % 3),
            t0 + Duration::milliseconds(i),
        );
        if i % 10 == 0 {
            s.status = idv::session::Status::Verified;
        }
        let h = idv::session::HistoryEntry::created(&s);
        c.gw.running
            .app
            .store
            .create_session(&s, &h, &[], None)
            .await
            .unwrap();
    }
    let list = |q: &str| {
        let path = format!("/v1/sessions{q}");
        let c = &c;
        async move {
            c.api(Function::GET_SESSION, Method::GET, &path, &Value::Null)
                .await
        }
    };
    // A page of 20: one Query of gsi3 (21 entries: is there a next page?), one BatchGetItem.
    let page = list("").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 20);
    assert_eq!(page.ops, ops(&[("BatchGetItem", 1), ("Query", 1)]));
    page.record("session list, a page of 20");
    // By status: the filter runs in the index, over one round of up to 100 entries; only the
    // matches are read.
    let page = list("?status=verified").await;
    // Six stored verified, and the Nevis session read verified above.
    assert_eq!(
        page.body["data"].as_array().unwrap().len(),
        7,
        "{}",
        page.body
    );
    assert_eq!(page.ops, ops(&[("BatchGetItem", 1), ("Query", 1)]));
    page.record("session list by status, 7 of 63 match");
    // A user's: the user index.
    let page = list("?user_id=user-l1").await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 20);
    assert_eq!(page.ops, ops(&[("BatchGetItem", 1), ("Query", 1)]));
    page.record("session list of a user, a page of 20");
    // A user's by provider: the user index holds keys only, so the status and provider of the
    // user's sessions are read alone (one batch: the read units of the whole items, not their
    // bytes), then the sessions the filter keeps (a second batch).
    let page = list("?user_id=user-l1&provider=stripe").await;
    assert_eq!(
        page.body["data"].as_array().unwrap().len(),
        10,
        "{}",
        page.body
    );
    assert_eq!(page.ops, ops(&[("BatchGetItem", 2), ("Query", 1)]));
    page.record("session list of a user by provider, 10 of 20 match");
    c.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_is_one_read_and_one_write_and_a_retry_one_read_more_than_a_start() {
    let c = Counted::start(&[]).await;
    let t = c
        .api(
            Function::named("issue-token").unwrap(),
            Method::POST,
            "/v1/tokens",
            &json!({"user_id": "user-c14", "verification_type": "BASIC"}),
        )
        .await;
    let id = id_of(&t.body);
    // Authento signs its token here: the session read (tenant, state) and the history entry.
    let r = c
        .api(
            Function::START_SESSION,
            Method::POST,
            &format!("/v1/sessions/{id}/resume"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.ops, ops(&[("GetItem", 1), ("UpdateItem", 1)]));
    r.record("session resume (authento)");
    c.api(
        Function::START_SESSION,
        Method::POST,
        &format!("/v1/sessions/{id}/cancel"),
        &json!({}),
    )
    .await;
    // The retried session read, then what a start of a user with a finished session reads (the
    // track's ref and the session it points to: the retried one, read again by the generic ref
    // resolution), and one transaction: the new session, its ref and the link on the retried
    // session (3 items, each billed twice).
    let r = c
        .api(
            Function::START_SESSION,
            Method::POST,
            &format!("/v1/sessions/{id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.ops, ops(&[("GetItem", 3), ("TransactWriteItems", 1)]));
    r.record("session retry (authento)");
    c.gw.stop().await;
}
