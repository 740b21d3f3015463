//! Sessions and the due index in memory.

use super::super::shard::{SHARDS, session_shard};
use super::super::{
    DueIndex, IdempotencyRecord, RefClaim, SessionWrite, Sessions, StoreError, StoreResult, Stored,
    is_scheduled,
};
use super::MemoryStore;
use crate::session::{HistoryEntry, Session, SessionId};
use crate::store::ProviderRef;
use async_trait::async_trait;
use time::OffsetDateTime;

impl super::Inner {
    /// What a creation requires: a new id, free (or replaceable) claims, the key still held.
    fn check_creation(
        &self,
        session: &Session,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()> {
        if self.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict);
        }
        for c in claims {
            let current = self.refs.get(&c.key).map(|r| &r.session_id);
            if current != c.replaces.as_ref() {
                return Err(StoreError::Conflict);
            }
        }
        if let Some((r, owner)) = idempotency {
            let held = self
                .idempotency
                .get(&(r.tenant.clone(), r.key.clone()))
                .is_some_and(|old| old.owner() == owner && !owner.is_empty());
            if !held {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    /// Creates a session whose conditions `check_creation` found holding.
    fn create(
        &mut self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) {
        let stored = Stored::created(session.clone());
        self.sessions.insert(session.id.clone(), stored.clone());
        self.append_history(history);
        self.changes.push(crate::store::Change::Session {
            session: stored,
            entry: Some(history.clone()),
        });
        for c in claims {
            self.refs.insert(
                c.key.clone(),
                ProviderRef {
                    key: c.key.clone(),
                    session_id: session.id.clone(),
                    tenant: c.tenant.clone(),
                },
            );
        }
        if let Some((r, _)) = idempotency {
            self.idempotency
                .insert((r.tenant.clone(), r.key.clone()), r.clone());
        }
    }
}

#[async_trait]
impl Sessions for MemoryStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Stored<Session>>> {
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
        g.check_creation(session, claims, idempotency)?;
        g.create(session, history, claims, idempotency);
        Ok(())
    }

    async fn create_retry(
        &self,
        previous: SessionWrite<'_>,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<Stored<Session>> {
        let mut g = self.lock();
        // Every condition of both writes first: nothing is written unless all hold.
        g.check_creation(session, claims, idempotency)?;
        g.check_write(&previous)?;
        let stored = g.write_session(&previous)?;
        g.create(session, history, claims, idempotency);
        Ok(stored)
    }

    async fn update_session(&self, w: SessionWrite<'_>) -> StoreResult<Stored<Session>> {
        self.lock().write_session(&w)
    }

    async fn get_session_with_history(
        &self,
        id: &SessionId,
    ) -> StoreResult<Option<(Stored<Session>, Vec<HistoryEntry>)>> {
        let g = self.lock();
        Ok(g.sessions.get(id).cloned().map(|s| {
            let history = g
                .history
                .range((id.to_string(), 0)..=(id.to_string(), u64::MAX))
                .map(|(_, h)| h.clone())
                .collect();
            (s, history)
        }))
    }
}

#[async_trait]
impl DueIndex for MemoryStore {
    fn due_shards(&self) -> u16 {
        SHARDS
    }

    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Stored<Session>>> {
        let g = self.lock();
        let mut due: Vec<&Stored<Session>> = g
            .sessions
            .values()
            .filter(|s| is_scheduled(s) && session_shard(&s.id) == shard)
            .filter(|s| s.next_check_at.is_some_and(|at| at <= now))
            .collect();
        due.sort_by_key(|s| (s.next_check_at, s.id.to_string()));
        Ok(due.into_iter().take(limit).cloned().collect())
    }
}
