//! Identity events and reauthentications in memory.

use super::super::{Change, Delivery, DeliveryState, Journal, SessionWrite, StoreResult};
use super::MemoryStore;
use crate::session::{IdentityEvent, Reauthentication, SessionId};
use async_trait::async_trait;
use std::collections::hash_map::Entry;

#[async_trait]
impl Journal for MemoryStore {
    async fn add_identity_event(
        &self,
        w: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        let mut guard = self.lock();
        // The fields apart: the event's slot and the log are borrowed at once.
        let g = &mut *guard;
        g.write_session(&w)?;
        let k = (event.session_id.clone(), event.event_id.clone());
        if let Entry::Vacant(slot) = g.identity_events.entry(k) {
            slot.insert(event.clone());
            g.changes.push(Change::IdentityEvent(event.clone()));
        }
        g.settle(delivery, DeliveryState::Applied);
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

    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()> {
        let mut g = self.lock();
        let list = g
            .reauthentications
            .entry((r.tenant.clone(), r.user_id.clone()))
            .or_default();
        if !list.iter().any(|x| x.event_id == r.event_id) {
            list.push(r.clone());
            g.changes.push(Change::Reauthentication(r.clone()));
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
