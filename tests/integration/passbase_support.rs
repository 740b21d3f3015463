//! Driving the Passbase simulator and the gateway's Passbase routes from tests.

use idv_tests::{Gateway, Reply};
use serde_json::{Value, json};

/// The webhook secret the gateway and the simulator share (generated per start).
pub fn webhook_secret(gw: &Gateway) -> String {
    gw.running
        .secrets
        .provider::<idv::providers::passbase::Secrets>("passbase")
        .unwrap()
        .expect("passbase is configured")
        .webhook_secret
        .expose()
        .to_owned()
}

/// The user finishes the SDK flow: a new identity in the simulator; answers its access key.
pub async fn new_identity(gw: &Gateway, metadata: Option<Value>) -> String {
    let body = match metadata {
        Some(m) => json!({"metadata": m}),
        None => json!({}),
    };
    let r = gw
        .send(
            gw.http
                .post(gw.url("/sandbox/passbase/control/identities"))
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 201, "simulator: {:?}", r.body);
    r.body["identity_access_key"].as_str().unwrap().to_owned()
}

/// Passbase (automation, dashboard, the user) acts on an identity; `deliver` is `each`,
/// `together`, `reversed` or `none`. Answers the simulator's report (identity, webhooks,
/// delivered statuses).
pub async fn act(gw: &Gateway, key: &str, actions: &[&str], deliver: &str) -> Value {
    let r = gw
        .send(
            gw.http
                .post(gw.url(&format!("/sandbox/passbase/control/identities/{key}")))
                .json(&json!({"actions": actions, "deliver": deliver})),
        )
        .await;
    assert_eq!(r.status, 200, "simulator: {:?}", r.body);
    r.body
}

/// The encrypted bodies of a `deliver: none` report, in event order.
pub fn bodies(report: &Value) -> Vec<String> {
    report["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["body"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn start(gw: &Gateway, user: &str, key: Option<&str>) -> Reply {
    let mut body = json!({"provider": "passbase", "user_id": user});
    if let Some(k) = key {
        body["identity_access_key"] = json!(k);
    }
    gw.post("/v1/sessions", &body).await
}

/// A session opened with the identity already linked; answers its id.
pub async fn linked_session(gw: &Gateway, user: &str, key: &str) -> String {
    let r = start(gw, user, Some(key)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Posts a body to the webhook route as Passbase does with encryption on.
pub async fn deliver(gw: &Gateway, body: &str) -> Reply {
    deliver_as(gw, body, "text/plain").await
}

pub async fn deliver_as(gw: &Gateway, body: &str, content_type: &str) -> Reply {
    gw.send(
        gw.http
            .post(gw.url("/v1/webhooks/passbase"))
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

pub async fn faults(gw: &Gateway, fail_next: u32, status: u16) {
    let r = gw
        .send(
            gw.http
                .post(gw.url("/sandbox/passbase/control/faults"))
                .json(&json!({"fail_next": fail_next, "status": status})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The session's history as stored: `(from, to, reason)`.
pub async fn history(gw: &Gateway, id: &str) -> Vec<(String, String, Option<String>)> {
    let id = idv::session::SessionId::parse(id).unwrap();
    gw.inspect()
        .session_history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| {
            (
                h.from.as_str().to_owned(),
                h.to.as_str().to_owned(),
                h.reason,
            )
        })
        .collect()
}

pub async fn delivery_state(gw: &Gateway, event_id: &str) -> Option<idv::store::DeliveryState> {
    gw.inspect()
        .delivery_state("passbase", event_id)
        .await
        .unwrap()
}

/// The dedupe identity of the event in a simulator report (`key#event#updated#<plaintext hash>`),
/// from the body Passbase sent, decrypted.
pub fn event_id(gw: &Gateway, report: &Value, i: usize) -> String {
    let body = report["webhooks"][i]["body"].as_str().unwrap();
    let plain = idv::webhooks::aes_cbc_body::decrypt(&webhook_secret(gw), body.as_bytes())
        .expect("the simulator's body decrypts");
    let event = idv::providers::passbase::webhook::parse(&plain).expect("a Passbase event");
    idv::providers::passbase::webhook::event_id(&event, &plain)
}
