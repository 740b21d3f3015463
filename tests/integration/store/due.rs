//! `DueIndex`: the open sessions whose next check is due, per shard, earliest first, bounded; a
//! postponed check is not due before its time. Then, DynamoDB only: how its due index is kept.

use super::*;
use idv::store::{DueIndex, Sessions, StoreError};

super::contract!(
    due_sessions_are_open_ones_whose_check_is_due,
    the_due_query_is_bounded_and_earliest_first,
    a_postponed_check_is_not_due_before_its_time,
);

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
