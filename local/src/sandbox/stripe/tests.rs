use super::*;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use tower::ServiceExt;

const KEY: &str = "sk_test_simulator";
const SECRET: &str = "whsec_simulator";
const BASE: &str = "http://sim.test/sandbox/stripe";
const SESSIONS: &str = "/v1/identity/verification_sessions";

fn sim() -> StripeSim {
    StripeSim::new(StripeSimConfig {
        secret_key: KEY.into(),
        webhook_secret: SECRET.into(),
        webhook_url: None,
        base_url: BASE.into(),
        processing_ms: 0,
    })
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn send(sim: &StripeSim, req: Request<Body>) -> Answer {
    let resp = sim.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}

fn api(method: &str, path: &str, form: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::from(form.to_owned())).unwrap()
}

async fn post(sim: &StripeSim, path: &str, form: &str) -> Answer {
    send(sim, api("POST", path, form, &[])).await
}

async fn get(sim: &StripeSim, path: &str) -> Answer {
    send(sim, api("GET", path, "", &[])).await
}

async fn create(sim: &StripeSim, form: &str) -> Value {
    let a = post(sim, SESSIONS, form).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body
}

async fn control(sim: &StripeSim, path: &str, body: Value) -> Answer {
    send(
        sim,
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn drive(sim: &StripeSim, id: &str, body: Value) -> Value {
    let a = control(sim, &format!("/control/sessions/{id}"), body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body
}

/// Checks a `Stripe-Signature` as the SDKs do: some `v1` is the HMAC of `"{t}.{body}"`.
fn signed_with(header: &str, body: &str, secret: &str) -> bool {
    let t: i64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    let expected = events::hmac_hex(secret, t, body);
    header
        .split(',')
        .filter_map(|p| p.strip_prefix("v1="))
        .any(|v| v == expected)
}

fn error_of(a: &Answer) -> (u16, String, String, String) {
    let e = &a.body["error"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    (
        a.status.as_u16(),
        s(&e["type"]),
        s(&e["code"]),
        s(&e["param"]),
    )
}

#[tokio::test]
async fn create_answers_the_documented_object_from_any_array_encoding() {
    let s = sim();
    let indexed = create(
        &s,
        "type=document&client_reference_id=ses_1&metadata[user_id]=42\
         &options[document][allowed_types][0]=passport&options[document][allowed_types][1]=id_card\
         &options[document][require_matching_selfie]=true&provided_details[email]=a%40b.test\
         &return_url=https%3A%2F%2Fapp.test%2Fdone",
    )
    .await;
    let id = indexed["id"].as_str().unwrap();
    assert!(id.starts_with("vs_") && id.len() == 27, "{id}");
    assert_eq!(indexed["object"], "identity.verification_session");
    assert_eq!(indexed["status"], "requires_input");
    assert_eq!(indexed["type"], "document");
    assert_eq!(indexed["livemode"], false);
    assert_eq!(indexed["last_error"], Value::Null);
    assert_eq!(indexed["redaction"], Value::Null);
    assert_eq!(indexed["last_verification_report"], Value::Null);
    assert_eq!(indexed["client_reference_id"], "ses_1");
    assert_eq!(indexed["metadata"], json!({"user_id": "42"}));
    assert_eq!(indexed["provided_details"], json!({"email": "a@b.test"}));
    assert_eq!(
        indexed["options"],
        json!({"document": {"allowed_types": ["passport", "id_card"], "require_matching_selfie": true}})
    );
    assert!(
        indexed["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{id}_secret_test_"))
    );
    assert!(
        indexed["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{BASE}/verify/"))
    );
    assert!(
        indexed.get("return_url").is_none(),
        "a create parameter only"
    );
    assert!(
        indexed.get("verified_outputs").is_none(),
        "only when expanded"
    );

    let empty = create(
        &s,
        "type=document&options[document][allowed_types][]=passport&options[document][allowed_types][]=id_card",
    )
    .await;
    let encoded = create(
        &s,
        "type=document&options%5Bdocument%5D%5Ballowed_types%5D%5B0%5D=passport\
         &options%5Bdocument%5D%5Ballowed_types%5D%5B1%5D=id_card",
    )
    .await;
    assert_eq!(empty["options"], encoded["options"]);
    assert_eq!(
        empty["options"]["document"]["allowed_types"],
        json!(["passport", "id_card"])
    );

    let a = post(&s, SESSIONS, "type=id_number").await;
    assert!(
        a.headers["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(a.body["type"], "id_number");
    assert_eq!(a.body["options"], json!({}));
}

/// Status, error type, code and param.
type Expected<'a> = (u16, &'a str, &'a str, &'a str);

#[tokio::test]
async fn bad_parameters_get_stripe_errors_and_create_nothing() {
    let s = sim();
    let too_many: String = (0..51).map(|i| format!("&metadata[k{i}]=v")).collect();
    let fifty: String = (0..50).map(|i| format!("&metadata[k{i}]=v")).collect();
    let long_key = "k".repeat(41);
    let long_value = "v".repeat(501);
    let long_param = format!("metadata[{long_key}]");
    let cases: Vec<(String, Expected)> = vec![
        (
            "client_reference_id=x".into(),
            (400, "invalid_request_error", "parameter_missing", "type"),
        ),
        (
            "type=selfie".into(),
            (400, "invalid_request_error", "", "type"),
        ),
        (
            "type=".into(),
            (
                400,
                "invalid_request_error",
                "parameter_invalid_empty",
                "type",
            ),
        ),
        (
            "type=document&colour=red".into(),
            (400, "invalid_request_error", "parameter_unknown", "colour"),
        ),
        (
            "type=document&options[document][require_x]=true".into(),
            (
                400,
                "invalid_request_error",
                "parameter_unknown",
                "options[document][require_x]",
            ),
        ),
        (
            "type=document&options[email][require_verification]=true".into(),
            (
                400,
                "invalid_request_error",
                "parameter_unknown",
                "options[email]",
            ),
        ),
        (
            format!("type=document{too_many}"),
            (400, "invalid_request_error", "", "metadata"),
        ),
        (
            format!("type=document&metadata[{long_key}]=v"),
            (400, "invalid_request_error", "", long_param.as_str()),
        ),
        (
            format!("type=document&metadata[k]={long_value}"),
            (400, "invalid_request_error", "", "metadata[k]"),
        ),
        (
            "type=document&metadata[k][j]=v".into(),
            (400, "invalid_request_error", "", "metadata[k]"),
        ),
        (
            "type=document&options[document][allowed_types][]=library_card".into(),
            (
                400,
                "invalid_request_error",
                "",
                "options[document][allowed_types]",
            ),
        ),
        (
            "type=document&options[document][require_live_capture]=yes".into(),
            (
                400,
                "invalid_request_error",
                "",
                "options[document][require_live_capture]",
            ),
        ),
        (
            "type=document&return_url=not%20a%20url".into(),
            (400, "invalid_request_error", "url_invalid", "return_url"),
        ),
        (
            "type=document&provided_details[email]=nobody".into(),
            (
                400,
                "invalid_request_error",
                "email_invalid",
                "provided_details[email]",
            ),
        ),
        (
            "type=document&type=id_number".into(),
            (400, "invalid_request_error", "", "type"),
        ),
        (
            "type=document&expand[]=client_secret".into(),
            (400, "invalid_request_error", "", "expand"),
        ),
        (
            "type=document&verification_flow=vf_1".into(),
            (
                400,
                "invalid_request_error",
                "resource_missing",
                "verification_flow",
            ),
        ),
    ];
    for (form, expected) in &cases {
        let a = post(&s, SESSIONS, form).await;
        let got = error_of(&a);
        assert_eq!(
            (got.0, got.1.as_str(), got.2.as_str(), got.3.as_str()),
            *expected,
            "{form}: {}",
            a.text
        );
        assert!(a.headers.contains_key("request-id"));
    }
    assert_eq!(s.state().sessions.len(), 0, "nothing was created");
    assert_eq!(s.requests(api::CREATE), cases.len() as u64);

    // The limits themselves are accepted.
    let at_limits = create(
        &s,
        &format!(
            "type=document{fifty}&metadata[{}]={}",
            "k".repeat(40),
            "v".repeat(500)
        )
        .replace("&metadata[k49]=v", ""),
    )
    .await;
    assert_eq!(at_limits["metadata"].as_object().unwrap().len(), 50);
}

#[tokio::test]
async fn the_secret_key_is_required_as_bearer_or_basic() {
    let s = sim();
    let with = |auth: Option<String>| {
        let mut b = Request::post(SESSIONS);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::from("type=document")).unwrap()
    };
    let basic = |user: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user)
        )
    };
    assert_eq!(
        send(&s, with(Some(format!("Bearer {KEY}")))).await.status,
        200
    );
    assert_eq!(
        send(&s, with(Some(basic(&format!("{KEY}:"))))).await.status,
        200
    );
    for refused in [
        None,
        Some("Bearer sk_test_wrong_key".to_owned()),
        Some(basic("sk_test_wrong:")),
        Some("Bearer pk_test_publishable".to_owned()),
        Some(format!("Token {KEY}")),
    ] {
        let a = send(&s, with(refused.clone())).await;
        assert_eq!(
            (a.status.as_u16(), a.body["error"]["type"].clone()),
            (401, json!("invalid_request_error")),
            "{refused:?}"
        );
        assert!(!a.text.contains("sk_test_wrong_key"), "no key echoed whole");
    }
    assert_eq!(s.state().sessions.len(), 2);
}

