//! `GET /v1/sessions/{id}/history` and `provider_ref` (docs/api.md#history): how a session
//! reached its state, newest first, with who caused each change; the provider's own id for the
//! flow on the session. Over HTTP on DynamoDB Local, against the Stripe simulator.

use idv_tests::{Backend, Gateway};
use serde_json::json;
use std::time::Duration;

async fn until(gw: &Gateway, id: &str, status: &str) {
    for _ in 0..200 {
        let s = gw
            .get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body;
        if s["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never became {status}");
}

#[tokio::test]
async fn a_sessions_history_is_newest_first_with_its_sources_and_only_its_tenants() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-h1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // The provider's id for the flow is on the session: the VerificationSession Stripe made.
    let vs = r.body["provider_ref"].as_str().expect("provider_ref");
    assert!(vs.starts_with("vs_"), "{vs}");
    let at_stripe = gw
        .send(
            gw.http
                .get(format!(
                    "{}/v1/identity/verification_sessions/{vs}",
                    gw.stripe_api_base()
                ))
                .bearer_auth(gw.running.stripe.secret_key()),
        )
        .await;
    assert_eq!(at_stripe.body["metadata"]["session_ref"], json!(id));

    // Stripe verifies; its events reach the session.
    gw.stripe_control(&format!("/sessions/{vs}"), json!({"action": "verify"}))
        .await;
    until(&gw, &id, "verified").await;
    // The app cancels: refused (decided), and a refusal writes no change.
    let c = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(c.status, 409, "{:?}", c.body);

    let h = gw.get(&format!("/v1/sessions/{id}/history")).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    assert_eq!(h.body["object"], "list");
    let data = h.body["data"].as_array().unwrap();
    let versions: Vec<u64> = data
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] > w[1]),
        "newest first: {versions:?}"
    );
    let oldest = data.last().unwrap();
    assert_eq!(
        (oldest["reason"].clone(), oldest["source"].clone()),
        (json!("created"), json!("app"))
    );
    let newest = &data[0];
    assert_eq!(newest["status"], "verified", "{newest}");
    assert_eq!(newest["provider_status"], "verified");
    assert_eq!(newest["source"], "provider_read", "a webhook says re-read");
    assert!(
        data.iter()
            .all(|e| e["object"] == "session_change" && e["at"].is_string()),
        "{data:?}"
    );
    // Each change follows the one before it.
    for pair in data.windows(2) {
        assert_eq!(pair[0]["from"], pair[1]["status"], "{pair:?}");
    }

    // Another tenant's key: no such session; an unknown one: 404 too.
    let other = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{id}/history"))
        .await;
    assert_eq!(other.status, 404, "{:?}", other.body);
    let none = gw
        .get("/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/history")
        .await;
    assert_eq!(none.status, 404);
    let wrong = gw
        .send(gw.http.post(gw.url(&format!("/v1/sessions/{id}/history"))))
        .await;
    assert_eq!(wrong.status, 405, "{:?}", wrong.body);
    gw.stop().await;
}
