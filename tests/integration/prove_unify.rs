//! Prove Unify end to end (docs/providers/prove.md#unify), a deployment with
//! `IDV_PROVE_FLOW=unify`: HTTP in, DynamoDB (Local) state, the Prove simulator's token, unify and
//! unify-status calls, Identity Manager's webhooks on the verified `proveId`, and reconcile
//! polling unify-status. The Verified Users tests (prove_flow.rs) run beside it unchanged.

use idv::flows::reconcile;
use idv::providers::prove::ProveFlow;
use idv::session::SessionId;
use idv_tests::ProveOf;
use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};

/// Prove's Unify test user who passes the whole flow.
const LORANT: &str = "+12001004014";

async fn gateway(settings: &[(&str, &str)]) -> Gateway {
    let mut all = vec![("IDV_PROVE_FLOW", "unify")];
    all.extend_from_slice(settings);
    Gateway::start_with(Backend::Dynamo, &all).await
}

/// Every GET reads unify-status.
async fn reading_gateway() -> Gateway {
    gateway(&[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

/// `POST /v1/sessions` for Prove as a Unify app sends it: no names.
async fn start(gw: &Gateway, user: &str, possession: &str, extra: Value) -> Reply {
    let mut body = json!({"provider": "prove", "user_id": user, "phone_number": LORANT,
        "possession_type": possession});
    if possession == "desktop" {
        body["final_target_url"] = json!("https://www.example.com/landing-page");
    }
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    gw.post("/v1/sessions", &body).await
}

fn id_of(r: &Reply) -> String {
    r.body["id"].as_str().expect("session id").to_owned()
}

fn token_of(r: &Reply) -> String {
    r.body["client"]["auth_token"]
        .as_str()
        .expect("client.auth_token")
        .to_owned()
}

async fn stored(gw: &Gateway, id: &str) -> idv::session::Session {
    gw.running
        .app
        .store
        .get_session(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the session")
        .into_value()
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

#[tokio::test]
async fn a_unify_session_waits_for_possession_and_reaches_verified() {
    let gw = reading_gateway().await;
    let r = start(&gw, "user-u1", "mobile", json!({"allow_otp_retry": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending", "{:?}", r.body);
    assert_eq!(r.body["provider_status"], "pending");
    let id = id_of(&r);
    let auth_token = token_of(&r);
    let p = &gw.running.prove;
    assert_eq!((p.unify_requests(), p.verify_requests()), (1, 0));

    // Before Authenticate(), Prove says pending.
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "pending", "{:?}", g.body);

    let done = gw.prove_authenticate(&auth_token, "passed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["status"], "verified", "{:?}", g.body);
    assert_eq!(g.body["provider_status"], "true");
    assert_eq!(g.body["last_error"], Value::Null);
    assert_eq!(history(&gw, &id).await, ["pending", "verified"]);
    assert_eq!(p.unify_status_requests(), 2);
    assert_eq!(p.status_requests(), 0, "no legacy read");

    // The session keeps its flow and Prove's proveId (Identity Manager's key).
    let prove = stored(&gw, &id).await.prove().expect("prove details");
    assert_eq!(prove.flow, ProveFlow::Unify);
    assert_eq!(prove.phone_masked, "+1*******014");
    assert_eq!(prove.identity_id.as_deref(), done["identity_id"].as_str());
    assert!(prove.identity_id.is_some());

    // Kept: the masked number only. Not kept: the number, the authToken.
    let table = format!("{:?}", gw.snapshot().await);
    for secret in ["2001004014", &auth_token] {
        assert!(!table.contains(secret), "{secret} is stored");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_possession_check_fails_the_session_with_proves_word() {
    let gw = reading_gateway().await;
    let r = start(&gw, "user-u2", "mobile", json!({})).await;
    let id = id_of(&r);
    gw.prove_authenticate(&token_of(&r), "failed").await;
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "failed", "{:?}", g.body);
    assert_eq!(g.body["provider_status"], "false");
    assert_eq!(
        g.body["last_error"].as_object().map(|e| (
            &e["code"],
            &e["provider_code"],
            &e["retryable"]
        )),
        Some((&json!("possession_failed"), &json!("false"), &json!(true))),
        "{:?}",
        g.body
    );
    assert_eq!(history(&gw, &id).await, ["pending", "failed"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_desktop_flow_of_an_international_short_term_user_goes_to_the_eu_platform() {
    let gw = reading_gateway().await;
    // Janos Martina: a short-term user, who passes without the client SDK (no Prove Key).
    let r = start(
        &gw,
        "user-u3",
        "desktop",
        json!({"phone_number": "+2001004029", "email": "jm@example.com",
               "sms_message": "Complete your verification. ####"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = id_of(&r);
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "verified", "{:?}", g.body);
    let stats = gw
        .send(gw.http.get(gw.url("/sandbox/prove/control/stats")))
        .await
        .body;
    let by = &stats["by_endpoint_and_region"];
    assert_eq!(
        (&by["unify:eu"], &by["unify-status:eu"]),
        (&json!(1), &json!(1)),
        "{stats}"
    );
    assert!(by.get("unify:na").is_none(), "{stats}");
    gw.stop().await;
}

#[tokio::test]
async fn unify_takes_no_names_and_refuses_unknown_numbers() {
    let gw = reading_gateway().await;
    let before = gw.snapshot().await;
    // Names a Verified Users app sends are checked, never sent.
    let r = start(&gw, "user-u4", "mobile", json!({"first_name": ""})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "first_name");
    // A Verified Users test user is no Unify test user: Prove's 8007, on phone_number.
    let r = start(
        &gw,
        "user-u4",
        "mobile",
        json!({"phone_number": "+12001004011"}),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["code"], "unknown_test_user");
    assert_eq!(
        gw.running.prove.unify_requests(),
        1,
        "only the valid one reached Prove"
    );
    assert_eq!(gw.snapshot().await, before, "nothing stored");

    // Names are accepted (and not sent) when they are valid.
    let r = start(
        &gw,
        "user-u4",
        "mobile",
        json!({"first_name": "Lorant", "last_name": "Nerger"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    gw.stop().await;
}

#[tokio::test]
async fn customer_supplied_possession_is_bound_after_the_apps_own_check() {
    let gw = reading_gateway().await;
    // Bertie Fremont (EU): no Prove Key, so Prove asks for the app's own check.
    let number = "+2001004025";
    let r = start(&gw, "user-u8", "none", json!({"phone_number": number})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending", "{:?}", r.body);
    assert!(
        r.body["client"]["auth_token"].is_string(),
        "the SDK looks for a Prove Key"
    );
    let id = id_of(&r);
    let bind = format!("/v1/sessions/{id}/bind");

    // Bad bodies, and a number that is not the session's: 400, nothing sent to Prove.
    for (body, field, code) in [
        (json!({}), "phone_number", "required"),
        (
            json!({"phone_number": "12"}),
            "phone_number",
            "invalid_format",
        ),
        (
            json!({"phone_number": number, "otp": "1234"}),
            "otp",
            "unknown_field",
        ),
        (
            json!({"phone_number": "+2001004026"}),
            "phone_number",
            "mismatch",
        ),
    ] {
        let b = gw.post(&bind, &body).await;
        assert_eq!(b.status, 400, "{body}: {:?}", b.body);
        assert!(
            b.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body}: {:?}",
            b.body
        );
    }
    assert_eq!(gw.running.prove.unify_bind_requests(), 0);
    // The mismatch was refused after a read: Prove asks for the app's check.
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(
        (&s["status"], &s["provider_status"]),
        (&json!("pending"), &json!("possession_required")),
        "{s}"
    );

    let b = gw.post(&bind, &json!({"phone_number": number})).await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    assert_eq!(b.body["status"], "verified", "{:?}", b.body);
    assert_eq!(b.body["provider_status"], "true");
    let prove = stored(&gw, &id).await.prove().unwrap();
    assert!(prove.identity_id.is_some(), "the proveId of the bind");
    assert_eq!(history(&gw, &id).await, ["pending", "pending", "verified"]);
    // Again: the verified session, no second bind.
    let again = gw.post(&bind, &json!({"phone_number": number})).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("verified"))
    );
    assert_eq!(gw.running.prove.unify_bind_requests(), 1);

    // A session Prove possession serves waits for no bind.
    let m = start(&gw, "user-u8", "mobile", json!({})).await;
    let b = gw
        .post(
            &format!("/v1/sessions/{}/bind", id_of(&m)),
            &json!({"phone_number": LORANT}),
        )
        .await;
    assert_eq!(b.status, 409, "{:?}", b.body);
    assert_eq!(b.body["code"], "conflict");
    assert_eq!(gw.running.prove.unify_bind_requests(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn identity_manager_events_reach_the_session_that_unify_verified() {
    let gw = reading_gateway().await;
    let r = start(&gw, "user-u5", "mobile", json!({})).await;
    let id = id_of(&r);
    gw.prove_authenticate(&token_of(&r), "passed").await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{id}")).await.body["status"],
        "verified"
    );
    let identity = stored(&gw, &id)
        .await
        .prove()
        .and_then(|p| p.identity_id)
        .expect("the proveId");
    let sent = gw.prove_webhook(&identity, "DISCONNECT", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let g = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    let events = g.body["identity_events"]
        .as_array()
        .expect("identity_events");
    assert_eq!(events.len(), 1, "{:?}", g.body);
    assert_eq!(events[0]["type"], "DISCONNECT");
    assert_eq!(g.body["reverification_recommended"], true);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reads_unify_status_to_the_outcome_and_expires_a_flow_left_pending() {
    let gw = gateway(&[]).await;
    let passed = start(&gw, "user-u6", "mobile", json!({})).await;
    let waiting = start(&gw, "user-u7", "mobile", json!({})).await;
    let (passed_id, waiting_id) = (id_of(&passed), id_of(&waiting));
    gw.prove_authenticate(&token_of(&passed), "passed").await;

    // A minute on: both due; one verified, the other still pending at Prove.
    let run = reconcile::run(gw.app_at(time::Duration::minutes(1))).await;
    assert_eq!(
        (run.due, run.refreshed, run.changed, run.failed),
        (2, 2, 1, 0)
    );
    assert_eq!(gw.stored_status(&passed_id).await, "verified");
    assert_eq!(gw.stored_status(&waiting_id).await, "pending");
    assert_eq!(gw.running.prove.unify_status_requests(), 2);
    assert_eq!(gw.running.prove.status_requests(), 0);

    // Past the OTP window (2 minutes) with Prove still pending: our deadline expires it.
    let run = reconcile::run(gw.app_at(time::Duration::minutes(3))).await;
    assert_eq!((run.refreshed, run.changed), (1, 1));
    let s = gw
        .get(&format!("/v1/sessions/{waiting_id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "expired", "{s}");
    assert_eq!(s["last_error"]["provider_code"], "possession_timeout");
    gw.stop().await;
}
