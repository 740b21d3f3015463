//! One contract for both store adapters, the in-memory one and DynamoDB (on DynamoDB Local),
//! one file per capability of `idv::store` (sessions, their listing, refs, deliveries, idempotency
//! keys, the due index, the journal, the outbox, the verified-data accesses, redactions). Every
//! contract test runs twice, once per adapter; a test takes the adapter whole (`Adapter`) and says
//! in its file which capability it holds to account.
//! `stream` holds DynamoDB's stream to the memory store's log of changes.

mod accesses;
mod deliveries;
mod due;
mod idempotency;
mod journal;
mod listing;
mod outbox;
mod redactions;
mod refs;
mod retries;
mod sessions;
mod stream;

use idv::providers::prove::{Possession, ProveData, ProveRegion};
use idv::session::{HistoryEntry, Provider, ProviderData, Session, SessionId, Source, Status};
use idv::store::{DynamoStore, Inspect, MemoryStore, SessionWrite, Store, Stored};
use idv_tests::{dynamo_client, unique_table};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// What a contract test holds an adapter to: every capability, and what tests look at.
trait Adapter: Store + Inspect {}
impl<T: Store + Inspect + ?Sized> Adapter for T {}

async fn dynamo() -> Arc<dyn Adapter> {
    let client = dynamo_client().await;
    let table = unique_table("idv-contract");
    idv::store::create_table(&client, &table)
        .await
        .expect("create table");
    Arc::new(DynamoStore::new(client, table))
}

fn memory() -> Arc<dyn Adapter> {
    Arc::new(MemoryStore::new())
}

/// Each listed test, once per adapter: `<capability>::memory_adapter::<test>` and
/// `<capability>::dynamodb_adapter::<test>`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory_adapter {
            $( #[tokio::test] async fn $name() { super::$name(crate::store::memory()).await } )*
        }
        mod dynamodb_adapter {
            $( #[tokio::test] async fn $name() { super::$name(crate::store::dynamo().await).await } )*
        }
    };
}
use contract;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn session(tenant: &str, user: &str, at: OffsetDateTime) -> Session {
    Session::new(tenant, Provider::named("authento"), user, at)
}

fn first_entry(s: &Session) -> HistoryEntry {
    HistoryEntry::created(s)
}

async fn create(store: &dyn Adapter, s: &Session) {
    store
        .create_session(s, &first_entry(s), &[], None)
        .await
        .expect("create");
}

/// The next state of a session as read, with its history entry.
fn bumped(s: &Stored<Session>, status: Status) -> (Session, HistoryEntry) {
    let mut next = s.value.clone();
    next.status = status;
    let h = HistoryEntry {
        session_id: s.id.clone(),
        version: s.next_version(),
        at: now(),
        from: s.status,
        to: status,
        provider_status: None,
        source: Source::ProviderRead,
        reason: None,
        // Kept and read back by both adapters.
        provider_event: Some("REVIEWED".into()),
    };
    (next, h)
}

/// A write of `next` over the session as `read`, made now.
fn write<'a>(
    read: &'a Stored<Session>,
    next: &'a Session,
    history: Option<&'a HistoryEntry>,
) -> SessionWrite<'a> {
    SessionWrite {
        read,
        session: next,
        history,
        at: now(),
    }
}

/// The session as stored now.
async fn read(store: &dyn Adapter, id: &SessionId) -> Stored<Session> {
    store.get_session(id).await.unwrap().expect("the session")
}

/// Whole seconds: what every store keeps of a time exactly.
fn t0() -> OffsetDateTime {
    now().replace_nanosecond(0).unwrap()
}

fn prove_session(user: &str) -> Session {
    let at = t0();
    let mut s = Session::new("app-a", Provider::named("prove"), user, at);
    s.provider_ref = Some("713189b8-5555-4b08-83ba-75d08780aebd".into());
    s.expires_at = Some(at + Duration::minutes(15));
    s.data = ProviderData::of(&ProveData {
        flow: idv::providers::prove::ProveFlow::VerifiedUsers,
        possession: Possession::Desktop,
        region: ProveRegion::Eu,
        phone_masked: "+4********002".into(),
        possession_deadline: Some(at + Duration::minutes(3)),
        identity_id: Some("identity-1".into()),
        reverification_recommended: true,
    });
    s
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
