//! One contract for both store adapters: the in-memory one and DynamoDB (on DynamoDB Local).
//! Every test here runs twice, once per adapter.

use idv::session::{HistoryEntry, Provider, Session, SessionId, Source, Status};
use idv::store::{
    DUE_SHARDS, Delivery, DeliveryOutcome, DeliveryState, DynamoStore, IdempotencyRecord,
    MemoryStore, RefClaim, SessionWrite, Store, StoreError, due_shard,
};
use idv_tests::{dynamo_client, unique_table};
use std::sync::Arc;
use time::OffsetDateTime;

async fn dynamo() -> Arc<dyn Store> {
    let client = dynamo_client().await;
    let table = unique_table("idv-contract");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    Arc::new(DynamoStore::new(client, table))
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn session(tenant: &str, user: &str, at: OffsetDateTime) -> Session {
    Session::new(tenant, Provider::Authento, user, at)
}

fn first_entry(s: &Session) -> HistoryEntry {
    HistoryEntry::created(s)
}

async fn create(store: &dyn Store, s: &Session) {
    store
        .create_session(s, &first_entry(s), None, None)
        .await
        .expect("create");
}

fn bumped(s: &Session, status: Status) -> (Session, HistoryEntry) {
    let mut next = s.clone();
    next.status = status;
    next.version = s.version + 1;
    let h = HistoryEntry {
        session_id: s.id.clone(),
        version: next.version,
        at: now(),
        from: s.status,
        to: status,
        provider_status: None,
        source: Source::ProviderRead,
        reason: None,
    };
    (next, h)
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory_adapter {
            $( #[tokio::test] async fn $name() { super::$name(super::memory()).await } )*
        }
        mod dynamodb_adapter {
            $( #[tokio::test] async fn $name() { super::$name(super::dynamo().await).await } )*
        }
    };
}

contract!(
    a_created_session_reads_back_identically,
    a_session_id_is_created_once,
    writes_with_a_stale_version_are_refused,
    concurrent_writers_never_lose_an_update,
    history_is_append_only_and_ordered,
    a_ref_points_to_one_open_session_at_a_time,
    a_users_sessions_list_newest_first_per_tenant,
    cursors_page_through_and_foreign_cursors_are_refused,
    deliveries_are_duplicates_only_once_applied,
    idempotency_keys_bind_once,
    due_sessions_are_open_ones_whose_check_is_due,
    the_due_query_is_bounded_and_earliest_first,
    an_expired_idempotency_key_can_be_bound_again,
    refs_read_together_answer_in_the_order_asked,
    a_postponed_check_is_not_due_before_its_time,
);

async fn a_created_session_reads_back_identically(store: Arc<dyn Store>) {
    let mut s = session("t", "user-1", now());
    s.verification_type = Some(idv::session::VerificationType::Poa);
    s.lang = Some("de".into());
    s.expires_at = Some(now() + time::Duration::minutes(15));
    s.last_error = Some(idv::session::LastError {
        code: "rejected".into(),
        message: "no".into(),
    });
    create(&*store, &s).await;
    assert_eq!(store.get_session(&s.id).await.unwrap(), Some(s));
    assert_eq!(
        store.get_session(&SessionId::generate()).await.unwrap(),
        None
    );
}

async fn a_session_id_is_created_once(store: Arc<dyn Store>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let err = store
        .create_session(&s, &first_entry(&s), None, None)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
}

async fn writes_with_a_stale_version_are_refused(store: Arc<dyn Store>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let (v2, h2) = bumped(&s, Status::Pending);
    let w = SessionWrite {
        session: &v2,
        expected_version: 1,
        history: Some(&h2),
        applies_delivery: None,
    };
    store.update_session(w).await.unwrap();
    // A second writer that also read version 1 loses, and its history entry is not written.
    let (other, h_other) = bumped(&s, Status::Processing);
    let w = SessionWrite {
        session: &other,
        expected_version: 1,
        history: Some(&h_other),
        applies_delivery: None,
    };
    assert_eq!(
        store.update_session(w).await.unwrap_err(),
        StoreError::Conflict
    );
    assert_eq!(
        store.get_session(&s.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert_eq!(store.session_history(&s.id).await.unwrap().len(), 2);
}

async fn concurrent_writers_never_lose_an_update(store: Arc<dyn Store>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // 8 writers each add one history entry by read-modify-write with retries: all 8 land.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = s.id.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let cur = store.get_session(&id).await.unwrap().unwrap();
                let (next, h) = bumped(&cur, Status::Pending);
                let w = SessionWrite {
                    session: &next,
                    expected_version: cur.version,
                    history: Some(&h),
                    applies_delivery: None,
                };
                match store.update_session(w).await {
                    Ok(()) => return,
                    Err(StoreError::Conflict) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get_session(&s.id).await.unwrap().unwrap().version, 9);
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    assert_eq!(versions, (1..=9).collect::<Vec<_>>());
}

async fn history_is_append_only_and_ordered(store: Arc<dyn Store>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let (v2, h2) = bumped(&s, Status::Processing);
    store
        .update_session(SessionWrite {
            session: &v2,
            expected_version: 1,
            history: Some(&h2),
            applies_delivery: None,
        })
        .await
        .unwrap();
    let (v3, h3) = bumped(&v2, Status::Verified);
    store
        .update_session(SessionWrite {
            session: &v3,
            expected_version: 2,
            history: Some(&h3),
            applies_delivery: None,
        })
        .await
        .unwrap();
    let h = store.session_history(&s.id).await.unwrap();
    let path: Vec<(Status, Status)> = h.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        path,
        vec![
            (Status::Created, Status::Created),
            (Status::Created, Status::Processing),
            (Status::Processing, Status::Verified)
        ]
    );
    assert_eq!(h[2], h3);
    // A write without history leaves the history alone.
    let mut v4 = v3.clone();
    v4.version = 4;
    v4.last_checked_at = Some(now());
    store
        .update_session(SessionWrite {
            session: &v4,
            expected_version: 3,
            history: None,
            applies_delivery: None,
        })
        .await
        .unwrap();
    assert_eq!(store.session_history(&s.id).await.unwrap().len(), 3);
}

async fn a_ref_points_to_one_open_session_at_a_time(store: Arc<dyn Store>) {
    let key = format!("authento#user-{}#BASIC", idv::ids::random_token());
    let a = session("t", "user-1", now());
    let claim = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: None,
    };
    store
        .create_session(&a, &first_entry(&a), Some(&claim), None)
        .await
        .unwrap();
    assert_eq!(store.get_ref(&key).await.unwrap().unwrap().session_id, a.id);
    // A racing creator that also saw "no ref" loses, and its session is not created.
    let b = session("t", "user-1", now());
    assert_eq!(
        store
            .create_session(&b, &first_entry(&b), Some(&claim), None)
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    assert_eq!(store.get_session(&b.id).await.unwrap(), None);
    // Replacing needs the current target.
    let wrong = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: Some(SessionId::generate()),
    };
    assert_eq!(
        store
            .create_session(&b, &first_entry(&b), Some(&wrong), None)
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    let right = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: Some(a.id.clone()),
    };
    store
        .create_session(&b, &first_entry(&b), Some(&right), None)
        .await
        .unwrap();
    let r = store.get_ref(&key).await.unwrap().unwrap();
    assert_eq!((r.session_id, r.tenant.as_str()), (b.id.clone(), "t"));
}

async fn a_users_sessions_list_newest_first_per_tenant(store: Arc<dyn Store>) {
    let user = format!("user-{}", idv::ids::random_token());
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = session("t", &user, t0 + time::Duration::seconds(i));
        create(&*store, &s).await;
        ids.push(s.id.clone());
    }
    create(&*store, &session("other-tenant", &user, t0)).await;
    let page = store
        .list_user_sessions("t", &user, 10, None)
        .await
        .unwrap()
        .unwrap();
    let got: Vec<SessionId> = page.sessions.iter().map(|s| s.id.clone()).collect();
    ids.reverse();
    assert_eq!(got, ids);
    assert_eq!(page.next_cursor, None);
    let none = store
        .list_user_sessions("t", "nobody", 10, None)
        .await
        .unwrap()
        .unwrap();
    assert!(none.sessions.is_empty());
}

async fn cursors_page_through_and_foreign_cursors_are_refused(store: Arc<dyn Store>) {
    let user = format!("user-{}", idv::ids::random_token());
    let t0 = now();
    for i in 0..5 {
        create(
            &*store,
            &session("t", &user, t0 + time::Duration::seconds(i)),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .list_user_sessions("t", &user, 2, cursor.as_deref())
            .await
            .unwrap()
            .unwrap();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.iter().map(|s| s.created_at));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first across pages"
    );
    let first = store
        .list_user_sessions("t", &user, 2, None)
        .await
        .unwrap()
        .unwrap();
    let c = first.next_cursor.unwrap();
    assert_eq!(
        store
            .list_user_sessions("t", "another-user", 2, Some(&c))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_user_sessions("other", &user, 2, Some(&c))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_user_sessions("t", &user, 2, Some("garbage"))
            .await
            .unwrap(),
        None
    );
}

async fn deliveries_are_duplicates_only_once_applied(store: Arc<dyn Store>) {
    let d = Delivery {
        provider: "authento",
        event_id: idv::ids::random_token(),
        subject: Some("user-1".into()),
        received_at: now(),
        expires_at: now() + time::Duration::days(30),
    };
    assert_eq!(
        store.record_delivery(&d).await.unwrap(),
        DeliveryOutcome::New
    );
    assert_eq!(
        store.delivery_state("authento", &d.event_id).await.unwrap(),
        Some(DeliveryState::Received)
    );
    // Not applied yet (its processing failed): a redelivery is processed again.
    assert_eq!(
        store.record_delivery(&d).await.unwrap(),
        DeliveryOutcome::New
    );
    store
        .set_delivery_state("authento", &d.event_id, DeliveryState::Unmatched)
        .await
        .unwrap();
    assert_eq!(
        store.record_delivery(&d).await.unwrap(),
        DeliveryOutcome::New
    );
    // Applied together with a session write: from then on it is a duplicate.
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let (v2, h2) = bumped(&s, Status::Pending);
    store
        .update_session(SessionWrite {
            session: &v2,
            expected_version: 1,
            history: Some(&h2),
            applies_delivery: Some(("authento", &d.event_id)),
        })
        .await
        .unwrap();
    assert_eq!(
        store.delivery_state("authento", &d.event_id).await.unwrap(),
        Some(DeliveryState::Applied)
    );
    assert_eq!(
        store.record_delivery(&d).await.unwrap(),
        DeliveryOutcome::Duplicate
    );
    assert_eq!(
        store
            .delivery_state("authento", "never-seen")
            .await
            .unwrap(),
        None
    );
}

async fn idempotency_keys_bind_once(store: Arc<dyn Store>) {
    let s = session("t", "user-1", now());
    let key = idv::ids::random_token();
    let rec = IdempotencyRecord {
        tenant: "t".into(),
        key: key.clone(),
        request_hash: "h1".into(),
        session_id: s.id.clone(),
        status: 201,
        issued_at: Some(1_800_000_000),
        created_at: now().replace_nanosecond(0).unwrap(),
        expires_at: (now() + time::Duration::hours(24))
            .replace_nanosecond(0)
            .unwrap(),
    };
    // Bound atomically with the session it created.
    store
        .create_session(&s, &first_entry(&s), None, Some(&rec))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency("t", &key).await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(store.get_idempotency("other", &key).await.unwrap(), None);
    assert_eq!(
        store.put_idempotency(&rec).await.unwrap_err(),
        StoreError::Conflict
    );
    let other = IdempotencyRecord {
        tenant: "other".into(),
        ..rec.clone()
    };
    store.put_idempotency(&other).await.unwrap();
}

/// A Nevis session whose next check is `in_` from `at` (negative: overdue).
fn scheduled(at: OffsetDateTime, in_: time::Duration) -> Session {
    let mut s = Session::new("t", Provider::Nevis, "user-due", at);
    s.provider_ref = Some("123456789".into());
    s.next_check_at = Some(at + in_);
    s.check_attempts = 2;
    s
}

/// Every shard's due sessions, by id.
async fn all_due(store: &dyn Store, at: OffsetDateTime) -> Vec<String> {
    let mut ids = Vec::new();
    for shard in 0..DUE_SHARDS {
        for s in store.due_sessions(shard, at, 100).await.unwrap() {
            assert_eq!(
                due_shard(&s.id),
                shard,
                "a session is found in its own shard"
            );
            ids.push(s.id.to_string());
        }
    }
    ids.sort();
    ids
}

async fn due_sessions_are_open_ones_whose_check_is_due(store: Arc<dyn Store>) {
    let t = now();
    let overdue = scheduled(t, time::Duration::seconds(-30));
    let due_now = scheduled(t, time::Duration::ZERO);
    let later = scheduled(t, time::Duration::seconds(30));
    let unscheduled = session("t", "user-none", t);
    for s in [&overdue, &due_now, &later, &unscheduled] {
        create(&*store, s).await;
    }
    let mut expected = vec![overdue.id.to_string(), due_now.id.to_string()];
    expected.sort();
    assert_eq!(all_due(&*store, t).await, expected);
    // What it reads back is the session as stored, schedule included.
    let shard = due_shard(&overdue.id);
    let found = store.due_sessions(shard, t, 100).await.unwrap();
    assert!(found.contains(&overdue));

    // Ended: it leaves the index. Checked again later: it is not due until then.
    let (mut ended, h) = bumped(&overdue, Status::Verified);
    ended.next_check_at = None;
    store
        .update_session(SessionWrite {
            session: &ended,
            expected_version: overdue.version,
            history: Some(&h),
            applies_delivery: None,
        })
        .await
        .unwrap();
    let mut pushed = due_now.clone();
    pushed.next_check_at = Some(t + time::Duration::minutes(1));
    pushed.version += 1;
    store
        .update_session(SessionWrite {
            session: &pushed,
            expected_version: due_now.version,
            history: None,
            applies_delivery: None,
        })
        .await
        .unwrap();
    assert!(all_due(&*store, t).await.is_empty());
    let mut at_two_minutes = vec![pushed.id.to_string(), later.id.to_string()];
    at_two_minutes.sort();
    assert_eq!(
        all_due(&*store, t + time::Duration::minutes(2)).await,
        at_two_minutes
    );
}

async fn the_due_query_is_bounded_and_earliest_first(store: Arc<dyn Store>) {
    let t = now();
    // Five sessions of one shard, due 50, 40, ... 10 seconds ago (created in shuffled order).
    let mut same_shard = Vec::new();
    while same_shard.len() < 5 {
        let s = scheduled(t, time::Duration::ZERO);
        if due_shard(&s.id) == 3 {
            same_shard.push(s);
        }
    }
    for (i, s) in same_shard.iter_mut().enumerate() {
        s.next_check_at = Some(t - time::Duration::seconds(10 * (5 - i as i64)));
    }
    for i in [2, 0, 4, 1, 3] {
        create(&*store, &same_shard[i]).await;
    }
    let got: Vec<SessionId> = store
        .due_sessions(3, t, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let want: Vec<SessionId> = same_shard[..3].iter().map(|s| s.id.clone()).collect();
    assert_eq!(got, want);
    assert!(store.due_sessions(4, t, 3).await.unwrap().is_empty());
}

async fn an_expired_idempotency_key_can_be_bound_again(store: Arc<dyn Store>) {
    // DynamoDB's TTL deletes expired items late: the key must be free as soon as it expired.
    let t0 = now().replace_nanosecond(0).unwrap();
    let key = idv::ids::random_token();
    let old = IdempotencyRecord {
        tenant: "t".into(),
        key: key.clone(),
        request_hash: "h1".into(),
        session_id: SessionId::generate(),
        status: 201,
        issued_at: None,
        created_at: t0 - time::Duration::hours(25),
        expires_at: t0 - time::Duration::hours(1),
    };
    store.put_idempotency(&old).await.unwrap();
    let s = session("t", "user-1", t0);
    let fresh = IdempotencyRecord {
        session_id: s.id.clone(),
        request_hash: "h2".into(),
        created_at: t0,
        expires_at: t0 + time::Duration::hours(24),
        ..old.clone()
    };
    store
        .create_session(&s, &first_entry(&s), None, Some(&fresh))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency("t", &key).await.unwrap(),
        Some(fresh.clone())
    );
    // While it is live, it stays bound.
    let again = IdempotencyRecord {
        request_hash: "h3".into(),
        ..fresh
    };
    assert_eq!(
        store.put_idempotency(&again).await.unwrap_err(),
        StoreError::Conflict
    );
}

async fn refs_read_together_answer_in_the_order_asked(store: Arc<dyn Store>) {
    let user = format!("user-{}", idv::ids::random_token());
    let (basic, poa) = (
        format!("authento#{user}#BASIC"),
        format!("authento#{user}#POA"),
    );
    let a = session("t", &user, now());
    let claim = RefClaim {
        key: poa.clone(),
        tenant: "t".into(),
        replaces: None,
    };
    store
        .create_session(&a, &first_entry(&a), Some(&claim), None)
        .await
        .unwrap();
    let got = store
        .get_refs(&[basic.clone(), poa.clone(), poa.clone()])
        .await
        .unwrap();
    let ids: Vec<Option<SessionId>> = got.into_iter().map(|r| r.map(|r| r.session_id)).collect();
    assert_eq!(ids, vec![None, Some(a.id.clone()), Some(a.id.clone())]);
    assert_eq!(store.get_refs(&[]).await.unwrap(), vec![]);
}

async fn a_postponed_check_is_not_due_before_its_time(store: Arc<dyn Store>) {
    let t = now();
    let s = scheduled(t, time::Duration::seconds(10));
    create(&*store, &s).await;
    // Written as a flow writes it: over the session read back, check postponed to t + 60 s.
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    let mut postponed = read.clone();
    postponed.next_check_at = Some(t + time::Duration::seconds(60));
    postponed.version += 1;
    store
        .update_session(SessionWrite {
            session: &postponed,
            expected_version: read.version,
            history: None,
            applies_delivery: None,
        })
        .await
        .unwrap();
    let shard = due_shard(&s.id);
    for _ in 0..2 {
        // Asked twice: finding it early once changes nothing for the next asker.
        assert!(
            store
                .due_sessions(shard, t + time::Duration::seconds(30), 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let due = store
        .due_sessions(shard, t + time::Duration::seconds(61), 100)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|d| &d.id).collect::<Vec<_>>(), [&s.id]);
    assert_eq!(due[0].next_check_at, postponed.next_check_at);
    assert_eq!(due[0].version, postponed.version);
}

// ---- DynamoDB only: how the due index is kept -------------------------------------------------

async fn dynamo_store() -> DynamoStore {
    let client = dynamo_client().await;
    let table = unique_table("idv-due");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    DynamoStore::new(client, table)
}

/// The session item's `gsi2sk` (its filing in the due index).
async fn filing(store: &DynamoStore, id: &SessionId) -> Option<String> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("SES#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("SES".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item?.get("gsi2sk")?.as_s().ok().cloned()
}

fn postpone(read: &Session, to: OffsetDateTime) -> Session {
    let mut next = read.clone();
    next.next_check_at = Some(to);
    next.version += 1;
    next
}

async fn write(store: &DynamoStore, next: &Session) -> Result<(), StoreError> {
    store
        .update_session(SessionWrite {
            session: next,
            expected_version: next.version - 1,
            history: None,
            applies_delivery: None,
        })
        .await
}

#[tokio::test]
async fn dynamodb_keeps_the_filing_on_a_postponed_check_and_refiles_when_found_early() {
    let store = dynamo_store().await;
    let t = now();
    let s = scheduled(t, time::Duration::seconds(10));
    create(&store, &s).await;
    let filed = filing(&store, &s.id).await.unwrap();

    // Postponed: the filing stays (no index write), still at or before the next check.
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    write(&store, &postpone(&read, t + time::Duration::seconds(60)))
        .await
        .unwrap();
    assert_eq!(filing(&store, &s.id).await.as_ref(), Some(&filed));

    // Found early by the due query: not answered, filed where its check is.
    let shard = due_shard(&s.id);
    assert!(
        store
            .due_sessions(shard, t + time::Duration::seconds(30), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let refiled = filing(&store, &s.id).await.unwrap();
    assert!(refiled > filed, "{refiled} after {filed}");

    // Brought forward: the filing moves with it.
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    write(&store, &postpone(&read, t + time::Duration::seconds(20)))
        .await
        .unwrap();
    let forward = filing(&store, &s.id).await.unwrap();
    assert!(forward < refiled, "{forward} before {refiled}");
}

#[tokio::test]
async fn dynamodb_refuses_a_write_whose_filing_hint_is_stale() {
    let store = dynamo_store().await;
    let t = now();
    let s = scheduled(t, time::Duration::seconds(10));
    create(&store, &s).await;
    // Read while filed at t + 10 s; then its next check moves to t + 60 s and reconcile re-files it.
    let stale = store.get_session(&s.id).await.unwrap().unwrap();
    let postponed = postpone(&stale, t + time::Duration::seconds(60));
    write(&store, &postponed).await.unwrap();
    store
        .due_sessions(due_shard(&s.id), t + time::Duration::seconds(30), 100)
        .await
        .unwrap();
    // A writer holding the version read after the postponement, but the filing hint of before,
    // sets the check to t + 40 s: keeping the filing (t + 60 s) would check it late. Refused,
    // so that the writer re-reads (apply_with_retry does) and files it right.
    let mut hint_of_before = store.get_session(&s.id).await.unwrap().unwrap();
    hint_of_before.due_key = stale.due_key;
    assert_eq!(
        write(
            &store,
            &postpone(&hint_of_before, t + time::Duration::seconds(40))
        )
        .await,
        Err(StoreError::Conflict)
    );
    let fresh = store.get_session(&s.id).await.unwrap().unwrap();
    write(&store, &postpone(&fresh, t + time::Duration::seconds(40)))
        .await
        .unwrap();
    assert!(
        store
            .due_sessions(due_shard(&s.id), t + time::Duration::seconds(41), 100)
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == s.id)
    );
}
