//! Verified data, read live and never stored (docs/api.md#verified-data), over HTTP on DynamoDB
//! Local against the simulators. For Authento, Nevis, Passbase and Stripe: a session verified
//! through the simulator; its verified data, read with a key that has `verified_data:read`, is
//! what the simulator holds for that person, in the one shape; a key without the scope gets 403,
//! a session that is not verified 409, another tenant's session 404. Each read leaves an access
//! record (who, when, which session), which the tenant lists; afterwards the whole table and every
//! log line written meanwhile are searched for each value answered: none is there. Prove offers
//! none (422); a read whose record cannot be written, or whose provider is down, answers nothing.

use super::openapi::Spec;
use super::passbase_support;
use bytes::Bytes;
use http::{HeaderMap, Method};
use idv::http::auth::digest;
use idv::http::{ApiRequest, Function};
use idv::secrets::{ApiKeyEntry, SecretDoc};
use idv::session::SessionId;
use idv_tests::faulty::FaultyStore;
use idv_tests::idv_local::sandbox::person::FakePerson;
use idv_tests::logs::Capture;
use idv_tests::{Backend, Gateway, OTHER_TENANT, Reply, TENANT, authento_subject};
use serde_json::{Value, json};

/// `sessions:read` and `verified_data:read`.
const READER: &str = "idv_sk_test_vd_reader";
/// `sessions:read` only: may list who read, never read.
const SESSIONS_ONLY: &str = "idv_sk_test_vd_sessions";
/// The other tenant's key, with `verified_data:read`.
const OTHER_READER: &str = "idv_sk_test_vd_other";

const ROUTE: &str = "/v1/sessions/{id}/verified_data";
const ACCESSES: &str = "/v1/sessions/{id}/verified_data/accesses";

fn keys() -> Vec<ApiKeyEntry> {
    let key = |tenant: &str, k: &str, scopes: &[&str]| json!({"tenant": tenant, "sha256": digest(k), "scopes": scopes});
    let doc = json!({"fingerprint_key": "f".repeat(32), "api_keys": [
        key(TENANT, READER, &["sessions:read", "verified_data:read"]),
        key(TENANT, SESSIONS_ONLY, &["sessions:read"]),
        key(OTHER_TENANT, OTHER_READER, &["sessions:read", "verified_data:read"]),
    ]});
    SecretDoc::parse(&doc.to_string())
        .expect("a valid secret document")
        .api_keys
}

async fn gateway() -> Gateway {
    // Every GET of a session reads its provider: the simulators' decisions reach it at once.
    Gateway::start_with_keys(
        Backend::Dynamo,
        &[("IDV_REFRESH_AFTER_SECONDS", "0")],
        keys(),
    )
    .await
}

fn path(template: &str, id: &str) -> String {
    template.replace("{id}", id)
}

/// A session verified through its provider's simulator, the person the simulator holds for it,
/// and what the gateway must answer for that person (`person`, `document`, `email`, `phone`).
struct Verified {
    id: String,
    person: FakePerson,
    expected: Value,
}

async fn assert_verified(gw: &Gateway, id: &str) {
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.body["status"], "verified", "{:?}", s.body);
}

fn id_of(r: &Reply) -> String {
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"]
        .as_str()
        .or(r.body["session"]["id"].as_str())
        .expect("a session id")
        .to_owned()
}

async fn authento_verified(gw: &Gateway, user: &str) -> Verified {
    let id = id_of(&gw.issue_token(user, "BASIC").await);
    for action in ["submit", "approve"] {
        gw.authento(user, "BASIC", action, true).await;
    }
    assert_verified(gw, &id).await;
    let person = gw
        .running
        .authento
        .person(&authento_subject(TENANT, user))
        .expect("the simulator's user");
    // Names and the identity document (`fullInfo`); Authento has no birth date, address,
    // email or phone.
    let expected = json!({
        "person": {"first_name": person.first_name, "middle_name": null,
                   "last_name": person.last_name, "date_of_birth": null, "address": null,
                   "id_number": null},
        "document": {"type": "id_card", "issuing_country": "AT",
                     "number": person.document_number, "expiry_date": person.document_expiry_text()},
        "email": null, "phone": null,
    });
    Verified {
        id,
        person,
        expected,
    }
}

