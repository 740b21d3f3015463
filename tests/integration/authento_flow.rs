//! Authento end to end, as docs/providers/authento.md describes it: HTTP in, DynamoDB (Local) state, the simulator's
//! signed API and webhooks, HTTP out.

use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    // Refresh on every read, so that each GET exercises the authoritative read.
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

fn sid(r: &Value) -> String {
    r["session"]["id"].as_str().expect("session id").to_owned()
}

#[tokio::test]
async fn a_token_opens_a_session_that_the_simulator_takes_to_verified() {
    let gw = gateway().await;
    let r = gw.issue_token("user-42", "BASIC").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["session"]["status"], "created");
    assert_eq!(r.body["session"]["provider"], "authento");
    assert_eq!(r.body["session"]["verification_type"], "BASIC");
    let verify_url = r.body["verify_url"].as_str().unwrap();
    assert!(verify_url.starts_with(&format!("{}/sandbox/authento/verify/token?jwt=", gw.base)));
    let id = sid(&r.body);

    // The user opens the hosted page with the token (the simulator checks it with the JWT secret).
    let page = gw.send(gw.http.get(verify_url)).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.body["status"], "pending");
    assert_eq!(s.body["provider_status"], "UNVERIFIED");

    for (action, status, word) in [
        ("submit", "processing", "PROCESSING"),
        ("approve", "verified", "VERIFIED"),
    ] {
        let sim = gw.authento("user-42", "BASIC", action, true).await;
        assert_eq!(sim["webhook"]["status"], 200, "{sim}");
        let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
        assert_eq!(
            s.body["status"], status,
            "the webhook alone moved it: {:?}",
            s.body
        );
        assert_eq!(s.body["provider_status"], word);
    }
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.status, 200);
    assert!(
        s.body.get("client").is_none(),
        "client is only in the create response"
    );
    assert_eq!(s.body["last_error"], Value::Null);

    // The history holds every transition, in order.
    let history = gw
        .inspect()
        .session_history(&idv::session::SessionId::parse(&id).unwrap())
        .await
        .unwrap();
    let path: Vec<&str> = history.iter().map(|h| h.to.as_str()).collect();
    assert_eq!(path, ["created", "pending", "processing", "verified"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_rejection_fails_the_session_with_a_reason_and_a_reset_is_applied_from_the_api() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-7", "POA").await.body);
    gw.authento("user-7", "POA", "open", true).await;
    gw.authento("user-7", "POA", "reject", true).await;
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(s.body["status"], "failed");
    assert_eq!(s.body["last_error"]["code"], "rejected");
    assert_eq!(s.body["last_error"]["provider_code"], "REJECTED");
    assert_eq!(s.body["last_error"]["retryable"], false);
    // Authento resets the user: its API now says UNVERIFIED, so the decision is overturned.
    gw.authento("user-7", "POA", "reset", true).await;
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(s.body["status"], "pending");
    assert_eq!(s.body["last_error"], Value::Null);
    let history = gw
        .inspect()
        .session_history(&idv::session::SessionId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(
        history.last().unwrap().reason.as_deref(),
        Some("overturned")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_get_refreshes_a_stale_open_session_from_authento_without_any_webhook() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-9", "BASIC").await.body);
    gw.authento("user-9", "BASIC", "approve", false).await; // no webhook delivered
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(
        s.body["status"], "created",
        "refresh=false reads the store only"
    );
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.body["status"], "verified");
    gw.stop().await;
}

#[tokio::test]
async fn polling_reads_authento_at_most_once_per_session_per_refresh_interval() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "60")]).await;
    let id = sid(&gw.issue_token("user-poll", "BASIC").await.body);
    let before = gw.running.authento.userinfo_requests();
    for _ in 0..10 {
        assert_eq!(gw.get(&format!("/v1/sessions/{id}")).await.status, 200);
    }
    assert_eq!(gw.running.authento.userinfo_requests() - before, 1);
    gw.stop().await;
}

