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

/// The history's changes as (status, source, reason, provider_event), newest first.
async fn changes(gw: &Gateway, id: &str) -> Vec<(String, String, String, String)> {
    let h = gw.get(&format!("/v1/sessions/{id}/history")).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let word = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    h.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                word(&e["status"]),
                word(&e["source"]),
                word(&e["reason"]),
                word(&e["provider_event"]),
            )
        })
        .collect()
}

fn change(
    status: &str,
    source: &str,
    reason: &str,
    event: &str,
) -> (String, String, String, String) {
    (status.into(), source.into(), reason.into(), event.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_names_its_event_in_the_history() {
    let gw = Gateway::start(Backend::Dynamo).await;

    // Authento: each event makes the gateway read the user; the change it made carries the name.
    let t = gw.issue_token("user-he", "BASIC").await;
    let id = t.body["session"]["id"].as_str().unwrap().to_owned();
    for action in ["open", "submit", "reject"] {
        gw.authento("user-he", "BASIC", action, true).await;
    }
    assert_eq!(
        changes(&gw, &id).await,
        [
            change("failed", "provider_read", "rejected", "REVIEWED"),
            change("processing", "provider_read", "-", "PENDING"),
            change("pending", "provider_read", "-", "INIT"),
            change("created", "app", "created", "-"),
        ]
    );

    // Passbase: the event that made the gateway read the identity.
    let key = super::passbase_support::new_identity(&gw, None).await;
    let id = super::passbase_support::linked_session(&gw, "user-hp", &key).await;
    super::passbase_support::act(&gw, &key, &["approve"], "each").await;
    assert_eq!(
        changes(&gw, &id).await[0],
        change("verified", "provider_read", "-", "VERIFICATION_COMPLETED")
    );

    // Stripe: the event type.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-hs"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = r.body["provider_ref"].as_str().unwrap().to_owned();
    gw.stripe_control(&format!("/sessions/{vs}"), json!({"action": "verify"}))
        .await;
    until(&gw, &id, "verified").await;
    let newest = changes(&gw, &id).await.remove(0);
    assert_eq!(
        (newest.0.as_str(), newest.1.as_str()),
        ("verified", "provider_read")
    );
    // The read a `processing` event triggered may already see `verified`: either event's type.
    assert!(
        newest.3.starts_with("identity.verification_session."),
        "{newest:?}"
    );

    // Prove: an Identity Manager event is a change of its own on the verified session.
    let r = gw.start_prove("user-hv", "none", json!({})).await;
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let identity = super::prove_webhooks::identity_of(&gw, &id).await;
    let sent = gw.prove_webhook(&identity, "PORT", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    assert_eq!(
        changes(&gw, &id).await[0],
        change("verified", "webhook", "identity_event", "PORT")
    );
    gw.stop().await;
}
