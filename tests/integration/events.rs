//! `events/`: every sample API Gateway event goes through its function's handler and gets the
//! answer its README row promises. `sam local invoke` needs Docker, which CI lacks; this is what
//! keeps the samples usable. Each file is parsed with `lambda_http::request::from_str` (what the
//! Lambda runtime does with a payload 2.0 event), converted with `idv::http::lambda::from_lambda`,
//! served by `idv::http::handle` for the function its name starts with, and converted back with
//! `to_lambda`, exactly as a deployed function does.

use idv::http::lambda::{from_lambda, to_lambda};
use idv::http::{Function, routes};
use idv::providers::{authento, passbase, prove, stripe};
use idv::secrets::Secret;
use idv::session::Subject;
use idv::session::{HistoryEntry, Provider, ProviderData, Session, SessionId, Status};
use idv::store::RefClaim;
use idv_local::{Options, Running};
use idv_tests::ProveOf;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The tenant and key the app-route events authenticate with (events/README.md).
const TENANT: &str = "events-app";
const SAMPLE_KEY: &str = "idv_sk_events_sample_key";
/// The secret `webhook-authento.reviewed.json` is signed with (events/README.md).
const SAMPLE_WEBHOOK_SECRET: &str = "events-sample-webhook-secret";
/// The secret `webhook-prove.disconnect.json`'s JWT is signed with (events/README.md).
const SAMPLE_PROVE_WEBHOOK_SECRET: &str = "events-sample-prove-webhook-secret";
/// The enrolled identity `webhook-prove.disconnect.json` is about.
const SAMPLE_IDENTITY: &str = "64ec34e4-6b91-427c-839c-b443dd1570fc";
/// The session the get and cancel events name.
const SAMPLE_SESSION: &str = "ses_eventsample000000000000001";
/// The user the token, list and webhook events are about.
const SAMPLE_USER: &str = "user-42";
/// The secret `webhook-passbase.completed.json` is encrypted with (events/README.md).
const SAMPLE_PASSBASE_SECRET: &str = "events-sample-passbase-secret-32";
/// The Passbase session the link event names, user-45's, waiting for its identity.
const SAMPLE_PASSBASE_SESSION: &str = "ses_eventsample000000000000002";
/// The signing secret `webhook-stripe.verified.json` is signed with (events/secrets/stripe.json).
const SAMPLE_STRIPE_SECRET: &str = "whsec_events-sample-stripe-secret";
/// The identity the link and Passbase webhook events name.
const SAMPLE_PASSBASE_IDENTITY: &str = "5a3c1b2e-0d4f-4e6a-9b8c-7d6e5f4a3b2c";

/// What must be in place before an event is pushed.
#[derive(Debug, Clone, Copy)]
enum Before {
    Nothing,
    /// The webhook re-reads Authento for the user's open sessions: the simulator must know
    /// user-42 (approved on BASIC), and user-42 must have an open BASIC session.
    OpenSessionAndApprovedAuthentoUser,
    /// The Prove webhook names an identity: a verified Prove session of user-42 enrolled it.
    VerifiedProveSessionWithIdentity,
    /// An open Nevis session past its deadline, due for reconcile.
    OverdueNevisSession,
    /// The link event needs user-45's waiting Passbase session, and the webhook after it an
    /// identity the simulator knows (approved, without a webhook: the sample event is the one).
    WaitingPassbaseSessionAndApprovedIdentity,
}

/// One file's expectation. They run in this order, against one gateway.
struct Expect {
    file: &'static str,
    before: Before,
    status: u16,
    facts: fn(&Value),
}

/// A create answer's session: `POST /v1/tokens` nests it under `session`; `POST /v1/sessions`
/// answers it at the top level today (openapi.rs holds each route to its declared shape).
fn created_session(body: &Value) -> &Value {
    body.get("session").unwrap_or(body)
}