#[tokio::test]
async fn authento_down_leaves_the_session_unchanged_and_answers_a_retryable_503() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-down", "BASIC").await.body);
    let before = gw.snapshot().await;
    gw.authento_faults(json!({"fail_next": 10, "status": 500}))
        .await;
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(gw.snapshot().await, before, "nothing half-written");
    gw.stop().await;
}

#[tokio::test]
async fn a_429_from_authento_is_waited_out_when_short() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-429", "BASIC").await.body);
    gw.authento("user-429", "BASIC", "submit", false).await;
    gw.authento_faults(json!({"fail_next": 1, "status": 429}))
        .await;
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "processing");
    gw.stop().await;
}

#[tokio::test]
async fn a_second_token_reuses_the_open_session_and_a_new_one_follows_a_terminal_session() {
    let gw = gateway().await;
    let first = gw.issue_token("user-r", "BASIC").await;
    let second = gw.issue_token("user-r", "BASIC").await;
    assert_eq!(sid(&first.body), sid(&second.body));
    // Another verification type is another session.
    let poa = gw.issue_token("user-r", "POA").await;
    assert_ne!(sid(&poa.body), sid(&first.body));
    let c = gw
        .post(
            &format!("/v1/sessions/{}/cancel", sid(&first.body)),
            &json!({}),
        )
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(c.body["status"], "canceled");
    let third = gw.issue_token("user-r", "BASIC").await;
    assert_ne!(sid(&third.body), sid(&first.body));
    let list = gw.get("/v1/users/user-r/sessions").await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], sid(&third.body), "newest first");
    gw.stop().await;
}

/// A JWT's claims, undecoded by any key (the test reads what the page would be handed).
fn claims(token: &Value) -> Value {
    use base64::Engine;
    let payload = token.as_str().expect("a token").split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_reused_session_answers_a_token_for_the_requests_user_type_and_lang() {
    let gw = gateway().await;
    let ask = |ut: Option<&str>, lang: Option<&str>, key: Option<&str>| {
        let mut body = json!({"user_id": "user-ul", "verification_type": "BASIC"});
        if let Some(ut) = ut {
            body["user_type"] = json!(ut);
        }
        if let Some(lang) = lang {
            body["lang"] = json!(lang);
        }
        let mut req = gw.http.post(gw.url("/v1/tokens")).bearer_auth(&gw.key);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        gw.send(req.json(&body))
    };
    let first = ask(Some("INDIVIDUAL"), Some("en"), None).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let c = claims(&first.body["token"]);
    assert_eq!((&c["ut"], &c["lang"]), (&json!("INDIVIDUAL"), &json!("en")));

    // The same open session, its token signed for what this request asks.
    let second = ask(Some("CORPORATE"), Some("de"), Some("k-ul")).await;
    assert_eq!(sid(&second.body), sid(&first.body));
    let c = claims(&second.body["token"]);
    assert_eq!((&c["ut"], &c["lang"]), (&json!("CORPORATE"), &json!("de")));
    assert_eq!(c["vt"], "BASIC", "the session's track");
    // The hosted page gets them (the simulator checks the token with the JWT secret).
    let page = gw
        .send(gw.http.get(second.body["verify_url"].as_str().unwrap()))
        .await;
    assert_eq!(page.status, 200);
    // A replay of the reusing request answers the same token, whatever came between.
    let between = ask(None, None, None).await;
    let c = claims(&between.body["token"]);
    assert!(c.get("ut").is_none() && c.get("lang").is_none(), "{c}");
    let replay = ask(Some("CORPORATE"), Some("de"), Some("k-ul")).await;
    assert_eq!(replay.body["token"], second.body["token"]);
    gw.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_response_and_another_body_conflicts() {
    let gw = gateway().await;
    let body = json!({"user_id": "user-idem", "verification_type": "BASIC"});
    let post = |key: &str, body: &Value| {
        gw.http
            .post(gw.url("/v1/tokens"))
            .bearer_auth(&gw.key)
            .header("idempotency-key", key)
            .json(body)
    };
    let a = gw.send(post("key-1", &body)).await;
    let b = gw.send(post("key-1", &body)).await;
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(
        a.body["token"], b.body["token"],
        "the same token, re-signed from the stored iat"
    );
    assert_eq!(sid(&a.body), sid(&b.body));
    let other = gw
        .send(post(
            "key-1",
            &json!({"user_id": "user-idem", "verification_type": "POA"}),
        ))
        .await;
    assert_eq!(other.status, 409);
    assert_eq!(other.body["code"], "conflict");
    let sessions = gw.get("/v1/users/user-idem/sessions").await;
    assert_eq!(
        sessions.body["data"].as_array().unwrap().len(),
        1,
        "no second session"
    );
    gw.stop().await;
}

#[tokio::test]
async fn start_session_with_authento_is_the_same_as_a_token() {
    let gw = gateway().await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "authento", "user_id": "user-s", "verification_type": "BASIC"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["object"], "verification_session");
    assert!(r.body["client"]["token"].is_string());
    assert!(r.body["client"]["verify_url"].is_string());
    let t = gw.issue_token("user-s", "BASIC").await;
    assert_eq!(
        sid(&t.body),
        r.body["id"].as_str().unwrap(),
        "the same open session"
    );
    // A provider this deployment has no credentials or URL for.
    let unconfigured = Gateway::start_with(Backend::Memory, &[("IDV_NEVIS_API_URL", "")]).await;
    let p = unconfigured
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-s"}),
        )
        .await;
    unconfigured.stop().await;
    assert_eq!(p.status, 422);
    assert_eq!(p.body["code"], "provider_not_configured");
    gw.stop().await;
}

