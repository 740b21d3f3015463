//! In-memory adapter: the local server's default and the fast side of the contract tests.

use super::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, Session>,
    history: BTreeMap<(String, u64), HistoryEntry>,
    refs: HashMap<String, ProviderRef>,
    deliveries: HashMap<(String, String), DeliveryState>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    identity_events: HashMap<(SessionId, String), IdentityEvent>,
    /// (provider, subject) -> event ids kept as unmatched.
    unmatched: HashMap<(String, String), Vec<String>>,
    /// (tenant, user) -> reauthentications in arrival order.
    reauthentications: HashMap<(String, String), Vec<Reauthentication>>,
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
        // A panic while holding the lock would be a bug in this file; keep serving regardless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A listing's order: creation time, then id (as the DynamoDB index sorts them).
fn position(s: &Session) -> cursor::Position {
    cursor::Position {
        created_ns: s.created_at.unix_timestamp_nanos().max(0),
        id: s.id.clone(),
    }
}

fn order(p: &cursor::Position) -> (i128, &str) {
    (p.created_ns, p.id.as_str())
}

#[async_trait]
impl Store for MemoryStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claim: Option<&RefClaim>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        if g.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict);
        }
        if let Some(c) = claim {
            let current = g.refs.get(&c.key).map(|r| &r.session_id);
            if current != c.replaces.as_ref() {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(r) = idempotency
            && g.idempotency
                .get(&(r.tenant.clone(), r.key.clone()))
                .is_some_and(|old| old.expires_at > r.created_at)
        {
            return Err(StoreError::Conflict);
        }
        g.sessions.insert(session.id.clone(), session.clone());
        g.history
            .insert((session.id.to_string(), history.version), history.clone());
        if let Some(c) = claim {
            g.refs.insert(
                c.key.clone(),
                ProviderRef {
                    key: c.key.clone(),
                    session_id: session.id.clone(),
                    tenant: c.tenant.clone(),
                },
            );
        }
        if let Some(r) = idempotency {
            g.idempotency
                .insert((r.tenant.clone(), r.key.clone()), r.clone());
        }
        Ok(())
    }

    async fn update_session(&self, w: SessionWrite<'_>) -> StoreResult<()> {
        let mut g = self.lock();
        match g.sessions.get(&w.session.id) {
            Some(s) if s.version == w.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        if let Some(h) = w.history
            && g.history
                .contains_key(&(h.session_id.to_string(), h.version))
        {
            return Err(StoreError::Conflict);
        }
        g.sessions.insert(w.session.id.clone(), w.session.clone());
        if let Some(h) = w.history {
            g.history
                .insert((h.session_id.to_string(), h.version), h.clone());
        }
        if let Some((provider, event_id)) = w.applies_delivery {
            g.deliveries.insert(
                (provider.to_owned(), event_id.to_owned()),
                DeliveryState::Applied,
            );
        }
        Ok(())
    }

    async fn list_user_sessions(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>> {
        let g = self.lock();
        let mut mine: Vec<&Session> = g
            .sessions
            .values()
            .filter(|s| s.tenant == tenant && s.user_id == user_id)
            .collect();
        mine.sort_by(|a, b| order(&position(b)).cmp(&order(&position(a))));
        let start = match cursor {
            None => 0,
            Some(c) => match cursor::decode(tenant, user_id, c) {
                // Everything strictly older than the position, as DynamoDB's start key reads.
                Some(at) => mine
                    .iter()
                    .position(|s| order(&position(s)) < order(&at))
                    .unwrap_or(mine.len()),
                None => return Ok(None),
            },
        };
        let page: Vec<Session> = mine
            .iter()
            .skip(start)
            .take(limit)
            .map(|s| (*s).clone())
            .collect();
        let next_cursor = (start + page.len() < mine.len())
            .then(|| {
                page.last()
                    .map(|s| cursor::encode(tenant, user_id, &position(s)))
            })
            .flatten();
        Ok(Some(Page {
            sessions: page,
            next_cursor,
        }))
    }

    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>> {
        let g = self.lock();
        Ok(g.history
            .range((id.to_string(), 0)..=(id.to_string(), u64::MAX))
            .map(|(_, h)| h.clone())
            .collect())
    }

    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>> {
        Ok(self.lock().refs.get(key).cloned())
    }

    async fn record_delivery(&self, d: &Delivery) -> StoreResult<DeliveryOutcome> {
        let mut g = self.lock();
        let k = (d.provider.to_owned(), d.event_id.clone());
        if g.deliveries.get(&k) == Some(&DeliveryState::Applied) {
            return Ok(DeliveryOutcome::Duplicate);
        }
        g.deliveries.insert(k, DeliveryState::Received);
        Ok(DeliveryOutcome::New)
    }

    async fn set_delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
        state: DeliveryState,
    ) -> StoreResult<()> {
        self.lock()
            .deliveries
            .insert((provider.to_owned(), event_id.to_owned()), state);
        Ok(())
    }

    async fn delivery_state(
        &self,
        provider: &'static str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        Ok(self
            .lock()
            .deliveries
            .get(&(provider.to_owned(), event_id.to_owned()))
            .copied())
    }

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self
            .lock()
            .idempotency
            .get(&(tenant.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn put_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (r.tenant.clone(), r.key.clone());
        if g.idempotency
            .get(&k)
            .is_some_and(|old| old.expires_at > r.created_at)
        {
            return Err(StoreError::Conflict);
        }
        g.idempotency.insert(k, r.clone());
        Ok(())
    }

    async fn claim_ref(&self, c: &RefClaim, session_id: &SessionId) -> StoreResult<()> {
        let mut g = self.lock();
        let current = g.refs.get(&c.key).map(|r| r.session_id.clone());
        match current {
            None => {}
            Some(id) if &id == session_id || Some(&id) == c.replaces.as_ref() => {}
            Some(_) => return Err(StoreError::Conflict),
        }
        g.refs.insert(
            c.key.clone(),
            ProviderRef {
                key: c.key.clone(),
                session_id: session_id.clone(),
                tenant: c.tenant.clone(),
            },
        );
        Ok(())
    }

    async fn add_identity_event(
        &self,
        w: SessionWrite<'_>,
        event: &IdentityEvent,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        match g.sessions.get(&w.session.id) {
            Some(s) if s.version == w.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        g.sessions.insert(w.session.id.clone(), w.session.clone());
        if let Some(h) = w.history {
            g.history
                .insert((h.session_id.to_string(), h.version), h.clone());
        }
        g.identity_events.insert(
            (event.session_id.clone(), event.event_id.clone()),
            event.clone(),
        );
        if let Some((provider, event_id)) = w.applies_delivery {
            g.deliveries.insert(
                (provider.to_owned(), event_id.to_owned()),
                DeliveryState::Applied,
            );
        }
        Ok(())
    }

    async fn keep_unmatched(&self, d: &Delivery) -> StoreResult<()> {
        let mut g = self.lock();
        g.deliveries.insert(
            (d.provider.to_owned(), d.event_id.clone()),
            DeliveryState::Unmatched,
        );
        if let Some(subject) = &d.subject {
            let ids = g
                .unmatched
                .entry((d.provider.to_owned(), subject.clone()))
                .or_default();
            if !ids.contains(&d.event_id) {
                ids.push(d.event_id.clone());
            }
        }
        Ok(())
    }

    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>> {
        let g = self.lock();
        let mut out: Vec<IdentityEvent> = g
            .identity_events
            .values()
            .filter(|e| &e.session_id == id)
            .cloned()
            .collect();
        out.sort_by(|a, b| (b.received_at, &b.event_id).cmp(&(a.received_at, &a.event_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Session>> {
        let g = self.lock();
        let mut due: Vec<&Session> = g
            .sessions
            .values()
            .filter(|s| is_scheduled(s) && due_shard(&s.id) == shard)
            .filter(|s| s.next_check_at.is_some_and(|at| at <= now))
            .collect();
        due.sort_by_key(|s| (s.next_check_at, s.id.to_string()));
        Ok(due.into_iter().take(limit).cloned().collect())
    }

    async fn unmatched_deliveries(
        &self,
        provider: &'static str,
        subject: &str,
    ) -> StoreResult<Vec<String>> {
        let g = self.lock();
        Ok(g.unmatched
            .get(&(provider.to_owned(), subject.to_owned()))
            .into_iter()
            .flatten()
            .filter(|id| {
                g.deliveries.get(&(provider.to_owned(), (*id).clone()))
                    == Some(&DeliveryState::Unmatched)
            })
            .cloned()
            .collect())
    }

    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()> {
        let mut g = self.lock();
        let list = g
            .reauthentications
            .entry((r.tenant.clone(), r.user_id.clone()))
            .or_default();
        if !list.iter().any(|x| x.event_id == r.event_id) {
            list.push(r.clone());
        }
        Ok(())
    }

    async fn list_reauthentications(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Reauthentication>> {
        let g = self.lock();
        let mut all: Vec<Reauthentication> = g
            .reauthentications
            .get(&(tenant.to_owned(), user_id.to_owned()))
            .cloned()
            .unwrap_or_default();
        all.sort_by(|a, b| (b.at, &b.event_id).cmp(&(a.at, &a.event_id)));
        all.truncate(limit);
        Ok(all)
    }
}
