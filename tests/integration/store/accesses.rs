//! `Accesses`: each read of a session's verified data recorded as it was (who, when; no value),
//! listed per session, newest first, in pages.

use super::*;
use idv::verified::{ACCESS_TTL, DataAccess};

super::contract!(accesses_are_kept_as_recorded_and_listed_per_session_newest_first,);

async fn accesses_are_kept_as_recorded_and_listed_per_session_newest_first(
    store: Arc<dyn Adapter>,
) {
    let a = SessionId::generate();
    let b = SessionId::generate();
    let t = t0();
    let of = |s: &SessionId, key: &str, ms: i64| {
        DataAccess::new(s.clone(), "app-a", key, t + Duration::milliseconds(ms))
    };
    let recorded = [
        of(&a, "0123456789ab", 0),
        of(&a, "ba9876543210", 1),
        of(&a, "0123456789ab", 2),
    ];
    for r in &recorded {
        store.record_access(r).await.unwrap();
    }
    store
        .record_access(&of(&b, "0123456789ab", 3))
        .await
        .unwrap();
    assert_eq!(recorded[0].expires_at - recorded[0].at, ACCESS_TTL);

    // Newest first, exactly as recorded, in pages that end.
    let (page, next) = store.list_accesses(&a, 2, None).await.unwrap();
    assert_eq!(page, vec![recorded[2].clone(), recorded[1].clone()]);
    let next = next.expect("a next page");
    assert_eq!(next, recorded[1].id);
    let (page, last) = store.list_accesses(&a, 2, Some(&next)).await.unwrap();
    assert_eq!(page, vec![recorded[0].clone()]);
    assert_eq!(last, None);
    let (all, none) = store.list_accesses(&a, 3, None).await.unwrap();
    assert_eq!((all.len(), none), (3, None));

    // Another session's are its own; a session with none lists none.
    let (page, _) = store.list_accesses(&b, 10, None).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].session_id, b);
    let (page, next) = store
        .list_accesses(&SessionId::generate(), 10, None)
        .await
        .unwrap();
    assert!(page.is_empty() && next.is_none());
}
