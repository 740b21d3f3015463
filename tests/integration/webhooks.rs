//! The webhook rules (docs/api.md#webhooks) and input rules (docs/api.md#limits): anything forged, truncated, replayed, unauthenticated,
//! malformed or oversized gets its documented error and leaves the table unchanged.

use idv_tests::{Backend, Gateway};
use serde_json::json;

async fn with_open_session(user: &str) -> (Gateway, String) {
    let gw = Gateway::start(Backend::Dynamo).await;
    let r = gw.issue_token(user, "BASIC").await;
    assert_eq!(r.status, 201);
    (gw, r.body["session"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn forged_truncated_or_unsigned_webhooks_are_refused_and_change_nothing() {
    let (gw, _) = with_open_session("user-w").await;
    let sim = gw.authento("user-w", "BASIC", "approve", false).await;
    let body = sim["webhook"]["body"].as_str().unwrap().to_owned();
    let digest = sim["webhook"]["digest"].as_str().unwrap().to_owned();
    let before = gw.snapshot().await;

    let forged = idv::webhooks::hmac_digest::sign_hex("not-the-secret", body.as_bytes());
    let tampered = body.replace("VERIFIED", "REJECTED");
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("forged digest", body.clone(), Some(forged)),
        (
            "truncated body",
            body[..body.len() - 1].to_owned(),
            Some(digest.clone()),
        ),
        ("tampered body", tampered, Some(digest.clone())),
        ("no digest", body.clone(), None),
        ("digest of nothing", body.clone(), Some(String::new())),
    ];
    for (what, b, d) in cases {
        let r = gw.deliver_authento(&b, d.as_deref()).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_signature", "{what}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    let wrong_alg = gw
        .send(
            gw.http
                .post(gw.url("/v1/webhooks/authento"))
                .header("x-payload-digest", &digest)
                .header("x-payload-digest-alg", "HMAC_SHA1_HEX")
                .body(body.clone()),
        )
        .await;
    assert_eq!(wrong_alg.status, 401);
    assert_eq!(
        gw.snapshot().await,
        before,
        "no session, dedupe record or history changed"
    );

    // The genuine delivery is applied once; its replay is a duplicate that changes nothing.
    let first = gw.deliver_authento(&body, Some(&digest)).await;
    assert_eq!(
        (first.status, first.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    let applied = gw.snapshot().await;
    let replay = gw.deliver_authento(&body, Some(&digest)).await;
    assert_eq!(
        (replay.status, replay.body.clone()),
        (200, json!({"received": true, "duplicate": true}))
    );
    assert_eq!(gw.snapshot().await, applied);
    gw.stop().await;
}

#[tokio::test]
async fn a_base64_digest_is_accepted_too() {
    use base64::Engine;
    let (gw, id) = with_open_session("user-b64").await;
    let sim = gw.authento("user-b64", "BASIC", "submit", false).await;
    let hex_digest = sim["webhook"]["digest"].as_str().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex_digest).unwrap());
    let r = gw
        .deliver_authento(sim["webhook"]["body"].as_str().unwrap(), Some(&b64))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.stored_status(&id).await, "processing");
    gw.stop().await;
}

#[tokio::test]
async fn the_previous_webhook_secret_is_accepted_while_rotating() {
    // The gateway's secret names a new current secret and keeps the simulator's as previous.
    let (gw, id) = with_open_session("user-rot").await;
    let doc = gw.running.secrets.clone();
    let mut auth: idv::providers::authento::Secrets = doc.provider("authento").unwrap().unwrap();
    auth.webhook_secret_previous = Some(auth.webhook_secret.clone());
    auth.webhook_secret = idv::secrets::Secret::new("a-brand-new-secret");
    let doc = doc.with_provider("authento", serde_json::to_value(&auth).unwrap());
    let store = gw.running.app.store.clone();
    let app = idv::App::new(
        gw.running.app.config.clone(),
        store,
        idv::secrets::SecretSource::Static(std::sync::Arc::new(doc)),
        std::sync::Arc::new(idv::clock::SystemClock),
    );
    let sim = gw.authento("user-rot", "BASIC", "approve", false).await;
    let body = sim["webhook"]["body"].as_str().unwrap();
    let ack = idv_tests::ingest_authento(&app, body.as_bytes(), sim["webhook"]["digest"].as_str())
        .await
        .unwrap();
    assert!(!ack.duplicate);
    assert_eq!(gw.stored_status(&id).await, "verified");
    let new_digest = idv::webhooks::hmac_digest::sign_hex("a-brand-new-secret", body.as_bytes());
    let again = idv_tests::ingest_authento(&app, body.as_bytes(), Some(&new_digest))
        .await
        .unwrap();
    assert!(
        again.duplicate,
        "the current secret verifies the same delivery"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_webhook_for_a_user_without_a_session_is_kept_as_unmatched() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let sim = gw.authento("user-nobody", "BASIC", "open", false).await;
    let body = sim["webhook"]["body"].as_str().unwrap();
    let r = gw
        .deliver_authento(body, sim["webhook"]["digest"].as_str())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.authento_delivery_states(body).await, ["unmatched"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_webhook_whose_authoritative_read_fails_is_kept_and_processed_on_redelivery() {
    let (gw, id) = with_open_session("user-retry").await;
    let sim = gw.authento("user-retry", "BASIC", "approve", false).await;
    let (body, digest) = (
        sim["webhook"]["body"].as_str().unwrap(),
        sim["webhook"]["digest"].as_str(),
    );
    gw.authento_faults(json!({"fail_next": 10, "status": 503}))
        .await;
    // Recorded: the gateway owns it now (it retries it itself), so Authento hears 200.
    let r = gw.deliver_authento(body, digest).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            200,
            json!({"received": true, "duplicate": false, "deferred": true})
        )
    );
    assert_eq!(gw.stored_status(&id).await, "created");
    gw.authento_faults(json!({"fail_next": 0})).await;
    let again = gw.deliver_authento(body, digest).await;
    assert_eq!(
        again.body,
        json!({"received": true, "duplicate": false}),
        "not swallowed as a duplicate"
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_attempt_died_after_its_session_write_is_settled_by_the_retry_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (gw, id) = with_open_session("user-mark").await;
    let sim = gw.authento("user-mark", "BASIC", "approve", false).await;
    let (body, digest) = (
        sim["webhook"]["body"].as_str().unwrap(),
        sim["webhook"]["digest"].as_str(),
    );
    let first = gw.deliver_authento(body, digest).await;
    assert_eq!(first.body, json!({"received": true, "duplicate": false}));
    assert_eq!(gw.stored_status(&id).await, "verified");
    let sid = idv::session::SessionId::parse(&id).unwrap();
    let store = gw.inspect();
    let history = store.session_history(&sid).await.unwrap();

    // The session write landed, then the function died before settling the delivery: it is
    // still received, its lease ran out, and it is filed as due.
    let (key, _) = gw
        .snapshot()
        .await
        .into_iter()
        .find(|(k, _)| k.starts_with("WH#authento#"))
        .expect("the delivery");
    let pk = key.split('|').next().unwrap().to_owned();
    let event_id = pk.trim_start_matches("WH#authento#").to_owned();
    let shard = gw.inspect().retry_shard_of("authento", &event_id);
    idv_tests::dynamo_client()
        .await
        .update_item()
        .table_name(gw.table.as_ref().unwrap())
        .key("pk", AttributeValue::S(pk.clone()))
        .key("sk", AttributeValue::S("WH".into()))
        .update_expression("SET #st = :r, #l = :z, gsi2pk = :p, gsi2sk = :s")
        .expression_attribute_names("#st", "state")
        .expression_attribute_names("#l", "lease")
        .expression_attribute_values(":r", AttributeValue::S("received".into()))
        .expression_attribute_values(":z", AttributeValue::N("0".into()))
        .expression_attribute_values(":p", AttributeValue::S(format!("RETRY#{shard:02}")))
        .expression_attribute_values(":s", AttributeValue::S(format!("000000000000001#{pk}")))
        .send()
        .await
        .unwrap();
    let run = idv::flows::reconcile::run(gw.app_at(time::Duration::minutes(1))).await;
    assert_eq!(
        (run.deliveries.due, run.deliveries.settled),
        (1, 1),
        "{run:?}"
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    assert_eq!(
        store.session_history(&sid).await.unwrap(),
        history,
        "no second history entry"
    );
    assert_eq!(
        store.delivery_state("authento", &event_id).await.unwrap(),
        Some(idv::store::DeliveryState::Applied)
    );
    let third = gw.deliver_authento(body, digest).await;
    assert_eq!(third.body, json!({"received": true, "duplicate": true}));
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_401_and_touches_nothing() {
    let (gw, id) = with_open_session("user-k").await;
    let before = gw.snapshot().await;
    let body = json!({"user_id": "user-k2", "verification_type": "BASIC"});
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some("Basic dXNlcjpwYXNz"),
        Some(gw.key.as_str()),
    ] {
        let mut req = gw.http.post(gw.url("/v1/tokens")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = gw.send(req).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.body["code"], "unauthenticated");
    }
    let r = gw
        .send(gw.http.get(gw.url(&format!("/v1/sessions/{id}"))))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}

#[tokio::test]
async fn malformed_oversized_or_non_json_bodies_are_refused_and_touch_nothing() {
    let (gw, _) = with_open_session("user-bad").await;
    let before = gw.snapshot().await;
    let post_raw = |body: Vec<u8>, ct: &str| {
        gw.http
            .post(gw.url("/v1/tokens"))
            .bearer_auth(&gw.key)
            .header("content-type", ct)
            .body(body)
    };
    let r = gw
        .send(post_raw(b"{not json".to_vec(), "application/json"))
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (400, json!("invalid_request"))
    );
    let r = gw
        .send(post_raw(b"[1,2]".to_vec(), "application/json"))
        .await;
    assert_eq!(r.status, 400);
    let r = gw
        .send(post_raw(br#"{"user_id":"u"}"#.to_vec(), "text/plain"))
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (415, json!("unsupported_media_type"))
    );
    let mut big = br#"{"user_id":"u","verification_type":"BASIC","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 70 * 1024));
    big.extend(br#""}"#);
    let r = gw.send(post_raw(big.clone(), "application/json")).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (413, json!("payload_too_large"))
    );
    let r = gw
        .send(gw.http.post(gw.url("/v1/webhooks/authento")).body(big))
        .await;
    assert_eq!(r.status, 413);

    // Every bad field is named at once.
    let r = gw.post("/v1/tokens", &json!({"user_id": "has space", "verification_type": "FULL", "lang": "english", "extra": 1})).await;
    assert_eq!(r.status, 400);
    let mut fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["extra", "lang", "user_id", "verification_type"]);
    let r = gw.post("/v1/tokens", &json!({})).await;
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);
    let r = gw.get("/v1/users/user-bad/sessions?limit=1000").await;
    assert_eq!(r.body["errors"][0]["field"], "limit");
    let r = gw.get("/v1/users/user-bad/sessions?cursor=forged").await;
    assert_eq!(r.body["errors"][0]["field"], "cursor");
    // A crafted cursor naming this very listing but keys DynamoDB refuses: still our 400, never
    // a retryable 503 (security review L8).
    use base64::Engine;
    let crafted = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({"pk": "SES#x", "sk": "SES", "gsi1pk": "USR#app-a#user-bad", "gsi1sk": ""})
            .to_string(),
    );
    let r = gw
        .get(&format!("/v1/users/user-bad/sessions?cursor={crafted}"))
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (400, json!("cursor")),
        "{:?}",
        r.body
    );

    assert_eq!(gw.snapshot().await, before);

    // An authentic webhook whose body we cannot use is never refused for its shape (the sender
    // would not retry a 4xx any better): kept as a fingerprint and an outline, answered 200, and
    // the problem never quotes its values.
    let secret = gw
        .running
        .secrets
        .provider::<idv::providers::authento::Secrets>("authento")
        .unwrap()
        .unwrap()
        .webhook_secret
        .expose()
        .to_owned();
    let junk = br#"{"event":"REVIEWED","userIdentifier":1,"email":"jane.doe@example.com"}"#;
    let d = idv::webhooks::hmac_digest::sign_hex(&secret, junk);
    let r = gw
        .deliver_authento(std::str::from_utf8(junk).unwrap(), Some(&d))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    let after = gw.snapshot().await;
    let kept: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("WH#authento#unusable-"), "{kept:?}");
    assert!(
        !format!("{after:?}").contains("jane.doe"),
        "no value of the body is kept"
    );
    gw.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_problem_404s() {
    let gw = Gateway::start(Backend::Memory).await;
    let r = gw.get("/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    gw.stop().await;
}

#[tokio::test]
async fn every_route_with_a_body_refuses_one_over_64_kib_before_reading_it() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let before = gw.snapshot().await;
    let big = format!(r#"{{"user_id":"u","pad":"{}"}}"#, "x".repeat(64 * 1024));
    for path in [
        "/v1/tokens",
        "/v1/sessions",
        "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel",
        "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/link",
        "/v1/webhooks/authento",
        "/v1/webhooks/prove",
        "/v1/webhooks/passbase",
    ] {
        let r = gw
            .send(
                gw.http
                    .post(gw.url(path))
                    .bearer_auth(&gw.key)
                    .header("content-type", "application/json")
                    .body(big.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (413, json!("payload_too_large")),
            "{path}"
        );
    }
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}
