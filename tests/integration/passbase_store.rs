//! The store's part of Passbase, held to one contract on both adapters (in-memory and DynamoDB
//! Local): document evidence on the session, identities linked after creation, reauthentications.
//! (Deliveries kept until their identity is linked: the deliveries contract in store_contract.rs.)

use idv::providers::passbase::Evidence;
use idv::session::{HistoryEntry, Provider, ProviderData, Reauthentication, Session};
use idv::store::{DynamoStore, MemoryStore, RefClaim, Store, StoreError};
use idv_tests::{dynamo_client, unique_table};
use std::sync::Arc;
use time::OffsetDateTime;

use idv::store::Inspect;

/// What a contract test holds an adapter to: every capability, and what tests look at.
trait Adapter: Store + Inspect {}
impl<T: Store + Inspect + ?Sized> Adapter for T {}

async fn dynamo() -> Arc<dyn Adapter> {
    let client = dynamo_client().await;
    let table = unique_table("idv-pb-contract");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    Arc::new(DynamoStore::new(client, table))
}

fn memory() -> Arc<dyn Adapter> {
    Arc::new(MemoryStore::new())
}

async fn created(store: &dyn Adapter, tenant: &str, user: &str) -> Session {
    let s = Session::new(
        tenant,
        Provider::named("passbase"),
        user,
        OffsetDateTime::now_utc(),
    );
    store
        .create_session(&s, &HistoryEntry::created(&s), &[], None)
        .await
        .expect("create");
    s
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
    evidence_reads_back_identically,
    an_identity_is_linked_to_one_session,
    reauthentications_are_recorded_once_and_listed_newest_first,
);

async fn evidence_reads_back_identically(store: Arc<dyn Adapter>) {
    let mut s = Session::new(
        "t",
        Provider::named("passbase"),
        "u",
        OffsetDateTime::now_utc(),
    );
    s.data = ProviderData::of(&Evidence {
        score: Some(0.93),
        document_type: Some("PASSPORT".into()),
        document_country: Some("DEU".into()),
    });
    store
        .create_session(&s, &HistoryEntry::created(&s), &[], None)
        .await
        .unwrap();
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(|g| g.value), Some(s));
}

async fn an_identity_is_linked_to_one_session(store: Arc<dyn Adapter>) {
    let a = created(&*store, "t", "u1").await;
    let b = created(&*store, "t", "u2").await;
    let claim = RefClaim {
        key: "passbase#b76e244e-26a3-49ef-9c72-3e599bf0b5f2".into(),
        tenant: "t".into(),
        replaces: None,
    };
    store.claim_ref(&claim, &a.id).await.unwrap();
    // Again for the same session: nothing changes; for another: refused.
    store.claim_ref(&claim, &a.id).await.unwrap();
    assert_eq!(
        store.claim_ref(&claim, &b.id).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.get_ref(&claim.key).await.unwrap().unwrap().session_id,
        a.id
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
