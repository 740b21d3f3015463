//! `Redactions`: a redaction leaves a tombstone on each provider identity it erases (until the
//! end of the dedupe window), deletes the deliveries filed under them, and a delivery about a
//! tombstoned identity can be forgotten whole (delivery and filings), idempotently.

use super::*;
use idv::store::{Delivery, DeliveryState, Erasure, Recorded};

super::contract!(
    a_redaction_tombstones_each_identity_it_erases_until_the_window_ends,
    a_redaction_deletes_the_deliveries_filed_under_its_identities,
    a_forgotten_delivery_leaves_nothing_and_forgetting_again_is_no_error,
);

fn delivery(subjects: &[&str], at: OffsetDateTime) -> Delivery {
    Delivery {
        provider: Provider::named("stripe"),
        event_id: idv::ids::random_token(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        payload: r#"{"t":"PORT"}"#.into(),
        mark: None,
        received_at: at,
        expires_at: at + Duration::days(30),
    }
}

fn erasure(subjects: &[&str], until: OffsetDateTime) -> Erasure {
    Erasure {
        session_id: SessionId::generate(),
        tenant: "tenant-r".into(),
        user_id: "user-r".into(),
        ref_keys: Vec::new(),
        subjects: subjects
            .iter()
            .map(|s| ("stripe".to_owned(), (*s).to_owned()))
            .collect(),
        values: Vec::new(),
        tombstones_until: until,
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

async fn a_redaction_tombstones_each_identity_it_erases_until_the_window_ends(
    store: Arc<dyn Adapter>,
) {
    let t = now();
    let (a, b) = (idv::ids::random_token(), idv::ids::random_token());
    assert!(!store.tombstoned("stripe", &owned(&[&a]), t).await.unwrap());
    store
        .erase_dependents(&erasure(&[&a], t + Duration::days(30)))
        .await
        .unwrap();
    assert!(store.tombstoned("stripe", &owned(&[&a]), t).await.unwrap());
    // Any one of a delivery's subjects is enough; another identity, or the same id at another
    // provider, is not tombstoned.
    assert!(
        store
            .tombstoned("stripe", &owned(&[&b, &a]), t)
            .await
            .unwrap()
    );
    assert!(!store.tombstoned("stripe", &owned(&[&b]), t).await.unwrap());
    assert!(!store.tombstoned("prove", &owned(&[&a]), t).await.unwrap());
    // Past the window: as absent (DynamoDB's TTL deletes it some time later).
    assert!(
        !store
            .tombstoned("stripe", &owned(&[&a]), t + Duration::days(31))
            .await
            .unwrap()
    );
    // A repeat of the erasure is no error.
    store
        .erase_dependents(&erasure(&[&a], t + Duration::days(30)))
        .await
        .unwrap();
}

async fn a_redaction_deletes_the_deliveries_filed_under_its_identities(store: Arc<dyn Adapter>) {
    let t = now();
    let (a, other) = (idv::ids::random_token(), idv::ids::random_token());
    let lease = t + Duration::minutes(2);
    let about = delivery(&[&a], t);
    let unrelated = delivery(&[&other], t);
    for d in [&about, &unrelated] {
        store.record_delivery(d, t, lease).await.unwrap();
        store
            .settle_delivery(d, DeliveryState::Unmatched)
            .await
            .unwrap();
    }
    store
        .erase_dependents(&erasure(&[&a], t + Duration::days(30)))
        .await
        .unwrap();
    assert_eq!(
        store
            .delivery_state("stripe", &about.event_id)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .unmatched_deliveries("stripe", &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .delivery_state("stripe", &unrelated.event_id)
            .await
            .unwrap(),
        Some(DeliveryState::Unmatched)
    );
    assert_eq!(
        store
            .unmatched_deliveries("stripe", &other)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_forgotten_delivery_leaves_nothing_and_forgetting_again_is_no_error(
    store: Arc<dyn Adapter>,
) {
    let t = now();
    let a = idv::ids::random_token();
    let d = delivery(&[&a, "customer:x"], t);
    let lease = t + Duration::minutes(2);
    store.record_delivery(&d, t, lease).await.unwrap();
    store
        .settle_delivery(&d, DeliveryState::Unmatched)
        .await
        .unwrap();
    store.forget_delivery(&d).await.unwrap();
    assert_eq!(
        store.delivery_state("stripe", &d.event_id).await.unwrap(),
        None
    );
    assert!(
        store
            .unmatched_deliveries("stripe", &a)
            .await
            .unwrap()
            .is_empty()
    );
    store.forget_delivery(&d).await.unwrap();
    // Nothing of it is left to deduplicate against: the same event again is new.
    assert_eq!(
        store.record_delivery(&d, t, lease).await.unwrap(),
        Recorded::Process { attempts: 1 }
    );
}
