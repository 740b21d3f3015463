//! In-memory adapter: the local server's default and the fast side of the contract tests. One
//! lock over everything: each port method is atomic, as DynamoDB's conditional writes and
//! transactions are. One file per capability, like the DynamoDB adapter.

mod accesses;
mod deliveries;
mod idempotency;
mod inspect;
mod journal;
mod listing;
mod outbox;
mod redactions;
mod refs;
mod sessions;

use super::{
    Change, Delivery, DeliveryState, IdempotencyRecord, ProviderRef, SessionWrite, StoreError,
    StoreResult, Stored,
};
use crate::events::{Endpoint, Event, OutboundDelivery, OutboundKey};
use crate::session::{
    HistoryEntry, IdentityEvent, MAX_HISTORY, Reauthentication, Session, SessionId,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use time::OffsetDateTime;

/// A delivery as recorded, with its processing bookkeeping.
#[derive(Clone)]
struct DeliveryRecord {
    delivery: Delivery,
    state: DeliveryState,
    lease_until: OffsetDateTime,
    /// When it is due again (`None`: settled, out of the retry index).
    retry_at: Option<OffsetDateTime>,
    attempts: u32,
    /// Where what it concerns stood when the processing attempt was recorded (`mark` is where
    /// it left them): a twin that read them before this one applied still sees them there.
    mark_in: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Each with its version beside it (no filing: nothing here costs more to move).
    sessions: HashMap<SessionId, Stored<Session>>,
    history: BTreeMap<(String, u64), HistoryEntry>,
    refs: HashMap<String, ProviderRef>,
    deliveries: HashMap<(String, String), DeliveryRecord>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    identity_events: HashMap<(SessionId, String), IdentityEvent>,
    /// (provider, subject) -> event ids kept as unmatched.
    unmatched: HashMap<(String, String), Vec<String>>,
    /// (tenant, user) -> reauthentications in arrival order.
    reauthentications: HashMap<(String, String), Vec<Reauthentication>>,
    /// (provider, SHA-256 of a redacted identity) -> until (`store::tombstone_hash`).
    tombstones: HashMap<(String, String), OffsetDateTime>,
    /// (provider, token hash) -> (body hash, until).
    tokens: HashMap<(String, String), (String, OffsetDateTime)>,
    /// (tenant, endpoint id) -> endpoint.
    endpoints: BTreeMap<(String, String), Endpoint>,
    /// (tenant, event id) -> event.
    events: BTreeMap<(String, String), Event>,
    outbound: BTreeMap<OutboundKey, OutboundRecord>,
    /// (session id, access id) -> a read of the session's verified data.
    accesses: BTreeMap<(String, String), crate::verified::DataAccess>,
    /// Every committed change, in commit order: the local server's stand-in for the table's
    /// stream (`MemoryStore::changes_after`).
    changes: Vec<Change>,
}

/// An outbound delivery with its lease.
#[derive(Clone)]
struct OutboundRecord {
    delivery: OutboundDelivery,
    lease: Option<(String, OffsetDateTime)>,
}

impl Inner {
    fn append_history(&mut self, h: &HistoryEntry) {
        let id = h.session_id.to_string();
        self.history.insert((id.clone(), h.version), h.clone());
        // Keep the first (creation) entry and the latest others, as the DynamoDB item does.
        let held: Vec<u64> = self
            .history
            .range((id.clone(), 0)..=(id.clone(), u64::MAX))
            .map(|((_, v), _)| *v)
            .collect();
        if held.len() > MAX_HISTORY {
            self.history.remove(&(id, held[1]));
        }
    }

    /// The one session write (alone, or with an identity event): the version read must still be
    /// the stored one, and a history entry of a version already written is refused.
    fn write_session(&mut self, w: &SessionWrite<'_>) -> StoreResult<Stored<Session>> {
        self.check_write(w)?;
        let stored = Stored {
            value: w.session.clone(),
            version: w.version(),
            filing: Default::default(),
        };
        self.sessions.insert(w.session.id.clone(), stored.clone());
        if let Some(h) = w.history {
            self.append_history(h);
        }
        self.changes.push(Change::Session {
            session: stored.clone(),
            entry: w.history.cloned(),
        });
        Ok(stored)
    }

    /// What a session write requires: the version read is still the stored one, and its history
    /// entry is of a version not written yet.
    fn check_write(&self, w: &SessionWrite<'_>) -> StoreResult<()> {
        match self.sessions.get(&w.session.id) {
            Some(s) if s.version == w.read.version => {}
            _ => return Err(StoreError::Conflict),
        }
        if let Some(h) = w.history
            && self
                .history
                .contains_key(&(h.session_id.to_string(), h.version))
        {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// Settles a delivery (recording it if it never was): out of the retry index, its lease
    /// ended, its mark as it stands after it.
    fn settle(&mut self, d: &Delivery, state: DeliveryState) {
        let k = delivery_key(d.provider.as_str(), &d.event_id);
        let record = self.deliveries.entry(k).or_insert_with(|| DeliveryRecord {
            delivery: d.clone(),
            state,
            lease_until: OffsetDateTime::UNIX_EPOCH,
            retry_at: None,
            attempts: 1,
            mark_in: d.mark.clone(),
        });
        record.state = state;
        record.retry_at = None;
        record.lease_until = OffsetDateTime::UNIX_EPOCH;
        record.delivery.mark = d.mark.clone();
    }
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug in this module; keep serving regardless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The changes committed after the first `seen`, and how many there are in all (the next
    /// `seen`): the in-memory stand-in for the table's stream.
    pub fn changes_after(&self, seen: usize) -> (Vec<Change>, usize) {
        let g = self.lock();
        let from = seen.min(g.changes.len());
        (g.changes[from..].to_vec(), g.changes.len())
    }
}

fn delivery_key(provider: &str, event_id: &str) -> (String, String) {
    (provider.to_owned(), event_id.to_owned())
}
