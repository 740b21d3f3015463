//! The session store port, and its two adapters: DynamoDB (production) and in-memory (local server
//! and unit tests). One contract test suite (tests/integration/store_contract.rs) holds both to the
//! same behaviour.

pub mod cursor;
mod dynamo;
mod memory;

pub use dynamo::{DynamoStore, create_table};
pub use memory::MemoryStore;

use crate::session::{HistoryEntry, IdentityEvent, Provider, Reauthentication, Session, SessionId};
use async_trait::async_trait;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write lost: the version moved, or the item already exists.
    #[error("conditional write failed")]
    Conflict,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which session a provider-side identity currently points to (e.g. Authento user + track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef {
    pub key: String,
    pub session_id: SessionId,
    pub tenant: String,
}

/// Point `key` at a new session, but only if it points nowhere yet or still at `replaces`: two
/// racing creators can't both open a session for the same provider identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefClaim {
    pub key: String,
    pub tenant: String,
    pub replaces: Option<SessionId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Recorded, not yet applied (its processing is in flight, or failed and is due again).
    Received,
    /// Authentic, but no session matches it yet: kept, filed under its subjects, to be matched
    /// when one of them is tied to a session.
    Unmatched,
    /// Applied to every session it concerns: a redelivery is a duplicate.
    Applied,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Received => "received",
            DeliveryState::Unmatched => "unmatched",
            DeliveryState::Applied => "applied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "received" => Some(Self::Received),
            "unmatched" => Some(Self::Unmatched),
            "applied" => Some(Self::Applied),
            _ => None,
        }
    }
}

/// A webhook delivery, identified by the provider's event identity, recorded before it is acted
/// on with everything a later attempt needs to act on it again: nothing of it lives only in a
/// request that may fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: Provider,
    pub event_id: String,
    /// Provider-side identities it is about (an Authento subject, a Passbase identity key, a
    /// Prove identity or customer), under which it is kept while unmatched.
    pub subjects: Vec<String>,
    /// The event in the minimal form its provider's processing needs (never personal data).
    pub payload: String,
    /// For a delivery without an event id of its own (Authento: its id is its body's hash):
    /// where the sessions it concerns stand. An applied delivery is a duplicate only while they
    /// still stand where it left them; the same body after a change is a new event.
    pub mark: Option<String>,
    pub received_at: OffsetDateTime,
    /// When DynamoDB may forget it (the dedupe window).
    pub expires_at: OffsetDateTime,
}

/// What recording a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Ours to process now, under a lease: new, or recorded before and not applied (its earlier
    /// attempt failed, or it was kept unmatched). `attempts` counts this one.
    Process { attempts: u32 },
    /// Applied before: a redelivery.
    Duplicate,
    /// Another attempt holds its lease right now (a twin delivery in flight): that one settles
    /// it, or it falls due again when the lease runs out.
    InFlight,
}

/// A delivery the retry index says is due, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery: Delivery,
    /// Attempts so far (the backoff grows with them).
    pub attempts: u32,
}

/// The state of an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// The first request holds the key: its twins wait (409 with `Retry-After`) until it
    /// finishes, or take over once `lease_until` passed (it died).
    InProgress {
        lease_until: OffsetDateTime,
        /// Which request holds it: only that one completes or releases it.
        owner: String,
    },
    /// Finished: a replay answers this again.
    Done {
        session_id: SessionId,
        /// The first response's status code.
        status: u16,
        /// Unix seconds the first response's token was issued at, so a replay re-signs the same
        /// JWT instead of storing it.
        issued_at: Option<i64>,
        /// What else a replay must answer as the first response did (e.g. Nevis's start URL);
        /// never a secret.
        replay: Option<String>,
    },
}

/// What an `Idempotency-Key` is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub tenant: String,
    pub key: String,
    /// A keyed MAC of the request's method, path and body: another request under the same key
    /// is a conflict, and the stored value says nothing about the body.
    pub fingerprint: String,
    pub state: IdempotencyState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl IdempotencyRecord {
    /// The owner of an in-progress record (empty once done).
    pub fn owner(&self) -> &str {
        match &self.state {
            IdempotencyState::InProgress { owner, .. } => owner,
            IdempotencyState::Done { .. } => "",
        }
    }
}

/// What taking an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is ours (new, expired, or an abandoned attempt of the same request).
    Started,
    /// The key is live: the record says whose and what.
    Existing(IdempotencyRecord),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub sessions: Vec<Session>,
    pub next_cursor: Option<String>,
}

