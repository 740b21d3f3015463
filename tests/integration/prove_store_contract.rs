//! The store ports Prove added, held to one contract on both adapters (in-memory and DynamoDB
//! Local): Prove details round-trip, identity refs are claimed like creation refs, and identity
//! events are written atomically with their session and the settling of their delivery.

use idv::providers::prove::{Possession, ProveData, ProveRegion, identity_ref_key};
use idv::session::{HistoryEntry, IdentityEvent, Provider, ProviderData, Session, SessionId};
use idv::store::{
    Delivery, DeliveryState, DynamoStore, MemoryStore, Recorded, RefClaim, SessionWrite, Store,
    StoreError, Stored,
};
use idv_tests::{dynamo_client, unique_table};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

use idv::store::Inspect;

/// What a contract test holds an adapter to: every capability, and what tests look at.
trait Adapter: Store + Inspect {}
impl<T: Store + Inspect + ?Sized> Adapter for T {}

async fn dynamo() -> Arc<dyn Adapter> {
    let client = dynamo_client().await;
    let table = unique_table("idv-prove-contract");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    Arc::new(DynamoStore::new(client, table))
}

fn memory() -> Arc<dyn Adapter> {
    Arc::new(MemoryStore::new())
}

/// Whole seconds: the DynamoDB adapter stores RFC 3339, the comparison must not see nanos.
fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn prove_session(user: &str) -> Session {
    let at = now();
    let mut s = Session::new("app-a", Provider::named("prove"), user, at);
    s.provider_ref = Some("713189b8-5555-4b08-83ba-75d08780aebd".into());
    s.expires_at = Some(at + Duration::minutes(15));
    s.data = ProviderData::of(&ProveData {
        possession: Possession::Desktop,
        region: ProveRegion::Eu,
        phone_masked: "+4********002".into(),
        possession_deadline: Some(at + Duration::minutes(3)),
        identity_id: Some("identity-1".into()),
        reverification_recommended: true,
    });
    s
}

async fn create(store: &dyn Adapter, s: &Session) {
    store
        .create_session(s, &HistoryEntry::created(s), &[], None)
        .await
        .expect("create");
}

fn event(s: &Session, id: &str, at: OffsetDateTime) -> IdentityEvent {
    IdentityEvent {
        session_id: s.id.clone(),
        event_id: id.into(),
        event_type: "DISCONNECT".into(),
        occurred_at: Some(at - Duration::minutes(1)),
        received_at: at,
    }
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
    prove_details_read_back_identically,
    identity_refs_are_claimed_once_and_moved_only_from_where_they_point,
    an_identity_event_is_written_with_its_session_and_delivery_or_not_at_all,
);

async fn prove_details_read_back_identically(store: Arc<dyn Adapter>) {
    let s = prove_session("user-p1");
    create(store.as_ref(), &s).await;
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(Stored::into_value), Some(s));
}

async fn identity_refs_are_claimed_once_and_moved_only_from_where_they_point(
    store: Arc<dyn Adapter>,
) {
    let key = identity_ref_key("identity-1");
    let (a, b) = (SessionId::generate(), SessionId::generate());
    let claim = |replaces: Option<SessionId>| RefClaim {
        key: key.clone(),
        tenant: "app-a".into(),
        replaces,
    };
    store.claim_ref(&claim(None), &a).await.unwrap();
    assert_eq!(
        store.claim_ref(&claim(None), &b).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.claim_ref(&claim(Some(b.clone())), &b).await,
        Err(StoreError::Conflict),
        "a stale replaces"
    );
    store.claim_ref(&claim(Some(a.clone())), &b).await.unwrap();
    let r = store.get_ref(&key).await.unwrap().unwrap();
    assert_eq!((r.session_id, r.tenant.as_str()), (b, "app-a"));
}

async fn an_identity_event_is_written_with_its_session_and_delivery_or_not_at_all(
    store: Arc<dyn Adapter>,
) {
    let s = prove_session("user-p2");
    create(store.as_ref(), &s).await;
    let at = now();
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
