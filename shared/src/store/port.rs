//! The store's capabilities, each sized like what a flow needs. A flow imports the capabilities it
//! uses; `Store` is all of them. Every adapter implements each one, and the contract suite holds
//! them to the same behaviour (tests/integration/store/, one file per capability).

use super::*;
use crate::events::{Endpoint, Event, OutboundDelivery, OutboundKey};
use crate::session::{HistoryEntry, IdentityEvent, Reauthentication, Session, SessionId};
use crate::verified::DataAccess;
use async_trait::async_trait;
use time::OffsetDateTime;

/// Sessions: read, created (with what must exist with them), written.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Stored<Session>>>;

    /// Creates a session (with its first history entry), atomically with its ref claims and
    /// the completion of its request's idempotency record (`idempotency` is the `Done` record; the
    /// stored one must still be in progress and held by `owner`). `Conflict` if the id or the
    /// claim is taken, or the key is no longer held by this request.
    async fn create_session(
        &self,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<()>;

    /// Creates `session` as `create_session` does, and in the same transaction writes
    /// `previous`, the session it retries (its `next_session_id` now set, with a history entry),
    /// over the version read: neither link ever exists without the other. `Conflict` if any
    /// condition fails (the previous session moved meanwhile, the id or a claim is taken, the
    /// key is no longer held). Answers the previous session as now stored.
    async fn create_retry(
        &self,
        previous: SessionWrite<'_>,
        session: &Session,
        history: &HistoryEntry,
        claims: &[RefClaim],
        idempotency: Option<(&IdempotencyRecord, &str)>,
    ) -> StoreResult<Stored<Session>>;

    /// Writes a new state if the stored version is still the one read (`write.read`); else
    /// `Conflict`. The session as now stored (its version and filing for the next write).
    async fn update_session(&self, write: SessionWrite<'_>) -> StoreResult<Stored<Session>>;

    /// A session with its history, oldest first (at most the last 32 changes and the first), in
    /// one read: the history lives in the session's own item.
    async fn get_session_with_history(
        &self,
        id: &SessionId,
    ) -> StoreResult<Option<(Stored<Session>, Vec<HistoryEntry>)>>;
}

/// Listing: a tenant's sessions, newest first (creation time, then id), those of a filter only.
#[async_trait]
pub trait Listing: Send + Sync {
    /// One page of at most `limit` sessions of `tenant` that `filter` wants, newest first, as
    /// stored, and the cursor of the next (`None` cursor: from the newest). `next_cursor` is
    /// `None` only when nothing the filter wants follows; a page may be short, even empty, and
    /// still have a cursor (a filter DynamoDB applies after reading: a listing reads a bounded
    /// number of index entries). A cursor this store did not hand out for this tenant and this
    /// filter is `Ok(None)`: it never reaches the database unchecked.
    async fn list_sessions(
        &self,
        tenant: &str,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>>;
}

/// Refs: which session a provider-side identity points to.
#[async_trait]
pub trait Refs: Send + Sync {
    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>>;

    /// Several refs at once, in the order of `keys` (DynamoDB: one BatchGetItem instead of one
    /// GetItem per key).
    async fn get_refs(&self, keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>>;

    /// Points `claim.key` at an existing session (a provider identity linked after creation),
    /// kept as long as that session. `Conflict` if it already points at another session than
    /// `session`'s or `claim.replaces`; pointing it again at the same session changes nothing.
    async fn claim_ref(&self, claim: &RefClaim, session: &Session) -> StoreResult<()>;
}

/// Webhook deliveries: recorded before they are acted on, processed under a lease, settled,
/// retried when due, kept while they match no session.
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Records a delivery before it is acted on (`received`), and takes its lease until
    /// `lease_until` (`now` is when a lease left by a dead attempt counts as run out). An
    /// applied one is a duplicate, unless its `mark` moved since it was applied. While the lease
    /// runs it is filed as due at `lease_until`, so a crash mid-processing leaves it for the
    /// retry.
    async fn record_delivery(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded>;

    /// Takes the lease of a due delivery for a retry (`false`: someone else holds it, or it was
    /// settled meanwhile).
    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Ends a delivery's processing: `Applied` (with `delivery.mark` as it stands after it), or
    /// `Unmatched` (then filed under its subjects, for `unmatched_deliveries`). Leaves the retry
    /// index either way.
    async fn settle_delivery(&self, delivery: &Delivery, state: DeliveryState) -> StoreResult<()>;

    /// An attempt failed: releases the lease and files the delivery as due again at `retry_at`.
    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// How many shards the retry index is asked in (`due_deliveries` of each, at once).
    fn retry_shards(&self) -> u16;

    /// Deliveries of one retry shard (`0..retry_shards()`) due at or before `now`, earliest
    /// first, at most `limit`.
    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>>;

    /// Binds a provider's delivery token (a hash of it) to the body it first came with, until
    /// `expires_at`: `false` if the token already came with another body (a captured header
    /// replayed over a forged body). The same body again is `true` (a redelivery).
    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The deliveries kept about `subject` that are still `unmatched`.
    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>>;
}

/// `Idempotency-Key`s: taken before a provider is called, completed with the answer (alone, or
/// with the session a start creates: `Sessions::create_session`), released after a failure.
#[async_trait]
pub trait Idempotency: Send + Sync {
    /// Takes an `Idempotency-Key` for a request (`record` is its `InProgress` record): `Started`
    /// if the key is free, expired, or held by an abandoned attempt (lease run out) of the same
    /// request; else the live record.
    async fn begin_idempotency(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Begun>;

    /// Marks the request held by `owner` done (`record` is the `Done` record). `Conflict` if the
    /// key is no longer held by it.
    async fn complete_idempotency(
        &self,
        record: &IdempotencyRecord,
        owner: &str,
    ) -> StoreResult<()>;

    /// Frees a key whose request failed, if `owner` still holds it, so that a retry can run.
    async fn release_idempotency(&self, tenant: &str, key: &str, owner: &str) -> StoreResult<()>;
}

/// The due index: open sessions by when their next check is due, for reconcile.
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// How many shards the due index is asked in (`due_sessions` of each, at once).
    fn due_shards(&self) -> u16;

    /// Open sessions of one due shard (`0..due_shards()`) whose `next_check_at` is at or before
    /// `now`, earliest first, at most `limit`. Read from an index that holds only open sessions
    /// with a next check, so the cost follows the number due, not the size of the table.
    /// (DynamoDB files a session at or before its next check; one found early is re-filed, not
    /// answered, and counts against `limit`: the next run finds what it crowded out.)
    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Stored<Session>>>;
}

/// What happened to a session besides its state: identity events (Prove) and a user's
/// reauthentications (Passbase).
#[async_trait]
pub trait Journal: Send + Sync {
    /// Stores an identity event of a session atomically with the session write (its version
    /// checked) and the settling of the delivery that brought it (`applied`). Storing an event
    /// id the session already holds changes nothing but the write.
    async fn add_identity_event(
        &self,
        write: SessionWrite<'_>,
        event: &IdentityEvent,
        delivery: &Delivery,
    ) -> StoreResult<()>;

    /// A session's identity events, newest first (at most `limit`, whatever the session holds:
    /// the read costs what `limit` asks, not what accumulated).
    async fn identity_events(
        &self,
        id: &SessionId,
        limit: usize,
    ) -> StoreResult<Vec<IdentityEvent>>;

    /// Records a reauthentication once: the same event again changes nothing.
    async fn add_reauthentication(&self, r: &Reauthentication) -> StoreResult<()>;

    /// A user's reauthentications of one tenant, newest first, at most `limit`.
    async fn list_reauthentications(
        &self,
        tenant: &str,
        user_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Reauthentication>>;
}

/// Outbound events: a tenant's endpoints, its events (each stored once, with its deliveries),
/// and the deliveries' attempts and retries.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Stores a new endpoint (`Conflict` if its id exists), or a new state of one (`version` is
    /// the one read; the stored one must still be it, else `Conflict`). Stores `version + 1`.
    async fn put_endpoint(&self, endpoint: &Endpoint, version: Option<u64>) -> StoreResult<()>;

    async fn get_endpoint(&self, tenant: &str, id: &str) -> StoreResult<Option<Endpoint>>;

    /// A tenant's endpoints, oldest first.
    async fn list_endpoints(&self, tenant: &str) -> StoreResult<Vec<Endpoint>>;

    /// `false` if there was none.
    async fn delete_endpoint(&self, tenant: &str, id: &str) -> StoreResult<bool>;

    /// Stores an event with its deliveries, atomically. `false` (and nothing written) if the
    /// event was stored before (its deliveries were stored with it), or one of the deliveries
    /// exists already.
    async fn add_event(&self, event: &Event, deliveries: &[OutboundDelivery]) -> StoreResult<bool>;

    /// An event of a tenant, without its deliveries (what an attempt sends).
    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>>;

    /// An event of a tenant with its deliveries.
    async fn get_event(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(Event, Vec<OutboundDelivery>)>>;

    /// A tenant's events, newest first, after the event id `after` (a cursor), those of `filter`
    /// only; at most `limit`, and the cursor of what follows (`None`: nothing). The cursor is the
    /// last event read, which a filtered listing may have passed over: a page can be short, even
    /// empty, and still have a next one.
    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Event>, Option<String>)>;

    /// Adds a delivery (a resend to an endpoint the event had none for). `Conflict` if it exists.
    async fn add_outbound(&self, delivery: &OutboundDelivery) -> StoreResult<()>;

    /// Takes a pending delivery for an attempt until `until`, under `lease` (a token of this
    /// attempt): `None` if it is not pending, or another attempt's lease still runs. While
    /// leased it is due at `until`, so an attempt that dies leaves it for the sweep.
    async fn lease_outbound(
        &self,
        key: &OutboundKey,
        lease: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<OutboundDelivery>>;

    /// Writes a delivery after an attempt (its attempts, the latest `MAX_ATTEMPTS_KEPT` of them;
    /// its state, next due time) and ends the lease; `Conflict` if `lease` no longer holds it.
    async fn record_outbound(&self, delivery: &OutboundDelivery, lease: &str) -> StoreResult<()>;

    /// Makes a delivery pending again, due at `at`, a new round of the schedule (a resend).
    async fn requeue_outbound(&self, key: &OutboundKey, at: OffsetDateTime) -> StoreResult<()>;

    /// How many shards the outbound retry index is asked in.
    fn outbound_shards(&self) -> u16;

    /// Deliveries of one shard due at or before `now`, earliest first, at most `limit`.
    async fn due_outbound(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboundKey>>;
}

/// Reads of a session's verified data: each recorded (who, when; never what), listed for the
/// session's tenant.
#[async_trait]
pub trait Accesses: Send + Sync {
    /// Records one access. Its id is unique: recording is a plain put.
    async fn record_access(&self, access: &DataAccess) -> StoreResult<()>;

    /// A session's access records, newest first, after the access id `after` (a cursor, checked
    /// by the caller to be one), at most `limit`; and the cursor of what follows (`None`:
    /// nothing).
    async fn list_accesses(
        &self,
        session: &SessionId,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<DataAccess>, Option<String>)>;
}

/// Redaction: a session's personal data erased, with what hangs on it (`flows::redact`).
#[async_trait]
pub trait Redactions: Send + Sync {
    /// Writes a session as a redaction leaves it (`write.session`, erased by the caller),
    /// conditional on the version read like `update_session`, with its whole stored history
    /// replaced by `history` (oldest first, as erased; `write.history`, the redaction's own
    /// entry, last). Takes it out of the user index: its user's listings no longer find it (the
    /// tenant's listing still does, as redacted).
    async fn write_redacted(
        &self,
        write: SessionWrite<'_>,
        history: &[HistoryEntry],
    ) -> StoreResult<Stored<Session>>;

    /// Erases what hangs on a session being redacted (`Erasure`). Idempotent: a repeat after a
    /// crash erases what is left, and erasing nothing is no error.
    async fn erase_dependents(&self, erasure: &Erasure) -> StoreResult<()>;

    /// Whether a redaction left a tombstone (unexpired at `now`) on one of `provider`'s
    /// `subjects`.
    async fn tombstoned(
        &self,
        provider: &str,
        subjects: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Forgets a delivery about a redacted identity: the delivery and its filings deleted
    /// (whatever its state). Idempotent.
    async fn forget_delivery(&self, delivery: &Delivery) -> StoreResult<()>;
}

/// Every capability: what `App` holds.
pub trait Store:
    Sessions
    + Listing
    + Refs
    + Deliveries
    + Idempotency
    + DueIndex
    + Journal
    + Outbox
    + Accesses
    + Redactions
{
}

impl<
    T: Sessions
        + Listing
        + Refs
        + Deliveries
        + Idempotency
        + DueIndex
        + Journal
        + Outbox
        + Accesses
        + Redactions
        + ?Sized,
> Store for T
{
}

/// What tests look at and no flow needs: a session's history as stored, a delivery's state, an
/// idempotency record, and which shard holds what. Both adapters implement it; production code
/// holds a `Store`, which does not include it.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// A session's history, oldest first (as `Sessions::get_session_with_history`).
    async fn session_history(&self, id: &SessionId) -> StoreResult<Vec<HistoryEntry>>;

    /// The delivery's state, if recorded.
    async fn delivery_state(
        &self,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<Option<DeliveryState>>;

    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// The due shard that holds a session (of `DueIndex::due_shards`).
    fn due_shard_of(&self, id: &SessionId) -> u16;

    /// The retry shard that holds a delivery (of `Deliveries::retry_shards`).
    fn retry_shard_of(&self, provider: &str, event_id: &str) -> u16;
}
