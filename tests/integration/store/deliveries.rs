//! `Deliveries`: a webhook delivery is recorded before it is acted on, processed under a lease,
//! settled once, due again when an attempt fails or dies, kept under its subjects while it matches
//! no session; a delivery token binds to its first body.

use super::*;
use idv::store::{Delivery, DeliveryState, Recorded};

super::contract!(
    a_delivery_is_processed_under_a_lease_and_is_a_duplicate_once_applied,
    a_deferred_delivery_is_due_again_and_leased_by_one_retry,
    a_dead_attempts_delivery_falls_due_when_its_lease_ends,
    kept_deliveries_are_found_under_each_subject_until_settled,
    a_delivery_token_binds_to_its_first_body,
    a_twin_that_read_before_the_first_applied_is_a_duplicate_and_a_later_move_is_news,
);

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

/// Authento's deliveries have no id of their own: the same body is news again once the sessions
/// it concerns moved. A twin that read them before the first was applied (its mark: where the
/// first found them) is a duplicate; the same body after they moved on is processed.
async fn a_twin_that_read_before_the_first_applied_is_a_duplicate_and_a_later_move_is_news(
    store: Arc<dyn Adapter>,
) {
    let t = t0();
    let lease = time::Duration::minutes(2);
    let at = |mark: &str| Delivery {
        mark: Some(mark.into()),
        ..delivery("authento", &["user-1"], t)
    };
    let first = at("p0");
    let twin = Delivery {
        event_id: first.event_id.clone(),
        ..at("p0")
    };
    assert_eq!(
        store.record_delivery(&first, t, t + lease).await.unwrap(),
        Recorded::Process { attempts: 1 }
    );
    // Applied: the sessions moved to p1.
    let applied = Delivery {
        mark: Some("p1".into()),
        ..first.clone()
    };
    store
        .settle_delivery(&applied, DeliveryState::Applied)
        .await
        .unwrap();
    let soon = t + time::Duration::seconds(1);
    assert_eq!(
        store
            .record_delivery(&twin, soon, soon + lease)
            .await
            .unwrap(),
        Recorded::Duplicate,
        "a twin that read p0"
    );
    let repeat = Delivery {
        mark: Some("p1".into()),
        ..twin.clone()
    };
    assert_eq!(
        store
            .record_delivery(&repeat, soon, soon + lease)
            .await
            .unwrap(),
        Recorded::Duplicate,
        "the same body while they stand where it left them"
    );
    let moved = Delivery {
        mark: Some("p2".into()),
        ..twin
    };
    assert_eq!(
        store
            .record_delivery(&moved, soon, soon + lease)
            .await
            .unwrap(),
        Recorded::Process { attempts: 2 },
        "the same body after they moved on"
    );
}
