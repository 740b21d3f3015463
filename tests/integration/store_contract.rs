//! One contract for both store adapters: the in-memory one and DynamoDB (on DynamoDB Local).
//! Every test here runs twice, once per adapter.

use idv::session::{HistoryEntry, Provider, Session, SessionId, Source, Status};
use idv::store::{
    Begun, Delivery, DeliveryState, DynamoStore, IdempotencyRecord, IdempotencyState, MemoryStore,
    Recorded, RefClaim, SessionWrite, Store, StoreError, Stored,
};
use idv_tests::{dynamo_client, unique_table};
use std::sync::Arc;
use time::OffsetDateTime;

use idv::store::{DueIndex, Inspect, Sessions};

/// What a contract test holds an adapter to: every capability, and what tests look at.
trait Adapter: Store + Inspect {}
impl<T: Store + Inspect + ?Sized> Adapter for T {}

async fn dynamo() -> Arc<dyn Adapter> {
    let client = dynamo_client().await;
    let table = unique_table("idv-contract");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    Arc::new(DynamoStore::new(client, table))
}

fn memory() -> Arc<dyn Adapter> {
    Arc::new(MemoryStore::new())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn session(tenant: &str, user: &str, at: OffsetDateTime) -> Session {
    Session::new(tenant, Provider::named("authento"), user, at)
}

fn first_entry(s: &Session) -> HistoryEntry {
    HistoryEntry::created(s)
}

async fn create(store: &dyn Adapter, s: &Session) {
    store
        .create_session(s, &first_entry(s), &[], None)
        .await
        .expect("create");
}

/// The next state of a session as read, with its history entry.
fn bumped(s: &Stored<Session>, status: Status) -> (Session, HistoryEntry) {
    let mut next = s.value.clone();
    next.status = status;
    let h = HistoryEntry {
        session_id: s.id.clone(),
        version: s.next_version(),
        at: now(),
        from: s.status,
        to: status,
        provider_status: None,
        source: Source::ProviderRead,
        reason: None,
    };
    (next, h)
}

/// A write of `next` over the session as `read`, made now.
fn write<'a>(
    read: &'a Stored<Session>,
    next: &'a Session,
    history: Option<&'a HistoryEntry>,
) -> SessionWrite<'a> {
    SessionWrite {
        read,
        session: next,
        history,
        at: now(),
    }
}

/// The session as stored now.
async fn read(store: &dyn Adapter, id: &SessionId) -> Stored<Session> {
    store.get_session(id).await.unwrap().expect("the session")
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
    a_long_history_keeps_its_first_entry_and_the_latest_ones,
    writes_go_over_what_the_last_write_answered,
    a_ref_points_to_one_open_session_at_a_time,
    a_users_sessions_list_newest_first_per_tenant,
    cursors_page_through_and_foreign_cursors_are_refused,
    a_delivery_is_processed_under_a_lease_and_is_a_duplicate_once_applied,
    a_deferred_delivery_is_due_again_and_leased_by_one_retry,
    a_dead_attempts_delivery_falls_due_when_its_lease_ends,
    kept_deliveries_are_found_under_each_subject_until_settled,
    a_delivery_token_binds_to_its_first_body,
    an_idempotency_key_is_taken_once_and_completed_by_its_holder,
    an_abandoned_released_or_expired_key_can_be_taken_again,
    due_sessions_are_open_ones_whose_check_is_due,
    the_due_query_is_bounded_and_earliest_first,
    refs_read_together_answer_in_the_order_asked,
    a_postponed_check_is_not_due_before_its_time,
);

async fn a_created_session_reads_back_identically(store: Arc<dyn Adapter>) {
    let mut s = session("t", "user-1", now());
    s.data = idv::session::ProviderData::of(&idv::providers::authento::AuthentoData {
        verification_type: Some(idv::providers::authento::VerificationType::Poa),
        lang: Some("de".into()),
        ..Default::default()
    });
    s.expires_at = Some(now() + time::Duration::minutes(15));
    s.last_error = Some(idv::session::LastError {
        code: "rejected".into(),
        message: "no".into(),
    });
    create(&*store, &s).await;
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(Stored::into_value), Some(s));
    assert_eq!(
        store
            .get_session(&SessionId::generate())
            .await
            .unwrap()
            .map(Stored::into_value),
        None
    );
}

