//! Stripe Identity end to end (docs/providers/stripe.md): through the gateway's HTTP API on
//! DynamoDB Local, against the Stripe simulator: a start hands the app the hosted page, the
//! tester's choice on that page reaches the session through signed events and the authoritative
//! read, forged, stale and tampered events change nothing, a cancel reaches Stripe.

use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};
use std::time::Duration;

async fn gateway() -> Gateway {
    Gateway::start(Backend::Dynamo).await
}

async fn start(gw: &Gateway, user: &str, extra: Value) -> Reply {
    let mut body = json!({"provider": "stripe", "user_id": user});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    gw.post("/v1/sessions", &body).await
}

/// The Stripe verification session behind a session of ours, as the simulator holds it.
async fn at_stripe(gw: &Gateway, vs: &str) -> Value {
    let r = gw
        .send(
            gw.http
                .get(format!(
                    "{}/v1/identity/verification_sessions/{vs}",
                    gw.stripe_api_base()
                ))
                .bearer_auth(gw.running.stripe.secret_key()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// The Stripe verification session behind a session of ours (its provider id is not on the
/// wire: read from the store).
async fn vs_of(gw: &Gateway, id: &str) -> String {
    let id = idv::session::SessionId::parse(id).expect("a session id");
    let s = gw
        .running
        .app
        .store
        .get_session(&id)
        .await
        .unwrap()
        .unwrap();
    s.value.provider_ref.expect("its verification session")
}

/// The tester on Stripe's hosted page: chooses an outcome (the page redirects back).
async fn on_the_page(gw: &Gateway, url: &str, form: &[(&str, &str)]) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the hosted page opens");
    let r = http.post(url).form(form).send().await.unwrap();
    assert_eq!(r.status(), 303, "the page sends the user back");
    let _ = gw;
}

/// Waits (bounded) until the stored session says `status`: the page's events go out in the
/// background, as Stripe sends them after the user is back.
async fn until_stored(gw: &Gateway, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let s = gw
            .get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body;
        if s["status"] == status {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "session {id} never became {status}: {}",
        gw.get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body
    );
}

/// A Stripe session taken to verified through the hosted page; answers its id.
pub(crate) async fn verified_session(gw: &Gateway, user: &str) -> String {
    let r = start(gw, user, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let url = r.body["client"]["url"].as_str().unwrap().to_owned();
    on_the_page(gw, &url, &[("action", "verify")]).await;
    until_stored(gw, &id, "verified").await;
    id
}

#[tokio::test]
async fn a_session_goes_from_start_to_verified_through_the_page_and_signed_events() {
    let gw = gateway().await;
    let r = start(
        &gw,
        "user-st1",
        json!({"type": "document", "return_url": "https://app.example/done",
               "document_options": {"allowed_types": ["passport"], "require_matching_selfie": true}}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["provider"], "stripe");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["provider_status"], "requires_input");
    let url = r.body["client"]["url"]
        .as_str()
        .expect("client.url")
        .to_owned();
    assert!(url.starts_with(&gw.stripe_api_base()), "{url}");
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Stripe knows the user by our subject, and the session by our reference: no app user id.
    let vs = vs_of(&gw, &id).await;
    let remote = at_stripe(&gw, &vs).await;
    assert_eq!(
        remote["client_reference_id"],
        json!(idv_tests::authento_subject(idv_tests::TENANT, "user-st1"))
    );
    assert_eq!(remote["metadata"]["session_ref"], json!(id));
    assert_eq!(
        remote["options"]["document"]["allowed_types"],
        json!(["passport"])
    );

    on_the_page(&gw, &url, &[("action", "verify")]).await;
    let s = until_stored(&gw, &id, "verified").await;
    assert_eq!(s["provider_status"], "verified");
    assert_eq!(s["last_error"], Value::Null);
    // Each event was delivered, answered 200. The session may be verified before the last one
    // arrives (the processing event's read of Stripe already says verified): wait, bounded.
    let mut events = Value::Null;
    let mut delivered: Vec<Value> = Vec::new();
    for _ in 0..200 {
        events = gw
            .send(
                gw.http
                    .get(gw.url(&format!("/sandbox/stripe/control/events?session={vs}"))),
            )
            .await
            .body;
        delivered = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "identity.verification_session.created")
            .map(|e| e["attempts"].clone())
            .collect();
        if delivered
            .iter()
            .all(|d| d.as_array().is_some_and(|a| !a.is_empty()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!delivered.is_empty(), "{events}");
    assert!(
        delivered.iter().all(|d| d.to_string().contains("200")),
        "{events}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_check_is_the_users_turn_again_with_stripes_last_error() {
    let gw = gateway().await;
    let r = start(&gw, "user-st2", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let url = r.body["client"]["url"].as_str().unwrap().to_owned();
    on_the_page(
        &gw,
        &url,
        &[("action", "fail"), ("error_code", "document_expired")],
    )
    .await;
    // Processing first, then requires_input with the error.
    let s = loop_until(&gw, &id, |s| s["last_error"]["code"] == "document_expired").await;
    assert_eq!(s["last_error"]["provider_code"], "document_expired");
    assert_eq!(s["last_error"]["retryable"], true);
    assert_eq!(s["status"], "pending");
    assert_eq!(s["provider_status"], "requires_input");
    assert!(
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{s}"
    );
    // The user tries again on the page Stripe gives next, and passes.
    let vs = vs_of(&gw, &id).await;
    let next = at_stripe(&gw, &vs).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next, url, "a failed attempt spends its page");
    on_the_page(&gw, &next, &[("action", "verify")]).await;
    let s = until_stored(&gw, &id, "verified").await;
    assert_eq!(s["last_error"], Value::Null);
    gw.stop().await;
}

async fn loop_until(gw: &Gateway, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let s = gw
            .get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "session {id}: {}",
        gw.get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body
    );
}

async fn deliver(gw: &Gateway, body: &str, signature: &str) -> Reply {
    gw.send(
        gw.http
            .post(gw.url("/v1/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body.to_owned()),
    )
    .await
}

#[tokio::test]
async fn forged_stale_and_tampered_events_are_refused_and_change_nothing() {
    let gw = gateway().await;
    let r = start(&gw, "user-st3", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = vs_of(&gw, &id).await;
    // Stripe verifies the session; its events are signed but not sent: the test delivers them.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let acted = gw
        .stripe_control(
            &format!("/sessions/{vs}"),
            json!({"action": "verify", "deliver": false}),
        )
        .await;
    let verified = acted["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "identity.verification_session.verified")
        .cloned()
        .expect("a verified event");
    let body = verified["body"].as_str().unwrap().to_owned();
    let signature = verified["stripe_signature"].as_str().unwrap().to_owned();
    let stale = gw
        .stripe_control(
            &format!("/events/{}/resend", verified["id"].as_str().unwrap()),
            json!({"deliver": false, "timestamp": now - 3600}),
        )
        .await;

    let before = gw.snapshot().await;
    let wrong = format!(
        "t={now},v1={}",
        idv::webhooks::hmac_digest::sign_hex(
            "whsec_not_the_secret",
            format!("{now}.{body}").as_bytes()
        )
    );
    let tampered = body.replace("\"verified\"", "\"canceled\"");
    assert_ne!(tampered, body);
    for (what, b, sig) in [
        ("forged", body.as_str(), wrong.as_str()),
        ("tampered", tampered.as_str(), signature.as_str()),
        ("unsigned", body.as_str(), ""),
        (
            "stale",
            stale["body"].as_str().unwrap(),
            stale["stripe_signature"].as_str().unwrap(),
        ),
    ] {
        let r = deliver(&gw, b, sig).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_signature", "{what}");
    }
    assert_eq!(
        gw.snapshot().await,
        before,
        "refused deliveries wrote nothing"
    );
    assert_eq!(gw.stored_status(&id).await, "pending");

    // The genuine one: applied (the read is the truth), then a duplicate.
    let r = deliver(&gw, &body, &signature).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"received": true, "duplicate": false}));
    assert_eq!(gw.stored_status(&id).await, "verified");
    let again = deliver(&gw, &body, &signature).await;
    assert_eq!(again.body["duplicate"], true);
    gw.stop().await;
}

#[tokio::test]
async fn an_event_before_its_session_is_stored_is_kept_then_applied() {
    let gw = gateway().await;
    // Events that name a verification session no session of ours has yet: kept, answered 200.
    let r = start(&gw, "user-st4", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = vs_of(&gw, &id).await;
    let acted = gw
        .stripe_control(
            &format!("/sessions/{vs}"),
            json!({"action": "verify", "deliver": false}),
        )
        .await;
    let ev = acted["events"].as_array().unwrap().last().cloned().unwrap();
    // A forged ref: the same event under a session id nobody has (as if it came first).
    let unknown = ev["body"]
        .as_str()
        .unwrap()
        .replace(&vs, "vs_0000000000000000000000unknown");
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let secret = gw.running.stripe.webhook_secret();
    let sig = format!(
        "t={t},v1={}",
        idv::webhooks::hmac_digest::sign_hex(&secret, format!("{t}.{unknown}").as_bytes())
    );
    let r = deliver(&gw, &unknown, &sig).await;
    assert_eq!(
        (r.status, r.body["received"].clone()),
        (200, json!(true)),
        "{:?}",
        r.body
    );
    // The real one for our session applies.
    let r = deliver(
        &gw,
        ev["body"].as_str().unwrap(),
        ev["stripe_signature"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test]
async fn a_cancel_by_the_app_cancels_at_stripe_and_a_decided_one_is_a_conflict() {
    let gw = gateway().await;
    let r = start(&gw, "user-st5", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = vs_of(&gw, &id).await;
    let c = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(
        (c.status, c.body["status"].clone()),
        (200, json!("canceled")),
        "{:?}",
        c.body
    );
    assert_eq!(at_stripe(&gw, &vs).await["status"], "canceled");

    // Verified at Stripe before the gateway heard of it: Stripe refuses, the app gets a 409.
    let r = start(&gw, "user-st6", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = vs_of(&gw, &id).await;
    gw.stripe_control(
        &format!("/sessions/{vs}"),
        json!({"action": "verify", "deliver": false}),
    )
    .await;
    let c = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(c.status, 409, "{:?}", c.body);
    // The app's read brings the decision.
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "verified");
    gw.stop().await;
}

#[tokio::test]
async fn one_idempotency_key_is_one_stripe_session_and_a_stripe_failure_stores_nothing() {
    let gw = gateway().await;
    let body = json!({"provider": "stripe", "user_id": "user-st7"});
    let send = || {
        gw.send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "k-st7")
                .json(&body),
        )
    };
    let first = send().await;
    let again = send().await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["client"]["url"], first.body["client"]["url"]);
    assert_eq!(
        gw.running
            .stripe
            .requests("POST /v1/identity/verification_sessions"),
        1,
        "one create at Stripe"
    );

    // Stripe failing: a retryable 503, no session.
    gw.stripe_control("/faults", json!({"fail_next": 5, "status": 503}))
        .await;
    let before = gw.snapshot().await;
    let r = start(&gw, "user-st8", json!({})).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}

#[tokio::test]
async fn bad_stripe_input_is_a_field_error_and_reaches_nobody() {
    let gw = gateway().await;
    let r = start(
        &gw,
        "u",
        json!({"type": "selfie", "return_url": "http://x"}),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["type", "return_url"]);
    assert_eq!(
        gw.running
            .stripe
            .requests("POST /v1/identity/verification_sessions"),
        0
    );
    gw.stop().await;
}

#[tokio::test]
async fn two_tenants_with_one_user_id_are_two_users_at_stripe_and_never_meet() {
    let gw = gateway().await;
    let body = json!({"provider": "stripe", "user_id": "user-st9"});
    let a = gw.post("/v1/sessions", &body).await;
    let b = gw.post_as(&gw.other_key, "/v1/sessions", &body).await;
    assert_eq!(
        (a.status, b.status),
        (201, 201),
        "{:?} {:?}",
        a.body,
        b.body
    );
    let (a_id, b_id) = (
        a.body["id"].as_str().unwrap().to_owned(),
        b.body["id"].as_str().unwrap().to_owned(),
    );
    // Two verification sessions, each under its tenant's own subject: Stripe sees two users.
    let (a_vs, b_vs) = (vs_of(&gw, &a_id).await, vs_of(&gw, &b_id).await);
    assert_ne!(a_vs, b_vs);
    let (a_remote, b_remote) = (at_stripe(&gw, &a_vs).await, at_stripe(&gw, &b_vs).await);
    assert_eq!(
        a_remote["client_reference_id"],
        json!(idv_tests::authento_subject(idv_tests::TENANT, "user-st9"))
    );
    assert_eq!(
        b_remote["client_reference_id"],
        json!(idv_tests::authento_subject(
            idv_tests::OTHER_TENANT,
            "user-st9"
        ))
    );
    assert_ne!(
        a_remote["client_reference_id"],
        b_remote["client_reference_id"]
    );

    // A's user passes: A's session is verified, B's is untouched.
    let url = a.body["client"]["url"].as_str().unwrap().to_owned();
    on_the_page(&gw, &url, &[("action", "verify")]).await;
    until_stored(&gw, &a_id, "verified").await;
    let b_now = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{b_id}"))
        .await;
    assert_eq!(
        (b_now.status, b_now.body["status"].clone()),
        (200, json!("pending")),
        "{:?}",
        b_now.body
    );
    // Neither reads, lists nor cancels the other's session.
    let cross = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{a_id}"))
        .await;
    assert_eq!(cross.status, 404);
    let cancel = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{a_id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status, 404);
    assert_eq!(at_stripe(&gw, &a_vs).await["status"], "verified");
    let listed = gw
        .get_as(&gw.other_key, "/v1/users/user-st9/sessions")
        .await;
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b_id.as_str()]);
    gw.stop().await;
}
