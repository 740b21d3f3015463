//! Nevis end to end, as docs/providers/nevis.md describes it: `POST /v1/sessions` with `provider: "nevis"` answers
//! `client.start_url`; the user captures on Nevis's page (the simulator); `GET /v1/sessions/{id}`
//! reads Nevis's API and maps its status. DynamoDB Local holds the state.

use idv::session::SessionId;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    // Refresh on every read, so that each GET exercises Nevis's API.
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

/// Starts a Nevis session for `user`; returns (our id, Nevis's sessionId, start_url).
pub async fn start(gw: &Gateway, user: &str) -> (String, String, String) {
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": user}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let start_url = r.body["client"]["start_url"]
        .as_str()
        .expect("client.start_url")
        .to_owned();
    let tc = start_url
        .split_once("?tc=")
        .map(|(_, tc)| tc.to_owned())
        .expect("start_url carries tc");
    (r.body["id"].as_str().unwrap().to_owned(), tc, start_url)
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

fn session_item(
    snapshot: &std::collections::BTreeMap<
        String,
        std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >,
    id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    snapshot
        .get(&format!("SES#{id}|SES"))
        .cloned()
        .expect("the session item")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nevis_session_answers_a_start_url_and_a_completed_capture_reads_verified() {
    let gw = gateway().await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-n1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["provider"], "nevis");
    assert_eq!(r.body["status"], "created");
    assert_eq!(r.body["user_id"], "user-n1");
    assert!(r.body["expires_at"].is_string(), "our deadline: {}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let start_url = r.body["client"]["start_url"].as_str().unwrap().to_owned();
    let prefix = format!("{}/sandbox/nevis/idv/welcome.html?tc=", gw.base);
    let tc = start_url
        .strip_prefix(&prefix)
        .expect("the simulator's page");
    assert!(
        tc.len() == 9 && tc.bytes().all(|c| c.is_ascii_digit()),
        "{tc}"
    );

    // The nine-digit sessionId is stored as the provider reference; the session is due for checks.
    let item = session_item(&gw.snapshot().await, &id);
    assert_eq!(item["provider_ref"].as_s().unwrap(), tc);
    assert!(item.contains_key("gsi2pk") && item.contains_key("gsi2sk"));

    // Not started yet: Nevis says `pending`, which is our `created`.
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        (
            s.body["status"].as_str(),
            s.body["provider_status"].as_str()
        ),
        (Some("created"), Some("pending"))
    );
    // The user opens the start URL: consent and capture (`in_progress`, our `pending`).
    let page = gw.send(gw.http.get(&start_url)).await;
    assert_eq!(page.status, 200);
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.body["status"], "pending");
    assert_eq!(s.body["provider_status"], "in_progress");

    gw.nevis(tc, "complete", None).await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["status"], "verified", "{:?}", s.body);
    assert_eq!(s.body["provider_status"], "verified");
    assert_eq!(s.body["last_error"], Value::Null);
    assert!(s.body.get("client").is_none());
    // The first read recorded Nevis's own word (`pending`) without a status change.
    assert_eq!(
        history(&gw, &id).await,
        ["created", "created", "pending", "verified"]
    );
    // Terminal: it left the due index, and Nevis's result data (personal data) is not stored.
    let item = session_item(&gw.snapshot().await, &id);
    assert!(!item.contains_key("gsi2pk"), "{item:?}");
    let person = gw
        .running
        .nevis
        .person(tc)
        .expect("the simulator's session");
    assert!(!format!("{item:?}").contains(&person.last_name));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_capture_fails_the_session_with_nevis_error_code() {
    let gw = gateway().await;
    let (id, tc, _) = start(&gw, "user-n2").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "fail", Some("FACE_MISMATCH")).await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(s.body["status"], "failed", "{:?}", s.body);
    assert_eq!(s.body["provider_status"], "failed");
    assert_eq!(s.body["last_error"]["code"], "selfie_mismatch");
    assert_eq!(s.body["last_error"]["provider_code"], "FACE_MISMATCH");
    assert!(
        s.body["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("FACE_MISMATCH")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_nevis_requests_are_refused_per_field_and_change_nothing() {
    let gw = gateway().await;
    let before = gw.snapshot().await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "has space", "verification_type": "BASIC"}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["code"], "invalid_request");
    let mut fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["user_id", "verification_type"]);
    let r = gw.post("/v1/sessions", &json!({"provider": "nevis"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["code"], "required");
    assert_eq!(gw.snapshot().await, before, "nothing was written");
    assert_eq!(
        gw.running.nevis.create_requests(),
        0,
        "Nevis was not called"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nevis_down_at_start_is_a_retryable_503_that_stores_nothing() {
    let gw = gateway().await;
    let before = gw.snapshot().await;
    gw.nevis_faults(json!({"fail_next": 1, "status": 503}))
        .await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-n3"}),
        )
        .await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(gw.snapshot().await, before);
    // Nevis refusing our access key is not retryable: 502 for an operator to look at.
    gw.nevis_faults(json!({"fail_next": 1, "status": 403}))
        .await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-n3"}),
        )
        .await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_error");
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_start_answers_the_first_session_without_a_second_nevis_session() {
    let gw = gateway().await;
    let body = json!({"provider": "nevis", "user_id": "user-n4"});
    let send = |body: Value| {
        gw.send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "start-n4")
                .json(&body),
        )
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = send(body).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["client"], first.body["client"]);
    assert_eq!(gw.running.nevis.create_requests(), 1);
    let other = send(json!({"provider": "nevis", "user_id": "user-n5"})).await;
    assert_eq!(other.status, 409, "{:?}", other.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nevis_down_during_a_read_is_a_503_and_the_session_is_unchanged() {
    let gw = gateway().await;
    let (id, tc, _) = start(&gw, "user-n6").await;
    gw.nevis(&tc, "complete", None).await;
    let before = gw.snapshot().await;
    gw.nevis_faults(json!({"fail_next": 3, "status": 500}))
        .await;
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(gw.snapshot().await, before, "nothing half-written");
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.body["status"], "verified", "the next read applies it");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nevis_without_an_instance_url_is_not_configured() {
    let gw = Gateway::start_with(Backend::Memory, &[("IDV_NEVIS_API_URL", "")]).await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-n7"}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["code"], "provider_not_configured");
    gw.stop().await;
}
