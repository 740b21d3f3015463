//! Webhook deliveries in memory.

use super::super::shard::{SHARDS, delivery_shard};
use super::super::{Deliveries, Delivery, DeliveryState, DueDelivery, Recorded, StoreResult};
use super::{DeliveryRecord, MemoryStore, delivery_key};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
impl Deliveries for MemoryStore {
    async fn record_delivery(
        &self,
        d: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded> {
        let mut g = self.lock();
        let k = delivery_key(d.provider.as_str(), &d.event_id);
        // Moved since it was applied: neither where the applied attempt left them nor where it
        // found them (a twin read them before that attempt applied: the same news).
        let moved = |r: &DeliveryRecord| {
            d.mark.is_some() && r.delivery.mark != d.mark && r.mark_in != d.mark
        };
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
                        mark_in: d.mark.clone(),
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
                r.mark_in = d.mark.clone();
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
        g.settle(d, state);
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

    fn retry_shards(&self) -> u16 {
        SHARDS
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
}