async fn nevis_started(gw: &Gateway, user: &str) -> (String, String) {
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": user}),
        )
        .await;
    let id = id_of(&r);
    let tc = r.body["client"]["start_url"]
        .as_str()
        .and_then(|u| u.split_once("?tc="))
        .map(|(_, tc)| tc.to_owned())
        .expect("start_url carries tc");
    (id, tc)
}

async fn nevis_verified(gw: &Gateway, user: &str) -> Verified {
    let (id, tc) = nevis_started(gw, user).await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "complete", None).await;
    assert_verified(gw, &id).await;
    let person = gw
        .running
        .nevis
        .person(&tc)
        .expect("the simulator's session");
    let expected = json!({
        "person": {"first_name": person.first_name, "middle_name": null,
                   "last_name": person.last_name, "date_of_birth": person.date_of_birth_text(),
                   "address": {"line1": person.street, "line2": null, "city": person.city,
                               "state": null, "postal_code": person.postal_code, "country": "CH"},
                   "id_number": null},
        "document": {"type": "passport", "issuing_country": "CH",
                     "number": person.document_number, "expiry_date": person.document_expiry_text()},
        "email": null, "phone": null,
    });
    Verified {
        id,
        person,
        expected,
    }
}

async fn passbase_verified(gw: &Gateway, user: &str) -> Verified {
    let key = passbase_support::new_identity(gw, None).await;
    let id = passbase_support::linked_session(gw, user, &key).await;
    passbase_support::act(gw, &key, &["approve"], "each").await;
    assert_verified(gw, &id).await;
    let person = gw
        .running
        .passbase
        .person(&key)
        .expect("the simulator's identity");
    // The document's data points, the owner's email; the address as Passbase gives it (a line
    // and a city).
    let expected = json!({
        "person": {"first_name": person.first_name, "middle_name": null,
                   "last_name": person.last_name, "date_of_birth": person.date_of_birth_text(),
                   "address": {"line1": person.street, "line2": null, "city": person.city,
                               "state": null, "postal_code": null, "country": null},
                   "id_number": null},
        "document": {"type": "passport", "issuing_country": "DE",
                     "number": person.document_number, "expiry_date": person.document_expiry_text()},
        "email": person.email, "phone": null,
    });
    Verified {
        id,
        person,
        expected,
    }
}

async fn stripe_started(gw: &Gateway, user: &str) -> (String, String) {
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": user,
                    "document_options": {"require_id_number": true}}),
        )
        .await;
    let id = id_of(&r);
    let stored = gw
        .running
        .app
        .store
        .get_session(&SessionId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    (
        id,
        stored.value.provider_ref.expect("its verification session"),
    )
}

async fn stripe_verified(gw: &Gateway, user: &str) -> Verified {
    let (id, vs) = stripe_started(gw, user).await;
    gw.stripe_control(&format!("/sessions/{vs}"), json!({"action": "verify"}))
        .await;
    assert_verified(gw, &id).await;
    let person = gw
        .running
        .stripe
        .person(&vs)
        .expect("the simulator's session");
    // Verified outputs (with the birth date's own expansion) and the report: the document's
    // type and country (its number and expiry are not asked for), the SSN's last 4.
    let expected = json!({
        "person": {"first_name": person.first_name, "middle_name": null,
                   "last_name": person.last_name, "date_of_birth": person.date_of_birth_text(),
                   "address": {"line1": person.street, "line2": null, "city": person.city,
                               "state": null, "postal_code": person.postal_code, "country": "US"},
                   "id_number": {"type": "us_ssn", "last4": &person.id_number[5..]}},
        "document": {"type": "passport", "issuing_country": "US", "number": null,
                     "expiry_date": null},
        "email": null, "phone": null,
    });
    Verified {
        id,
        person,
        expected,
    }
}