fn expectations() -> Vec<Expect> {
    vec![
        Expect {
            file: "issue-token.create.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                let token = b["token"].as_str().expect("a token");
                assert!(!token.is_empty(), "an empty token: {b}");
                assert!(b["verify_url"].as_str().is_some(), "a verify_url: {b}");
                let s = &b["session"];
                assert_eq!(s["object"], "verification_session", "{b}");
                assert_eq!(s["user_id"], SAMPLE_USER, "{b}");
                assert_eq!(s["verification_type"], "BASIC", "{b}");
                assert_eq!(s["status"], "created", "{b}");
                assert_eq!(s["client"]["token"], token, "{b}");
            },
        },
        Expect {
            file: "start-session.authento.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                let s = created_session(b);
                assert_eq!(s["provider"], "authento", "{b}");
                assert_eq!(s["user_id"], "user-43", "{b}");
                assert_eq!(s["verification_type"], "POA", "{b}");
                assert_eq!(s["status"], "created", "{b}");
                let token = s["client"]["token"].as_str().expect("client.token");
                assert!(!token.is_empty(), "an empty client.token: {b}");
            },
        },
        Expect {
            file: "start-session.prove.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                assert_eq!(b["provider"], "prove", "{b}");
                assert_eq!(b["user_id"], "user-44", "{b}");
                assert_eq!(b["status"], "pending", "waiting on possession: {b}");
                let token = b["client"]["auth_token"]
                    .as_str()
                    .expect("client.auth_token");
                assert!(!token.is_empty(), "an empty auth_token: {b}");
            },
        },
        Expect {
            file: "webhook-prove.disconnect.json",
            before: Before::VerifiedProveSessionWithIdentity,
            status: 200,
            facts: |b| assert_eq!(b, &json!({"received": true, "duplicate": false})),
        },
        Expect {
            file: "get-session.get.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["id"], SAMPLE_SESSION, "{b}");
                assert_eq!(b["object"], "verification_session", "{b}");
                assert!(
                    b.get("client").is_none(),
                    "client only in create answers: {b}"
                );
            },
        },
        Expect {
            file: "get-session.history.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["object"], "list", "{b}");
                let data = b["data"].as_array().expect("data");
                let first = data.last().expect("at least its creation");
                assert_eq!(first["reason"], "created", "{b}");
                assert_eq!(first["version"], 1, "{b}");
                assert!(
                    data.windows(2)
                        .all(|w| w[0]["version"].as_u64() > w[1]["version"].as_u64()),
                    "newest first: {b}"
                );
            },
        },
        Expect {
            file: "get-session.list.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["object"], "list", "{b}");
                let data = b["data"].as_array().expect("data");
                assert!(
                    data.iter().any(|s| s["id"] == SAMPLE_SESSION),
                    "the sample session is listed: {b}"
                );
                assert!(data.iter().all(|s| s["user_id"] == SAMPLE_USER), "{b}");
            },
        },
        Expect {
            file: "start-session.cancel.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["id"], SAMPLE_SESSION, "{b}");
                assert_eq!(b["status"], "canceled", "{b}");
            },
        },
        Expect {
            file: "start-session.nevis.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                assert_eq!(b["provider"], "nevis", "{b}");
                assert_eq!(b["user_id"], "user-44", "{b}");
                assert_eq!(b["status"], "created", "{b}");
                let url = b["client"]["start_url"].as_str().expect("client.start_url");
                assert!(url.contains("/idv/welcome.html?tc="), "{b}");
            },
        },
        // Not HTTP: the handler's answer is the run's summary (200 here means it ran).
        Expect {
            file: "reconcile.scheduled.json",
            before: Before::OverdueNevisSession,
            status: 200,
            facts: |b| {
                assert_eq!(b["due"], 1, "only the overdue session is due: {b}");
                assert_eq!(b["expired"], 1, "{b}");
                assert_eq!(b["failed"], 0, "{b}");
            },
        },
        // Last: canceling a session the webhook had verified would be a 409. The sample session
        // is canceled by now, so the webhook gets a second session, opened through the API.
        Expect {
            file: "webhook-authento.reviewed.json",
            before: Before::OpenSessionAndApprovedAuthentoUser,
            status: 200,
            facts: |b| assert_eq!(b, &json!({"received": true, "duplicate": false})),
        },
        Expect {
            file: "start-session.passbase.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                assert_eq!(b["provider"], "passbase", "{b}");
                assert_eq!(b["user_id"], "user-44", "{b}");
                assert_eq!(b["status"], "created", "{b}");
                let meta = b["client"]["metadata"].as_str().expect("client.metadata");
                let meta: Value = serde_json::from_str(meta).expect("metadata is JSON");
                assert_eq!(meta["session_ref"], b["id"], "{b}");
            },
        },
        Expect {
            file: "start-session.link.json",
            before: Before::WaitingPassbaseSessionAndApprovedIdentity,
            status: 200,
            facts: |b| {
                assert_eq!(b["id"], SAMPLE_PASSBASE_SESSION, "{b}");
                assert_eq!(b["provider"], "passbase", "{b}");
            },
        },
        Expect {
            file: "webhook-passbase.completed.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| assert_eq!(b, &json!({"received": true, "duplicate": false})),
        },
        Expect {
            file: "get-session.reauthentications.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["object"], "list", "{b}");
                assert!(b["data"].is_array(), "{b}");
            },
        },
        Expect {
            file: "start-session.stripe.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                assert_eq!(b["provider"], "stripe", "{b}");
                assert_eq!(b["user_id"], "user-46", "{b}");
                assert_eq!(b["status"], "pending", "the user's turn: {b}");
                assert_eq!(b["provider_status"], "requires_input", "{b}");
                let url = b["client"]["url"].as_str().expect("client.url");
                assert!(url.contains("/sandbox/stripe/verify/"), "{b}");
            },
        },
        // Signed again at run time (its `t` would be stale); it names a verification session no
        // session holds: recorded and kept until one does.
        Expect {
            file: "webhook-stripe.verified.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| assert_eq!(b, &json!({"received": true, "duplicate": false})),
        },
        // Not HTTP: a batch of the table's stream, as Lambda delivers it. The session record
        // becomes one stored event (the test counts them: `stored`), the ref record nothing.
        Expect {
            file: "notify.stream.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["batchItemFailures"], json!([]), "{b}");
                assert_eq!(b["stored"], json!(["session.created"]), "{b}");
            },
        },
        Expect {
            file: "notify.scheduled.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| assert_eq!(b["failed"], 0, "{b}"),
        },
        Expect {
            file: "events-api.list-events.json",
            before: Before::Nothing,
            status: 200,
            facts: |b| {
                assert_eq!(b["object"], "list", "{b}");
                let data = b["data"].as_array().expect("data");
                assert!(
                    data.iter()
                        .any(|e| e["session_id"] == "ses_eventsample000000000000003"),
                    "the stream sample's event is listed: {b}"
                );
            },
        },
        // After the stream sample: an endpoint created earlier would be sent its event.
        Expect {
            file: "events-api.create-endpoint.json",
            before: Before::Nothing,
            status: 201,
            facts: |b| {
                assert_eq!(b["object"], "webhook_endpoint", "{b}");
                assert_eq!(b["enabled"], true, "{b}");
                assert!(
                    b["secret"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("whsec_")),
                    "{b}"
                );
            },
        },
        // The `$default` route (template.yaml): a method the path does not serve.
        Expect {
            file: "get-session.unknown-route.json",
            before: Before::Nothing,
            status: 405,
            facts: |b| {
                assert_eq!(b["code"], "method_not_allowed", "{b}");
                assert_eq!(b["status"], 405, "{b}");
            },
        },
    ]
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Every `events/*.json`, by file name.
fn event_files() -> BTreeSet<String> {
    std::fs::read_dir(events_dir())
        .expect("events/ is readable")
        .map(|e| e.expect("a directory entry").file_name())
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// The function a file belongs to: the file name's prefix is its binary (`<binary>.<what>.json`).
fn function_of(file: &str) -> Function {
    let binary = file.split('.').next().unwrap_or_default();
    routes()
        .into_iter()
        .map(|(_, _, f)| f)
        .chain([Function::RECONCILE, Function::NOTIFY]) // not routed
        .find(|f| f.binary() == binary)
        .unwrap_or_else(|| panic!("events/{file}: no function has the binary {binary:?}"))
}

/// Pushes one event file through its function, as the Lambda runtime would.
async fn invoke(app: &Arc<idv::App>, file: &str) -> (u16, Value) {
    let mut raw = std::fs::read_to_string(events_dir().join(file)).expect("event file");
    if file == "webhook-prove.disconnect.json" {
        raw = with_fresh_prove_token(&raw);
    }
    if file == "webhook-stripe.verified.json" {
        raw = with_fresh_stripe_signature(&raw);
    }
    if function_of(file) == Function::RECONCILE {
        // What `idv::scheduled::run_reconcile` does with the runtime's payload.
        let event: Value =
            serde_json::from_str(&raw).unwrap_or_else(|e| panic!("events/{file} is not JSON: {e}"));
        assert_eq!(event["detail-type"], "Scheduled Event", "events/{file}");
        let summary = idv::flows::reconcile::handle_scheduled_event(app.clone(), event).await;
        return (200, serde_json::to_value(summary).expect("a summary"));
    }
    if function_of(file) == Function::NOTIFY {
        // What `idv::scheduled::run_notify` does with the runtime's payload.
        let event: Value =
            serde_json::from_str(&raw).unwrap_or_else(|e| panic!("events/{file} is not JSON: {e}"));
        let mut answer = idv::scheduled::notify_event(app, &event).await;
        if event.get("Records").is_some() {
            // What the batch stored, beside the answer Lambda reads.
            let filter = idv::store::EventFilter::default();
            let (stored, _) = app
                .store
                .list_events(TENANT, &filter, 100, None)
                .await
                .unwrap();
            answer["stored"] = stored
                .iter()
                .map(|e| json!(e.event_type.as_str()))
                .collect();
        }
        return (200, answer);
    }
    let req = lambda_http::request::from_str(&raw)
        .unwrap_or_else(|e| panic!("events/{file} is not an API Gateway event: {e}"));
    let resp = to_lambda(idv::http::handle(app, function_of(file), from_lambda(req)).await);
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => panic!("events/{file}: a text body, got {other:?}"),
    };
    let want_type = if status < 400 {
        "application/json"
    } else {
        "application/problem+json"
    };
    assert_eq!(
        content_type, want_type,
        "events/{file} answered {status} {body}"
    );
    let body = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("events/{file}: the body is not JSON ({e}): {body}"));
    (status, body)
}

