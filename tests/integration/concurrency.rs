//! Racing writers on one session: every update is applied in order or refused as stale; none is
//! lost, and the history has no gaps.

use idv::session::SessionId;
use idv_tests::{Backend, Gateway};
use serde_json::json;

#[tokio::test]
async fn a_stale_authoritative_read_loses_to_a_newer_one() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let r = gw.issue_token("user-race", "BASIC").await;
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    let a = gw.authento("user-race", "BASIC", "submit", false).await;
    // Webhook A's read of Authento is answered late, with the state of its time (PROCESSING)...
    gw.authento_faults(json!({"delay_next": 1, "delay_ms": 800}))
        .await;
    let slow = {
        let http = gw.http.clone();
        let url = gw.url("/v1/webhooks/authento");
        let (body, digest) = (
            a["webhook"]["body"].as_str().unwrap().to_owned(),
            a["webhook"]["digest"].as_str().unwrap().to_owned(),
        );
        tokio::spawn(async move {
            http.post(url)
                .header("x-payload-digest", digest)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // ...while B (approve) is read and applied first.
    let b = gw.authento("user-race", "BASIC", "approve", true).await;
    assert_eq!(b["webhook"]["status"], 200);
    assert_eq!(slow.await.unwrap(), 200);
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(
        s.body["status"], "verified",
        "the older read did not move it back"
    );
    gw.stop().await;
}

#[tokio::test]
async fn many_concurrent_webhooks_and_reads_lose_no_update() {
    // Pacing Authento to 5 reads a second is the client's concern (unit-tested there); here the
    // point is ordering, so the gateway may read as fast as the simulator answers.
    let gw = Gateway::start_with(
        Backend::Dynamo,
        &[
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
            ("IDV_AUTHENTO_MAX_RPS", "1000"),
        ],
    )
    .await;
    let r = gw.issue_token("user-many", "BASIC").await;
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    let mut deliveries = Vec::new();
    for action in ["open", "submit", "request_info", "submit", "approve"] {
        let sim = gw.authento("user-many", "BASIC", action, false).await;
        deliveries.push((
            sim["webhook"]["body"].as_str().unwrap().to_owned(),
            sim["webhook"]["digest"].as_str().unwrap().to_owned(),
        ));
    }
    let mut tasks = Vec::new();
    for (body, digest) in deliveries.iter().cloned().chain(deliveries.iter().cloned()) {
        let (http, url) = (gw.http.clone(), gw.url("/v1/webhooks/authento"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("x-payload-digest", digest)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for _ in 0..5 {
        let (http, url, key) = (
            gw.http.clone(),
            gw.url(&format!("/v1/sessions/{id}")),
            gw.key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(
        s.body["status"], "verified",
        "the final authoritative state won"
    );
    let sid = SessionId::parse(&id).unwrap();
    let stored = gw
        .running
        .app
        .store
        .get_session(&sid)
        .await
        .unwrap()
        .unwrap();
    let history = gw.inspect().session_history(&sid).await.unwrap();
    // Every history entry belongs to a distinct version and chains from the previous one.
    for pair in history.windows(2) {
        assert!(pair[1].version > pair[0].version);
        assert_eq!(
            pair[1].from, pair[0].to,
            "no lost transition between {pair:?}"
        );
    }
    assert_eq!(history.last().unwrap().to, stored.status);
    for (body, _) in &deliveries {
        let states = gw.authento_delivery_states(body).await;
        assert!(
            !states.is_empty() && states.iter().all(|s| s == "applied"),
            "every delivery settled: {states:?}"
        );
    }
    gw.stop().await;
}
