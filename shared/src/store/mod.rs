//! The session store port, and its two adapters: DynamoDB (production) and in-memory (local server
//! and unit tests). One contract test suite (tests/integration/store_contract.rs) holds both to the
//! same behaviour.

pub mod cursor;
mod dynamo;
mod memory;

pub use dynamo::{DynamoStore, create_table};
pub use memory::MemoryStore;

use crate::session::{HistoryEntry, IdentityEvent, Reauthentication, Session, SessionId};
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
    /// Recorded, not yet applied (or its application failed): a redelivery is processed again.
    Received,
    /// Authentic, but no session matches it yet: kept to be matched later.
    Unmatched,
    /// Applied: a redelivery is a duplicate.
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

/// A webhook delivery, identified by the provider's event identity (api.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: &'static str,
    pub event_id: String,
    /// Provider-side identity the event is about (e.g. Authento user id), to match it later.
    pub subject: Option<String>,
    pub received_at: OffsetDateTime,
    /// When DynamoDB may forget it (dedupe window).
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    New,
    Duplicate,
}

/// What an `Idempotency-Key` is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub tenant: String,
    pub key: String,
    /// SHA-256 of route and body: another body under the same key is a conflict.
    pub request_hash: String,
    pub session_id: SessionId,
    /// The first response's status code.
    pub status: u16,
    /// Unix seconds the first response's token was issued at, so a replay re-signs the same JWT
    /// instead of storing it.
    pub issued_at: Option<i64>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
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
    /// A delivery this write applies: marked `applied` once the write is stored. Not atomically
    /// with it (DynamoDB bills a transaction twice per item): a delivery whose mark was lost
    /// stays `received`, and its redelivery is processed again, which changes nothing twice.
    pub applies_delivery: Option<(&'static str, &'a str)>,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;

    /// Creates a session (with its first history entry), atomically with an optional ref claim and
    /// idempotency record. `Conflict` if the id, the claim or the idempotency key is taken.
    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claim: Option<&RefClaim>,
        idempotency: Option<&IdempotencyRecord>,
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

    /// Records a delivery before it is acted on. `Duplicate` if it was already applied.
    async fn record_delivery(&self, delivery: &Delivery) -> StoreResult<DeliveryOutcome>;

    async fn set_delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
        state: DeliveryState,
    ) -> StoreResult<()>;

    /// The delivery's state, if recorded (for tests and operators).
    async fn delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>>;

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// `Conflict` if the key is already bound to a record that has not expired.
    async fn put_idempotency(&self, record: &IdempotencyRecord) -> StoreResult<()>;

    /// Points `claim.key` at an existing session (a provider identity linked after creation).
    /// `Conflict` if it already points at another session than `session_id` or `claim.replaces`;
    /// pointing it again at the same session changes nothing.
    async fn claim_ref(&self, claim: &RefClaim, session_id: &SessionId) -> StoreResult<()>;

    /// Marks a recorded delivery `unmatched` and files it under its `subject`, so that linking
    /// that provider identity later finds it. A delivery without a subject is only marked.
    async fn keep_unmatched(&self, delivery: &Delivery) -> StoreResult<()>;

    /// Event ids of the deliveries about `subject` that are still `unmatched`.
    async fn unmatched_deliveries(
        &self,
        provider: &'static str,
        subject: &str,
    ) -> StoreResult<Vec<String>>;

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
    /// checked), then marks the delivery `applied` as `update_session` does. Re-storing the same
    /// event id overwrites it.
    async fn add_identity_event(
        &self,
        write: SessionWrite<'_>,
        event: &IdentityEvent,
    ) -> StoreResult<()>;

    /// A session's identity events, newest first (at most `limit`).
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

/// The key of the ref that ties a Prove Identity Manager identity to the latest verified session
/// that enrolled it (its webhooks name only the identity).
pub fn prove_identity_ref_key(identity_id: &str) -> String {
    format!("prove#identity#{identity_id}")
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

/// Whether a session belongs in the due index.
pub fn is_scheduled(s: &Session) -> bool {
    !s.status.is_terminal() && s.next_check_at.is_some()
}

/// The key of the ref that ties an Authento user's track to its open session.
pub fn authento_ref_key(user_id: &str, verification_type: &str) -> String {
    format!("authento#{user_id}#{verification_type}")
}

/// The key of the ref that ties a Nevis IDV `sessionId` to our session (one each way).
pub fn nevis_ref_key(nevis_session_id: &str) -> String {
    format!("nevis#{nevis_session_id}")
}
