//! The store, by capability: each trait of `port` is what one kind of work needs (sessions, refs,
//! webhook deliveries, idempotency keys, the due index, the journal of what happened to a
//! session, the record of reads of its verified data), and `Store` is all of them, the one thing
//! `App` holds. Two adapters implement every capability: DynamoDB (deployed) and in memory (the
//! local server and unit tests). One contract suite (tests/integration/store/) holds both to the
//! same behaviour, capability by capability.
//! `Inspect` is for tests only: no flow reads through it.

pub mod cursor;
mod dynamo;
mod memory;
mod port;
mod shard;

pub use dynamo::stream::{attribute_from_json, change_of, item_from_json};
pub use dynamo::{DynamoStore, SchemaError, create_table, ensure_stream};
pub use memory::MemoryStore;
pub use port::{
    Accesses, Deliveries, DueIndex, Idempotency, Inspect, Journal, Listing, Outbox, Redactions,
    Refs, Sessions, Store,
};

use crate::events::EventType;
use crate::session::{
    HistoryEntry, IdentityEvent, Provider, Reauthentication, Session, SessionId, Status,
};
use std::ops::Deref;
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

/// A change the store committed, as the table's stream (DynamoDB) or the memory store's log
/// reports it: what outbound events are derived from (`events::derive`).
// A batch of changes lives for one stream batch: boxing the session would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Change {
    /// A session as one write stored it, with the history entry that write added, if any.
    Session {
        session: Stored<Session>,
        entry: Option<HistoryEntry>,
    },
    /// An identity event recorded for the first time.
    IdentityEvent(IdentityEvent),
    /// A reauthentication recorded for the first time.
    Reauthentication(Reauthentication),
}

/// What a session's redaction erases besides the session item (`Redactions::erase_dependents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub session_id: SessionId,
    pub tenant: String,
    /// The user as the app named them (their reauthentications are filed under it).
    pub user_id: String,
    /// Refs deleted where they still lead to this session.
    pub ref_keys: Vec<String>,
    /// `(provider, subject)`: webhook deliveries about these provider identities are deleted,
    /// with their filings (their keys and payloads name the identity).
    pub subjects: Vec<(String, String)>,
    /// Values erased from the session's outbound events (`session::erase_values`).
    pub values: Vec<String>,
    /// Until when each of `subjects` keeps a tombstone (the dedupe window): a webhook about one
    /// of them that matches no session is acknowledged and forgotten, not kept.
    pub tombstones_until: OffsetDateTime,
}

/// How a tombstone names a redacted provider identity: its SHA-256 (hex), never the identity.
pub fn tombstone_hash(subject: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(subject.as_bytes()))
}

/// Which events a listing wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
    pub session_id: Option<SessionId>,
}

/// Which sessions of a tenant a listing wants (`Listing::list_sessions`); `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub user_id: Option<String>,
    pub status: Option<Status>,
    pub provider: Option<Provider>,
    /// Created at or after this instant.
    pub created_from: Option<OffsetDateTime>,
    /// Created strictly before this instant.
    pub created_until: Option<OffsetDateTime>,
    /// With a user: also that user's sessions whose redaction is marked and not finished (a
    /// user's redaction repeated after a failure finishes them). No route's listing sets it.
    pub with_redacting: bool,
}

impl SessionFilter {
    /// A user's sessions, whatever else.
    pub fn user(user_id: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            ..Self::default()
        }
    }

    /// Whether a session of the tenant listed is one this filter wants. A session being
    /// redacted (marked or done) is no longer its user's: a listing by user never finds it
    /// (DynamoDB: a finished one is out of the user index), the tenant's listing still does.
    pub fn matches(&self, s: &Session) -> bool {
        let unfinished = s
            .redaction
            .as_ref()
            .is_some_and(|r| r.state == crate::session::RedactionState::Redacting);
        self.user_id.as_ref().is_none_or(|u| {
            *u == s.user_id && (!s.is_redacted() || (self.with_redacting && unfinished))
        }) && self.status.is_none_or(|st| st == s.status)
            && self.provider.as_ref().is_none_or(|p| *p == s.provider)
            && self.created_from.is_none_or(|at| s.created_at >= at)
            && self.created_until.is_none_or(|at| s.created_at < at)
    }
}

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