#[tokio::test]
async fn unknown_sessions_and_urls_are_resource_missing() {
    let s = sim();
    let missing = "vs_000000000000000000000000";
    for (method, path) in [
        ("GET", format!("{SESSIONS}/{missing}")),
        ("POST", format!("{SESSIONS}/{missing}")),
        ("POST", format!("{SESSIONS}/{missing}/cancel")),
        ("POST", format!("{SESSIONS}/{missing}/redact")),
    ] {
        let a = send(&s, api(method, &path, "", &[])).await;
        assert_eq!(
            error_of(&a),
            (
                404,
                "invalid_request_error".into(),
                "resource_missing".into(),
                "id".into()
            ),
            "{method} {path}"
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(missing)
        );
    }
    let a = send(&s, api("DELETE", SESSIONS, "", &[])).await;
    assert_eq!(a.status, 404);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL")
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_refuses_other_params_and_is_in_use_while_running() {
    let s = sim();
    let key = [("idempotency-key", "key-1")];
    let first = send(&s, api("POST", SESSIONS, "type=document", &key)).await;
    let again = send(&s, api("POST", SESSIONS, "type=document", &key)).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.body, first.body, "the same session, not a second one");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert!(!first.headers.contains_key("idempotent-replayed"));
    assert_ne!(again.headers["request-id"], first.headers["request-id"]);
    assert_eq!(s.state().sessions.len(), 1);

    let other = send(&s, api("POST", SESSIONS, "type=id_number", &key)).await;
    assert_eq!(other.status, 400, "{}", other.text);
    assert_eq!(other.body["error"]["type"], "idempotency_error");
    let id = first.body["id"].as_str().unwrap();
    let elsewhere = send(
        &s,
        api("POST", &format!("{SESSIONS}/{id}/cancel"), "", &key),
    )
    .await;
    assert_eq!(elsewhere.body["error"]["type"], "idempotency_error");
    assert_eq!(s.state().sessions[id].status, Status::RequiresInput);

    // A request refused by validation is not saved: the key stays free.
    let bad = send(
        &s,
        api(
            "POST",
            SESSIONS,
            "type=nope",
            &[("idempotency-key", "key-2")],
        ),
    )
    .await;
    assert_eq!(bad.status, 400);
    let good = send(
        &s,
        api(
            "POST",
            SESSIONS,
            "type=id_number",
            &[("idempotency-key", "key-2")],
        ),
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.text);

    // An injected failure is not saved either: the retry runs.
    control(
        &s,
        "/control/faults",
        json!({"fail_next": 1, "status": 503}),
    )
    .await;
    let k3 = [("idempotency-key", "key-3")];
    let failed = send(&s, api("POST", SESSIONS, "type=document", &k3)).await;
    assert_eq!(error_of(&failed).0, 503);
    assert_eq!(failed.headers["stripe-should-retry"], "true");
    let retried = send(&s, api("POST", SESSIONS, "type=document", &k3)).await;
    assert_eq!(retried.status, 200);
    assert!(!retried.headers.contains_key("idempotent-replayed"));

    // While the first request with a key runs (held by an injected delay), another is refused.
    control(
        &s,
        "/control/faults",
        json!({"delay_next": 1, "delay_ms": 60_000}),
    )
    .await;
    let slow = tokio::spawn({
        let s = s.clone();
        async move {
            send(
                &s,
                api(
                    "POST",
                    SESSIONS,
                    "type=document",
                    &[("idempotency-key", "key-4")],
                ),
            )
            .await
        }
    });
    while !s.state().idempotency.contains_key("key-4") {
        tokio::task::yield_now().await;
    }
    let busy = send(
        &s,
        api(
            "POST",
            SESSIONS,
            "type=document",
            &[("idempotency-key", "key-4")],
        ),
    )
    .await;
    assert_eq!(
        error_of(&busy),
        (
            409,
            "invalid_request_error".into(),
            "idempotency_key_in_use".into(),
            String::new()
        )
    );
    slow.abort();
}