fn assert_problem(r: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {:?}", r.body);
    assert_eq!(r.body["code"], code, "{what}: {:?}", r.body);
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{what}"
    );
}

/// Every promise of the route for one verified session (`open`: one of the same provider that
/// is not verified), with the log lines captured since before the session was made.
async fn holds_its_promises(gw: &Gateway, logs: &Capture, v: &Verified, open: &str) {
    let spec = Spec::load();
    let url = path(ROUTE, &v.id);

    // 403 without the scope: a key that may read the session, a key written without scopes.
    for key in [SESSIONS_ONLY, gw.key.as_str()] {
        let r = gw.get_as(key, &url).await;
        assert_problem(&r, 403, "insufficient_scope", "without the scope");
        assert_eq!(r.body["required_scope"], "verified_data:read");
        spec.assert_conforms("GET", ROUTE, &r);
    }
    // 409 for a session that is not verified, saying why.
    let r = gw.get_as(READER, &path(ROUTE, open)).await;
    assert_problem(&r, 409, "conflict", "not verified");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("verified data exists only for a verified session"),
        "{detail}"
    );
    spec.assert_conforms("GET", ROUTE, &r);
    // 404 for another tenant's session, whatever its key may do; and for an id of another shape.
    let r = gw.get_as(OTHER_READER, &url).await;
    assert_problem(&r, 404, "not_found", "another tenant's");
    spec.assert_conforms("GET", ROUTE, &r);
    let r = gw.get_as(READER, &path(ROUTE, "ses_nope")).await;
    assert_problem(&r, 404, "not_found", "no such id");
    let r = gw.get_as(OTHER_READER, &path(ACCESSES, &v.id)).await;
    assert_problem(&r, 404, "not_found", "another tenant's accesses");

    // 200: what the simulator holds, mapped; twice, each read recorded.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = gw.get_as(READER, &url).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.headers["cache-control"], "no-store");
        spec.assert_conforms("GET", ROUTE, &r);
        assert_eq!(r.body["object"], "verified_data");
        assert_eq!(r.body["session_id"], v.id.as_str());
        assert_eq!(r.body["status"], "verified");
        assert!(r.body["verified_at"].is_string(), "{:?}", r.body);
        for field in ["person", "document", "email", "phone"] {
            assert_eq!(r.body[field], v.expected[field], "{field}");
        }
        answers.push(r.body);
    }

    // The accesses: one per read, newest first, naming the key by its digest's first 12
    // characters; listed with sessions:read alone.
    let r = gw.get_as(SESSIONS_ONLY, &path(ACCESSES, &v.id)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    spec.assert_conforms("GET", ACCESSES, &r);
    let listed = r.body["data"].as_array().unwrap();
    let ids: Vec<&Value> = listed.iter().map(|a| &a["id"]).collect();
    assert_eq!(
        ids,
        [&answers[1]["access_id"], &answers[0]["access_id"]],
        "newest first"
    );
    assert_eq!(
        listed[0]["at"], answers[1]["retrieved_at"],
        "when it was read"
    );
    for a in listed {
        assert_eq!(a["session_id"], v.id.as_str());
        assert_eq!(a["key_id"], &digest(READER)[..12]);
    }
    assert_eq!(r.body["next_cursor"], Value::Null);
    let page = gw
        .get_as(SESSIONS_ONLY, &format!("{}?limit=1", path(ACCESSES, &v.id)))
        .await;
    assert_eq!(page.body["data"][0]["id"], answers[1]["access_id"]);
    let next = page.body["next_cursor"].as_str().expect("a next page");
    let rest = gw
        .get_as(
            SESSIONS_ONLY,
            &format!("{}?limit=1&cursor={next}", path(ACCESSES, &v.id)),
        )
        .await;
    assert_eq!(rest.body["data"][0]["id"], answers[0]["access_id"]);
    let bad = gw
        .get_as(
            SESSIONS_ONLY,
            &format!("{}?cursor=ses_x", path(ACCESSES, &v.id)),
        )
        .await;
    assert_problem(&bad, 400, "invalid_request", "a foreign cursor");

    // The table: each access an item of its own under the session, with its TTL (400 days), and
    // nothing else.
    let table = gw.snapshot().await;
    let records: Vec<_> = table
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("SES#{}|VDA#", v.id)))
        .collect();
    assert_eq!(records.len(), 2, "one record per read");
    for (k, item) in &records {
        let mut attrs: Vec<&str> = item.keys().map(String::as_str).collect();
        attrs.sort_unstable();
        assert_eq!(attrs, ["at", "key_id", "pk", "sk", "tenant", "ttl"], "{k}");
        let n = |a: &str| item[a].as_n().unwrap().parse::<i128>().unwrap();
        let ttl_after = n("ttl") - n("at") / 1_000_000_000;
        assert!(
            (400 * 86_400 - 1..=400 * 86_400).contains(&ttl_after),
            "{k}: ttl {ttl_after} s after the read"
        );
    }

    // Nothing answered is anywhere: not in any attribute of any item, not in any log line.
    let needles = answered_values(&answers[0]);
    assert!(needles.len() >= 4, "{needles:?}");
    let texts = table_texts(&table);
    for n in &needles {
        let found: Vec<&String> = texts.iter().filter(|t| holds(t, n)).collect();
        assert!(found.is_empty(), "the table holds {n:?}: {found:?}");
    }
    let lines = logs.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("verified data read") && l.contains(&v.id)),
        "the capture sees the gateway's log lines"
    );
    // A 4-digit number is part of too many log lines (times) to mean anything: the whole
    // number it ends is looked for instead.
    let whole_id_number = v.person.id_number.clone();
    for n in needles
        .iter()
        .filter(|n| n.len() > 4)
        .chain([&whole_id_number])
    {
        let found: Vec<&String> = lines.iter().filter(|l| holds(l, n)).collect();
        assert!(found.is_empty(), "the logs hold {n:?}: {found:?}");
    }
}

