//! `Idempotency-Key` that holds (security review M1, M2, L7, L9): bound to tenant, method, full
//! path and body; concurrent identical requests make exactly one provider call; the stored
//! fingerprint is a keyed MAC; a replay never answers another tenant's session.

use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};

async fn post_with_key(gw: &Gateway, path: &str, key: &str, body: &Value) -> Reply {
    gw.send(
        gw.http
            .post(gw.url(path))
            .bearer_auth(&gw.key)
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

fn prove_body(user: &str) -> Value {
    json!({"provider": "prove", "user_id": user, "phone_number": "+12001004011",
           "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "mobile"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_identical_starts_make_one_provider_call() {
    let gw = Gateway::start(Backend::Dynamo).await;
    // Prove answers slowly, so that every twin arrives while the first is still in flight.
    gw.prove_faults(json!({"endpoint": "verify", "delay_next": 16, "delay_ms": 400}))
        .await;
    let body = prove_body("user-c16");
    let replies = futures_join_all(&gw, 16, "/v1/sessions", "k-c16", &body).await;
    assert_eq!(
        gw.running.prove.verify_requests(),
        1,
        "each /v3/verify texts the user"
    );
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 409).collect();
    assert_eq!(created.len() + busy.len(), 16, "{:?}", statuses(&replies));
    assert!(!created.is_empty());
    let first = created[0].body["id"].clone();
    assert!(created.iter().all(|r| r.body["id"] == first), "one session");
    for r in busy {
        assert_eq!(r.body["code"], "conflict", "{:?}", r.body);
        assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    }
    // Once it finished, the key answers the replay.
    let again = post_with_key(&gw, "/v1/sessions", "k-c16", &body).await;
    assert_eq!((again.status, again.body["id"].clone()), (201, first));
    assert_eq!(gw.running.prove.verify_requests(), 1);

    // The same for Nevis: one Nevis session, not sixteen left behind.
    let nevis = json!({"provider": "nevis", "user_id": "user-c16"});
    gw.nevis_faults(json!({"delay_next": 16, "delay_ms": 400}))
        .await;
    let replies = futures_join_all(&gw, 16, "/v1/sessions", "k-n16", &nevis).await;
    assert_eq!(
        gw.running.nevis.create_requests(),
        1,
        "{:?}",
        statuses(&replies)
    );
    gw.stop().await;
}

fn statuses(rs: &[Reply]) -> Vec<u16> {
    rs.iter().map(|r| r.status).collect()
}

async fn futures_join_all(
    gw: &Gateway,
    n: usize,
    path: &str,
    key: &str,
    body: &Value,
) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let req = gw
            .http
            .post(gw.url(path))
            .bearer_auth(&gw.key)
            .header("idempotency-key", key)
            .json(body);
        set.spawn(async move {
            let resp = req.send().await.expect("reaches the server");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                body,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn a_key_reused_on_another_sessions_cancel_or_link_is_a_conflict() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let open = |user: &'static str| {
        let gw = &gw;
        async move {
            gw.post(
                "/v1/sessions",
                &json!({"provider": "passbase", "user_id": user}),
            )
            .await
            .body["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (a, b) = (open("user-m1a").await, open("user-m1b").await);
    let first = post_with_key(
        &gw,
        &format!("/v1/sessions/{a}/cancel"),
        "cancel-k",
        &json!({}),
    )
    .await;
    assert_eq!((first.status, first.body["id"].clone()), (200, json!(a)));
    let second = post_with_key(
        &gw,
        &format!("/v1/sessions/{b}/cancel"),
        "cancel-k",
        &json!({}),
    )
    .await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(gw.stored_status(&b).await, "created", "B was not canceled");
    // The same request again is the replay.
    let replay = post_with_key(
        &gw,
        &format!("/v1/sessions/{a}/cancel"),
        "cancel-k",
        &json!({}),
    )
    .await;
    assert_eq!((replay.status, replay.body["id"].clone()), (200, json!(a)));

    // Link: the same key on another session's link.
    let (c, d) = (open("user-m1c").await, open("user-m1d").await);
    let k1 = crate::passbase_support::new_identity(&gw, None).await;
    let link = json!({"identity_access_key": k1});
    let r = post_with_key(&gw, &format!("/v1/sessions/{c}/link"), "link-k", &link).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = post_with_key(&gw, &format!("/v1/sessions/{d}/link"), "link-k", &link).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_ne!(r.body["id"], json!(c));
    gw.stop().await;
}

/// The fingerprints stored under `IDEM#` items.
async fn stored_fingerprints(gw: &Gateway) -> Vec<String> {
    gw.snapshot()
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("IDEM#"))
        .filter_map(|(_, item)| {
            item.get("request_hash")
                .or_else(|| item.get("fingerprint"))
                .and_then(|v| v.as_s().ok())
                .cloned()
        })
        .collect()
}

#[tokio::test]
async fn the_stored_fingerprint_is_keyed_and_reveals_nothing_about_the_body() {
    use sha2::{Digest, Sha256};
    let body = prove_body("user-l7");
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut prints = Vec::new();
    for _ in 0..2 {
        let gw = Gateway::start(Backend::Dynamo).await;
        let r = post_with_key(&gw, "/v1/sessions", "k-l7", &body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let stored = stored_fingerprints(&gw).await;
        assert_eq!(stored.len(), 1);
        for bare in [
            hex::encode(Sha256::digest(&bytes)),
            hex::encode(Sha256::digest(
                [b"POST /v1/sessions\0".as_slice(), &bytes].concat(),
            )),
        ] {
            assert_ne!(stored[0], bare, "a bare hash of the body is stored");
        }
        prints.push(stored[0].clone());
        gw.stop().await;
    }
    // Two gateways (two fingerprint keys): the same request, two unrelated fingerprints.
    assert_ne!(prints[0], prints[1], "the fingerprint is not keyed");
}

#[tokio::test]
async fn a_replay_never_answers_another_tenants_session() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let body = json!({"provider": "passbase", "user_id": "user-l9"});
    let a = post_with_key(&gw, "/v1/sessions", "shared-k", &body).await;
    assert_eq!(a.status, 201);
    // The other tenant, same key and same body: its own session, not A's.
    let b = gw
        .send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.other_key)
                .header("idempotency-key", "shared-k")
                .json(&body),
        )
        .await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    assert_ne!(a.body["id"], b.body["id"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_key_is_kept_24_hours_then_free_for_a_new_request() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let body = json!({"provider": "nevis", "user_id": "user-24h"});
    let first = post_with_key(&gw, "/v1/sessions", "k-24h", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // 23 hours later: still the replay (a function whose clock is ahead, on the same table).
    let key = idv::flows::idempotency::IdempotencyKey::new(
        "k-24h",
        "POST",
        "/v1/sessions",
        &serde_json::to_vec(&body).unwrap(),
        &gw.running.secrets.fingerprint_key,
    )
    .unwrap();
    let input = body.as_object().unwrap().clone();
    let at_23h = gw.app_at(time::Duration::hours(23));
    let replay = idv_tests::start_session(&at_23h, idv_tests::TENANT, input.clone(), Some(&key))
        .await
        .unwrap();
    assert_eq!(json!(replay.session.id.as_str()), first.body["id"]);
    // 25 hours later (DynamoDB's TTL may not have deleted it yet): a new session.
    let at_25h = gw.app_at(time::Duration::hours(25));
    let fresh = idv_tests::start_session(&at_25h, idv_tests::TENANT, input, Some(&key))
        .await
        .unwrap();
    assert_ne!(json!(fresh.session.id.as_str()), first.body["id"]);
    gw.stop().await;
}