#[tokio::test]
async fn verified_outputs_show_only_when_expanded() {
    let s = sim();
    let created = create(
        &s,
        "type=document&options[document][require_id_number]=true&provided_details[phone]=%2B15555550100",
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("{SESSIONS}/{id}");
    let pending = get(&s, &format!("{path}?expand[]=verified_outputs")).await;
    assert_eq!(pending.body["verified_outputs"], Value::Null);
    drive(&s, id, json!({"action": "verify", "deliver": false})).await;

    let plain = get(&s, &path).await.body;
    assert_eq!(plain["status"], "verified");
    assert!(plain.get("verified_outputs").is_none());
    assert_eq!(plain["client_secret"], Value::Null);
    assert_eq!(plain["url"], Value::Null);
    assert!(
        plain["last_verification_report"]
            .as_str()
            .unwrap()
            .starts_with("vr_")
    );

    // stripe-python's encoding: percent-encoded, indexed.
    let expanded = get(&s, &format!("{path}?expand%5B0%5D=verified_outputs")).await;
    let outputs = &expanded.body["verified_outputs"];
    let person = s.person(id).unwrap();
    assert_eq!(outputs["first_name"], "Jane");
    assert_eq!(outputs["last_name"], person.last_name.as_str());
    assert_eq!(outputs["address"]["line1"], person.street.as_str());
    assert_eq!(outputs["phone"], "+15555550100");
    assert_eq!(outputs["id_number_type"], "us_ssn");
    assert_eq!(outputs["dob"], Value::Null, "sensitive: its own expansion");
    assert_eq!(outputs["id_number"], Value::Null);

    let sensitive = get(
        &s,
        &format!("{path}?expand[]=verified_outputs.dob&expand[]=verified_outputs.id_number&expand[]=last_verification_report"),
    )
    .await
    .body;
    let (year, month, day) = person.date_of_birth;
    assert_eq!(
        sensitive["verified_outputs"]["dob"],
        json!({"day": day, "month": month, "year": year})
    );
    assert_eq!(
        sensitive["verified_outputs"]["id_number"],
        person.id_number.as_str()
    );
    let report = &sensitive["last_verification_report"];
    assert_eq!(report["object"], "identity.verification_report");
    assert_eq!(report["verification_session"], id);
    assert_eq!(report["document"]["status"], "verified");
    assert_eq!(report["id_number"]["status"], "verified");
    // The report's id number: its last 4 digits only (`us_ssn`).
    assert_eq!(report["id_number"]["id_number"], &person.id_number[5..]);

    let a = get(&s, &format!("{path}?expand[]=metadata")).await;
    assert_eq!(a.status, 400);
    let a = get(&s, &format!("{path}?limit=3")).await;
    assert_eq!(error_of(&a).2, "parameter_unknown");
}

#[tokio::test]
async fn cancel_works_only_from_requires_input_and_emits_canceled() {
    let s = sim();
    let id = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = send(
        &s,
        api(
            "POST",
            &format!("{SESSIONS}/{id}/cancel"),
            "",
            &[("idempotency-key", "cancel-1")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "canceled");
    assert_eq!(a.body["client_secret"], Value::Null);
    assert_eq!(a.body["url"], Value::Null);
    let again = post(&s, &format!("{SESSIONS}/{id}/cancel"), "").await;
    assert_eq!(error_of(&again).0, 400);
    assert_eq!(again.body["error"]["type"], "invalid_request_error");

    let event = s.state().events.last().cloned().unwrap();
    assert_eq!(event.event_type, "identity.verification_session.canceled");
    let body: Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(body["data"]["object"]["status"], "canceled");
    assert_eq!(body["request"]["idempotency_key"], "cancel-1");
    assert_eq!(
        body["request"]["id"],
        a.headers["request-id"].to_str().unwrap()
    );

    let verified = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drive(&s, &verified, json!({"action": "verify", "deliver": false})).await;
    let a = post(&s, &format!("{SESSIONS}/{verified}/cancel"), "").await;
    assert_eq!(error_of(&a).0, 400);
    assert_eq!(s.state().sessions[&verified].status, Status::Verified);
}

#[tokio::test]
async fn redaction_cancels_an_open_session_and_finishes_with_placeholders() {
    let s = sim();
    let open = create(&s, "type=document&metadata[k]=v").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = post(&s, &format!("{SESSIONS}/{open}/redact"), "").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "canceled");
    assert_eq!(a.body["redaction"], json!({"status": "processing"}));
    let canceled = s.state().events.last().cloned().unwrap();
    assert_eq!(
        canceled.event_type,
        "identity.verification_session.canceled"
    );
    let canceled: Value = serde_json::from_str(&canceled.body).unwrap();
    assert_eq!(
        canceled["data"]["object"]["redaction"],
        json!({"status": "processing"})
    );

    let verified = create(
        &s,
        "type=document&metadata[k]=v&provided_details[email]=x%40y.test&client_reference_id=ref-9",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drive(&s, &verified, json!({"action": "verify", "deliver": false})).await;
    let a = post(&s, &format!("{SESSIONS}/{verified}/redact"), "").await;
    assert_eq!(
        (a.body["status"].clone(), a.body["redaction"].clone()),
        (json!("verified"), json!({"status": "processing"}))
    );
    let out = drive(
        &s,
        &verified,
        json!({"action": "finish_redaction", "deliver": false}),
    )
    .await;
    assert_eq!(
        out["events"][0]["type"],
        "identity.verification_session.redacted"
    );
    let redacted = get(
        &s,
        &format!("{SESSIONS}/{verified}?expand[]=verified_outputs.dob"),
    )
    .await
    .body;
    assert_eq!(redacted["redaction"], json!({"status": "redacted"}));
    assert_eq!(redacted["metadata"], json!({}));
    assert_eq!(redacted["client_reference_id"], "ref-9");
    assert_eq!(redacted["provided_details"]["email"], "[redacted]");
    assert_eq!(redacted["verified_outputs"]["first_name"], "[redacted]");
    assert_eq!(
        redacted["verified_outputs"]["dob"],
        json!({"day": 1, "month": 1, "year": 1})
    );
    assert_eq!(redacted["verified_outputs"]["address"]["country"], "US");
    // Again: unchanged. A redacted session cannot be updated.
    let again = post(&s, &format!("{SESSIONS}/{verified}/redact"), "").await;
    assert_eq!(again.body["redaction"], json!({"status": "redacted"}));
    let update = post(&s, &format!("{SESSIONS}/{verified}"), "metadata[k]=w").await;
    assert_eq!(error_of(&update).0, 400);

    let processing = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drive(
        &s,
        &processing,
        json!({"action": "submit", "deliver": false}),
    )
    .await;
    let a = post(&s, &format!("{SESSIONS}/{processing}/redact"), "").await;
    assert_eq!(error_of(&a).0, 400);
    assert_eq!(s.state().sessions[&processing].redaction, None);
    let canceled = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&s, &format!("{SESSIONS}/{canceled}/cancel"), "").await;
    let a = post(&s, &format!("{SESSIONS}/{canceled}/redact"), "").await;
    assert_eq!(error_of(&a).0, 400);
}

#[tokio::test]
async fn update_merges_metadata_while_requires_input() {
    let s = sim();
    let id = create(&s, "type=document&metadata[a]=1&metadata[b]=2").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = post(
        &s,
        &format!("{SESSIONS}/{id}"),
        "metadata[b]=&metadata[c]=3&options[document][require_matching_selfie]=true",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["metadata"], json!({"a": "1", "c": "3"}));
    assert_eq!(
        a.body["options"]["document"]["require_matching_selfie"],
        true
    );
    let a = post(&s, &format!("{SESSIONS}/{id}"), "metadata=").await;
    assert_eq!(a.body["metadata"], json!({}));
}

#[tokio::test]
async fn lists_are_newest_first_paginated_and_filtered() {
    let s = sim();
    let mut ids = Vec::new();
    for i in 0..5 {
        let v = create(
            &s,
            &format!("type=document&client_reference_id=ref-{}", i % 2),
        )
        .await;
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let page = |q: &str| {
        let s = s.clone();
        let q = q.to_owned();
        async move { get(&s, &format!("{SESSIONS}?{q}")).await }
    };
    let ids_of = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = page("limit=2").await.body;
    assert_eq!(first["object"], "list");
    assert_eq!(first["url"], "/v1/identity/verification_sessions");
    assert_eq!(first["has_more"], true);
    assert_eq!(ids_of(&first), [ids[4].clone(), ids[3].clone()]);
    let second = page(&format!("limit=2&starting_after={}", ids[3]))
        .await
        .body;
    assert_eq!(ids_of(&second), [ids[2].clone(), ids[1].clone()]);
    let last = page(&format!("limit=2&starting_after={}", ids[1]))
        .await
        .body;
    assert_eq!(
        (ids_of(&last), last["has_more"].clone()),
        (vec![ids[0].clone()], json!(false))
    );
    let before = page(&format!("limit=2&ending_before={}", ids[1]))
        .await
        .body;
    assert_eq!(ids_of(&before), [ids[3].clone(), ids[2].clone()]);
    assert_eq!(before["has_more"], true);
    let refs = page("client_reference_id=ref-0").await.body;
    assert_eq!(
        ids_of(&refs),
        [ids[4].clone(), ids[2].clone(), ids[0].clone()]
    );
    drive(&s, &ids[2], json!({"action": "verify", "deliver": false})).await;
    let verified = page("status=verified&expand[]=data.verified_outputs")
        .await
        .body;
    assert_eq!(ids_of(&verified), [ids[2].clone()]);
    assert_eq!(
        verified["data"][0]["verified_outputs"]["last_name"],
        s.person(&ids[2]).unwrap().last_name.as_str()
    );
    assert_eq!(page("").await.body["data"].as_array().unwrap().len(), 5);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "status=done",
        "starting_after=vs_nope",
        &format!("starting_after={}&ending_before={}", ids[1], ids[3]),
    ] {
        assert_eq!(page(bad).await.status, 400, "{bad}");
    }
    assert_eq!(s.requests(api::LIST), 13);
}

#[tokio::test]
async fn control_outcomes_emit_signed_events_in_order() {
    let s = sim();
    let id = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url_before = s.render(&s.state().sessions[&id], Expand::default())["url"].clone();
    let out = drive(
        &s,
        &id,
        json!({"action": "fail", "error_code": "selfie_face_mismatch", "deliver": false}),
    )
    .await;
    let events = out["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "identity.verification_session.processing",
            "identity.verification_session.requires_input"
        ]
    );
    for e in events {
        let body = e["body"].as_str().unwrap();
        let header = e["stripe_signature"].as_str().unwrap();
        assert!(signed_with(header, body, SECRET), "{header}");
        assert!(!signed_with(&header.replace("v1=", "v0="), body, SECRET));
        assert!(header.contains(",v0="), "test mode adds a fake v0");
        assert_eq!(e["delivered"], Value::Null);
        let event: Value = serde_json::from_str(body).unwrap();
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event["object"], "event");
        assert_eq!(event["livemode"], false);
        assert_eq!(event["api_version"], API_VERSION);
        assert_eq!(event["data"]["object"]["id"], id.as_str());
        assert_eq!(event["request"]["id"], Value::Null);
    }
    let processing: Value = serde_json::from_str(events[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(processing["data"]["object"]["status"], "processing");
    let failed: Value = serde_json::from_str(events[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(failed["data"]["object"]["status"], "requires_input");
    assert_eq!(
        failed["data"]["object"]["last_error"],
        json!({"code": "selfie_face_mismatch", "reason": "The selfie does not match the document photo."})
    );
    assert_ne!(out["session"]["url"], url_before, "a new url for the retry");

    // Session-level codes: no processing. `abandoned`: no event at all.
    let out = drive(
        &s,
        &id,
        json!({"action": "fail", "error_code": "consent_declined", "deliver": false}),
    )
    .await;
    assert_eq!(out["events"].as_array().unwrap().len(), 1);
    let out = drive(&s, &id, json!({"action": "abandon", "deliver": false})).await;
    assert_eq!(out["events"], json!([]));
    assert_eq!(out["session"]["last_error"]["code"], "abandoned");
    let url = out["session"]["url"].clone();
    let out = drive(
        &s,
        &id,
        json!({"action": "fail", "error_code": "abandoned", "deliver": false}),
    )
    .await;
    assert_eq!(
        (out["events"].clone(), out["session"]["url"].clone()),
        (json!([]), url),
        "the same as leaving"
    );
    // An old timestamp is signed as asked (receivers' tolerance tests).
    let out = drive(
        &s,
        &id,
        json!({"action": "verify", "deliver": false, "timestamp": 1_000}),
    )
    .await;
    assert!(
        out["events"][0]["stripe_signature"]
            .as_str()
            .unwrap()
            .starts_with("t=1000,")
    );
    let a = control(
        &s,
        &format!("/control/sessions/{id}"),
        json!({"action": "verify"}),
    )
    .await;
    assert_eq!(a.status, 409);
    let a = control(&s, "/control/sessions/vs_nope", json!({"action": "verify"})).await;
    assert_eq!(a.status, 404);
}

/// A webhook endpoint on loopback that keeps what it receives.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let got: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let keep = got.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn events_are_delivered_signed_and_a_rolled_secret_signs_alongside() {
    let s = sim();
    let (url, got) = receiver().await;
    let a = control(&s, "/control/settings", json!({"webhook_url": url})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = create(&s, "type=document").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = drive(&s, &id, json!({"action": "verify"})).await;
    assert_eq!(
        out["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["delivered"].clone())
            .collect::<Vec<_>>(),
        [json!(200), json!(200)]
    );
    {
        let got = got.lock().unwrap();
        // `created` (delivered in the background, if at all) is not subscribed by default.
        let types: Vec<String> = got
            .iter()
            .map(|(_, b)| {
                serde_json::from_str::<Value>(b).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "identity.verification_session.processing",
                "identity.verification_session.verified"
            ]
        );
        for (headers, body) in got.iter() {
            let sig = headers["stripe-signature"].to_str().unwrap();
            assert!(signed_with(sig, body, SECRET));
            assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        }
    }

    // Roll: the new secret and, for a while, the old one both sign.
    let rolled = control(&s, "/control/webhook_secret/roll", json!({}))
        .await
        .body;
    let new = rolled["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != SECRET);
    assert_eq!(rolled["previous"], SECRET);
    assert_eq!(s.webhook_secret(), new);
    let evt = out["events"][1]["id"].as_str().unwrap();
    let resent = control(&s, &format!("/control/events/{evt}/resend"), json!({}))
        .await
        .body;
    assert_eq!(resent["delivered"], 200);
    let header = resent["stripe_signature"].as_str().unwrap();
    let body = resent["body"].as_str().unwrap();
    assert_eq!(body, out["events"][1]["body"], "the same bytes each time");
    assert_eq!(header.matches("v1=").count(), 2);
    assert!(signed_with(header, body, &new) && signed_with(header, body, SECRET));
    // A roll that ends the old secret now: one v1, the new secret's.
    control(
        &s,
        "/control/webhook_secret/roll",
        json!({"secret": "whsec_third_secret", "previous_expires_in_ms": 0}),
    )
    .await;
    let header = s.sign(body, 1_700_000_000);
    assert_eq!(header.matches("v1=").count(), 1);
    assert!(signed_with(&header, body, "whsec_third_secret"));

    let events = get_events(&s, &id).await;
    assert_eq!(events[2]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(got.lock().unwrap().len(), 3);
    let stats = send(
        &s,
        Request::get("/control/stats").body(Body::empty()).unwrap(),
    )
    .await
    .body;
    assert_eq!(stats["deliveries"], 3);
    assert_eq!(stats["requests"][api::CREATE], 1);
}

async fn get_events(s: &StripeSim, id: &str) -> Vec<Value> {
    send(
        s,
        Request::get(format!("/control/events?session={id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .body["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_hosted_page_lets_the_tester_choose_and_returns_to_return_url() {
    let s = sim();
    let created = create(
        &s,
        "type=document&return_url=https%3A%2F%2Fapp.test%2Fback%3Fs%3D1&options[document][require_matching_selfie]=true",
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = created["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();
    let page = send(&s, Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(&id));
    assert!(page.text.contains("matching selfie"));
    assert!(page.text.contains("<option value=\"document_expired\">"));
    let act = |path: &str, form: &str| {
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap()
    };
    let bad = send(&s, act(&path, "action=fail&error_code=made_up")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(s.state().sessions[&id].status, Status::RequiresInput);

    let a = send(&s, act(&path, "action=fail&error_code=document_expired")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "https://app.test/back?s=1");
    let failed = wait_for(&s, &id, "requires_input", true).await;
    assert_eq!(failed["last_error"]["code"], "document_expired");
    // The old link is spent; the session's new url works.
    let stale = send(&s, act(&path, "action=verify")).await;
    assert_eq!(stale.status, 409);
    let new_path = failed["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();
    assert_ne!(new_path, path);
    let a = send(&s, act(&new_path, "action=verify")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let verified = wait_for(&s, &id, "verified", false).await;
    assert_eq!(verified["last_error"], Value::Null);
    let types: Vec<String> = get_events(&s, &id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "identity.verification_session.created",
            "identity.verification_session.processing",
            "identity.verification_session.requires_input",
            "identity.verification_session.processing",
            "identity.verification_session.verified",
        ]
    );
    let unknown = send(
        &s,
        Request::get("/verify/vp_nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

/// The session once its background processing has reached `status` (with an error, if asked).
async fn wait_for(s: &StripeSim, id: &str, status: &str, with_error: bool) -> Value {
    for _ in 0..1000 {
        let v = get(s, &format!("{SESSIONS}/{id}")).await.body;
        if v["status"] == status && v["last_error"].is_null() != with_error {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{id} never reached {status}");
}

#[tokio::test]
async fn injected_faults_answer_stripe_errors_then_recover() {
    let s = sim();
    let a = control(
        &s,
        "/control/faults",
        json!({"fail_next": 2, "status": 503}),
    )
    .await;
    assert_eq!(a.body["fail_next"], 2);
    for _ in 0..2 {
        let a = get(&s, SESSIONS).await;
        assert_eq!(
            (a.status.as_u16(), a.body["error"]["type"].clone()),
            (503, json!("api_error"))
        );
    }
    assert_eq!(get(&s, SESSIONS).await.status, 200);
    control(
        &s,
        "/control/faults",
        json!({"fail_next": 1, "status": 429}),
    )
    .await;
    let a = post(&s, SESSIONS, "type=document").await;
    assert_eq!(error_of(&a).2, "rate_limit");
    assert_eq!(s.state().sessions.len(), 0);
    assert_eq!(s.requests(api::LIST), 3);
    assert_eq!(s.requests(api::CREATE), 1);
    let bad = control(
        &s,
        "/control/faults",
        json!({"fail_next": 1, "status": 200}),
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_retrieve_while_the_user_may_act_hands_out_a_fresh_url_and_an_attempt_spends_them() {
    let s = sim();
    let created = create(&s, "type=document").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = |url: &Value| url.as_str().unwrap().strip_prefix(BASE).unwrap().to_owned();
    let act = |path: &str, form: &str| {
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap()
    };
    let first = path(&created["url"]);
    let read = get(&s, &format!("{SESSIONS}/{id}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let second = path(&read.body["url"]);
    assert_ne!(first, second, "a retrieve gets a fresh url");
    assert_ne!(created["client_secret"], read.body["client_secret"]);
    // Neither is spent by the other being handed out: both open the page.
    for p in [&first, &second] {
        let page = send(&s, Request::get(p).body(Body::empty()).unwrap()).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.text.contains("already been used"), "{p}");
    }
    // An attempt through one spends them all; the failed check hands out a new one.
    let a = send(&s, act(&second, "action=fail&error_code=document_expired")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let again = wait_for(&s, &id, "requires_input", true).await;
    let third = path(&again["url"]);
    for spent in [&first, &second] {
        assert_eq!(
            send(&s, act(spent, "action=verify")).await.status,
            StatusCode::CONFLICT
        );
    }
    // Submitted: processing has no url, however often it is retrieved.
    let a = send(&s, act(&third, "action=submit")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let processing = get(&s, &format!("{SESSIONS}/{id}")).await;
    assert_eq!(
        (
            processing.body["status"].clone(),
            processing.body["url"].clone()
        ),
        (json!("processing"), Value::Null)
    );
}