#[tokio::test]
async fn another_tenant_sees_404_for_a_session_and_an_empty_list() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-t", "BASIC").await.body);
    let r = gw
        .send(
            gw.http
                .get(gw.url(&format!("/v1/sessions/{id}")))
                .bearer_auth(&gw.other_key),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "not_found");
    let r = gw
        .send(
            gw.http
                .post(gw.url(&format!("/v1/sessions/{id}/cancel")))
                .bearer_auth(&gw.other_key),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = gw
        .send(
            gw.http
                .get(gw.url("/v1/users/user-t/sessions"))
                .bearer_auth(&gw.other_key),
        )
        .await;
    assert_eq!(r.body["data"], json!([]));
    let r = gw.get("/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(r.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn a_terminal_session_cannot_be_canceled() {
    let gw = gateway().await;
    let id = sid(&gw.issue_token("user-c", "BASIC").await.body);
    gw.authento("user-c", "BASIC", "approve", true).await;
    let r = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test]
async fn the_flow_also_runs_on_the_in_memory_store() {
    let gw = Gateway::start_with(Backend::Memory, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;
    let id = sid(&gw.issue_token("user-m", "BASIC").await.body);
    gw.authento("user-m", "BASIC", "approve", true).await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{id}")).await.body["status"],
        "verified"
    );
    gw.stop().await;
}

#[tokio::test]
async fn dynamodb_unreachable_is_a_retryable_503_and_authento_is_not_called() {
    // docs/api.md#errors: a failure of DynamoDB gives a retryable 5xx, never a half-written
    // session.
    let gw = gateway().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed); // nothing listens there now
    let client = idv_tests::idv_local::dynamodb_client(&endpoint).await;
    let app = gw.app_with(
        std::sync::Arc::new(idv::store::DynamoStore::new(client, "idv-unreachable")),
        time::Duration::ZERO,
    );
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", gw.key).parse().unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    let req = idv::http::ApiRequest {
        method: http::Method::POST,
        path: "/v1/tokens".into(),
        query: Vec::new(),
        headers,
        body: bytes::Bytes::from_static(br#"{"user_id":"user-nodb","verification_type":"BASIC"}"#),
    };
    let before = gw.running.authento.userinfo_requests();
    let r = idv::http::handle(
        &app,
        idv::http::Function::named("issue-token").unwrap(),
        req,
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["code"], "store_unavailable");
    assert_eq!(gw.running.authento.userinfo_requests(), before);
    gw.stop().await;
}
