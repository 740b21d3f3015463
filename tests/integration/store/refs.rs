//! `Refs`: a provider identity points at one session at a time, claimed at creation or linked
//! after it, moved only from where it points; refs read together answer in the order asked.

use super::*;
use idv::providers::prove::identity_ref_key;
use idv::store::{RefClaim, StoreError};

super::contract!(
    a_ref_points_to_one_open_session_at_a_time,
    refs_read_together_answer_in_the_order_asked,
    identity_refs_are_claimed_once_and_moved_only_from_where_they_point,
    an_identity_is_linked_to_one_session,
);

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

async fn identity_refs_are_claimed_once_and_moved_only_from_where_they_point(
    store: Arc<dyn Adapter>,
) {
    let key = identity_ref_key("identity-1");
    let session = || {
        Session::new(
            "app-a",
            Provider::named("prove"),
            "u",
            OffsetDateTime::now_utc(),
        )
    };
    let (sa, sb) = (session(), session());
    let (a, b) = (sa.id.clone(), sb.id.clone());
    let claim = |replaces: Option<SessionId>| RefClaim {
        key: key.clone(),
        tenant: "app-a".into(),
        replaces,
    };
    store.claim_ref(&claim(None), &sa).await.unwrap();
    assert_eq!(
        store.claim_ref(&claim(None), &sb).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.claim_ref(&claim(Some(b.clone())), &sb).await,
        Err(StoreError::Conflict),
        "a stale replaces"
    );
    store.claim_ref(&claim(Some(a.clone())), &sb).await.unwrap();
    let r = store.get_ref(&key).await.unwrap().unwrap();
    assert_eq!((r.session_id, r.tenant.as_str()), (b, "app-a"));
}

async fn an_identity_is_linked_to_one_session(store: Arc<dyn Adapter>) {
    let a = created(&*store, "t", "u1").await;
    let b = created(&*store, "t", "u2").await;
    let claim = RefClaim {
        key: "passbase#b76e244e-26a3-49ef-9c72-3e599bf0b5f2".into(),
        tenant: "t".into(),
        replaces: None,
    };
    store.claim_ref(&claim, &a).await.unwrap();
    // Again for the same session: nothing changes; for another: refused.
    store.claim_ref(&claim, &a).await.unwrap();
    assert_eq!(store.claim_ref(&claim, &b).await, Err(StoreError::Conflict));
    assert_eq!(
        store.get_ref(&claim.key).await.unwrap().unwrap().session_id,
        a.id
    );
}
