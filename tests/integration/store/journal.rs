//! `Journal`: identity events written atomically with their session and the settling of their
//! delivery, read newest first and bounded; reauthentications recorded once, listed newest first.

use super::*;
use idv::session::{IdentityEvent, Reauthentication};
use idv::store::{Delivery, DeliveryState, Recorded, StoreError};

super::contract!(
    an_identity_event_is_written_with_its_session_and_delivery_or_not_at_all,
    reauthentications_are_recorded_once_and_listed_newest_first,
);

fn event(s: &Session, id: &str, at: OffsetDateTime) -> IdentityEvent {
    IdentityEvent {
        session_id: s.id.clone(),
        event_id: id.into(),
        event_type: "DISCONNECT".into(),
        occurred_at: Some(at - Duration::minutes(1)),
        received_at: at,
    }
}

async fn an_identity_event_is_written_with_its_session_and_delivery_or_not_at_all(
    store: Arc<dyn Adapter>,
) {
    let s = prove_session("user-p2");
    create(store.as_ref(), &s).await;
    let at = t0();
    let delivery = Delivery {
        provider: Provider::named("prove"),
        event_id: "e1".into(),
        subjects: vec!["identity:identity-1".into()],
        payload: r#"{"t":"PORT"}"#.into(),
        mark: None,
        received_at: at,
        expires_at: at + Duration::days(1),
    };
    assert_eq!(
        store
            .record_delivery(&delivery, at, at + Duration::minutes(2))
            .await
            .unwrap(),
        Recorded::Process { attempts: 1 }
    );
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    let next = s.clone();
    let write = |read, session| SessionWrite {
        read,
        session,
        history: None,
        at,
    };

    // A stale version: nothing of it is written.
    let mut moved_on = read.clone();
    moved_on.version += 7;
    let stale = write(&moved_on, &next);
    assert_eq!(
        store
            .add_identity_event(stale, &event(&s, "e1", at), &delivery)
            .await,
        Err(StoreError::Conflict)
    );
    assert!(store.identity_events(&s.id, 10).await.unwrap().is_empty());
    assert_eq!(
        store.delivery_state("prove", "e1").await.unwrap(),
        Some(DeliveryState::Received)
    );

    store
        .add_identity_event(write(&read, &next), &event(&s, "e1", at), &delivery)
        .await
        .unwrap();
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(read.value, next);
    assert_eq!(
        store.delivery_state("prove", "e1").await.unwrap(),
        Some(DeliveryState::Applied)
    );

    // The same event again overwrites; a later one comes first; the limit holds.
    store
        .add_identity_event(write(&read, &next), &event(&s, "e1", at), &delivery)
        .await
        .unwrap();
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    store
        .add_identity_event(
            write(&read, &next),
            &event(&s, "e2", at + Duration::seconds(5)),
            &delivery,
        )
        .await
        .unwrap();
    let events = store.identity_events(&s.id, 10).await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e2", "e1"]);
    assert_eq!(events[1], event(&s, "e1", at));
    assert_eq!(store.identity_events(&s.id, 1).await.unwrap().len(), 1);
    // Another session's events are its own.
    assert!(
        store
            .identity_events(&SessionId::generate(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reauthentications_are_recorded_once_and_listed_newest_first(store: Arc<dyn Adapter>) {
    let s = created(&*store, "t", "u").await;
    let base = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    let reauth = |tenant: &str, secs: i64, event: &str| Reauthentication {
        tenant: tenant.into(),
        user_id: "u".into(),
        provider: Provider::named("passbase"),
        identity_id: "k1".into(),
        session_id: s.id.clone(),
        at: base + time::Duration::seconds(secs),
        outcome: "approved".into(),
        event_id: event.into(),
    };
    let older = reauth("t", 0, "k1#IDENTITY_AUTHENTICATED#0");
    let newer = reauth("t", 60, "k1#IDENTITY_AUTHENTICATED#60");
    for r in [&older, &newer, &older] {
        store.add_reauthentication(r).await.unwrap();
    }
    store
        .add_reauthentication(&reauth("other", 30, "k1#IDENTITY_AUTHENTICATED#30"))
        .await
        .unwrap();
    assert_eq!(
        store.list_reauthentications("t", "u", 10).await.unwrap(),
        vec![newer.clone(), older]
    );
    assert_eq!(
        store.list_reauthentications("t", "u", 1).await.unwrap(),
        vec![newer]
    );
    assert!(
        store
            .list_reauthentications("t", "nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