/// A write to the session together with what must happen atomically with it.
#[derive(Debug, Clone, Copy)]
pub struct SessionWrite<'a> {
    /// The new state, its `version` already one more than `expected_version`.
    pub session: &'a Session,
    pub expected_version: u64,
    pub history: Option<&'a HistoryEntry>,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;

    /// Creates a session (with its first history entry), atomically with its ref claims and
    /// the completion of its request's idempotency record (`idempotency` is the `Done` record; the
    /// stored one must still be in progress and held by `owner`). `Conflict` if the id or the
    /// claim is taken, or the key is no longer held by this request.
    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()>;

    /// Writes a new state if the stored version is still `expected_version`; else `Conflict`.
    async fn update_session(&self, write: SessionWrite<'_>) -> StoreResult<()>;

    /// A user's sessions of one tenant, newest first. `None` cursor starts at the newest.
    /// A cursor that this store did not hand out for this tenant and user is `Ok(None)`.
    async fn list_user_sessions(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>>;

    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>>;

    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>>;

    /// Several refs at once, in the order of `keys` (DynamoDB: one BatchGetItem instead of one
    /// GetItem per key).
    async fn get_refs(&self, keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get_ref(k).await?);
        }
        Ok(out)
    }

    /// Points `claim.key` at an existing session (a provider identity linked after creation).
    /// `Conflict` if it already points at another session than `session_id` or `claim.replaces`;
    /// pointing it again at the same session changes nothing.
    async fn claim_ref(&self, claim: &RefClaim, session_id: &SessionId) -> StoreResult<()>;

    /// Records a delivery before it is acted on (`received`), and takes its lease until
    /// `lease_until` (`now` is when a lease left by a dead attempt counts as run out). An
    /// applied one is a duplicate, unless its `mark` moved since it was applied. While the lease
    /// runs it is filed as due at `lease_until`, so a crash mid-processing leaves it for the
    /// retry.
    async fn record_delivery(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded>;

    /// Takes the lease of a due delivery for a retry (`false`: someone else holds it, or it was
    /// settled meanwhile).
    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Ends a delivery's processing: `Applied` (with `delivery.mark` as it stands after it), or
    /// `Unmatched` (then filed under its subjects, for `unmatched_deliveries`). Leaves the retry
    /// index either way.
    async fn settle_delivery(&self, delivery: &Delivery, state: DeliveryState) -> StoreResult<()>;

    /// An attempt failed: releases the lease and files the delivery as due again at `retry_at`.
    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Deliveries of one retry shard due at or before `now`, earliest first, at most `limit`.
    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>>;

    /// Binds a provider's delivery token (a hash of it) to the body it first came with, until
    /// `expires_at`: `false` if the token already came with another body (a captured header
    /// replayed over a forged body). The same body again is `true` (a redelivery).
    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The delivery's state, if recorded (for tests and operators).
    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>>;

    /// The deliveries kept about `subject` that are still `unmatched`.
    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>>;

    /// Takes an `Idempotency-Key` for a request (`record` is its `InProgress` record): `Started`
    /// if the key is free, expired, or held by an abandoned attempt (lease run out) of the same
    /// request; else the live record.
    async fn begin_idempotency(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun>;

    /// Marks the request held by `owner` done (`record` is the `Done` record). `Conflict` if the
    /// key is no longer held by it.
    async fn complete_idempotency(
        &self,
        record: &IdempotencyRecord,
        owner: &str,
    ) -> StoreResult<()>;

    /// Frees a key whose request failed, if `owner` still holds it, so that a retry can run.
    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()>;

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// Records a reauthentication once: the same event again changes nothing.
    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()>;

    /// A user's reauthentications of one tenant, newest first, at most `limit`.
    async fn list_reauthentications(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Reauthentication>>;

    /// Stores an identity event of a session atomically with the session write (its version
    /// checked) and the settling of the delivery that brought it (`applied`). Storing an event
    /// id the session already holds changes nothing but the write.
    async fn add_identity_event(
        &self,
        write: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()>;

    /// A session's identity events, newest first (at most `limit`, whatever the session holds:
    /// the read costs what `limit` asks, not what accumulated).
    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>>;

    /// Open sessions of one due shard whose `next_check_at` is at or before `now`, earliest first,
    /// at most `limit`. Read from an index that holds only open sessions with a next check, so
    /// the cost follows the number due, not the size of the table. (DynamoDB files a session at
    /// or before its next check; one found early is re-filed, not answered, and counts against
    /// `limit`: the next run finds what it crowded out.)
    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Session>>;
}

/// The due index is spread over this many partition keys, so that it never becomes one hot
/// partition however many sessions are open.
pub const DUE_SHARDS: u16 = 16;

/// A session's due shard: a stable hash (FNV-1a) of its id, the same in every process and release.
pub fn due_shard(id: &SessionId) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % u32::from(DUE_SHARDS)) as u16
}

/// A delivery's retry shard (the same hash as sessions'), so that a burst of deliveries never
/// becomes one hot partition of the retry index either.
pub fn delivery_shard(provider: &str, event_id: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in provider.bytes().chain([b'#']).chain(event_id.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % u32::from(DUE_SHARDS)) as u16
}

/// Whether a session belongs in the due index: it has a next check and can still change (an
/// open session, or a decided one with an open reason to re-read it).
pub fn is_scheduled(s: &Session) -> bool {
    !s.status.is_final() && s.next_check_at.is_some()
}
