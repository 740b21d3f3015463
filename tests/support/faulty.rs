//! A store that is the real one (DynamoDB Local) except for faults a test asks for: a write of a
//! chosen session fails as if DynamoDB were unreachable. For the "nothing is ever lost" tests,
//! which need one write of several to fail.

use async_trait::async_trait;
use idv::events::{Endpoint, Event, OutboundDelivery, OutboundKey};
use idv::session::{HistoryEntry, IdentityEvent, Reauthentication, Session, SessionId};
use idv::store::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    /// Session id -> how many more of its writes succeed first, then how many fail.
    failing_writes: Mutex<HashMap<SessionId, (u32, u32)>>,
    /// Outbound events: how many more are stored before `failing_events` of them fail.
    events_before_fault: Mutex<(u32, u32)>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing_writes: Mutex::new(HashMap::new()),
            events_before_fault: Mutex::new((0, 0)),
        })
    }

    /// The next `n` writes of session `id` fail with `Unavailable`.
    pub fn fail_writes_of(&self, id: &SessionId, n: u32) {
        self.fail_writes_of_after(id, 0, n);
    }

    /// After `ok` more writes of session `id` succeed, the next `n` fail with `Unavailable`: a
    /// request that dies between the steps of a flow (a redaction's mark, erasure, erased
    /// session each count as one write).
    pub fn fail_writes_of_after(&self, id: &SessionId, ok: u32, n: u32) {
        self.failing_writes
            .lock()
            .unwrap()
            .insert(id.clone(), (ok, n));
    }

    /// After `ok` more events are stored, the next `fail` fail with `Unavailable` (a notify run
    /// that dies mid-batch, as far as the stream can tell).
    pub fn fail_events_after(&self, ok: u32, fail: u32) {
        *self.events_before_fault.lock().unwrap() = (ok, fail);
    }

    fn event_fault(&self) -> StoreResult<()> {
        let mut f = self.events_before_fault.lock().unwrap();
        match *f {
            (0, 0) => Ok(()),
            (0, n) => {
                f.1 = n - 1;
                Err(StoreError::Unavailable("injected fault".into()))
            }
            (ok, n) => {
                *f = (ok - 1, n);
                Ok(())
            }
        }
    }

    fn fault(&self, id: &SessionId) -> StoreResult<()> {
        let mut f = self.failing_writes.lock().unwrap();
        match f.get_mut(id) {
            Some((ok, _)) if *ok > 0 => {
                *ok -= 1;
                Ok(())
            }
            Some((_, n)) if *n > 0 => {
                *n -= 1;
                Err(StoreError::Unavailable("injected fault".into()))
            }
            _ => Ok(()),
        }
    }
}

// Everything else is the real store's.

#[async_trait]
impl Sessions for FaultyStore {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Stored<Session>>> {
        self.inner.get_session(id).await
    }
    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()> {
        self.inner
            .create_session(session, history, claims, idempotency)
            .await
    }
    async fn create_retry(
        &self,
        previous: SessionWrite<'_>,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<Stored<Session>> {
        // A write of the retried session: its faults fail the whole transaction.
        self.fault(&previous.session.id)?;
        self.inner
            .create_retry(previous, session, history, claims, idempotency)
            .await
    }
    async fn update_session(&self, write: SessionWrite<'_>) -> StoreResult<Stored<Session>> {
        self.fault(&write.session.id)?;
        self.inner.update_session(write).await
    }
    async fn get_session_with_history(
        &self,
        id: &SessionId,
    ) -> StoreResult<Option<(Stored<Session>, Vec<HistoryEntry>)>> {
        self.inner.get_session_with_history(id).await
    }
}

#[async_trait]
impl Listing for FaultyStore {
    async fn list_sessions(
        &self,
        tenant: &str,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>> {
        self.inner
            .list_sessions(tenant, filter, limit, cursor)
            .await
    }
}

#[async_trait]
impl Refs for FaultyStore {
    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>> {
        self.inner.get_ref(key).await
    }
    async fn get_refs(&self, keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        self.inner.get_refs(keys).await
    }
    async fn claim_ref(&self, claim: &RefClaim, session: &Session) -> StoreResult<()> {
        self.inner.claim_ref(claim, session).await
    }
}

#[async_trait]
impl Deliveries for FaultyStore {
    async fn record_delivery(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded> {
        self.inner.record_delivery(delivery, now, lease_until).await
    }
    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner
            .lease_delivery(provider, event_id, now, lease_until)
            .await
    }
    async fn settle_delivery(&self, delivery: &Delivery, state: DeliveryState) -> StoreResult<()> {
        self.inner.settle_delivery(delivery, state).await
    }
    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.inner
            .defer_delivery(provider, event_id, retry_at)
            .await
    }
    fn retry_shards(&self) -> u16 {
        self.inner.retry_shards()
    }
    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>> {
        self.inner.due_deliveries(shard, now, limit).await
    }
    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner
            .bind_delivery_token(provider, token_hash, body_hash, expires_at)
            .await
    }
    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.unmatched_deliveries(provider, subject).await
    }
}

