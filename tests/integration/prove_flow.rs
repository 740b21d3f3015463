//! Prove Verified Users end to end, as docs/providers/prove.md describes it: HTTP in, DynamoDB (Local) state, the
//! Prove simulator's token, verify and verify-status calls, HTTP out.

use idv::session::SessionId;
use idv_tests::ProveOf;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    // Refresh on every read, so that each GET reads verify-status.
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().expect("session id").to_owned()
}

fn token_of(r: &Value) -> String {
    r["client"]["auth_token"]
        .as_str()
        .expect("client.auth_token")
        .to_owned()
}

async fn history(gw: &Gateway, id: &str) -> Vec<String> {
    gw.inspect()
        .session_history(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .iter()
        .map(|h| h.to.as_str().to_owned())
        .collect()
}

/// Everything stored, as text: personal data and tokens must appear nowhere in it.
async fn table_text(gw: &Gateway) -> String {
    format!("{:?}", gw.snapshot().await)
}

#[tokio::test]
async fn a_mobile_flow_waits_for_possession_and_reaches_verified() {
    let gw = gateway().await;
    let r = gw.start_prove("user-m", "mobile", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = &r.body;
    assert_eq!(s["provider"], "prove");
    assert_eq!(s["status"], "pending", "waiting on the possession check");
    assert_eq!(s["provider_status"], "pending");
    assert_eq!(s["reverification_recommended"], false);
    let id = id_of(s);
    let auth_token = token_of(s);
    // The flow's own deadline: Prove's session lives 15 minutes.
    let created = time::OffsetDateTime::parse(
        s["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        s["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_minutes(), 15);

    // Before Authenticate(), Prove still says pending.
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "pending", "{:?}", g.body);
    assert!(g.body.get("client").is_none());

    gw.prove_authenticate(&auth_token, "passed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["status"], "verified", "{:?}", g.body);
    assert_eq!(g.body["provider_status"], "true");
    assert_eq!(g.body["last_error"], Value::Null);
    assert_eq!(g.body["identity_events"], json!([]));
    assert_eq!(history(&gw, &id).await, ["pending", "verified"]);

    // One flow at Prove; Prove's identity id is kept for its webhooks.
    assert_eq!(gw.running.prove.verify_requests(), 1);
    let stored = gw
        .running
        .app
        .store
        .get_session(&SessionId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let prove = stored.prove().expect("prove details");
    assert!(prove.identity_id.is_some());
    assert_eq!(prove.phone_masked, "+1*******011");

    // Kept: the masked number only. Not kept: the number, the names, the authToken.
    let table = table_text(&gw).await;
    assert!(table.contains("+1*******011"));
    for secret in ["2001004011", "Sheilakathryn", "Butrimovich", &auth_token] {
        assert!(!table.contains(secret), "{secret} is stored");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_desktop_flow_with_an_international_number_goes_to_the_eu_platform() {
    let gw = gateway().await;
    let r = gw
        .start_prove(
            "user-d",
            "desktop",
            json!({"phone_number": "+447968900002", "first_name": "Rozella", "last_name": "Kimpton",
                   "sms_message": "Complete your verification. ####", "email": "rk@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = id_of(&r.body);
    gw.prove_authenticate(&token_of(&r.body), "passed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "verified", "{:?}", g.body);

    let stats = gw
        .send(gw.http.get(gw.url("/sandbox/prove/control/stats")))
        .await
        .body;
    let by = &stats["by_endpoint_and_region"];
    assert_eq!(by["verify:eu"], 1, "{stats}");
    assert!(by.get("verify:na").is_none(), "{stats}");
    assert!(by["verify-status:eu"].as_u64().unwrap() >= 1, "{stats}");
    gw.stop().await;
}

#[tokio::test]
async fn a_flow_without_possession_is_verified_at_once_and_its_identity_enrolled() {
    let gw = gateway().await;
    let r = gw.start_prove("user-n", "none", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);
    assert!(r.body["expires_at"].is_string());
    let id = id_of(&r.body);
    assert_eq!(gw.running.prove.identity_requests(), 1, "enrolled once");
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "verified");
    assert_eq!(
        gw.running.prove.status_requests(),
        0,
        "a verified session is not read again"
    );
    assert_eq!(history(&gw, &id).await, ["verified"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_possession_check_fails_the_session_with_its_reason() {
    let gw = gateway().await;
    let r = gw.start_prove("user-pf", "mobile", json!({})).await;
    let id = id_of(&r.body);
    gw.prove_authenticate(&token_of(&r.body), "failed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "failed", "{:?}", g.body);
    assert_eq!(g.body["provider_status"], "false");
    assert_eq!(g.body["last_error"]["code"], "possession_failed");
    assert_eq!(g.body["last_error"]["provider_code"], "possession_failed");
    assert_eq!(g.body["last_error"]["retryable"], true);
    gw.stop().await;
}

#[tokio::test]
async fn a_user_prove_cannot_verify_fails_with_verification_failed() {
    let gw = gateway().await;
    // Kurt Mathen: one of Prove's users designed to fail.
    let r = gw
        .start_prove(
            "user-vf",
            "mobile",
            json!({"phone_number": "2001004014", "first_name": "Kurt", "last_name": "Mathen"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = id_of(&r.body);
    gw.prove_authenticate(&token_of(&r.body), "passed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "failed", "{:?}", g.body);
    assert_eq!(g.body["last_error"]["code"], "data_mismatch");
    assert_eq!(g.body["last_error"]["provider_code"], "verification_failed");

    // Without possession, Prove answers the failure at once.
    let r = gw
        .start_prove(
            "user-vf",
            "none",
            json!({"phone_number": "2001004016", "first_name": "Janek", "last_name": "Ambrogio"}),
        )
        .await;
    assert_eq!(r.body["status"], "failed", "{:?}", r.body);
    assert_eq!(r.body["last_error"]["code"], "data_mismatch");
    assert_eq!(r.body["last_error"]["provider_code"], "verification_failed");
    assert_eq!(gw.running.prove.identity_requests(), 0, "nothing enrolled");
    gw.stop().await;
}

#[tokio::test]
async fn a_possession_check_that_timed_out_expires_the_session() {
    let gw = gateway().await;
    let r = gw.start_prove("user-to", "desktop", json!({})).await;
    let id = id_of(&r.body);
    gw.prove_authenticate(&token_of(&r.body), "timed_out").await;
    // Prove now refuses the flow's status step (403, code 1003).
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    assert_eq!(g.body["status"], "expired", "{:?}", g.body);
    assert_eq!(g.body["last_error"]["code"], "expired");
    assert_eq!(g.body["last_error"]["provider_code"], "possession_timeout");
    assert_eq!(history(&gw, &id).await, ["pending", "expired"]);
    gw.stop().await;
}

#[tokio::test]
async fn our_own_possession_deadline_expires_a_flow_prove_still_calls_pending() {
    // An OTP window of 0 s: any read after the start is past it.
    let gw = Gateway::start_with(
        Backend::Dynamo,
        &[
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
            ("IDV_PROVE_OTP_SECONDS", "0"),
        ],
    )
    .await;
    let r = gw.start_prove("user-dl", "mobile", json!({})).await;
    let id = id_of(&r.body);
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "expired", "{:?}", g.body);
    assert_eq!(g.body["last_error"]["code"], "expired");
    assert_eq!(g.body["last_error"]["provider_code"], "possession_timeout");
    // Expired is final: the user passing later changes nothing.
    gw.prove_authenticate(&token_of(&r.body), "passed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "expired");
    gw.stop().await;
}

#[tokio::test]
async fn prove_failing_or_timing_out_on_status_leaves_the_session_unchanged_and_answers_503() {
    let gw = Gateway::start_with(
        Backend::Dynamo,
        &[
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
            ("IDV_PROVIDER_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    let r = gw.start_prove("user-down", "mobile", json!({})).await;
    let id = id_of(&r.body);
    gw.prove_authenticate(&token_of(&r.body), "passed").await;
    let before = gw.snapshot().await;

    gw.prove_faults(json!({"endpoint": "verify-status", "fail_next": 10, "status": 500}))
        .await;
    let calls = gw.running.prove.status_requests();
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 503, "{:?}", g.body);
    assert_eq!(g.body["code"], "provider_unavailable");
    assert!(g.headers.contains_key("retry-after"));
    assert_eq!(
        gw.running.prove.status_requests() - calls,
        3,
        "a read is retried"
    );
    assert_eq!(gw.snapshot().await, before, "nothing half-written");

    gw.prove_faults(
        json!({"endpoint": "verify-status", "fail_next": 0, "delay_next": 3, "delay_ms": 3000}),
    )
    .await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 503, "{:?}", g.body);
    assert_eq!(g.body["code"], "provider_unavailable");
    assert_eq!(gw.snapshot().await, before, "nothing half-written");

    // Prove refusing the read (not retryable): 502, and the session's state unchanged; the
    // answer is noted in its history (once) and the session read again later.
    gw.prove_faults(json!({"endpoint": "verify-status", "fail_next": 1, "status": 404}))
        .await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 502, "{:?}", g.body);
    assert_eq!(g.body["code"], "provider_error");
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(
        (s["status"].clone(), s["provider_status"].clone()),
        (json!("pending"), json!("pending"))
    );
    let history = gw
        .inspect()
        .session_history(&idv::session::SessionId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(
        history.last().and_then(|h| h.reason.clone()).as_deref(),
        Some("unclear_provider_error")
    );

    // Prove back: the state it held all along is applied.
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "verified", "{:?}", g.body);
    gw.stop().await;
}

#[tokio::test]
async fn prove_failing_or_timing_out_on_verify_creates_nothing_and_is_not_retried() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_PROVIDER_TIMEOUT_MS", "300")]).await;
    let before = gw.snapshot().await;
    gw.prove_faults(json!({"endpoint": "verify", "fail_next": 1, "status": 500}))
        .await;
    let r = gw.start_prove("user-vd", "mobile", json!({})).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(
        gw.running.prove.verify_requests(),
        1,
        "never a second /v3/verify"
    );
    assert_eq!(gw.snapshot().await, before, "no session");

    gw.prove_faults(json!({"endpoint": "verify", "delay_next": 1, "delay_ms": 3000}))
        .await;
    let r = gw.start_prove("user-vd", "mobile", json!({})).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(
        gw.running.prove.verify_requests(),
        2,
        "the timed-out call only"
    );
    assert_eq!(gw.snapshot().await, before, "no session");
    gw.stop().await;
}

#[tokio::test]
async fn a_second_start_with_the_same_idempotency_key_makes_no_second_verify_call() {
    let gw = gateway().await;
    let body = json!({"provider": "prove", "user_id": "user-idem", "phone_number": "2001004011",
        "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "mobile"});
    let send = |b: Value| {
        gw.send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "prove-key-1")
                .json(&b),
        )
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(first.body["client"]["auth_token"].is_string());
    let after_first = gw.snapshot().await;

    let again = send(body.clone()).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"], "the same session");
    // The token is never stored: the replay says so instead of inventing one.
    assert_eq!(
        again.body["client"],
        json!({"auth_token": null, "replayed": true})
    );
    assert_eq!(
        gw.running.prove.verify_requests(),
        1,
        "no second /v3/verify"
    );
    assert_eq!(gw.snapshot().await, after_first, "nothing written");

    let mut other = body;
    other["possession_type"] = json!("none");
    let r = send(other).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["code"], "conflict");
    assert_eq!(gw.running.prove.verify_requests(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn the_oauth_token_is_fetched_once_for_many_calls() {
    let gw = gateway().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = gw
            .start_prove(&format!("user-tok-{i}"), "mobile", json!({}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(id_of(&r.body));
    }
    for id in &ids {
        for _ in 0..3 {
            assert_eq!(gw.get(&format!("/v1/sessions/{id}")).await.status, 200);
        }
    }
    let p = &gw.running.prove;
    assert_eq!(p.verify_requests(), 3);
    assert_eq!(p.status_requests(), 9);
    assert_eq!(p.token_requests(), 1, "one token for 12 calls");
    gw.stop().await;
}

#[tokio::test]
async fn invalid_prove_requests_are_refused_per_field_and_change_nothing() {
    let gw = gateway().await;
    let before = gw.snapshot().await;
    let cases = [
        (
            json!({"phone_number": "555-0100"}),
            "phone_number",
            "invalid_format",
        ),
        (
            json!({"phone_number": "+1999888777"}),
            "phone_number",
            "invalid_format",
        ),
        (json!({"first_name": ""}), "first_name", "invalid_format"),
        (json!({"last_name": null}), "last_name", "required"),
        (
            json!({"possession_type": "carrier"}),
            "possession_type",
            "invalid_value",
        ),
        (
            json!({"possession_type": "desktop", "final_target_url": null}),
            "final_target_url",
            "required",
        ),
        (
            json!({"final_target_url": "http://example.com/x"}),
            "final_target_url",
            "invalid_format",
        ),
        (
            json!({"final_target_url": format!("https://example.com/{}", "a".repeat(109))}),
            "final_target_url",
            "invalid_format",
        ),
        (
            json!({"sms_message": "x".repeat(161)}),
            "sms_message",
            "invalid_format",
        ),
        (json!({"email": "not-an-email"}), "email", "invalid_format"),
        (
            json!({"allow_otp_retry": "yes"}),
            "allow_otp_retry",
            "invalid_type",
        ),
        (
            json!({"verification_type": "BASIC"}),
            "verification_type",
            "unknown_field",
        ),
    ];
    for (extra, field, code) in cases {
        let r = gw.start_prove("user-bad", "mobile", extra.clone()).await;
        assert_eq!(r.status, 400, "{extra}: {:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.body["code"], "invalid_request");
        let errors = r.body["errors"].as_array().expect("errors[]");
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{extra}: {errors:?}"
        );
        // The value is never echoed back.
        if let Some(v) = extra
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            && v.len() > 3
        {
            assert!(!r.body.to_string().contains(v), "{extra} echoed");
        }
    }
    // A number Prove's sandbox does not know: Prove's 8007 becomes a field error.
    let r = gw
        .start_prove("user-bad", "mobile", json!({"phone_number": "2005550100"}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "phone_number");
    assert_eq!(r.body["errors"][0]["code"], "unknown_test_user");
    assert_eq!(
        gw.running.prove.verify_requests(),
        1,
        "only the valid one reached Prove"
    );
    assert_eq!(gw.snapshot().await, before, "nothing stored");
    gw.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_a_502_a_token_blip_is_retried_and_a_revoked_token_renewed_once() {
    let gw = gateway().await;
    let before = gw.snapshot().await;
    // Prove refuses our client credentials: an operator must act; nothing is sent or stored.
    gw.prove_faults(json!({"endpoint": "token", "fail_next": 1, "status": 401}))
        .await;
    let r = gw.start_prove("user-tk", "mobile", json!({})).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_error");
    assert_eq!(gw.running.prove.verify_requests(), 0);
    assert_eq!(gw.snapshot().await, before);

    // A 503 of the token endpoint is retried (a token request is safe to repeat).
    gw.prove_faults(json!({"endpoint": "token", "fail_next": 1, "status": 503}))
        .await;
    let r = gw.start_prove("user-tk", "mobile", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(gw.running.prove.token_requests(), 3);
    let id = id_of(&r.body);

    // Prove stops honouring the cached token: it is dropped, a new one fetched, the read sent again.
    gw.prove_faults(json!({"endpoint": "verify-status", "fail_next": 1, "status": 401}))
        .await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    assert_eq!(g.body["status"], "pending");
    assert_eq!(gw.running.prove.token_requests(), 4);
    gw.stop().await;
}