/// The values of an answer that say who the person is (names, dates, numbers, address, contact):
/// every text of `person`, `document`, `email` and `phone` but the words the gateway keeps as
/// facts anyway (a document's type, a country).
fn answered_values(answer: &Value) -> Vec<String> {
    fn walk(key: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !matches!(key, "type" | "issuing_country" | "country") => {
                out.push(s.clone())
            }
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(k, v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for field in ["person", "document", "email", "phone"] {
        walk(field, &answer[field], &mut out);
    }
    out
}

/// Every string of every item: keys, names, values, nested ones, numbers, bytes.
fn table_texts(
    table: &std::collections::BTreeMap<
        String,
        std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >,
) -> Vec<String> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    fn walk(v: &A, out: &mut Vec<String>) {
        match v {
            A::S(s) | A::N(s) => out.push(s.clone()),
            A::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
            A::Ss(l) | A::Ns(l) => out.extend(l.iter().cloned()),
            A::L(l) => l.iter().for_each(|v| walk(v, out)),
            A::M(m) => m.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out)
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, item) in table {
        out.push(key.clone());
        for (name, v) in item {
            out.push(name.clone());
            walk(v, &mut out);
        }
    }
    out
}

/// Whether `text` holds `value`: as a substring, or for a number, as a whole number (not the
/// middle of a longer one: the table is full of nanosecond times).
fn holds(text: &str, value: &str) -> bool {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return text.contains(value);
    }
    text.match_indices(value).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + value.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authento_user_information_is_read_live_for_the_scope_and_kept_nowhere() {
    let logs = Capture::start();
    let gw = gateway().await;
    let v = authento_verified(&gw, "user-vd-a1").await;
    let open = id_of(&gw.issue_token("user-vd-a2", "BASIC").await);
    holds_its_promises(&gw, &logs, &v, &open).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nevis_result_data_is_read_live_for_the_scope_and_kept_nowhere() {
    let logs = Capture::start();
    let gw = gateway().await;
    let v = nevis_verified(&gw, "user-vd-n1").await;
    let (open, _) = nevis_started(&gw, "user-vd-n2").await;
    holds_its_promises(&gw, &logs, &v, &open).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passbase_data_points_are_read_live_for_the_scope_and_kept_nowhere() {
    let logs = Capture::start();
    let gw = gateway().await;
    let v = passbase_verified(&gw, "user-vd-p1").await;
    let open = id_of(&passbase_support::start(&gw, "user-vd-p2", None).await);
    holds_its_promises(&gw, &logs, &v, &open).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_verified_outputs_are_read_live_for_the_scope_and_kept_nowhere() {
    let logs = Capture::start();
    let gw = gateway().await;
    let v = stripe_verified(&gw, "user-vd-s1").await;
    let (open, _) = stripe_started(&gw, "user-vd-s2").await;
    holds_its_promises(&gw, &logs, &v, &open).await;
    gw.stop().await;
}

/// One request to the get-session function of `app` (a gateway over another store).
async fn read_through(app: &idv::App, key: &str, path: &str) -> idv::http::ApiResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("a header value"),
    );
    let req = ApiRequest {
        method: Method::GET,
        path: path.to_owned(),
        query: Vec::new(),
        headers,
        body: Bytes::new(),
    };
    idv::http::handle(app, Function::GET_SESSION, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_without_its_record_none_when_the_provider_is_down_and_prove_offers_none() {
    let gw = gateway().await;
    let v = nevis_verified(&gw, "user-vd-f1").await;
    let spec = Spec::load();
    let accesses = || async {
        gw.get_as(SESSIONS_ONLY, &path(ACCESSES, &v.id)).await.body["data"]
            .as_array()
            .unwrap()
            .len()
    };

    // The record cannot be written: 503, and not one value of the person in the answer.
    let faulty = FaultyStore::new(gw.running.app.store.clone());
    faulty.fail_writes_of(&SessionId::parse(&v.id).unwrap(), 1);
    let app = gw.app_with(faulty, time::Duration::ZERO);
    let r = read_through(&app, READER, &path(ROUTE, &v.id)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(body.contains("store_unavailable"), "{body}");
    assert!(!body.contains(&v.person.last_name), "{body}");
    assert_eq!(accesses().await, 0);

    // The provider is down: 503, nothing read, nothing recorded.
    gw.nevis_faults(json!({"fail_next": 3, "status": 503}))
        .await;
    let r = gw.get_as(READER, &path(ROUTE, &v.id)).await;
    assert_problem(&r, 503, "provider_unavailable", "provider down");
    spec.assert_conforms("GET", ROUTE, &r);
    assert_eq!(accesses().await, 0);
    gw.nevis_faults(json!({"fail_next": 0})).await;

    // Once both are back: answered, and recorded.
    let r = gw.get_as(READER, &path(ROUTE, &v.id)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(accesses().await, 1);

    // Prove offers no verified data through the gateway: a verified Prove session says so.
    let p = gw.start_prove("user-vd-f2", "none", json!({})).await;
    assert_eq!(p.body["status"], "verified", "{:?}", p.body);
    let prove = p.body["id"].as_str().unwrap();
    let r = gw.get_as(READER, &path(ROUTE, prove)).await;
    assert_problem(&r, 422, "not_supported", "prove");
    assert!(r.body["detail"].as_str().unwrap().contains("prove"));
    spec.assert_conforms("GET", ROUTE, &r);
    gw.stop().await;
}
