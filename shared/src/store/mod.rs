//! The store, by capability: each trait of `port` is what one kind of work needs (sessions, refs,
//! webhook deliveries, idempotency keys, the due index, the journal of what happened to a
//! session), and `Store` is all of them, the one thing `App` holds. Two adapters implement every
//! capability: DynamoDB (deployed) and in memory (the local server and unit tests). One contract
//! suite (tests/integration/store/) holds both to the same behaviour, capability by capability.
//! `Inspect` is for tests only: no flow reads through it.

pub mod cursor;
mod dynamo;
mod memory;
mod port;
mod shard;

pub use dynamo::{DynamoStore, SchemaError, create_table};
pub use memory::MemoryStore;
pub use port::{Deliveries, DueIndex, Idempotency, Inspect, Journal, Refs, Sessions, Store};

use crate::session::{HistoryEntry, Provider, Session, SessionId};
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

/// Whether a session belongs in the due index: it has a next check and can still change (an
/// open session, or a decided one with an open reason to re-read it).
pub fn is_scheduled(s: &Session) -> bool {
    !s.status.is_final() && s.next_check_at.is_some()
}
