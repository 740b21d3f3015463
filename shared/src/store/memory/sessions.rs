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
        let stored = Stored::created(session.clone());
        g.sessions.insert(session.id.clone(), stored.clone());
        g.append_history(history);
        g.changes.push(crate::store::Change::Session {
            session: stored,
            entry: Some(history.clone()),
        });
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
