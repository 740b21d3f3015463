//! `reconcile` (docs/api.md#reconciliation): it alone takes open Nevis sessions to their outcome,
//! expires abandoned ones at our deadline, leaves a session untouched when Nevis is down (and
//! tries again next run), and finds what is due through the due index, not by scanning: over
//! 1,000 sessions of which 10 are due it touches only those 10 (DynamoDB and Nevis calls counted).

use super::nevis_flow::start;
use idv::flows::reconcile;
use idv::session::{HistoryEntry, Provider, Session, SessionId, Status};
use idv::store::{DynamoStore, Store};
use idv_tests::{Backend, DynamoCalls, Gateway, TENANT};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::Duration;

/// Where a scheduled run sees the sessions: past their first check (5 s), before any deadline.
const LATER: Duration = Duration::minutes(1);

async fn gateway(settings: &[(&str, &str)]) -> Gateway {
    Gateway::start_with(Backend::Dynamo, settings).await
}

async fn stored(gw: &Gateway, id: &str) -> Session {
    gw.running
        .app
        .store
        .get_session(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the session")
        .into_value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_alone_takes_a_completed_capture_to_verified() {
    let gw = gateway(&[]).await;
    let (id, tc, start_url) = start(&gw, "user-r1").await;
    assert_eq!(gw.send(gw.http.get(&start_url)).await.status, 200);
    gw.nevis(&tc, "complete", None).await;

    // Before its first check is due, a run leaves it alone.
    let early = reconcile::run(gw.app_at(Duration::ZERO)).await;
    assert_eq!((early.due, early.refreshed), (0, 0));
    assert_eq!(gw.running.nevis.get_requests(), 0);

    let run = reconcile::run(gw.app_at(LATER)).await;
    assert_eq!(
        (run.due, run.refreshed, run.changed, run.failed),
        (1, 1, 1, 0)
    );
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(s.body["status"], "verified", "{:?}", s.body);
    assert_eq!(gw.running.nevis.get_requests(), 1, "one read, by reconcile");
    // Done: no longer due, however late the next run.
    let next = reconcile::run(gw.app_at(Duration::hours(5))).await;
    assert_eq!(next.due, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_fails_a_session_with_nevis_error_code() {
    let gw = gateway(&[]).await;
    let (id, tc, _) = start(&gw, "user-r2").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "fail", Some("DOCUMENT_EXPIRED")).await;
    let run = reconcile::run(gw.app_at(LATER)).await;
    assert_eq!((run.refreshed, run.changed), (1, 1));
    let s = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_eq!(s.body["status"], "failed");
    assert_eq!(s.body["last_error"]["code"], "document_expired");
    assert_eq!(s.body["last_error"]["provider_code"], "DOCUMENT_EXPIRED");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_capture_expires_at_the_deadline() {
    let gw = gateway(&[("IDV_NEVIS_SESSION_TTL_SECONDS", "600")]).await;
    let (id, tc, _) = start(&gw, "user-r3").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "abandon", None).await;

    let run = reconcile::run(gw.app_at(LATER)).await;
    assert_eq!((run.refreshed, run.changed, run.expired), (1, 1, 0));
    assert_eq!(gw.stored_status(&id).await, "pending");
    // Unchanged reads back off: the next check is later than the first one was.
    let s = stored(&gw, &id).await;
    assert!(s.check_attempts >= 1 && s.next_check_at.is_some());

    let reads = gw.running.nevis.get_requests();
    let run = reconcile::run(gw.app_at(Duration::minutes(11))).await;
    assert_eq!((run.due, run.expired, run.refreshed), (1, 1, 0));
    assert_eq!(
        gw.running.nevis.get_requests(),
        reads,
        "expiry needs no provider read"
    );
    let s = stored(&gw, &id).await;
    assert_eq!(s.status, Status::Expired);
    assert_eq!(s.next_check_at, None, "it left the due index");
    let history = gw.inspect().session_history(&s.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.to, last.reason.as_deref()),
        (Status::Expired, Some("deadline"))
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nevis_down_during_a_poll_leaves_the_session_unchanged_and_the_next_run_retries() {
    let gw = gateway(&[("IDV_PROVIDER_TIMEOUT_MS", "300")]).await;
    let (id, tc, _) = start(&gw, "user-r4").await;
    gw.nevis(&tc, "complete", None).await;
    let sid = SessionId::parse(&id).unwrap();
    let before = stored(&gw, &id).await;

    // 500 on every attempt of the read: the session keeps its state and goes further back (a
    // failing session must not be first in line again on every run).
    gw.nevis_faults(json!({"fail_next": 3, "status": 500}))
        .await;
    let run = reconcile::run(gw.app_at(LATER)).await;
    assert_eq!((run.due, run.failed, run.refreshed), (1, 1, 0));
    let after = stored(&gw, &id).await;
    assert_eq!(
        (
            after.status,
            after.provider_status.clone(),
            after.updated_at
        ),
        (
            before.status,
            before.provider_status.clone(),
            before.updated_at
        ),
        "the session's state is unchanged"
    );
    assert_eq!(gw.inspect().session_history(&sid).await.unwrap().len(), 1);
    let backed_off = after.next_check_at.unwrap();
    assert!(backed_off >= time::OffsetDateTime::now_utc() + LATER + Duration::minutes(1));
    // Not due again before that.
    let early = reconcile::run(gw.app_at(LATER + Duration::seconds(30))).await;
    assert_eq!(early.due, 0);

    // Nevis too slow to answer within the timeout, on every attempt: further back still.
    gw.nevis_faults(json!({"delay_next": 3, "delay_ms": 2000}))
        .await;
    let run = reconcile::run(gw.app_at(Duration::minutes(5))).await;
    assert_eq!((run.due, run.failed), (1, 1));
    let again = stored(&gw, &id).await;
    assert_eq!(again.status, before.status);
    assert!(again.next_check_at.unwrap() > backed_off);

    // Nevis is back: the next run applies its answer.
    let run = reconcile::run(gw.app_at(Duration::minutes(30))).await;
    assert_eq!(
        (run.due, run.refreshed, run.changed, run.failed),
        (1, 1, 1, 0)
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_apply_each_outcome_once() {
    let gw = gateway(&[]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (id, tc, _) = start(&gw, &format!("user-twice-{i}")).await;
        gw.nevis(&tc, "complete", None).await;
        ids.push(id);
    }
    let (a, b) = tokio::join!(
        reconcile::run(gw.app_at(LATER)),
        reconcile::run(gw.app_at(LATER))
    );
    assert_eq!(a.failed + b.failed, 0, "{a:?} {b:?}");
    for id in &ids {
        let s = stored(&gw, id).await;
        assert_eq!(s.status, Status::Verified);
        let history = gw.inspect().session_history(&s.id).await.unwrap();
        let path: Vec<Status> = history.iter().map(|h| h.to).collect();
        assert_eq!(path, [Status::Created, Status::Verified], "one transition");
    }
    gw.stop().await;
}

/// 990 open Nevis sessions whose next check is an hour away, written straight to the table.
async fn seed_not_due(store: Arc<dyn Store>, n: usize) -> BTreeSet<String> {
    let now = time::OffsetDateTime::now_utc();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let mut s = Session::new(
                TENANT,
                Provider::named("nevis"),
                &format!("user-bulk-{i}"),
                now,
            );
            s.provider_ref = Some(format!("{:09}", 100_000_000 + i));
            s.expires_at = Some(now + Duration::hours(2));
            s.next_check_at = Some(now + Duration::hours(1));
            s.check_attempts = 3;
            store
                .create_session(&s, &HistoryEntry::created(&s), &[], None)
                .await
                .expect("seeded");
            s.id.to_string()
        });
    }
    let mut ids = BTreeSet::new();
    while let Some(id) = tasks.join_next().await {
        ids.insert(id.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_over_1000_sessions_touches_only_the_10_due() {
    let gw = gateway(&[]).await;
    let quiet = seed_not_due(gw.running.app.store.clone(), 990).await;
    let mut due = BTreeSet::new();
    for i in 0..10 {
        let (id, tc, _) = start(&gw, &format!("user-due-{i}")).await;
        if i % 2 == 0 {
            gw.nevis(&tc, "complete", None).await;
        }
        due.insert(id);
    }
    let before = gw.snapshot().await;
    assert_eq!(before.keys().filter(|k| k.ends_with("|SES")).count(), 1000);

    // The run's DynamoDB operations are counted on the wire, Nevis's reads by the simulator.
    let (client, calls) = DynamoCalls::client().await;
    let table = gw.table.clone().unwrap();
    let counted = gw.app_with(Arc::new(DynamoStore::new(client, table)), LATER);
    let reads = gw.running.nevis.get_requests();
    let run = reconcile::run(counted.clone()).await;

    assert_eq!(
        (run.due, run.refreshed, run.changed, run.failed),
        (10, 10, 5, 0)
    );
    assert_eq!(
        gw.running.nevis.get_requests() - reads,
        10,
        "one Nevis read per due session"
    );
    // One query per due shard, and one per retry shard of webhook deliveries (none due here);
    // the due index holds keys only, so each shard with due sessions reads them in one
    // BatchGetItem; then one conditional write per due session (its new state with the history
    // entry appended in the same item). No scan.
    let due_shards: BTreeSet<u16> = due
        .iter()
        .map(|id| gw.inspect().due_shard_of(&SessionId::parse(id).unwrap()))
        .collect();
    let counts = calls.counts();
    assert_eq!(counts.get("Query"), Some(&32), "{counts:?}");
    assert_eq!(
        counts.get("BatchGetItem").copied(),
        Some(due_shards.len() as u64),
        "{counts:?}"
    );
    assert_eq!(counts.get("UpdateItem"), Some(&10), "{counts:?}");
    assert_eq!(calls.total(), 42 + due_shards.len() as u64, "{counts:?}");

    // The table: the 10 due sessions changed (each with a history entry); the 990 did not.
    let after = gw.snapshot().await;
    let changed: BTreeSet<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| {
            k.split('|')
                .next()
                .unwrap()
                .trim_start_matches("SES#")
                .to_owned()
        })
        .collect();
    assert_eq!(changed, due);
    // History entries live in their session's item: no item was added.
    assert_eq!(after.len(), before.len());
    assert!(quiet.is_disjoint(&changed));

    // Nothing is due again yet: a second run only asks the indexes (sessions, deliveries).
    calls.reset();
    let again = reconcile::run(counted).await;
    assert_eq!(again.due, 0);
    assert_eq!(calls.counts().get("Query"), Some(&32));
    assert_eq!(calls.total(), 32);
    assert_eq!(gw.running.nevis.get_requests() - reads, 10);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_bounded_by_its_session_cap_and_its_time_budget() {
    let gw = gateway(&[
        ("IDV_RECONCILE_MAX_SESSIONS", "2"),
        ("IDV_RECONCILE_CONCURRENCY", "1"),
        ("IDV_RECONCILE_BUDGET_SECONDS", "1"),
    ])
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (id, tc, _) = start(&gw, &format!("user-cap-{i}")).await;
        gw.nevis(&tc, "complete", None).await;
        ids.push(id);
    }
    // The first read outlasts the budget: the second session waits for the one slot, and by
    // then the run starts nothing new. The third is beyond the cap.
    gw.nevis_faults(json!({"delay_next": 1, "delay_ms": 1500}))
        .await;
    let run = reconcile::run(gw.app_at(LATER)).await;
    assert_eq!(
        (run.due, run.refreshed, run.deferred, run.failed),
        (2, 1, 1, 0),
        "{run:?}"
    );
    assert_eq!(gw.running.nevis.get_requests(), 1);
    // What was left is still due: the next runs finish it (each within the 1 s budget, so on a
    // loaded machine one run may defer a session to the next: counted, not timed).
    let mut refreshed = 0;
    for _ in 0..5 {
        let run = reconcile::run(gw.app_at(LATER)).await;
        assert_eq!(run.failed, 0, "{run:?}");
        refreshed += run.refreshed;
        if run.due == run.refreshed {
            break;
        }
    }
    assert_eq!(refreshed, 2);
    for id in &ids {
        assert_eq!(gw.stored_status(id).await, "verified");
    }
    gw.stop().await;
}

/// An open Authento session whose next check is `check_in` and deadline `expires_in` from now.
async fn push_session(gw: &Gateway, check_in: Duration, expires_in: Duration) -> Session {
    let now = time::OffsetDateTime::now_utc();
    let mut s = Session::new(TENANT, Provider::named("authento"), "user-push", now);
    s.data = idv::session::ProviderData::of(&idv::providers::authento::AuthentoData {
        verification_type: Some(idv::providers::authento::VerificationType::Basic),
        ..Default::default()
    });
    s.expires_at = Some(now + expires_in);
    s.next_check_at = Some(now + check_in);
    gw.running
        .app
        .store
        .create_session(&s, &HistoryEntry::created(&s), &[], None)
        .await
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_provider_sessions_expire_at_their_deadline_and_are_read_when_due() {
    let gw = gateway(&[]).await;
    let overdue = push_session(&gw, Duration::seconds(-5), Duration::seconds(-5)).await;
    let due = push_session(&gw, Duration::seconds(-5), Duration::hours(1)).await;
    let run = reconcile::run(gw.app_at(Duration::ZERO)).await;
    assert_eq!((run.due, run.expired, run.refreshed), (2, 1, 1), "{run:?}");
    assert_eq!(
        gw.running.authento.userinfo_requests(),
        1,
        "only the open one is read"
    );
    assert_eq!(
        stored(&gw, overdue.id.as_str()).await.status,
        Status::Expired
    );
    // Authento knows nothing new of the user: the next check backs off, before the deadline.
    let s = stored(&gw, due.id.as_str()).await;
    assert_eq!(s.status, Status::Created);
    let next = s.next_check_at.expect("still scheduled");
    assert!(next > time::OffsetDateTime::now_utc() + Duration::minutes(9));
    assert!(next <= s.expires_at.unwrap());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_authento_webhook_is_caught_up_by_reconcile_once_it_is_overdue() {
    let gw = gateway(&[]).await;
    let r = gw.issue_token("user-lost-hook", "BASIC").await;
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    // Authento approves, but its webhook never arrives.
    gw.authento("user-lost-hook", "BASIC", "approve", false)
        .await;

    let soon = reconcile::run(gw.app_at(Duration::minutes(1))).await;
    assert_eq!(soon.due, 0, "not overdue yet: webhooks usually come");
    let late = reconcile::run(gw.app_at(Duration::minutes(11))).await;
    assert_eq!(
        (late.due, late.refreshed, late.changed),
        (1, 1, 1),
        "{late:?}"
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    assert_eq!(
        stored(&gw, &id).await.next_check_at,
        None,
        "done: out of the index"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passbase_session_with_nothing_to_read_yet_is_rescheduled_not_repicked() {
    let gw = gateway(&[]).await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-pb-wait"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let first = reconcile::run(gw.app_at(Duration::minutes(11))).await;
    assert_eq!((first.due, first.rescheduled), (1, 1), "{first:?}");
    let again = reconcile::run(gw.app_at(Duration::minutes(12))).await;
    assert_eq!(again.due, 0, "backed off, not due on every run");
    assert_eq!(gw.stored_status(&id).await, "created");
    gw.stop().await;
}