/// Prove's tokens are short-lived and the gateway refuses an old one: the sample's token is
/// signed again, now, with the sample secret (events/README.md), the rest of the event as it is.
fn with_fresh_prove_token(raw: &str) -> String {
    let mut event: Value = serde_json::from_str(raw).expect("JSON");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": "Prove Identity", "iat": now, "exp": now + 300}),
        &jsonwebtoken::EncodingKey::from_secret(SAMPLE_PROVE_WEBHOOK_SECRET.as_bytes()),
    )
    .expect("HS256");
    event["headers"]["x-prove-authorization"] = json!(format!("Bearer {jwt}"));
    event.to_string()
}

/// Stripe refuses a signature older than five minutes, and so does the gateway: the sample's
/// body is signed again, now, with the sample secret, the rest of the event as it is.
fn with_fresh_stripe_signature(raw: &str) -> String {
    let mut event: Value = serde_json::from_str(raw).expect("JSON");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = event["body"].as_str().expect("a body").to_owned();
    let v1 = idv::webhooks::hmac_digest::sign_hex(
        SAMPLE_STRIPE_SECRET,
        format!("{now}.{body}").as_bytes(),
    );
    event["headers"]["stripe-signature"] = json!(format!("t={now},v1={v1}"));
    event.to_string()
}