/// A page of a listing: values only (a listing is read, never written back).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub sessions: Vec<Session>,
    pub next_cursor: Option<String>,
}

/// A value as read from the store, with the store's bookkeeping beside it: the version every
/// write is conditional on, and where the store filed it. The bookkeeping is never part of the
/// value: compare `value`s (two reads of one state are equal whatever their versions).
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub value: T,
    /// Optimistic concurrency: a write is conditional on it, and stores the next one.
    pub version: u64,
    pub filing: Filing,
}

/// The version a session is created with.
pub const FIRST_VERSION: u64 = 1;

impl Stored<Session> {
    /// A session as `Sessions::create_session` stores it: its first version, with its first
    /// history entry, in the due index at its next check if it has one.
    pub fn created(session: Session) -> Self {
        let due = session.next_check_at.filter(|_| is_scheduled(&session));
        Stored {
            value: session,
            version: FIRST_VERSION,
            filing: Filing {
                due,
                history: HistoryMark {
                    len: 1,
                    oldest_slot: 0,
                },
            },
        }
    }
}

impl<T> Stored<T> {
    /// The version the next write of this value stores (a history entry carries it).
    pub fn next_version(&self) -> u64 {
        self.version + 1
    }

    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Where an adapter filed a session: hints that let a write touch no more than it must. Read with
/// a version, they are exact (a write is conditional on that version); after a write, the
/// adapter derives them from what it wrote. Its write checks them besides, so a stale hint costs
/// a retry, never a wrong filing. The in-memory adapter needs none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filing {
    /// Where the due index holds the session, if it does. DynamoDB keeps a filing that is not
    /// later than the new `next_check_at` instead of moving it (moving an index key costs a
    /// delete and a put in the index on every write); reconcile re-files a session it finds
    /// early.
    pub due: Option<OffsetDateTime>,
    /// How the stored history is laid out, so that a write keeps it within `MAX_HISTORY`.
    pub history: HistoryMark,
}

/// How a session's stored history is laid out: how many entries it holds, and where the oldest
/// one after the first sits (the one a write replaces once the history is full).
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryMark {
    pub len: usize,
    pub oldest_slot: usize,
}

/// A write to the session together with what must happen atomically with it.
#[derive(Debug, Clone, Copy)]
pub struct SessionWrite<'a> {
    /// The session as read: the write is conditional on its version, and stores the next one.
    pub read: &'a Stored<Session>,
    /// The new state.
    pub session: &'a Session,
    pub history: Option<&'a HistoryEntry>,
    /// When the write is made: a due filing already due by then is moved with it (kept, reconcile
    /// would find the session early and re-file it, a write of its own).
    pub at: OffsetDateTime,
}

impl SessionWrite<'_> {
    /// The version the write stores.
    pub fn version(&self) -> u64 {
        self.read.next_version()
    }
}

/// Whether a session belongs in the due index: it has a next check and can still change (an
/// open session, or a decided one with an open reason to re-read it).
pub fn is_scheduled(s: &Session) -> bool {
    // A redaction to finish, or a provider deletion to retry, keeps any session filed.
    (!s.status.is_final() || s.redaction.is_some()) && s.next_check_at.is_some()
}

/// An outbound event's body with the values erased (`session::erase_values`); a body that is
/// not JSON is replaced whole.
pub(crate) fn scrub(body: &mut String, values: &[String]) {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            crate::session::erase_values(&mut v, values);
            *body = v.to_string();
        }
        Err(_) => *body = "{}".into(),
    }
}
