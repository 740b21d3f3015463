//! The Stripe Identity simulator checked by an independent implementation: the official `stripe`
//! Python package (pinned in scripts/requirements-tools.txt) verifies the `Stripe-Signature` of
//! events the simulator delivered over HTTP, and drives VerificationSessions through
//! `StripeClient` pointed at the simulator, as the gateway's adapter will be.

use idv_tests::receiver::Receiver;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};

/// Runs `script` with `input` as JSON on stdin; answers the JSON it prints. On a blocking
/// thread: the script calls the local server, which this test's runtime serves meanwhile.
async fn run_python(script: &'static str, input: Value) -> Value {
    tokio::task::spawn_blocking(move || idv_tests::receiver::run_python(script, &input))
        .await
        .expect("python runner")
}

/// Each case through `stripe.Webhook.construct_event` (default 300 s tolerance): the event's
/// id and type, or the SDK's refusal.
const VERIFY: &str = r#"
import json, sys, stripe
out = []
for case in json.load(sys.stdin):
    try:
        event = stripe.Webhook.construct_event(case["payload"].encode("utf-8"), case["header"], case["secret"])
        out.append({"ok": True, "id": event.id, "type": event.type, "status": event.data.object.status})
    except stripe.SignatureVerificationError as e:
        out.append({"ok": False, "error": str(e)})
print(json.dumps(out))
"#;

/// Each request the receiver got: its `Stripe-Signature` and raw body.
fn signed(rx: &Receiver) -> Vec<(String, String)> {
    rx.received()
        .into_iter()
        .map(|r| {
            let sig = r
                .headers
                .get("stripe-signature")
                .cloned()
                .unwrap_or_default();
            (sig, r.body)
        })
        .collect()
}

#[tokio::test]
async fn the_official_sdk_verifies_delivered_events_and_refuses_tampered_ones() {
    let gw = Gateway::start(Backend::Memory).await;
    let sim = &gw.running.stripe;
    let rx = Receiver::start().await;
    rx.answer(200);
    gw.stripe_control("/settings", json!({"webhook_url": rx.url}))
        .await;
    let created = gw
        .send(
            gw.http
                .post(format!(
                    "{}/v1/identity/verification_sessions",
                    gw.stripe_api_base()
                ))
                .bearer_auth(sim.secret_key())
                .form(&[("type", "document")]),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let driven = gw
        .stripe_control(&format!("/sessions/{id}"), json!({"action": "verify"}))
        .await;
    assert_eq!(driven["events"][1]["delivered"], 200);
    let delivered = signed(&rx);
    assert_eq!(delivered.len(), 2, "processing, then verified");
    let (header, body) = delivered[1].clone();
    let secret = sim.webhook_secret();

    // What arrived, then a roll (old and new sign together) and a resend.
    let rolled = gw.stripe_control("/webhook_secret/roll", json!({})).await;
    let new_secret = rolled["secret"].as_str().unwrap().to_owned();
    let evt = driven["events"][1]["id"].as_str().unwrap();
    gw.stripe_control(&format!("/events/{evt}/resend"), json!({}))
        .await;
    let (rolled_header, rolled_body) = signed(&rx)[2].clone();
    assert_eq!(rolled_body, body, "a resend carries the same bytes");
    let old = gw
        .stripe_control(
            &format!("/events/{evt}/resend"),
            json!({"deliver": false, "timestamp": 1_000_000_000}),
        )
        .await;

    let tampered = body.replace("\"verified\"", "\"canceled\"");
    assert_ne!(tampered, body);
    let only_v0: String = header
        .split(',')
        .filter(|p| !p.starts_with("v1="))
        .collect::<Vec<_>>()
        .join(",");
    let case = |payload: &str, header: &str, secret: &str| json!({"payload": payload, "header": header, "secret": secret});
    let results = run_python(
        VERIFY,
        json!([
            case(&body, &header, &secret),
            case(&tampered, &header, &secret),
            case(&body, &header, "whsec_not_the_secret"),
            case(&body, &only_v0, &secret),
            case(&rolled_body, &rolled_header, &secret),
            case(&rolled_body, &rolled_header, &new_secret),
            case(
                old["body"].as_str().unwrap(),
                old["stripe_signature"].as_str().unwrap(),
                &new_secret
            ),
        ]),
    )
    .await;
    let ok: Vec<bool> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(
        ok,
        [true, false, false, false, true, true, false],
        "{results:#}"
    );
    assert_eq!(results[0]["id"], evt);
    assert_eq!(results[0]["type"], "identity.verification_session.verified");
    assert_eq!(results[0]["status"], "verified");
    let reason = |i: usize| results[i]["error"].as_str().unwrap().to_owned();
    assert!(
        reason(1).contains("No signatures found matching"),
        "{}",
        reason(1)
    );
    assert!(reason(3).contains("No signatures found"), "{}", reason(3));
    assert!(reason(6).contains("tolerance"), "{}", reason(6));
    gw.stop().await;
}

/// The SDK's view of the simulator: every call through `StripeClient` with the simulator as its
/// API base; the control routes (plain HTTP) play the user.
const CLIENT: &str = r#"
import json, sys, urllib.request, stripe
cfg = json.load(sys.stdin)
base, key = cfg["base"], cfg["key"]
client = stripe.StripeClient(key, base_addresses={"api": base})
sessions = client.v1.identity.verification_sessions

def control(path, body):
    req = urllib.request.Request(base + "/control" + path, json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))

