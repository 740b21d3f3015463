//! No provider decision is ever lost (security review H1, M4, M5, L6, L15, and the promise that an
//! authentic delivery is never refused for its shape): a reversal reaches the session even when
//! the first read after the webhook fails and the provider never redelivers; one delivery that
//! concerns several sessions applies to each; a repeated legitimate event is not a duplicate;
//! unclear answers never overturn; events that arrive early are matched later.

use crate::passbase_support::{self as pb, act, new_identity};
use idv::flows::reconcile;
use idv::session::SessionId;
use idv_tests::ProveOf;
use idv_tests::faulty::FaultyStore;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;

async fn gateway() -> Gateway {
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

async fn history_reasons(gw: &Gateway, id: &str) -> Vec<String> {
    gw.inspect()
        .session_history(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.reason.unwrap_or_default())
        .collect()
}

async fn verified_authento(gw: &Gateway, user: &str, vt: &str) -> String {
    let r = gw.issue_token(user, vt).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    gw.authento(user, vt, "approve", true).await;
    assert_eq!(gw.stored_status(&id).await, "verified");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overturn_whose_first_read_fails_and_is_never_redelivered_still_reaches_the_session() {
    let gw = gateway().await;
    let id = verified_authento(&gw, "user-h", "BASIC").await;

    // A review overturns it at Authento; the one webhook that says so finds Authento's API down.
    gw.authento_faults(json!({"fail_next": 20, "status": 503}))
        .await;
    gw.authento("user-h", "BASIC", "reject", true).await;
    gw.authento_faults(json!({"fail_next": 0})).await;
    assert_eq!(gw.stored_status(&id).await, "verified", "not read yet");

    // Authento never sends it again. The scheduled run re-reads what the delivery concerns.
    reconcile::run(gw.app_at(Duration::minutes(10))).await;
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(s.body["status"], "failed", "{:?}", s.body);
    assert_eq!(s.body["last_error"]["code"], "rejected");
    assert_eq!(s.body["last_error"]["provider_code"], "REJECTED");
    assert!(
        history_reasons(&gw, &id)
            .await
            .contains(&"overturned".to_owned())
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_about_two_sessions_applies_to_each_even_when_one_write_fails() {
    let gw = gateway().await;
    let basic = gw.issue_token("user-f", "BASIC").await.body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let poa = gw.issue_token("user-f", "POA").await.body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gw.authento("user-f", "POA", "open", true).await;
    gw.authento("user-f", "BASIC", "open", true).await;
    // The user submits the POA track: the one delivery about the user concerns both sessions.
    let sim = gw.authento("user-f", "POA", "submit", false).await;
    let (body, digest) = (
        sim["webhook"]["body"].as_str().unwrap().to_owned(),
        sim["webhook"]["digest"].as_str().unwrap().to_owned(),
    );

    // The first delivery reaches a function whose write of the POA session fails.
    let faulty = FaultyStore::new(gw.running.app.store.clone());
    faulty.fail_writes_of(&SessionId::parse(&poa).unwrap(), 20);
    let app = gw.app_with(faulty.clone(), Duration::ZERO);
    let first = idv_tests::ingest_authento(&app, body.as_bytes(), Some(&digest)).await;
    assert_eq!(gw.stored_status(&basic).await, "pending", "{first:?}");
    assert_eq!(gw.stored_status(&poa).await, "pending", "its write failed");

    // Redelivered (or retried by the gateway itself): POA gets it, not a duplicate.
    let again = gw.deliver_authento(&body, Some(&digest)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    reconcile::run(gw.app_at(Duration::minutes(10))).await;
    assert_eq!(gw.stored_status(&poa).await, "processing");
    assert_eq!(gw.stored_status(&basic).await, "pending");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_from_authento_never_overturns_a_decision() {
    let gw = gateway().await;
    let id = verified_authento(&gw, "user-n", "BASIC").await;
    // Authento deleted the user (or the API URL is wrong): every read is a 404.
    gw.authento_faults(json!({"fail_next": 20, "status": 404}))
        .await;
    gw.authento("user-n", "BASIC", "open", true).await;
    reconcile::run(gw.app_at(Duration::minutes(10))).await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "verified", "{s}");
    let reasons = history_reasons(&gw, &id).await;
    assert!(!reasons.contains(&"overturned".to_owned()), "{reasons:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_passbase_delivery_is_not_lost_when_its_redelivery_fails() {
    let gw = gateway().await;
    let key = new_identity(&gw, None).await;
    act(&gw, &key, &["approve"], "none").await;
    let report = act(&gw, &key, &["authenticate"], "none").await;
    let body = pb::bodies(&report)[0].clone();
    // No session knows the identity yet: kept.
    assert_eq!(pb::deliver(&gw, &body).await.status, 200);
    // Redelivered while Passbase's API is down.
    pb::faults(&gw, 20, 503).await;
    pb::deliver(&gw, &body).await;
    pb::faults(&gw, 0, 503).await;
    // The app links the identity: the kept reauthentication is settled on its session.
    let id = pb::linked_session(&gw, "user-l6", &key).await;
    reconcile::run(gw.app_at(Duration::minutes(10))).await;
    assert_eq!(gw.stored_status(&id).await, "verified");
    let list = gw.get("/v1/users/user-l6/reauthentications").await;
    assert_eq!(
        list.body["data"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        list.body
    );
    gw.stop().await;
}

fn encrypted(gw: &Gateway, event: &Value) -> String {
    idv::webhooks::aes_cbc_body::encrypt(
        &pb::webhook_secret(gw),
        rand_iv(),
        event.to_string().as_bytes(),
    )
    .unwrap()
}

fn rand_iv() -> [u8; 16] {
    let t = idv::ids::random_token();
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&t.as_bytes()[..16]);
    iv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_review_of_the_same_identity_is_not_a_duplicate_of_the_first() {
    let gw = gateway().await;
    let key = new_identity(&gw, None).await;
    let id = pb::linked_session(&gw, "user-l15", &key).await;
    // Events without `updated` or `created` (Passbase's docs do not promise them on every event).
    act(&gw, &key, &["hold_for_review"], "none").await;
    act(&gw, &key, &["review_approve"], "none").await;
    let reviewed = json!({"event": "VERIFICATION_REVIEWED", "key": key, "status": "approved"});
    assert_eq!(
        pb::deliver(&gw, &encrypted(&gw, &reviewed)).await.status,
        200
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    // A second review declines it: Passbase sends the same event name again.
    act(&gw, &key, &["review_decline"], "none").await;
    let reviewed = json!({"event": "VERIFICATION_REVIEWED", "key": key, "status": "declined"});
    let r = pb::deliver(&gw, &encrypted(&gw, &reviewed)).await;
    assert_eq!(r.body["duplicate"], false, "{:?}", r.body);
    assert_eq!(gw.stored_status(&id).await, "failed");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prove_event_that_arrives_before_the_identity_is_known_is_matched_later() {
    let gw = gateway().await;
    let r = gw.start_prove("user-m4", "mobile", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let auth = gw
        .prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "passed")
        .await;
    let identity = auth["identity_id"].as_str().expect("enrolled").to_owned();
    // The number is ported before the gateway has read the flow's outcome.
    let sent = gw.prove_webhook(&identity, "PORT", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "verified", "{s}");
    let types: Vec<&str> = s["identity_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PORT"], "{s}");
    assert_eq!(s["reverification_recommended"], true, "{s}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prove_event_with_only_the_documented_fields_is_accepted_and_matched() {
    let gw = gateway().await;
    let r = gw.start_prove("user-doc", "none", json!({})).await;
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let identity = gw
        .running
        .app
        .store
        .get_session(&SessionId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .prove()
        .unwrap()
        .identity_id
        .unwrap();
    // Prove documents the client customer id, not an identity id.
    let sent = gw
        .prove_webhook_with(json!({"identity_id": identity, "event_type": "DISCONNECT",
                                   "documented_only": true}))
        .await;
    assert!(
        !sent["body"].as_str().unwrap().contains("identityId"),
        "{sent}"
    );
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["reverification_recommended"], true, "{s}");
    assert_eq!(s["identity_events"][0]["type"], "DISCONNECT", "{s}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_whose_reads_keep_failing_do_not_starve_the_others() {
    use idv::session::{HistoryEntry, Provider, Session};
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_RECONCILE_MAX_SESSIONS", "3")]).await;
    let store = gw.running.app.store.clone();
    let now = time::OffsetDateTime::now_utc();
    // One Nevis session, due soon.
    let (nevis, tc, _) = crate::nevis_flow::start(&gw, "user-m7").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "complete", None).await;
    // Three Passbase sessions due long ago whose reads fail for good (the key is refused), each
    // in a due shard of its own (a run takes a share per shard first).
    let mut shards = std::collections::BTreeSet::from([gw
        .inspect()
        .due_shard_of(&SessionId::parse(&nevis).unwrap())]);
    let mut seeded = 0;
    while seeded < 3 {
        let key = new_identity(&gw, None).await;
        let mut s = Session::new(
            idv_tests::TENANT,
            Provider::named("passbase"),
            &format!("u-{seeded}"),
            now,
        );
        if !shards.insert(gw.inspect().due_shard_of(&s.id)) {
            continue;
        }
        s.provider_ref = Some(key);
        s.next_check_at = Some(now - Duration::minutes(30));
        store
            .create_session(&s, &HistoryEntry::created(&s), &[], None)
            .await
            .unwrap();
        seeded += 1;
    }
    pb::faults(&gw, 1000, 401).await;

    let first = reconcile::run(gw.app_at(Duration::minutes(1))).await;
    assert_eq!(first.failed, 3, "{first:?}");
    let second = reconcile::run(gw.app_at(Duration::minutes(2))).await;
    assert_eq!(
        gw.stored_status(&nevis).await,
        "verified",
        "the Nevis session was crowded out: {second:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_twice_at_once_is_applied_once() {
    let gw = gateway().await;
    let _ = gw.issue_token("user-twice", "BASIC").await;
    let sim = gw.authento("user-twice", "BASIC", "open", false).await;
    let (body, digest) = (
        sim["webhook"]["body"].as_str().unwrap(),
        sim["webhook"]["digest"].as_str(),
    );
    let (a, b) = tokio::join!(
        gw.deliver_authento(body, digest),
        gw.deliver_authento(body, digest)
    );
    let fresh = [&a, &b]
        .iter()
        .filter(|r| r.body["duplicate"] == false)
        .count();
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(fresh, 1, "{:?} {:?}", a.body, b.body);
    let _ = Arc::new(());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_gateway_cannot_read_never_moves_a_decision_and_is_noted_and_retried() {
    let gw = gateway().await;
    let id = verified_authento(&gw, "user-junk", "BASIC").await;
    // Authento answers every read with more than the gateway reads of an answer (2 MB).
    gw.authento_faults(json!({"fail_next": 20, "status": 200, "body_bytes": 2_000_000}))
        .await;
    let sim = gw.authento("user-junk", "BASIC", "open", true).await;
    assert_eq!(sim["webhook"]["status"], 200, "{sim}");
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "verified", "{s}");
    let reasons = history_reasons(&gw, &id).await;
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "unclear_provider_error")
            .count(),
        1,
        "noted once: {reasons:?}"
    );
    // Authento reads again: the kept delivery is retried and the session read clearly.
    gw.authento_faults(json!({"fail_next": 0})).await;
    let run = reconcile::run(gw.app_at(Duration::minutes(10))).await;
    assert_eq!(run.deliveries.settled, 1, "{run:?}");
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}
