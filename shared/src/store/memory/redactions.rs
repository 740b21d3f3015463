//! Redaction in memory: the same erasure as DynamoDB's, found by looking at everything.

use super::super::scrub;
use super::super::{Delivery, Erasure, Redactions, SessionWrite, StoreResult, Stored};
use super::MemoryStore;
use crate::session::{HistoryEntry, Session};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
impl Redactions for MemoryStore {
    async fn write_redacted(
        &self,
        w: SessionWrite<'_>,
        history: &[HistoryEntry],
    ) -> StoreResult<Stored<Session>> {
        let mut g = self.lock();
        let id = w.session.id.to_string();
        let stored = g.write_session(&SessionWrite { history: None, ..w })?;
        let held: Vec<_> = g
            .history
            .range((id.clone(), 0)..=(id.clone(), u64::MAX))
            .map(|(k, _)| k.clone())
            .collect();
        for k in held {
            g.history.remove(&k);
        }
        for h in history {
            g.append_history(h);
        }
        // The change as the stream reports it: with the redaction's own entry.
        if let Some(super::Change::Session { entry, .. }) = g.changes.last_mut() {
            *entry = w.history.cloned();
        }
        Ok(stored)
    }

    async fn erase_dependents(&self, e: &Erasure) -> StoreResult<()> {
        let mut g = self.lock();
        let id = &e.session_id;
        for (provider, subject) in &e.subjects {
            g.tombstones.insert(
                (provider.clone(), super::super::tombstone_hash(subject)),
                e.tombstones_until,
            );
        }
        for k in &e.ref_keys {
            if g.refs.get(k).is_some_and(|r| &r.session_id == id) {
                g.refs.remove(k);
            }
        }
        g.identity_events.retain(|(s, _), _| s != id);
        if let Some(list) = g
            .reauthentications
            .get_mut(&(e.tenant.clone(), e.user_id.clone()))
        {
            list.retain(|r| &r.session_id != id);
        }
        for r in g.idempotency.values_mut() {
            if let super::super::IdempotencyState::Done {
                session_id, replay, ..
            } = &mut r.state
                && session_id == id
            {
                *replay = None;
            }
        }
        for (provider, subject) in &e.subjects {
            let gone: Vec<_> = g
                .deliveries
                .iter()
                .filter(|(_, d)| {
                    d.delivery.provider.as_str() == provider
                        && d.delivery.subjects.contains(subject)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                g.deliveries.remove(&k);
            }
            g.unmatched.remove(&(provider.clone(), subject.clone()));
        }
        for ev in g.events.values_mut() {
            if ev.tenant == e.tenant && ev.session_id.as_ref() == Some(id) {
                scrub(&mut ev.body, &e.values);
            }
        }
        Ok(())
    }

    async fn tombstoned(
        &self,
        provider: &str,
        subjects: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let g = self.lock();
        Ok(subjects.iter().any(|s| {
            g.tombstones
                .get(&(provider.to_owned(), super::super::tombstone_hash(s)))
                .is_some_and(|until| *until > now)
        }))
    }

    async fn forget_delivery(&self, d: &Delivery) -> StoreResult<()> {
        let mut g = self.lock();
        let provider = d.provider.as_str().to_owned();
        g.deliveries.remove(&(provider.clone(), d.event_id.clone()));
        for subject in &d.subjects {
            let k = (provider.clone(), subject.clone());
            if let Some(list) = g.unmatched.get_mut(&k) {
                list.retain(|e| e != &d.event_id);
                if list.is_empty() {
                    g.unmatched.remove(&k);
                }
            }
        }
        Ok(())
    }
}
