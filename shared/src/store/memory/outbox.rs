//! Outbound events, endpoints and deliveries in memory.

use super::super::shard::{SHARDS, outbound_shard};
use super::super::{EventFilter, Outbox, StoreError, StoreResult};
use super::{MemoryStore, OutboundRecord};
use crate::events::model::MAX_ATTEMPTS_KEPT;
use crate::events::{Endpoint, Event, OutboundDelivery, OutboundKey, OutboundState};
use async_trait::async_trait;
use time::OffsetDateTime;

impl OutboundRecord {
    /// A delivery as stored, not leased: its latest `MAX_ATTEMPTS_KEPT` attempts only, as the
    /// DynamoDB item keeps.
    fn new(d: &OutboundDelivery) -> Self {
        let mut delivery = d.clone();
        let drop = delivery.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
        delivery.attempts.drain(..drop);
        OutboundRecord {
            delivery,
            lease: None,
        }
    }
}

/// When a delivery is due: at its next attempt, or when the lease of the one in flight runs out.
fn due_at(r: &OutboundRecord) -> Option<OffsetDateTime> {
    if r.delivery.state != OutboundState::Pending {
        return None;
    }
    match &r.lease {
        Some((_, until)) => Some(*until),
        None => r.delivery.next_at,
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn put_endpoint(&self, e: &Endpoint, version: Option<u64>) -> StoreResult<()> {
        let mut g = self.lock();
        let k = (e.tenant.clone(), e.id.clone());
        let current = g.endpoints.get(&k).map(|x| x.version);
        if current != version {
            return Err(StoreError::Conflict);
        }
        let mut stored = e.clone();
        stored.version = version.unwrap_or(0) + 1;
        g.endpoints.insert(k, stored);
        Ok(())
    }

    async fn get_endpoint(&self, tenant: &str, id: &str) -> StoreResult<Option<Endpoint>> {
        Ok(self
            .lock()
            .endpoints
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned())
    }

    async fn list_endpoints(&self, tenant: &str) -> StoreResult<Vec<Endpoint>> {
        let g = self.lock();
        let mut all: Vec<Endpoint> = g
            .endpoints
            .values()
            .filter(|e| e.tenant == tenant)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn delete_endpoint(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        Ok(self
            .lock()
            .endpoints
            .remove(&(tenant.to_owned(), id.to_owned()))
            .is_some())
    }

    async fn add_event(&self, event: &Event, deliveries: &[OutboundDelivery]) -> StoreResult<bool> {
        let mut g = self.lock();
        let k = (event.tenant.clone(), event.id.clone());
        // All or nothing, as DynamoDB's transaction: if any of it exists, nothing is written.
        if g.events.contains_key(&k) || deliveries.iter().any(|d| g.outbound.contains_key(&d.key)) {
            return Ok(false);
        }
        g.events.insert(k, event.clone());
        for d in deliveries {
            g.outbound.insert(d.key.clone(), OutboundRecord::new(d));
        }
        Ok(true)
    }

    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        Ok(self
            .lock()
            .events
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned())
    }

    async fn get_event(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(Event, Vec<OutboundDelivery>)>> {
        let g = self.lock();
        let Some(e) = g.events.get(&(tenant.to_owned(), id.to_owned())) else {
            return Ok(None);
        };
        let deliveries = g
            .outbound
            .values()
            .filter(|r| r.delivery.key.tenant == tenant && r.delivery.key.event_id == id)
            .map(|r| r.delivery.clone())
            .collect();
        Ok(Some((e.clone(), deliveries)))
    }

    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Event>, Option<String>)> {
        let g = self.lock();
        let mut mine: Vec<&Event> = g
            .events
            .values()
            .filter(|e| e.tenant == tenant)
            .filter(|e| after.is_none_or(|a| e.id.as_str() < a))
            .filter(|e| filter.event_type.is_none_or(|t| e.event_type == t))
            .filter(|e| {
                filter
                    .session_id
                    .as_ref()
                    .is_none_or(|s| e.session_id.as_ref() == Some(s))
            })
            .collect();
        mine.sort_by(|a, b| b.id.cmp(&a.id));
        let more = mine.len() > limit;
        let page: Vec<Event> = mine.into_iter().take(limit).cloned().collect();
        let next = more.then(|| page.last().map(|e| e.id.clone())).flatten();
        Ok((page, next))
    }

    async fn add_outbound(&self, d: &OutboundDelivery) -> StoreResult<()> {
        let mut g = self.lock();
        if g.outbound.contains_key(&d.key) {
            return Err(StoreError::Conflict);
        }
        g.outbound.insert(d.key.clone(), OutboundRecord::new(d));
        Ok(())
    }

    async fn lease_outbound(
        &self,
        key: &OutboundKey,
        lease: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<OutboundDelivery>> {
        let mut g = self.lock();
        let Some(r) = g.outbound.get_mut(key) else {
            return Ok(None);
        };
        let free = r.lease.as_ref().is_none_or(|(_, u)| *u <= now);
        if r.delivery.state != OutboundState::Pending || !free {
            return Ok(None);
        }
        r.lease = Some((lease.to_owned(), until));
        Ok(Some(r.delivery.clone()))
    }

    async fn record_outbound(&self, d: &OutboundDelivery, lease: &str) -> StoreResult<()> {
        let mut g = self.lock();
        let Some(r) = g.outbound.get_mut(&d.key) else {
            return Err(StoreError::Conflict);
        };
        if r.lease.as_ref().is_none_or(|(l, _)| l != lease) {
            return Err(StoreError::Conflict);
        }
        *r = OutboundRecord::new(d);
        Ok(())
    }

    async fn requeue_outbound(&self, key: &OutboundKey, at: OffsetDateTime) -> StoreResult<()> {
        let mut g = self.lock();
        let Some(r) = g.outbound.get_mut(key) else {
            return Err(StoreError::Conflict);
        };
        r.delivery.state = OutboundState::Pending;
        r.delivery.round = 0;
        r.delivery.next_at = Some(at);
        r.delivery.reason = None;
        r.lease = None;
        Ok(())
    }

    fn outbound_shards(&self) -> u16 {
        SHARDS
    }

    async fn due_outbound(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboundKey>> {
        let g = self.lock();
        let mut due: Vec<(OffsetDateTime, &OutboundKey)> = g
            .outbound
            .iter()
            .filter(|(k, _)| outbound_shard(k) == shard)
            .filter_map(|(k, r)| due_at(r).filter(|at| *at <= now).map(|at| (at, k)))
            .collect();
        due.sort();
        Ok(due
            .into_iter()
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect())
    }
}