/// The gateway the samples are written for: their API key and webhook secret configured.
async fn start_gateway() -> Running {
    let running = idv_local::start(Options {
        api_keys: vec![(TENANT.into(), SAMPLE_KEY.into())],
        authento: Some(authento::Secrets {
            api_key: Secret::new(format!("ak_{}", idv::ids::random_token())),
            api_secret: Secret::new(format!("as_{}", idv::ids::random_token())),
            jwt_secret: Secret::new(format!("jwt_{}", idv::ids::random_token())),
            webhook_secret: Secret::new(SAMPLE_WEBHOOK_SECRET),
            webhook_secret_previous: None,
        }),
        prove: Some(prove::Secrets {
            client_id: Secret::new(format!("cid_{}", idv::ids::random_token())),
            client_secret: Secret::new(format!("cs_{}", idv::ids::random_token())),
            webhook_secret: Some(Secret::new(SAMPLE_PROVE_WEBHOOK_SECRET)),
            webhook_secret_previous: None,
        }),
        passbase: Some(passbase::Secrets {
            api_key: Secret::new(format!("pb_sk_{}", idv::ids::random_token())),
            webhook_secret: Secret::new(SAMPLE_PASSBASE_SECRET),
            webhook_secret_previous: None,
        }),
        stripe: Some(stripe::Secrets {
            api_key: Secret::new(format!("sk_test_{}", idv::ids::random_token())),
            webhook_secret: Secret::new(SAMPLE_STRIPE_SECRET),
            webhook_secret_previous: None,
        }),
        ..Default::default()
    })
    .await
    .expect("local server starts");
    seed_sample_session(&running.app).await;
    running
}