#[async_trait]
impl Idempotency for FaultyStore {
    async fn begin_idempotency(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun> {
        self.inner.begin_idempotency(record, now).await
    }
    async fn complete_idempotency(
        &self,
        record: &IdempotencyRecord,
        owner: &str,
    ) -> StoreResult<()> {
        self.inner.complete_idempotency(record, owner).await
    }
    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()> {
        self.inner.release_idempotency(tenant, key, owner).await
    }
}

#[async_trait]
impl DueIndex for FaultyStore {
    fn due_shards(&self) -> u16 {
        self.inner.due_shards()
    }
    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Stored<Session>>> {
        self.inner.due_sessions(shard, now, limit).await
    }
}

#[async_trait]
impl Journal for FaultyStore {
    async fn add_identity_event(
        &self,
        write: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        self.fault(&write.session.id)?;
        self.inner.add_identity_event(write, event, delivery).await
    }
    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>> {
        self.inner.identity_events(id, limit).await
    }
    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()> {
        self.inner.add_reauthentication(r).await
    }
    async fn list_reauthentications(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Reauthentication>> {
        self.inner
            .list_reauthentications(tenant, user_id, limit)
            .await
    }
}

#[async_trait]
impl Outbox for FaultyStore {
    async fn put_endpoint(&self, e: &Endpoint, version: Option<u64>) -> StoreResult<()> {
        self.inner.put_endpoint(e, version).await
    }
    async fn get_endpoint(&self, tenant: &str, id: &str) -> StoreResult<Option<Endpoint>> {
        self.inner.get_endpoint(tenant, id).await
    }
    async fn list_endpoints(&self, tenant: &str) -> StoreResult<Vec<Endpoint>> {
        self.inner.list_endpoints(tenant).await
    }
    async fn delete_endpoint(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        self.inner.delete_endpoint(tenant, id).await
    }
    async fn add_event(&self, event: &Event, deliveries: &[OutboundDelivery]) -> StoreResult<bool> {
        self.event_fault()?;
        self.inner.add_event(event, deliveries).await
    }
    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        self.inner.event(tenant, id).await
    }
    async fn get_event(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(Event, Vec<OutboundDelivery>)>> {
        self.inner.get_event(tenant, id).await
    }
    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Event>, Option<String>)> {
        self.inner.list_events(tenant, filter, limit, after).await
    }
    async fn add_outbound(&self, d: &OutboundDelivery) -> StoreResult<()> {
        self.inner.add_outbound(d).await
    }
    async fn lease_outbound(
        &self,
        key: &OutboundKey,
        lease: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<OutboundDelivery>> {
        self.inner.lease_outbound(key, lease, now, until).await
    }
    async fn record_outbound(&self, d: &OutboundDelivery, lease: &str) -> StoreResult<()> {
        self.inner.record_outbound(d, lease).await
    }
    async fn requeue_outbound(&self, key: &OutboundKey, at: OffsetDateTime) -> StoreResult<()> {
        self.inner.requeue_outbound(key, at).await
    }
    fn outbound_shards(&self) -> u16 {
        self.inner.outbound_shards()
    }
    async fn due_outbound(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboundKey>> {
        self.inner.due_outbound(shard, now, limit).await
    }
}

#[async_trait]
impl Accesses for FaultyStore {
    /// Fails like the session's writes (`fail_writes_of`): a read of verified data whose record
    /// cannot be written must not be answered.
    async fn record_access(&self, access: &idv::verified::DataAccess) -> StoreResult<()> {
        self.fault(&access.session_id)?;
        self.inner.record_access(access).await
    }
    async fn list_accesses(
        &self,
        session: &SessionId,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<idv::verified::DataAccess>, Option<String>)> {
        self.inner.list_accesses(session, limit, after).await
    }
}

#[async_trait]
impl Redactions for FaultyStore {
    async fn write_redacted(
        &self,
        write: SessionWrite<'_>,
        history: &[HistoryEntry],
    ) -> StoreResult<Stored<Session>> {
        self.fault(&write.session.id)?;
        self.inner.write_redacted(write, history).await
    }
    async fn erase_dependents(&self, erasure: &Erasure) -> StoreResult<()> {
        self.fault(&erasure.session_id)?;
        self.inner.erase_dependents(erasure).await
    }
    async fn tombstoned(
        &self,
        provider: &str,
        subjects: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.tombstoned(provider, subjects, now).await
    }
    async fn forget_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.inner.forget_delivery(delivery).await
    }
}
