//! Prove Identity Manager webhooks (docs/providers/prove.md#webhooks): the JWT is checked before anything else, each event
//! is deduplicated by its id and recorded on the session that verified the identity, and the
//! table changes only where it should.

use aws_sdk_dynamodb::types::AttributeValue;
use idv::session::SessionId;
use idv_tests::ProveOf;
use idv_tests::{Backend, Gateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

type Snapshot = BTreeMap<String, HashMap<String, AttributeValue>>;

/// A gateway with one verified Prove session whose identity is enrolled: (gateway, session id,
/// identity id).
async fn with_enrolled_identity(user: &str) -> (Gateway, String, String) {
    let gw = Gateway::start(Backend::Dynamo).await;
    let r = gw.start_prove(user, "none", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "verified");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let identity = identity_of(&gw, &id).await;
    (gw, id, identity)
}

pub(crate) async fn identity_of(gw: &Gateway, id: &str) -> String {
    gw.running
        .app
        .store
        .get_session(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .prove()
        .and_then(|p| p.identity_id)
        .expect("an enrolled identity")
}

fn webhook_secret(gw: &Gateway) -> String {
    gw.running
        .secrets
        .provider::<idv::providers::prove::Secrets>("prove")
        .unwrap()
        .and_then(|p| p.webhook_secret)
        .map(|s| s.expose().to_owned())
        .expect("a prove webhook secret")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn bearer(secret: &str, claims: Value) -> String {
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    format!("Bearer {jwt}")
}

fn event(event_id: &str, event_type: &str, identity: &str) -> String {
    json!([{"eventId": event_id, "eventType": event_type, "identityId": identity,
            "eventTimestamp": "2026-11-21T22:39:10Z", "description": "sandbox",
            "clientCustomerId": "ignored"}])
    .to_string()
}

/// The keys that differ between two snapshots (added, removed or changed).
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[tokio::test]
async fn a_valid_event_is_recorded_on_the_verified_session_and_flags_reverification() {
    let (gw, id, identity) = with_enrolled_identity("user-wh").await;
    let before = gw.snapshot().await;
    let sent = gw.prove_webhook(&identity, "DISCONNECT", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    assert_eq!(
        sent["delivered"]["body"],
        json!({"received": true, "duplicate": false})
    );
    let after = gw.snapshot().await;
    let event_id =
        serde_json::from_str::<Value>(sent["body"].as_str().unwrap()).unwrap()[0]["eventId"]
            .as_str()
            .unwrap()
            .to_owned();
    // Exactly: the session (flag), the event item, the delivery record, its filings under its
    // identity and customer (for redaction), and the token's binding to this body.
    let diff = changed(&before, &after);
    assert_eq!(diff.len(), 6, "{diff:?}");
    assert_eq!(
        diff.iter().filter(|k| k.starts_with("SUB#prove#")).count(),
        2
    );
    assert_eq!(
        diff.iter()
            .filter(|k| !k.starts_with("TOK#prove#") && !k.starts_with("SUB#prove#"))
            .collect::<Vec<_>>(),
        vec![
            &format!("SES#{id}|IE#{event_id}"),
            &format!("SES#{id}|SES"),
            &format!("WH#prove#{event_id}|WH"),
        ]
    );
    assert_eq!(
        after[&format!("WH#prove#{event_id}|WH")]["state"],
        AttributeValue::S("applied".into())
    );

    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["status"], "verified", "an event is not a transition");
    assert_eq!(g.body["reverification_recommended"], true);
    let events = g.body["identity_events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], event_id.as_str());
    assert_eq!(events[0]["type"], "DISCONNECT");
    assert!(events[0]["received_at"].is_string());

    // Replayed as is: acknowledged as a duplicate, nothing changes.
    let again = gw
        .deliver_prove(
            sent["body"].as_str().unwrap(),
            sent["authorization"].as_str(),
        )
        .await;
    assert_eq!(
        (again.status, again.body.clone()),
        (200, json!({"received": true, "duplicate": true}))
    );
    assert_eq!(gw.snapshot().await, after);
    gw.stop().await;
}

#[tokio::test]
async fn forged_expired_or_foreign_tokens_are_refused_and_change_nothing() {
    let (gw, _, identity) = with_enrolled_identity("user-forged").await;
    let secret = webhook_secret(&gw);
    let body = event("evt-forged-1", "PORT", &identity);
    let t = now();
    let before = gw.snapshot().await;
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "wrong secret",
            Some(bearer(
                "whsec_not_ours",
                json!({"iss": "Prove Identity", "iat": t, "exp": t + 300}),
            )),
        ),
        (
            "expired",
            Some(bearer(
                &secret,
                json!({"iss": "Prove Identity", "iat": t - 900, "exp": t - 120}),
            )),
        ),
        (
            "wrong iss",
            Some(bearer(
                &secret,
                json!({"iss": "Not Prove", "iat": t, "exp": t + 300}),
            )),
        ),
        (
            "issued in the future",
            Some(bearer(
                &secret,
                json!({"iss": "Prove Identity", "iat": t + 600, "exp": t + 900}),
            )),
        ),
        (
            "no exp",
            Some(bearer(&secret, json!({"iss": "Prove Identity", "iat": t}))),
        ),
        ("no header", None),
        ("not bearer", Some("Basic dXNlcjpwYXNz".into())),
    ];
    for (what, auth) in cases {
        let r = gw.deliver_prove(&body, auth.as_deref()).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_signature", "{what}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert_eq!(
        gw.snapshot().await,
        before,
        "no session, dedupe record or event changed"
    );

    // The same body with a good token is taken.
    let good = bearer(
        &secret,
        json!({"iss": "Prove Identity", "iat": t, "exp": t + 300}),
    );
    let r = gw.deliver_prove(&body, Some(&good)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    gw.stop().await;
}

#[tokio::test]
async fn an_event_about_an_unknown_identity_is_kept_unmatched_and_touches_no_session() {
    let (gw, _, _) = with_enrolled_identity("user-unknown").await;
    let before = gw.snapshot().await;
    let sent = gw
        .prove_webhook("00000000-0000-0000-0000-000000000000", "DISCONNECT", true)
        .await;
    assert_eq!(
        sent["delivered"]["body"],
        json!({"received": true, "duplicate": false}),
        "{sent}"
    );
    let after = gw.snapshot().await;
    // The delivery (kept, with what matching it later needs), its filings under the identity
    // (kept unmatched; and for redaction), and the token's binding: no session.
    let diff = changed(&before, &after);
    assert_eq!(diff.len(), 4, "{diff:?}");
    let delivery = diff.iter().find(|k| k.starts_with("WH#prove#")).unwrap();
    assert_eq!(
        after[delivery]["state"],
        AttributeValue::S("unmatched".into())
    );
    assert!(
        diff.iter()
            .any(|k| k.starts_with("UNM#prove#identity:00000000-0000-0000-0000-000000000000|")),
        "{diff:?}"
    );
    assert!(diff.iter().all(|k| !k.starts_with("SES#")), "{diff:?}");
    gw.stop().await;
}

#[tokio::test]
async fn unknown_and_harmless_event_types_are_recorded_without_a_flag() {
    let (gw, id, identity) = with_enrolled_identity("user-kinds").await;
    for kind in ["LINE_TYPE_CHANGE", "MOVED_OUT_OF_COVERAGE", "SOMETHING_NEW"] {
        let sent = gw.prove_webhook(&identity, kind, true).await;
        assert_eq!(
            sent["delivered"]["body"],
            json!({"received": true, "duplicate": false}),
            "{kind}: {sent}"
        );
    }
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["reverification_recommended"], false, "{:?}", g.body);
    let mut types: Vec<&str> = g.body["identity_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["LINE_TYPE_CHANGE", "MOVED_OUT_OF_COVERAGE", "SOMETHING_NEW"]
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_identity_prove_reported_after_possession_is_matched_too() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;
    let r = gw.start_prove("user-mob-wh", "mobile", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "passed")
        .await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{id}")).await.body["status"],
        "verified"
    );
    // The identity came with verify-status: no enrollment call was needed.
    assert_eq!(gw.running.prove.identity_requests(), 0);
    let identity = identity_of(&gw, &id).await;
    let sent = gw
        .prove_webhook(&identity, "PHONE_NUMBER_CHANGE", true)
        .await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(g.body["reverification_recommended"], true, "{:?}", g.body);
    assert_eq!(g.body["identity_events"][0]["type"], "PHONE_NUMBER_CHANGE");
    gw.stop().await;
}

#[tokio::test]
async fn the_latest_verified_session_of_an_identity_gets_its_events() {
    let (gw, first, identity) = with_enrolled_identity("user-again").await;
    let r = gw.start_prove("user-again", "none", json!({})).await;
    let second = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        identity_of(&gw, &second).await,
        identity,
        "the same identity"
    );
    gw.prove_webhook(&identity, "PORT", true).await;
    let g1 = gw.get(&format!("/v1/sessions/{first}")).await;
    let g2 = gw.get(&format!("/v1/sessions/{second}")).await;
    assert_eq!(g1.body["identity_events"], json!([]));
    assert_eq!(g2.body["identity_events"][0]["type"], "PORT");
    gw.stop().await;
}

#[tokio::test]
async fn an_authentic_body_of_an_unknown_shape_is_kept_and_acknowledged_never_refused() {
    // Prove does not retry: a 4xx would lose it for good. Kept (its hash and outline only: the
    // body may hold personal data), logged, 200, and no session touched.
    let (gw, _, _) = with_enrolled_identity("user-malformed").await;
    let secret = webhook_secret(&gw);
    let t = now();
    let auth = bearer(
        &secret,
        json!({"iss": "Prove Identity", "iat": t, "exp": t + 300}),
    );
    let before = gw.snapshot().await;
    let odd = r#"[{"eventType":"PORT","phoneNumber":"+12001004011"}]"#;
    for body in ["{}", "[]", "not json", odd] {
        let r = gw.deliver_prove(body, Some(&auth)).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({"received": true, "duplicate": false})),
            "{body}"
        );
    }
    let after = gw.snapshot().await;
    let diff = changed(&before, &after);
    assert_eq!(diff.len(), 4, "one kept record per body: {diff:?}");
    assert!(
        diff.iter().all(|k| k.starts_with("WH#prove#unusable-")),
        "{diff:?}"
    );
    assert!(
        !format!("{after:?}").contains("2001004011"),
        "no value of the body is kept"
    );
    // The same body again is a duplicate.
    let r = gw.deliver_prove(odd, Some(&auth)).await;
    assert_eq!(r.body["duplicate"], true, "{:?}", r.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_about_one_identity_are_all_recorded() {
    let (gw, id, identity) = with_enrolled_identity("user-race").await;
    let secret = webhook_secret(&gw);
    let t = now();
    let auth = bearer(
        &secret,
        json!({"iss": "Prove Identity", "iat": t, "exp": t + 300}),
    );
    let kinds = [
        "PORT",
        "LINE_TYPE_CHANGE",
        "DISCONNECT",
        "PHONE_NUMBER_CHANGE",
        "NEW_KIND",
    ];
    let tasks: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let (http, url, auth) = (gw.http.clone(), gw.url("/v1/webhooks/prove"), auth.clone());
            let body = event(&format!("evt-race-{i}"), kind, &identity);
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-prove-authorization", auth)
                    .body(body)
                    .send()
                    .await
                    .expect("the local server answers");
                (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["duplicate"], false);
    }
    let g = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        g.body["identity_events"].as_array().unwrap().len(),
        kinds.len(),
        "no event lost to a race: {:?}",
        g.body
    );
    assert_eq!(g.body["reverification_recommended"], true);
    for i in 0..kinds.len() {
        assert_eq!(
            gw.inspect()
                .delivery_state("prove", &format!("evt-race-{i}"))
                .await
                .unwrap(),
            Some(idv::store::DeliveryState::Applied)
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_captured_token_cannot_carry_another_body_and_old_or_long_lived_tokens_are_refused() {
    let (gw, id, identity) = with_enrolled_identity("user-m3").await;
    let secret = webhook_secret(&gw);
    let t = now();
    // One genuine delivery: its header is seen by someone on the way (a proxy, a log).
    let sent = gw.prove_webhook(&identity, "LINE_TYPE_CHANGE", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let captured = sent["authorization"].as_str().unwrap().to_owned();
    let before = gw.snapshot().await;
    let forged = event("forged-1", "DISCONNECT", &identity);
    let r = gw.deliver_prove(&forged, Some(&captured)).await;
    assert_eq!(r.status, 401, "a second body under one token: {:?}", r.body);
    // The genuine body again under its own token is a redelivery, not a forgery.
    let again = gw
        .deliver_prove(sent["body"].as_str().unwrap(), Some(&captured))
        .await;
    assert_eq!(
        (again.status, again.body["duplicate"].clone()),
        (200, json!(true))
    );
    for (what, claims) in [
        (
            "issued an hour ago",
            json!({"iss": "Prove Identity", "iat": t - 3600, "exp": t + 60}),
        ),
        (
            "valid for a day",
            json!({"iss": "Prove Identity", "iat": t, "exp": t + 86_400}),
        ),
    ] {
        let r = gw
            .deliver_prove(
                &event(&format!("evt-{what}"), "PORT", &identity),
                Some(&bearer(&secret, claims)),
            )
            .await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
    }
    assert_eq!(gw.snapshot().await, before, "nothing refused was written");
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["reverification_recommended"], false, "{s}");
    // A token without a `jti` cannot be bound (two deliveries of one second carry the same
    // token): both of these are taken, within its short life.
    let plain = bearer(
        &secret,
        json!({"iss": "Prove Identity", "iat": t, "exp": t + 300}),
    );
    for (i, ty) in ["LINE_TYPE_CHANGE", "MOVED_OUT_OF_COVERAGE"]
        .iter()
        .enumerate()
    {
        let r = gw
            .deliver_prove(
                &event(&format!("same-second-{i}"), ty, &identity),
                Some(&plain),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    gw.stop().await;
}