def refusal(call):
    try:
        call()
        return None
    except stripe.StripeError as e:
        return {"class": type(e).__name__, "status": e.http_status, "code": e.code,
                "request_id": e.request_id}

out = {}
params = {
    "type": "document", "client_reference_id": "ref-py", "metadata": {"user_id": "42"},
    "options": {"document": {"allowed_types": ["passport", "id_card"], "require_matching_selfie": True}},
    "provided_details": {"email": "py@example.test"}, "return_url": "https://app.test/back?x=1",
}
created = sessions.create(params, {"idempotency_key": "py-create-1"})
replayed = sessions.create(params, {"idempotency_key": "py-create-1"})
out["created"] = created.to_dict()
out["replayed_same_id"] = replayed.id == created.id
out["replayed_header"] = replayed.last_response.headers.get("Idempotent-Replayed")
out["other_params_same_key"] = refusal(
    lambda: sessions.create({"type": "id_number"}, {"idempotency_key": "py-create-1"}))

out["retrieved_status"] = sessions.retrieve(created.id).status
out["listed"] = [s.id for s in sessions.list({"client_reference_id": "ref-py", "limit": 5}).data]

control("/sessions/" + created.id, {"action": "verify", "deliver": False})
verified = sessions.retrieve(created.id, {"expand": ["verified_outputs", "verified_outputs.dob"]})
out["verified"] = {"status": verified.status, "first_name": verified.verified_outputs.first_name,
                   "dob_year": verified.verified_outputs.dob.year,
                   "report": verified.last_verification_report}
out["cancel_verified"] = refusal(lambda: sessions.cancel(created.id))

other = sessions.create({"type": "id_number"})
out["canceled"] = sessions.cancel(other.id).status
out["cancel_again"] = refusal(lambda: sessions.cancel(other.id))
out["missing"] = refusal(lambda: sessions.retrieve("vs_000000000000000000000000"))
out["wrong_key"] = refusal(
    lambda: stripe.StripeClient("sk_test_wrong", base_addresses={"api": base})
        .v1.identity.verification_sessions.list())

# A 500 before the endpoint runs: the SDK retries with the same idempotency key, and one
# session comes of it.
control("/faults", {"fail_next": 1, "status": 500})
retrying = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=1)
retried = retrying.v1.identity.verification_sessions.create({"type": "document", "client_reference_id": "ref-retry"})
out["retried_listed"] = [s.id for s in sessions.list({"client_reference_id": "ref-retry"}).data]
out["retried_id"] = retried.id
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_official_sdk_creates_retrieves_lists_and_cancels_sessions() {
    let gw = Gateway::start(Backend::Memory).await;
    let sim = &gw.running.stripe;
    let out = run_python(
        CLIENT,
        json!({"base": gw.stripe_api_base(), "key": sim.secret_key()}),
    )
    .await;
    let created = &out["created"];
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("vs_"));
    assert_eq!(created["status"], "requires_input");
    assert_eq!(created["client_reference_id"], "ref-py");
    assert_eq!(created["metadata"], json!({"user_id": "42"}));
    assert_eq!(
        created["options"]["document"]["allowed_types"],
        json!(["passport", "id_card"])
    );
    assert_eq!(
        created["url"].as_str().unwrap().split("/verify/").next(),
        Some(gw.stripe_api_base().as_str())
    );
    assert_eq!(out["replayed_same_id"], true);
    assert_eq!(out["replayed_header"], "true");
    assert_eq!(out["other_params_same_key"]["class"], "IdempotencyError");
    assert_eq!(out["retrieved_status"], "requires_input");
    assert_eq!(out["listed"], json!([id]));
    let verified = &out["verified"];
    assert_eq!(
        (
            &verified["status"],
            &verified["first_name"],
            &verified["dob_year"]
        ),
        (
            &json!("verified"),
            &json!("Jane"),
            &json!(
                gw.running
                    .stripe
                    .person(id)
                    .expect("its person")
                    .date_of_birth
                    .0
            )
        )
    );
    assert!(verified["report"].as_str().unwrap().starts_with("vr_"));
    let refused = |name: &str| {
        let r = &out[name];
        (
            r["class"].as_str().unwrap_or("none").to_owned(),
            r["status"].as_u64().unwrap_or(0),
            r["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        refused("cancel_verified"),
        ("InvalidRequestError".into(), 400, String::new())
    );
    assert_eq!(out["canceled"], "canceled");
    assert_eq!(
        refused("cancel_again"),
        ("InvalidRequestError".into(), 400, String::new())
    );
    assert_eq!(
        refused("missing"),
        ("InvalidRequestError".into(), 404, "resource_missing".into())
    );
    assert!(
        out["missing"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(
        refused("wrong_key"),
        ("AuthenticationError".into(), 401, String::new())
    );
    assert_eq!(out["retried_listed"], json!([out["retried_id"]]));

    // Every call went through the simulator's API, counted per endpoint (the retry included).
    assert_eq!(
        sim.requests("POST /v1/identity/verification_sessions"),
        6,
        "create, replay, other params, second session, a 500 and its retry"
    );
    assert_eq!(
        sim.requests("POST /v1/identity/verification_sessions/{session}/cancel"),
        3
    );
    assert_eq!(
        sim.requests("GET /v1/identity/verification_sessions/{session}"),
        3
    );
    assert_eq!(sim.requests("GET /v1/identity/verification_sessions"), 3);
    gw.stop().await;
}
