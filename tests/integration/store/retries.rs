//! `Sessions::create_retry`: a retry and the link from the session it retries are written
//! together or not at all, whatever condition fails (the retried session moved, the retry's id,
//! a ref claim or its idempotency key); the links, and the kept start options, read back.

use super::*;
use idv::store::{Begun, IdempotencyRecord, IdempotencyState, RefClaim, StoreError};
use serde_json::json;

super::contract!(
    a_retry_and_its_link_are_written_together,
    a_retry_over_a_moved_session_writes_neither,
    a_retry_whose_claim_or_key_fails_leaves_the_retried_session_alone,
);

/// The session `previous` links to its retry `next`, with its history entry.
fn link(previous: &Stored<Session>, next: &Session) -> (Session, HistoryEntry) {
    let mut linked = previous.value.clone();
    linked.next_session_id = Some(next.id.clone());
    let entry = HistoryEntry {
        session_id: previous.id.clone(),
        version: previous.next_version(),
        at: now(),
        from: previous.status,
        to: previous.status,
        provider_status: previous.provider_status.clone(),
        source: Source::App,
        reason: Some("retried".into()),
        provider_event: None,
    };
    (linked, entry)
}

/// A failed session of `tenant`, stored, as read back.
async fn failed(store: &dyn Adapter, tenant: &str) -> Stored<Session> {
    let mut s = session(tenant, "user-r", now());
    s.status = Status::Failed;
    s.start_options = json!({"verification_type": "POA", "lang": "de"})
        .as_object()
        .cloned()
        .unwrap();
    create(store, &s).await;
    read(store, &s.id).await
}

fn retry_of(previous: &Stored<Session>) -> Session {
    let mut next = session(&previous.tenant, &previous.user_id, now());
    next.previous_session_id = Some(previous.id.clone());
    next.start_options = previous.start_options.clone();
    next
}

async fn a_retry_and_its_link_are_written_together(store: Arc<dyn Adapter>) {
    let previous = failed(&*store, "t").await;
    let next = retry_of(&previous);
    let (linked, entry) = link(&previous, &next);
    let answered = store
        .create_retry(
            write(&previous, &linked, Some(&entry)),
            &next,
            &first_entry(&next),
            &[],
            None,
        )
        .await
        .unwrap();
    // What it answers is what is stored: the next write goes over it.
    assert_eq!(answered.version, previous.version + 1);
    assert_eq!(read(&*store, &previous.id).await.value, linked);
    assert_eq!(answered.value, linked);
    let stored = read(&*store, &next.id).await;
    assert_eq!(stored.value, next);
    assert_eq!(stored.previous_session_id.as_ref(), Some(&previous.id));
    assert_eq!(
        stored.start_options.get("verification_type"),
        Some(&json!("POA"))
    );
    let history = store.session_history(&previous.id).await.unwrap();
    assert_eq!(history.last(), Some(&entry));
    // The next write of the retried session goes over the version the retry answered.
    let (after, h) = bumped(&answered, Status::Failed);
    store
        .update_session(write(&answered, &after, Some(&h)))
        .await
        .unwrap();
    assert_eq!(
        read(&*store, &previous.id).await.next_session_id,
        Some(next.id.clone())
    );
}

async fn a_retry_over_a_moved_session_writes_neither(store: Arc<dyn Adapter>) {
    let previous = failed(&*store, "t").await;
    // Another writer moves it after it was read (a read overturning the failure, or another
    // retry): this retry's transaction fails whole.
    let (moved, h) = bumped(&previous, Status::Verified);
    store
        .update_session(write(&previous, &moved, Some(&h)))
        .await
        .unwrap();
    let next = retry_of(&previous);
    let (linked, entry) = link(&previous, &next);
    let err = store
        .create_retry(
            write(&previous, &linked, Some(&entry)),
            &next,
            &first_entry(&next),
            &[],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert!(store.get_session(&next.id).await.unwrap().is_none());
    let now_stored = read(&*store, &previous.id).await;
    assert_eq!(
        (now_stored.status, now_stored.next_session_id.clone()),
        (Status::Verified, None)
    );
    assert_eq!(store.session_history(&previous.id).await.unwrap().len(), 2);
}

async fn a_retry_whose_claim_or_key_fails_leaves_the_retried_session_alone(
    store: Arc<dyn Adapter>,
) {
    let previous = failed(&*store, "t").await;
    // A ref the retry would take, held by another session.
    let key = format!("authento#{}#POA", idv::ids::random_token());
    let holder = session("t", "user-r", now());
    let taken = RefClaim {
        key: key.clone(),
        tenant: "t".into(),
        replaces: None,
    };
    store
        .create_session(
            &holder,
            &first_entry(&holder),
            std::slice::from_ref(&taken),
            None,
        )
        .await
        .unwrap();
    let next = retry_of(&previous);
    let (linked, entry) = link(&previous, &next);
    let err = store
        .create_retry(
            write(&previous, &linked, Some(&entry)),
            &next,
            &first_entry(&next),
            std::slice::from_ref(&taken),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    // An idempotency key this request does not hold.
    let at = now();
    let record = |owner: &str| IdempotencyRecord {
        tenant: "t".into(),
        key: format!("k-{}", idv::ids::random_token()),
        fingerprint: "f".into(),
        state: IdempotencyState::InProgress {
            lease_until: at + Duration::seconds(90),
            owner: owner.into(),
        },
        created_at: at,
        expires_at: at + Duration::hours(24),
    };
    let held = record("someone-else");
    assert!(matches!(
        store.begin_idempotency(&held, at).await.unwrap(),
        Begun::Started
    ));
    let done = IdempotencyRecord {
        state: IdempotencyState::Done {
            session_id: next.id.clone(),
            status: 201,
            issued_at: None,
            replay: None,
        },
        ..held.clone()
    };
    let err = store
        .create_retry(
            write(&previous, &linked, Some(&entry)),
            &next,
            &first_entry(&next),
            &[],
            Some((&done, "this-request")),
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    // Neither failure wrote anything: no retry, no link, no history entry, the ref unmoved.
    assert!(store.get_session(&next.id).await.unwrap().is_none());
    let unchanged = read(&*store, &previous.id).await;
    assert_eq!(
        (unchanged.version, &unchanged.value),
        (previous.version, &previous.value)
    );
    assert_eq!(store.session_history(&previous.id).await.unwrap().len(), 1);
    assert_eq!(
        store.get_ref(&key).await.unwrap().unwrap().session_id,
        holder.id
    );
    // With everything holding, it lands.
    store
        .create_retry(
            write(&previous, &linked, Some(&entry)),
            &next,
            &first_entry(&next),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        read(&*store, &previous.id).await.next_session_id,
        Some(next.id)
    );
}
