//! Two tenants (apps) with the same `user_id` at every provider: neither sees, blocks nor changes
//! the other's sessions, provider-side users or events, through any route, webhook or read
//! (security review C1, L13). Over HTTP, on DynamoDB Local, with the simulators.

use crate::passbase_support::{act, new_identity};
use idv::session::SessionId;
use idv_tests::ProveOf;
use idv_tests::{Backend, Gateway, jwt_sub};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    // Every read refreshes from the provider: a leak through a provider read shows at once.
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().expect("a session id").to_owned()
}

#[tokio::test]
async fn authento_users_of_two_tenants_are_two_users_at_authento() {
    let gw = gateway().await;
    // Tenant A's user-x is verified at Authento.
    let a = gw.issue_token("user-x", "BASIC").await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a_id = a.body["session"]["id"].as_str().unwrap().to_owned();
    let a_sub = jwt_sub(a.body["token"].as_str().unwrap());
    gw.authento_subject(&a_sub, "BASIC", "approve", true).await;
    assert_eq!(gw.stored_status(&a_id).await, "verified");

    // Tenant B's own user-x has verified nothing: a session of its own, another Authento user.
    let b = gw
        .post_as(
            &gw.other_key,
            "/v1/tokens",
            &json!({"user_id": "user-x", "verification_type": "BASIC"}),
        )
        .await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    let b_id = b.body["session"]["id"].as_str().unwrap().to_owned();
    let b_sub = jwt_sub(b.body["token"].as_str().unwrap());
    assert_ne!(a_sub, b_sub, "one Authento user for two tenants' users");
    assert!(
        !b_sub.contains("user-x") && !a_sub.contains("user-x"),
        "the app's user id is not what Authento sees: {a_sub} {b_sub}"
    );
    let read = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{b_id}"))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["status"], "created", "{:?}", read.body);
    assert_eq!(read.body["provider_status"], Value::Null, "{:?}", read.body);

    // While A's user-y has an open session, B's user-y is not blocked and learns nothing.
    let ay = gw.issue_token("user-y", "POA").await;
    assert_eq!(ay.status, 201);
    let by = gw
        .post_as(
            &gw.other_key,
            "/v1/tokens",
            &json!({"user_id": "user-y", "verification_type": "POA"}),
        )
        .await;
    assert_eq!(by.status, 201, "{:?}", by.body);
    assert_ne!(by.body["session"]["id"], ay.body["session"]["id"]);

    // B's user is rejected at Authento: A's verified session is untouched, even when re-read.
    gw.authento_subject(&b_sub, "BASIC", "reject", true).await;
    let b_now = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{b_id}?refresh=false"))
        .await;
    assert_eq!(b_now.body["status"], "failed", "{:?}", b_now.body);
    let a_now = gw.get(&format!("/v1/sessions/{a_id}")).await;
    assert_eq!(a_now.body["status"], "verified", "{:?}", a_now.body);

    // Each tenant lists only its own sessions of user-x.
    let list_a = gw.get("/v1/users/user-x/sessions").await;
    let list_b = gw.get_as(&gw.other_key, "/v1/users/user-x/sessions").await;
    let ids = |r: &Value| -> Vec<String> {
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&list_a.body), std::slice::from_ref(&a_id));
    assert_eq!(ids(&list_b.body), std::slice::from_ref(&b_id));
    gw.stop().await;
}