/// `ses_eventsample000000000000001`: user-42's open Authento BASIC session of `events-app`.
async fn seed_sample_session(app: &idv::App) {
    let now = app.clock.now();
    let mut session = Session::new(TENANT, Provider::named("authento"), SAMPLE_USER, now);
    session.id = SessionId::parse(SAMPLE_SESSION).expect("the sample id is a session id");
    session.data = ProviderData::of(&authento::AuthentoData {
        verification_type: Some(authento::VerificationType::Basic),
        ..Default::default()
    });
    let history = HistoryEntry::created(&session);
    let claim = RefClaim {
        key: authento::ref_key(
            Subject::of(TENANT, SAMPLE_USER).as_str(),
            authento::VerificationType::Basic,
        ),
        tenant: TENANT.into(),
        replaces: None,
    };
    app.store
        .create_session(&session, &history, std::slice::from_ref(&claim), None)
        .await
        .expect("the sample session is stored");
}

/// A verified Prove session of user-42 (tenant `events-app`) that enrolled the sample identity.
async fn seed_verified_prove_session(app: &idv::App) -> SessionId {
    let now = app.clock.now();
    let mut session = Session::new(TENANT, Provider::named("prove"), SAMPLE_USER, now);
    session.status = Status::Verified;
    session.provider_status = Some("true".into());
    session.provider_ref = Some("713189b8-5555-4b08-83ba-75d08780aebd".into());
    session.data = ProviderData::of(&prove::ProveData {
        flow: prove::ProveFlow::VerifiedUsers,
        possession: prove::Possession::None,
        region: prove::ProveRegion::Na,
        phone_masked: "+1*******011".into(),
        possession_deadline: None,
        identity_id: Some(SAMPLE_IDENTITY.into()),
        reverification_recommended: false,
    });
    let history = HistoryEntry::created(&session);
    let claim = RefClaim {
        key: prove::identity_ref_key(SAMPLE_IDENTITY),
        tenant: TENANT.into(),
        replaces: None,
    };
    app.store
        .create_session(&session, &history, std::slice::from_ref(&claim), None)
        .await
        .expect("the sample prove session is stored");
    session.id
}

/// An open Nevis session of `events-app` whose deadline passed a minute ago: reconcile's work.
async fn seed_overdue_nevis_session(app: &idv::App) {
    let now = app.clock.now();
    let mut session = Session::new(
        TENANT,
        Provider::named("nevis"),
        "user-45",
        now - time::Duration::hours(2),
    );
    session.provider_ref = Some("123456789".into());
    session.expires_at = Some(now - time::Duration::minutes(1));
    session.next_check_at = session.expires_at;
    app.store
        .create_session(&session, &HistoryEntry::created(&session), &[], None)
        .await
        .expect("the overdue session is stored");
}

/// Opens user-42's BASIC session through the API and approves user-42 in the simulator (without
/// a webhook: the sample event is the webhook). Returns the session's id.
async fn open_session_and_approve(running: &Running) -> SessionId {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/tokens", running.base_url))
        .bearer_auth(SAMPLE_KEY)
        .json(&json!({"user_id": SAMPLE_USER, "verification_type": "BASIC"}))
        .send()
        .await
        .expect("the local server answers");
    assert_eq!(r.status(), 201, "a token for user-42");
    let body: Value = r.json().await.expect("JSON");
    let id = body["session"]["id"].as_str().expect("session.id");
    assert_eq!(
        body["session"]["status"], "created",
        "an open session: {body}"
    );
    let r = http
        .post(format!(
            "{}/sandbox/authento/control/users/{}",
            running.base_url,
            Subject::of(TENANT, SAMPLE_USER)
        ))
        .json(&json!({"verification_type": "BASIC", "action": "approve", "deliver": false}))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(r.status(), 200, "simulator control call");
    SessionId::parse(id).expect("a session id")
}

