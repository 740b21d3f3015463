//! In-memory adapter: the local server's default and the fast side of the contract tests.

use super::*;
use crate::session::MAX_HISTORY;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A delivery as recorded, with its processing bookkeeping.
#[derive(Clone)]
struct DeliveryRecord {
    delivery: Delivery,
    state: DeliveryState,
    lease_until: OffsetDateTime,
    /// When it is due again (`None`: settled, out of the retry index).
    retry_at: Option<OffsetDateTime>,
    attempts: u32,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, Session>,
    history: BTreeMap<(String, u64), HistoryEntry>,
    refs: HashMap<String, ProviderRef>,
    deliveries: HashMap<(String, String), DeliveryRecord>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    identity_events: HashMap<(SessionId, String), IdentityEvent>,
    /// (provider, subject) -> event ids kept as unmatched.
    unmatched: HashMap<(String, String), Vec<String>>,
    /// (tenant, user) -> reauthentications in arrival order.
    reauthentications: HashMap<(String, String), Vec<Reauthentication>>,
    /// (provider, token hash) -> (body hash, until).
    tokens: HashMap<(String, String), (String, OffsetDateTime)>,
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

fn idem_live(old: &IdempotencyRecord, now: OffsetDateTime) -> bool {
    old.expires_at > now
}

fn delivery_key(provider: &str, event_id: &str) -> (String, String) {
    (provider.to_owned(), event_id.to_owned())
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
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        if g.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict);
        }
        for c in claims {
            let current = g.refs.get(&c.key).map(|r| &r.session_id);
            if current != c.replaces.as_ref() {
                return Err(StoreError::Conflict);
            }
        }
        if let Some((r, owner)) = idempotency {
            let held = g
                .idempotency
                .get(&(r.tenant.clone(), r.key.clone()))
                .is_some_and(|old| old.owner() == owner && !owner.is_empty());
            if !held {
                return Err(StoreError::Conflict);
            }
        }
        g.sessions.insert(session.id.clone(), session.clone());
        g.append_history(history);
        for c in claims {
            g.refs.insert(
                c.key.clone(),
                ProviderRef {
                    key: c.key.clone(),
                    session_id: session.id.clone(),
                    tenant: c.tenant.clone(),
                },
            );
        }
        if let Some((r, _)) = idempotency {
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
            g.append_history(h);
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

    async fn record_delivery(
        &self,
        d: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded> {
        let mut g = self.lock();
        let k = delivery_key(d.provider.as_str(), &d.event_id);
        let moved = |r: &DeliveryRecord| d.mark.is_some() && r.delivery.mark != d.mark;
        match g.deliveries.get_mut(&k) {
            None => {
                g.deliveries.insert(
                    k,
                    DeliveryRecord {
                        delivery: d.clone(),
                        state: DeliveryState::Received,
                        lease_until,
                        retry_at: Some(lease_until),
                        attempts: 1,
                    },
                );
                Ok(Recorded::Process { attempts: 1 })
            }
            Some(r) if r.state == DeliveryState::Applied && !moved(r) => Ok(Recorded::Duplicate),
            Some(r) if r.state != DeliveryState::Applied && r.lease_until > now => {
                Ok(Recorded::InFlight)
            }
            Some(r) => {
                // Processed again (it failed, died, was kept, or what it concerns moved).
                r.state = DeliveryState::Received;
                r.delivery.subjects = d.subjects.clone();
                r.delivery.payload = d.payload.clone();
                r.delivery.mark = d.mark.clone();
                r.lease_until = lease_until;
                r.retry_at = Some(lease_until);
                r.attempts = r.attempts.saturating_add(1);
                Ok(Recorded::Process {
                    attempts: r.attempts,
                })
            }
        }
    }

    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        match g.deliveries.get_mut(&delivery_key(provider, event_id)) {
            Some(r)
                if r.state != DeliveryState::Applied
                    && r.lease_until <= now
                    && r.retry_at.is_some() =>
            {
                r.lease_until = lease_until;
                r.retry_at = Some(lease_until);
                r.attempts = r.attempts.saturating_add(1);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn settle_delivery(&self, d: &Delivery, state: DeliveryState) -> StoreResult<()> {
        let mut g = self.lock();
        let k = delivery_key(d.provider.as_str(), &d.event_id);
        let record = g.deliveries.entry(k).or_insert_with(|| DeliveryRecord {
            delivery: d.clone(),
            state,
            lease_until: OffsetDateTime::UNIX_EPOCH,
            retry_at: None,
            attempts: 1,
        });
        record.state = state;
        record.retry_at = None;
        record.lease_until = OffsetDateTime::UNIX_EPOCH;
        record.delivery.mark = d.mark.clone();
        if state == DeliveryState::Unmatched {
            for subject in &d.subjects {
                let ids = g
                    .unmatched
                    .entry((d.provider.to_string(), subject.clone()))
                    .or_default();
                if !ids.contains(&d.event_id) {
                    ids.push(d.event_id.clone());
                }
            }
        }
        Ok(())
    }

    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        if let Some(r) = g.deliveries.get_mut(&delivery_key(provider, event_id))
            && r.state != DeliveryState::Applied
        {
            r.lease_until = OffsetDateTime::UNIX_EPOCH;
            r.retry_at = Some(retry_at);
        }
        Ok(())
    }

    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>> {
        let g = self.lock();
        let mut due: Vec<&DeliveryRecord> = g
            .deliveries
            .values()
            .filter(|r| r.state != DeliveryState::Applied)
            .filter(|r| r.retry_at.is_some_and(|at| at <= now))
            .filter(|r| delivery_shard(r.delivery.provider.as_str(), &r.delivery.event_id) == shard)
            .collect();
        due.sort_by_key(|r| (r.retry_at, r.delivery.event_id.clone()));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|r| DueDelivery {
                delivery: r.delivery.clone(),
                attempts: r.attempts,
            })
            .collect())
    }

    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        let k = (provider.to_owned(), token_hash.to_owned());
        match g.tokens.get(&k) {
            Some((body, _)) => Ok(body == body_hash),
            None => {
                g.tokens.insert(k, (body_hash.to_owned(), expires_at));
                Ok(true)
            }
        }
    }

    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>> {
        Ok(self
            .lock()
            .deliveries
            .get(&delivery_key(provider, event_id))
            .map(|r| r.state))
    }

    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>> {
        let g = self.lock();
        Ok(g.unmatched
            .get(&(provider.to_owned(), subject.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|id| g.deliveries.get(&delivery_key(provider, id)))
            .filter(|r| r.state == DeliveryState::Unmatched)
            .map(|r| r.delivery.clone())
            .collect())
    }

    async fn begin_idempotency(
        &self,
        r: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        let mut g = self.lock();
        let k = (r.tenant.clone(), r.key.clone());
        if let Some(old) = g.idempotency.get(&k).filter(|old| idem_live(old, now)) {
            let abandoned = matches!(old.state, IdempotencyState::InProgress { lease_until, .. } if lease_until <= now)
                && old.fingerprint == r.fingerprint;
            if !abandoned {
                return Ok(Begun::Existing(old.clone()));
            }
        }
        g.idempotency.insert(k, r.clone());
        Ok(Begun::Started)
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord, owner: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (r.tenant.clone(), r.key.clone());
        match g.idempotency.get(&k) {
            Some(old) if old.owner() == owner && !owner.is_empty() => {
                g.idempotency.insert(k, r.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (tenant.to_owned(), key.to_owned());
        if let Some(old) = g.idempotency.get_mut(&k)
            && old.owner() == owner
            && !owner.is_empty()
        {
            // The lease ends now: the same request may take the key again.
            old.state = IdempotencyState::InProgress {
                lease_until: OffsetDateTime::UNIX_EPOCH,
                owner: owner.to_owned(),
            };
        }
        Ok(())
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

    async fn add_identity_event(
        &self,
        w: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        match g.sessions.get(&w.session.id) {
            Some(s) if s.version == w.expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        g.sessions.insert(w.session.id.clone(), w.session.clone());
        if let Some(h) = w.history {
            g.append_history(h);
        }
        g.identity_events
            .entry((event.session_id.clone(), event.event_id.clone()))
            .or_insert_with(|| event.clone());
        let k = delivery_key(delivery.provider.as_str(), &delivery.event_id);
        let record = g.deliveries.entry(k).or_insert_with(|| DeliveryRecord {
            delivery: delivery.clone(),
            state: DeliveryState::Applied,
            lease_until: OffsetDateTime::UNIX_EPOCH,
            retry_at: None,
            attempts: 1,
        });
        record.state = DeliveryState::Applied;
        record.retry_at = None;
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
