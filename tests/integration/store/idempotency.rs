//! `Idempotency`: an `Idempotency-Key` is taken by one request at a time, completed by its holder
//! (with the session it creates, in one write), and free again once released, abandoned or
//! expired.

use super::*;
use idv::store::{Begun, IdempotencyRecord, IdempotencyState, StoreError};

super::contract!(
    an_idempotency_key_is_taken_once_and_completed_by_its_holder,
    an_abandoned_released_or_expired_key_can_be_taken_again,
);

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