/// user-45's Passbase session waiting for its identity, and that identity approved in the
/// simulator (its webhook is the sample event).
async fn seed_waiting_passbase_session(running: &Running) {
    let app = &running.app;
    let mut session = Session::new(
        TENANT,
        Provider::named("passbase"),
        "user-45",
        app.clock.now(),
    );
    session.id = SessionId::parse(SAMPLE_PASSBASE_SESSION).expect("a session id");
    app.store
        .create_session(&session, &HistoryEntry::created(&session), &[], None)
        .await
        .expect("the sample Passbase session is stored");
    let http = reqwest::Client::new();
    let sim = format!("{}/sandbox/passbase/control/identities", running.base_url);
    let r = http
        .post(&sim)
        .json(&json!({"id": SAMPLE_PASSBASE_IDENTITY}))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(r.status(), 201, "simulator identity");
    let r = http
        .post(format!("{sim}/{SAMPLE_PASSBASE_IDENTITY}"))
        .json(&json!({"action": "approve", "deliver": "none"}))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(r.status(), 200, "simulator approval");
}

#[test]
fn every_sample_event_has_an_expectation_and_every_expectation_a_file() {
    let files = event_files();
    let expected: BTreeSet<String> = expectations().iter().map(|e| e.file.to_owned()).collect();
    let untested: Vec<_> = files.difference(&expected).collect();
    assert!(
        untested.is_empty(),
        "events/ has files without an expectation in tests/integration/events.rs: {untested:?}"
    );
    let missing: Vec<_> = expected.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "expected files missing from events/: {missing:?}"
    );
}

#[test]
fn every_sample_event_is_listed_in_the_readme() {
    let readme = std::fs::read_to_string(events_dir().join("README.md")).expect("events/README.md");
    for file in event_files() {
        assert!(
            readme.contains(&format!("`{file}`")),
            "events/README.md does not list {file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_goes_through_its_handler() {
    // First, so a new file fails here too, before anything is started.
    every_sample_event_has_an_expectation_and_every_expectation_a_file();
    let running = start_gateway().await;
    let app = running.app.clone();
    let mut webhook_session = None;
    let mut prove_session = None;

    for e in expectations() {
        match e.before {
            Before::Nothing => {}
            Before::OpenSessionAndApprovedAuthentoUser => {
                webhook_session = Some(open_session_and_approve(&running).await);
            }
            Before::VerifiedProveSessionWithIdentity => {
                prove_session = Some(seed_verified_prove_session(&app).await);
            }
            Before::OverdueNevisSession => seed_overdue_nevis_session(&running.app).await,
            Before::WaitingPassbaseSessionAndApprovedIdentity => {
                seed_waiting_passbase_session(&running).await;
            }
        }
        let (status, body) = invoke(&app, e.file).await;
        assert_eq!(status, e.status, "events/{} answered {body}", e.file);
        (e.facts)(&body);
    }

    // The webhook verified the open session, and a redelivery is only acknowledged.
    let id = webhook_session.expect("the webhook event ran");
    let s = app
        .store
        .get_session(&id)
        .await
        .expect("store")
        .expect("the session");
    assert_eq!(
        s.status,
        Status::Verified,
        "the webhook applied Authento's state"
    );
    let (status, body) = invoke(&app, "webhook-authento.reviewed.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": true}));

    // The Prove event was recorded on the verified session, which now asks for re-verification.
    let id = prove_session.expect("the prove webhook event ran");
    let s = app
        .store
        .get_session(&id)
        .await
        .expect("store")
        .expect("the session");
    assert!(s.prove().expect("prove details").reverification_recommended);
    let events = app.store.identity_events(&id, 10).await.expect("store");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "DISCONNECT");
    let (status, body) = invoke(&app, "webhook-prove.disconnect.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": true}));

    // The Passbase webhook verified the linked session; its redelivery is only acknowledged.
    let id = SessionId::parse(SAMPLE_PASSBASE_SESSION).expect("a session id");
    let s = app
        .store
        .get_session(&id)
        .await
        .expect("store")
        .expect("the session");
    assert_eq!(
        s.status,
        Status::Verified,
        "the webhook applied Passbase's identity"
    );
    let (status, body) = invoke(&app, "webhook-passbase.completed.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": true}));

    running.stop().await;
}