async fn identity_of(gw: &Gateway, id: &str) -> String {
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

#[tokio::test]
async fn prove_customers_and_identities_are_per_tenant() {
    let gw = gateway().await;
    let body = json!({"provider": "prove", "user_id": "user-x", "phone_number": "+12001004011",
        "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "none"});
    let a = gw.post("/v1/sessions", &body).await;
    assert_eq!(
        (a.status, a.body["status"].clone()),
        (201, json!("verified"))
    );
    let b = gw.post_as(&gw.other_key, "/v1/sessions", &body).await;
    assert_eq!(
        (b.status, b.body["status"].clone()),
        (201, json!("verified"))
    );
    let (a_id, b_id) = (id_of(&a.body), id_of(&b.body));
    let (a_identity, b_identity) = (identity_of(&gw, &a_id).await, identity_of(&gw, &b_id).await);
    assert_ne!(
        a_identity, b_identity,
        "one Identity Manager identity (one clientCustomerId) for two tenants' users"
    );

    // A's number is ported: only A's session hears of it, and B's does not, nor the reverse.
    let r = gw.prove_webhook(&a_identity, "PORT", true).await;
    assert_eq!(r["delivered"]["status"], 200, "{r}");
    let a_now = gw.get(&format!("/v1/sessions/{a_id}")).await.body;
    let b_now = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{b_id}"))
        .await
        .body;
    assert_eq!(a_now["reverification_recommended"], true, "{a_now}");
    assert_eq!(b_now["reverification_recommended"], false, "{b_now}");
    assert_eq!(b_now["identity_events"], json!([]), "{b_now}");
    gw.prove_webhook(&b_identity, "DISCONNECT", true).await;
    let a_events = gw.get(&format!("/v1/sessions/{a_id}")).await.body["identity_events"].clone();
    let types: Vec<&str> = a_events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PORT"], "{a_events}");
    gw.stop().await;
}

#[tokio::test]
async fn a_passbase_identity_of_one_tenant_cannot_be_taken_by_another() {
    let gw = gateway().await;
    // A's user finished the SDK flow; A's session names it in the SDK's metaData.
    let a = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-x"}),
        )
        .await;
    assert_eq!(a.status, 201);
    let a_id = id_of(&a.body);
    let key = new_identity(&gw, Some(json!({"session_ref": a_id}))).await;
    act(&gw, &key, &["approve"], "none").await;

    // B's user-x posts A's key (it came from a browser): refused, and B learns nothing of A.
    let b = gw
        .post_as(
            &gw.other_key,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-x"}),
        )
        .await;
    let b_id = id_of(&b.body);
    let before = gw.snapshot().await;
    let link = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{b_id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(link.status, 409, "{:?}", link.body);
    assert!(
        !link.body["detail"].as_str().unwrap_or("").contains(&a_id),
        "{:?}",
        link.body
    );
    assert_eq!(
        gw.snapshot().await,
        before,
        "a refused link changes nothing"
    );
    let started = gw
        .post_as(
            &gw.other_key,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-x", "identity_access_key": key}),
        )
        .await;
    assert_eq!(started.status, 409, "{:?}", started.body);
    assert_eq!(
        gw.get_as(&gw.other_key, &format!("/v1/sessions/{b_id}?refresh=false"))
            .await
            .body["status"],
        "created"
    );

    // A links its own identity and is verified; B's session stays as it was.
    let link = gw
        .post(
            &format!("/v1/sessions/{a_id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(
        (link.status, link.body["status"].clone()),
        (200, json!("verified"))
    );
    // A's user logs in again biometrically: a reauthentication of A's user only.
    act(&gw, &key, &["authenticate"], "each").await;
    let mine = gw.get("/v1/users/user-x/reauthentications").await;
    let theirs = gw
        .get_as(&gw.other_key, "/v1/users/user-x/reauthentications")
        .await;
    assert_eq!(
        mine.body["data"].as_array().unwrap().len(),
        1,
        "{:?}",
        mine.body
    );
    assert_eq!(theirs.body["data"], json!([]), "{:?}", theirs.body);
    gw.stop().await;
}

#[tokio::test]
async fn nevis_sessions_of_two_tenants_stay_apart() {
    let gw = gateway().await;
    let body = json!({"provider": "nevis", "user_id": "user-x"});
    let a = gw.post("/v1/sessions", &body).await;
    let b = gw.post_as(&gw.other_key, "/v1/sessions", &body).await;
    assert_eq!((a.status, b.status), (201, 201));
    let tc = |r: &Value| {
        r["client"]["start_url"]
            .as_str()
            .unwrap()
            .split_once("?tc=")
            .unwrap()
            .1
            .to_owned()
    };
    assert_ne!(tc(&a.body), tc(&b.body));
    gw.nevis(&tc(&a.body), "open", None).await;
    gw.nevis(&tc(&a.body), "complete", None).await;
    let a_now = gw.get(&format!("/v1/sessions/{}", id_of(&a.body))).await;
    let b_now = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{}", id_of(&b.body)))
        .await;
    assert_eq!(a_now.body["status"], "verified", "{:?}", a_now.body);
    assert_eq!(b_now.body["status"], "created", "{:?}", b_now.body);
    // Neither reads nor cancels the other's session.
    let cross = gw
        .get_as(&gw.other_key, &format!("/v1/sessions/{}", id_of(&a.body)))
        .await;
    assert_eq!(cross.status, 404);
    let cancel = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{}/cancel", id_of(&a.body)),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn another_tenants_key_cannot_link_a_passbase_session() {
    let gw = gateway().await;
    let a = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-l"}),
        )
        .await;
    let key = new_identity(&gw, None).await;
    let before = gw.snapshot().await;
    let r = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{}/link", id_of(&a.body)),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}