async fn a_session_id_is_created_once(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let err = store
        .create_session(&s, &first_entry(&s), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
}

async fn writes_with_a_stale_version_are_refused(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let v1 = read(&*store, &s.id).await;
    assert_eq!(v1.version, 1);
    let (v2, h2) = bumped(&v1, Status::Pending);
    let w = write(&v1, &v2, Some(&h2));
    store.update_session(w).await.unwrap();
    // A second writer that also read version 1 loses, and its history entry is not written.
    let (other, h_other) = bumped(&v1, Status::Processing);
    let w = write(&v1, &other, Some(&h_other));
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

async fn concurrent_writers_never_lose_an_update(store: Arc<dyn Adapter>) {
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
                match store.update_session(write(&cur, &next, Some(&h))).await {
                    Ok(_) => return,
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

async fn a_long_history_keeps_its_first_entry_and_the_latest_ones(store: Arc<dyn Adapter>) {
    use idv::session::MAX_HISTORY;
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // A provider flipping its word forever must not make the session unwritable (DynamoDB's
    // item limit): the history holds the creation and the latest entries.
    let mut current = read(&*store, &s.id).await;
    let words = [Status::Pending, Status::Processing];
    for i in 0..(MAX_HISTORY + 5) {
        let (next, h) = bumped(&current, words[i % 2]);
        store
            .update_session(write(&current, &next, Some(&h)))
            .await
            .unwrap();
        // Read back, as every writer does: the store's view of the layout comes with it.
        current = store.get_session(&s.id).await.unwrap().unwrap();
    }
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    let last = current.version;
    let mut want = vec![1];
    want.extend((last + 1 - (MAX_HISTORY as u64 - 1))..=last);
    assert_eq!(versions, want);
}

async fn writes_go_over_what_the_last_write_answered(store: Arc<dyn Adapter>) {
    use idv::session::MAX_HISTORY;
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // A flow writes again over what its write answered, without reading back: the version and
    // the layout it answers are the stored ones, past the history's cap too.
    let mut current = read(&*store, &s.id).await;
    let words = [Status::Pending, Status::Processing];
    for i in 0..(2 * MAX_HISTORY + 3) {
        let (next, h) = bumped(&current, words[i % 2]);
        current = store
            .update_session(write(&current, &next, Some(&h)))
            .await
            .unwrap();
    }
    let last = current.version;
    assert_eq!(read(&*store, &s.id).await.version, last);
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    let mut want = vec![1];
    want.extend((last + 1 - (MAX_HISTORY as u64 - 1))..=last);
    assert_eq!(versions, want);
}

async fn history_is_append_only_and_ordered(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let r1 = read(&*store, &s.id).await;
    let (v2, h2) = bumped(&r1, Status::Processing);
    // A write answers the session as now stored: the next write goes over it.
    let r2 = store
        .update_session(write(&r1, &v2, Some(&h2)))
        .await
        .unwrap();
    assert_eq!((r2.version, &r2.value), (2, &v2));
    let (v3, h3) = bumped(&r2, Status::Verified);
    let r3 = store
        .update_session(write(&r2, &v3, Some(&h3)))
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
    v4.last_checked_at = Some(now());
    store.update_session(write(&r3, &v4, None)).await.unwrap();
    assert_eq!(store.session_history(&s.id).await.unwrap().len(), 3);
}

async fn a_ref_points_to_one_open_session_at_a_time(store: Arc<dyn Adapter>) {
    let key = format!("authento#user-{}#BASIC", idv::ids::random_token());
    let a = session("t", "user-1", now());
    let claim = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: None,
    };
    store
        .create_session(&a, &first_entry(&a), std::slice::from_ref(&claim), None)
        .await
        .unwrap();
    assert_eq!(store.get_ref(&key).await.unwrap().unwrap().session_id, a.id);
    // A racing creator that also saw "no ref" loses, and its session is not created.
    let b = session("t", "user-1", now());
    assert_eq!(
        store
            .create_session(&b, &first_entry(&b), std::slice::from_ref(&claim), None)
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    assert!(store.get_session(&b.id).await.unwrap().is_none());
    // Replacing needs the current target.
    let wrong = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: Some(SessionId::generate()),
    };
    assert_eq!(
        store
            .create_session(&b, &first_entry(&b), std::slice::from_ref(&wrong), None)
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
        .create_session(&b, &first_entry(&b), std::slice::from_ref(&right), None)
        .await
        .unwrap();
    let r = store.get_ref(&key).await.unwrap().unwrap();
    assert_eq!((r.session_id, r.tenant.as_str()), (b.id.clone(), "t"));
}

async fn a_users_sessions_list_newest_first_per_tenant(store: Arc<dyn Adapter>) {
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

async fn cursors_page_through_and_foreign_cursors_are_refused(store: Arc<dyn Adapter>) {
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

/// Whole seconds: what every store keeps of a time exactly.
fn t0() -> OffsetDateTime {
    now().replace_nanosecond(0).unwrap()
}

fn delivery(provider: &'static str, subjects: &[&str], at: OffsetDateTime) -> Delivery {
    Delivery {
        provider: idv::session::Provider::named(provider),
        event_id: idv::ids::random_token(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        payload: r#"{"t":"PORT"}"#.into(),
        mark: None,
        received_at: at,
        expires_at: at + time::Duration::days(30),
    }
}

/// The deliveries of `d`'s shard due at `at`, by event id.
async fn due_ids(store: &dyn Adapter, d: &Delivery, at: OffsetDateTime) -> Vec<String> {
    store
        .due_deliveries(
            store.retry_shard_of(d.provider.as_str(), &d.event_id),
            at,
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.delivery.event_id)
        .filter(|id| *id == d.event_id)
        .collect()
}

async fn a_delivery_is_processed_under_a_lease_and_is_a_duplicate_once_applied(
    store: Arc<dyn Adapter>,
) {
    let t = t0();
    let lease = time::Duration::minutes(2);
    let d = delivery("authento", &["user-1"], t);
    assert_eq!(
        store.record_delivery(&d, t, t + lease).await.unwrap(),
        Recorded::Process { attempts: 1 }
    );
    assert_eq!(
        store.delivery_state("authento", &d.event_id).await.unwrap(),
        Some(DeliveryState::Received)
    );
    // A twin while the first holds the lease: in flight, not processed twice.
    assert_eq!(
        store
            .record_delivery(&d, t + time::Duration::seconds(1), t + lease)
            .await
            .unwrap(),
        Recorded::InFlight
    );
    // The first attempt died: once its lease ran out, a redelivery is processed again.
    let later = t + lease + time::Duration::seconds(1);
    assert_eq!(
        store
            .record_delivery(&d, later, later + lease)
            .await
            .unwrap(),
        Recorded::Process { attempts: 2 }
    );
    store
        .settle_delivery(&d, DeliveryState::Applied)
        .await
        .unwrap();
    let much_later = later + time::Duration::hours(1);
    assert_eq!(
        store
            .record_delivery(&d, much_later, much_later + lease)
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(
        store
            .delivery_state("authento", "never-seen")
            .await
            .unwrap(),
        None
    );
}

async fn a_deferred_delivery_is_due_again_and_leased_by_one_retry(store: Arc<dyn Adapter>) {
    let t = t0();
    let d = delivery("passbase", &["k"], t);
    store
        .record_delivery(&d, t, t + time::Duration::minutes(2))
        .await
        .unwrap();
    let retry_at = t + time::Duration::seconds(30);
    store
        .defer_delivery("passbase", &d.event_id, retry_at)
        .await
        .unwrap();
    assert!(
        due_ids(&*store, &d, t + time::Duration::seconds(29))
            .await
            .is_empty()
    );
    let at = t + time::Duration::seconds(31);
    assert_eq!(
        due_ids(&*store, &d, at).await,
        std::slice::from_ref(&d.event_id)
    );
    let found = store
        .due_deliveries(store.retry_shard_of("passbase", &d.event_id), at, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.delivery.event_id == d.event_id)
        .unwrap();
    assert_eq!(found.delivery, d, "what a retry needs is kept whole");
    assert_eq!(found.attempts, 1);
    let until = at + time::Duration::minutes(2);
    assert!(
        store
            .lease_delivery("passbase", &d.event_id, at, until)
            .await
            .unwrap()
    );
    // A second run at the same time does not take it too.
    assert!(
        !store
            .lease_delivery("passbase", &d.event_id, at, until)
            .await
            .unwrap()
    );
    store
        .settle_delivery(&d, DeliveryState::Applied)
        .await
        .unwrap();
    let much_later = at + time::Duration::hours(2);
    assert!(
        due_ids(&*store, &d, much_later).await.is_empty(),
        "settled: not due"
    );
    assert!(
        !store
            .lease_delivery("passbase", &d.event_id, much_later, much_later)
            .await
            .unwrap()
    );
}

async fn a_dead_attempts_delivery_falls_due_when_its_lease_ends(store: Arc<dyn Adapter>) {
    let t = t0();
    let d = delivery("prove", &["identity:i"], t);
    store
        .record_delivery(&d, t, t + time::Duration::minutes(2))
        .await
        .unwrap();
    // The function died mid-processing: nothing settled it, nothing deferred it.
    assert!(
        due_ids(&*store, &d, t + time::Duration::minutes(1))
            .await
            .is_empty()
    );
    assert_eq!(
        due_ids(&*store, &d, t + time::Duration::minutes(3)).await,
        std::slice::from_ref(&d.event_id)
    );
}

async fn kept_deliveries_are_found_under_each_subject_until_settled(store: Arc<dyn Adapter>) {
    let t = t0();
    let (a, b) = (
        format!("identity:{}", idv::ids::random_token()),
        format!("customer:{}", idv::ids::random_token()),
    );
    let d = delivery("prove", &[&a, &b], t);
    store
        .record_delivery(&d, t, t + time::Duration::minutes(2))
        .await
        .unwrap();
    store
        .settle_delivery(&d, DeliveryState::Unmatched)
        .await
        .unwrap();
    assert_eq!(
        store.unmatched_deliveries("prove", &a).await.unwrap(),
        std::slice::from_ref(&d)
    );
    assert_eq!(
        store.unmatched_deliveries("prove", &b).await.unwrap(),
        std::slice::from_ref(&d)
    );
    assert!(
        store
            .unmatched_deliveries("passbase", &a)
            .await
            .unwrap()
            .is_empty()
    );
    // Redelivered: processed again (a session may know it now). If that attempt dies, the
    // delivery is due for a retry: never lost between kept and applied.
    let later = t + time::Duration::minutes(5);
    let lease_end = later + time::Duration::minutes(2);
    assert_eq!(
        store.record_delivery(&d, later, lease_end).await.unwrap(),
        Recorded::Process { attempts: 2 }
    );
    assert_eq!(
        store.delivery_state("prove", &d.event_id).await.unwrap(),
        Some(DeliveryState::Received)
    );
    assert_eq!(
        due_ids(&*store, &d, lease_end + time::Duration::seconds(1)).await,
        std::slice::from_ref(&d.event_id)
    );
    // Still no session: kept again, under its subjects.
    store
        .settle_delivery(&d, DeliveryState::Unmatched)
        .await
        .unwrap();
    assert_eq!(
        store.unmatched_deliveries("prove", &a).await.unwrap(),
        std::slice::from_ref(&d)
    );
    store
        .settle_delivery(&d, DeliveryState::Applied)
        .await
        .unwrap();
    assert!(
        store
            .unmatched_deliveries("prove", &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .unmatched_deliveries("prove", &b)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_delivery_token_binds_to_its_first_body(store: Arc<dyn Adapter>) {
    let until = now() + time::Duration::minutes(5);
    let token = idv::ids::random_token();
    assert!(
        store
            .bind_delivery_token("prove", &token, "body-1", until)
            .await
            .unwrap()
    );
    assert!(
        store
            .bind_delivery_token("prove", &token, "body-1", until)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bind_delivery_token("prove", &token, "body-2", until)
            .await
            .unwrap()
    );
    let other = idv::ids::random_token();
    assert!(
        store
            .bind_delivery_token("prove", &other, "body-2", until)
            .await
            .unwrap()
    );
}

fn in_progress(key: &str, fingerprint: &str, owner: &str, at: OffsetDateTime) -> IdempotencyRecord {
    IdempotencyRecord {
        tenant: "t".into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
        state: IdempotencyState::InProgress {
            lease_until: at + time::Duration::seconds(90),
            owner: owner.into(),
        },
        created_at: at,
        expires_at: at + time::Duration::hours(24),
    }
}

fn done_for(r: &IdempotencyRecord, session: &SessionId) -> IdempotencyRecord {
    IdempotencyRecord {
        state: IdempotencyState::Done {
            session_id: session.clone(),
            status: 201,
            issued_at: Some(1_800_000_000),
            replay: Some("https://example.com/start".into()),
        },
        ..r.clone()
    }
}

async fn an_idempotency_key_is_taken_once_and_completed_by_its_holder(store: Arc<dyn Adapter>) {
    let t = t0();
    let key = idv::ids::random_token();
    let first = in_progress(&key, "fp", "owner-1", t);
    assert_eq!(
        store.begin_idempotency(&first, t).await.unwrap(),
        Begun::Started
    );
    // A twin meanwhile finds it in progress, and cannot complete it.
    let twin = in_progress(&key, "fp", "owner-2", t);
    assert_eq!(
        store.begin_idempotency(&twin, t).await.unwrap(),
        Begun::Existing(first.clone())
    );
    let s = session("t", "user-1", t);
    assert_eq!(
        store
            .create_session(
                &s,
                &first_entry(&s),
                &[],
                Some((&done_for(&twin, &s.id), "owner-2"))
            )
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    assert!(
        store.get_session(&s.id).await.unwrap().is_none(),
        "nothing half-written"
    );
    // Its holder completes it with the session it creates, in one write.
    let done = done_for(&first, &s.id);
    store
        .create_session(&s, &first_entry(&s), &[], Some((&done, "owner-1")))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency("t", &key).await.unwrap(),
        Some(done.clone())
    );
    assert_eq!(
        store.begin_idempotency(&twin, t).await.unwrap(),
        Begun::Existing(done.clone())
    );
    // Keys are per tenant.
    assert_eq!(store.get_idempotency("other", &key).await.unwrap(), None);
    // Completed alone (an operation that creates no session).
    let key2 = idv::ids::random_token();
    let r2 = in_progress(&key2, "fp2", "owner-3", t);
    store.begin_idempotency(&r2, t).await.unwrap();
    assert_eq!(
        store
            .complete_idempotency(&done_for(&r2, &s.id), "owner-4")
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    store
        .complete_idempotency(&done_for(&r2, &s.id), "owner-3")
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency("t", &key2).await.unwrap(),
        Some(done_for(&r2, &s.id))
    );
}

async fn an_abandoned_released_or_expired_key_can_be_taken_again(store: Arc<dyn Adapter>) {
    let t = t0();
    let key = idv::ids::random_token();
    let first = in_progress(&key, "fp", "owner-1", t);
    store.begin_idempotency(&first, t).await.unwrap();
    // Its holder died: after the lease, the same request takes it over; another does not.
    let after = t + time::Duration::seconds(100);
    let other_request = in_progress(&key, "fp-other", "owner-x", after);
    assert!(matches!(
        store
            .begin_idempotency(&other_request, after)
            .await
            .unwrap(),
        Begun::Existing(_)
    ));
    let retry = in_progress(&key, "fp", "owner-2", after);
    assert_eq!(
        store.begin_idempotency(&retry, after).await.unwrap(),
        Begun::Started
    );
    // Released after a failure: the same request may run again at once.
    store
        .release_idempotency("t", &key, "owner-1")
        .await
        .unwrap(); // not the holder: no-op
    assert!(matches!(
        store
            .begin_idempotency(&in_progress(&key, "fp", "owner-3", after), after)
            .await
            .unwrap(),
        Begun::Existing(_)
    ));
    store
        .release_idempotency("t", &key, "owner-2")
        .await
        .unwrap();
    assert_eq!(
        store
            .begin_idempotency(&in_progress(&key, "fp", "owner-3", after), after)
            .await
            .unwrap(),
        Begun::Started
    );
    // Expired (DynamoDB's TTL deletes late): free for any request at once.
    let expired_at = t + time::Duration::hours(25);
    let fresh = in_progress(&key, "fp-new", "owner-4", expired_at);
    assert_eq!(
        store.begin_idempotency(&fresh, expired_at).await.unwrap(),
        Begun::Started
    );
}

/// A Nevis session whose next check is `in_` from `at` (negative: overdue).
fn scheduled(at: OffsetDateTime, in_: time::Duration) -> Session {
    let mut s = Session::new("t", Provider::named("nevis"), "user-due", at);
    s.provider_ref = Some("123456789".into());
    s.next_check_at = Some(at + in_);
    s.check_attempts = 2;
    s
}

/// Every shard's due sessions, by id.
async fn all_due(store: &dyn Adapter, at: OffsetDateTime) -> Vec<String> {
    let mut ids = Vec::new();
    for shard in 0..store.due_shards() {
        for s in store.due_sessions(shard, at, 100).await.unwrap() {
            assert_eq!(
                store.due_shard_of(&s.id),
                shard,
                "a session is found in its own shard"
            );
            ids.push(s.id.to_string());
        }
    }
    ids.sort();
    ids
}

async fn due_sessions_are_open_ones_whose_check_is_due(store: Arc<dyn Adapter>) {
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
    let shard = store.due_shard_of(&overdue.id);
    let found = store.due_sessions(shard, t, 100).await.unwrap();
    assert!(found.iter().any(|f| f.value == overdue));

    // Ended: it leaves the index. Checked again later: it is not due until then.
    let overdue = read(&*store, &overdue.id).await;
    let (mut ended, h) = bumped(&overdue, Status::Verified);
    ended.next_check_at = None;
    store
        .update_session(write(&overdue, &ended, Some(&h)))
        .await
        .unwrap();
    let due_now = read(&*store, &due_now.id).await;
    let mut pushed = due_now.value.clone();
    pushed.next_check_at = Some(t + time::Duration::minutes(1));
    store
        .update_session(write(&due_now, &pushed, None))
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

async fn the_due_query_is_bounded_and_earliest_first(store: Arc<dyn Adapter>) {
    let t = now();
    // Five sessions of one shard, due 50, 40, ... 10 seconds ago (created in shuffled order).
    let mut same_shard = Vec::new();
    while same_shard.len() < 5 {
        let s = scheduled(t, time::Duration::ZERO);
        if store.due_shard_of(&s.id) == 3 {
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
        .map(|s| s.value.id)
        .collect();
    let want: Vec<SessionId> = same_shard[..3].iter().map(|s| s.id.clone()).collect();
    assert_eq!(got, want);
    assert!(store.due_sessions(4, t, 3).await.unwrap().is_empty());
}

async fn refs_read_together_answer_in_the_order_asked(store: Arc<dyn Adapter>) {
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
        .create_session(&a, &first_entry(&a), std::slice::from_ref(&claim), None)
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

async fn a_postponed_check_is_not_due_before_its_time(store: Arc<dyn Adapter>) {
    let t = now();
    let s = scheduled(t, time::Duration::seconds(10));
    create(&*store, &s).await;
    // Written as a flow writes it: over the session read back, check postponed to t + 60 s.
    let before = read(&*store, &s.id).await;
    let mut postponed = before.value.clone();
    postponed.next_check_at = Some(t + time::Duration::seconds(60));
    let written = store
        .update_session(write(&before, &postponed, None))
        .await
        .unwrap();
    let shard = store.due_shard_of(&s.id);
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
    assert_eq!(due[0].version, written.version);
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

/// Writes the session as `read` with its next check moved `to`.
async fn postpone(
    store: &DynamoStore,
    read: &Stored<Session>,
    to: OffsetDateTime,
) -> Result<Stored<Session>, StoreError> {
    let mut next = read.value.clone();
    next.next_check_at = Some(to);
    store.update_session(write(read, &next, None)).await
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
    postpone(&store, &read, t + time::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(filing(&store, &s.id).await.as_ref(), Some(&filed));

    // Found early by the due query: not answered, filed where its check is.
    let shard = store.due_shard_of(&s.id);
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
    postpone(&store, &read, t + time::Duration::seconds(20))
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
    postpone(&store, &stale, t + time::Duration::seconds(60))
        .await
        .unwrap();
    store
        .due_sessions(
            store.due_shard_of(&s.id),
            t + time::Duration::seconds(30),
            100,
        )
        .await
        .unwrap();
    // A writer holding the version read after the postponement, but the filing hint of before,
    // sets the check to t + 40 s: keeping the filing (t + 60 s) would check it late. Refused,
    // so that the writer re-reads (apply_with_retry does) and files it right.
    let mut hint_of_before = store.get_session(&s.id).await.unwrap().unwrap();
    hint_of_before.filing.due = stale.filing.due;
    assert_eq!(
        postpone(&store, &hint_of_before, t + time::Duration::seconds(40))
            .await
            .map(|_| ()),
        Err(StoreError::Conflict)
    );
    let fresh = store.get_session(&s.id).await.unwrap().unwrap();
    postpone(&store, &fresh, t + time::Duration::seconds(40))
        .await
        .unwrap();
    assert!(
        store
            .due_sessions(
                store.due_shard_of(&s.id),
                t + time::Duration::seconds(41),
                100
            )
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == s.id)
    );
}
