//! Passbase: open a session (linked to the SDK's identity access key, or waiting for it with our
//! reference for the SDK's metaData), link a key later, refresh from the authoritative identity
//! read, ingest encrypted webhooks (authentic -> recorded -> re-read -> applied), and record
//! reauthentications. A delivery that matches no session yet is kept and settled when its
//! identity is linked (by the app, or by the identity read showing our reference).
//!
//! An identity whose metadata names a session belongs to that session only: linking it anywhere
//! else is refused, and a session linked to one that turns out to name another fails with
//! `identity_mismatch` (someone else's documents never verify a user).

use super::apply::{Bookkeeping, apply_with_retry};
use super::deliveries::{self, Ack, Processed, Settle};
use super::idempotency::{self, Claim, Held, IdempotencyKey};
use super::load_owned;
use crate::providers::passbase::webhook::{self, Event};
use crate::providers::passbase::{Identity, IdentityLookup, ref_key, status};
use crate::secrets::PassbaseSecrets;
use crate::session::{HistoryEntry, Provider, Reauthentication, Session, SessionId, Status};
use crate::store::{Delivery, DeliveryState, RefClaim, SessionWrite, StoreError};
use crate::{App, Error};
use time::OffsetDateTime;

const PROVIDER: &str = "passbase";
const ATTEMPTS: usize = 4;
/// One answer for every refused link: it says nothing of where the identity belongs.
const NOT_LINKABLE: &str = "this Passbase identity cannot be linked to this session";

#[derive(Debug, Clone)]
pub struct StartInput {
    pub user_id: String,
    /// The client SDK's `identityAccessKey`, when the app already has it.
    pub identity_key: Option<String>,
}

/// What the app hands the client SDK as `metaData` (after encrypting it with its RSA key, as
/// Passbase requires): our session reference, which Passbase returns as `identity.metadata`.
// ASSUMPTION (decision): the gateway does not hold the app's RSA private key; it returns the
// plain JSON string and the app's backend encrypts it (Passbase's "metadata encryption" step).
pub fn client_metadata(id: &SessionId) -> String {
    serde_json::json!({ "session_ref": id.as_str() }).to_string()
}

fn creds(secrets: &crate::secrets::SecretDoc) -> Result<&PassbaseSecrets, Error> {
    secrets
        .passbase
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))
}

fn now_ms(app: &App) -> i64 {
    i64::try_from(app.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether Passbase says the identity belongs to a session other than `id` (its metadata names
/// one). An identity with no reference of ours is anyone's to link: Passbase says nothing.
fn belongs_elsewhere(identity: &Identity, id: Option<&SessionId>) -> bool {
    identity
        .session_ref()
        .is_some_and(|named| Some(&named) != id)
}

/// `POST /v1/sessions` with `provider: "passbase"`.
pub async fn start(
    app: &App,
    tenant: &str,
    input: &StartInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(Claim::Replay(done)) => {
            return idempotency::replayed_session(app, tenant, &done).await;
        }
        Some(Claim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = open_session(app, tenant, input, held.as_ref(), creds).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

async fn open_session(
    app: &App,
    tenant: &str,
    input: &StartInput,
    held: Option<&Held>,
    creds: &PassbaseSecrets,
) -> Result<Session, Error> {
    // The identity first: one that names another session is not this new session's.
    let mut read = None;
    if let Some(k) = &input.identity_key {
        if app.store.get_ref(&ref_key(k)).await?.is_some() {
            return Err(Error::Conflict(NOT_LINKABLE.into()));
        }
        let started_ms = now_ms(app);
        if let IdentityLookup::Found(identity) = app.passbase.identity(creds, k).await? {
            if belongs_elsewhere(&identity, None) {
                return Err(Error::Conflict(NOT_LINKABLE.into()));
            }
            read = Some((identity, started_ms));
        }
    }
    let now = app.clock.now();
    // ASSUMPTION: Passbase documents no expiry for sessions or keys: `expires_at` stays null.
    let mut session = Session::new(tenant, Provider::Passbase, &input.user_id, now);
    session.provider_ref = input.identity_key.clone();
    // Push provider: reconcile reads it if its webhook is overdue.
    crate::session::schedule::first_check(&mut session, now);
    let history = HistoryEntry::created(&session);
    let claims: Vec<RefClaim> = input
        .identity_key
        .iter()
        .map(|k| RefClaim {
            key: ref_key(k),
            tenant: tenant.to_owned(),
            replaces: None,
        })
        .collect();
    let done = held.map(|h| (h.done(app, &session.id, 201, None, None), h.owner()));
    match app
        .store
        .create_session(
            &session,
            &history,
            &claims,
            done.as_ref().map(|(r, o)| (r, *o)),
        )
        .await
    {
        Ok(()) => {}
        // The key was linked meanwhile by a twin request (or our Idempotency-Key taken over).
        Err(StoreError::Conflict) if !claims.is_empty() => {
            return Err(Error::Conflict(NOT_LINKABLE.into()));
        }
        Err(StoreError::Conflict) => {
            return Err(Error::StoreUnavailable(
                "the Idempotency-Key was taken over; retry".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(session_id = %session.id, provider = PROVIDER, linked = input.identity_key.is_some(), "session created");
    Ok(match (&input.identity_key, read) {
        // Deliveries kept for the identity are settled now, with the read they need.
        (Some(k), Some((identity, started_ms))) => {
            after_link(app, session, k, &identity, started_ms).await
        }
        _ => session,
    })
}

/// `POST /v1/sessions/{id}/link`: ties a waiting session to the identity the SDK reported.
/// Linking the same key again answers the session; another key, a key linked elsewhere, or an
/// identity whose metadata names another session is 409.
pub async fn link(app: &App, tenant: &str, id: &str, identity_key: &str) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let mut session = load_owned(app, tenant, id).await?;
    if session.provider != Provider::Passbase {
        return Err(Error::Conflict(
            "only a Passbase session can be linked to a Passbase identity".into(),
        ));
    }
    match session.provider_ref.as_deref() {
        Some(k) if k == identity_key => return Ok(session),
        Some(_) => {
            return Err(Error::Conflict(
                "the session is already linked to another Passbase identity".into(),
            ));
        }
        None => {}
    }
    if session.status.is_final() {
        return Err(Error::Conflict(format!(
            "the session is already {}",
            session.status.as_str()
        )));
    }
    // Passbase's word first: an identity that names another session is not this one's. A
    // failed read changes nothing (retryable); an identity Passbase does not show yet is linked.
    let started_ms = now_ms(app);
    let identity = match app.passbase.identity(creds, identity_key).await? {
        IdentityLookup::Found(i) if belongs_elsewhere(&i, Some(&session.id)) => {
            return Err(Error::Conflict(NOT_LINKABLE.into()));
        }
        IdentityLookup::Found(i) => Some(i),
        IdentityLookup::NotFound => None,
    };
    let claim = RefClaim {
        key: ref_key(identity_key),
        tenant: tenant.to_owned(),
        replaces: None,
    };
    match app.store.claim_ref(&claim, &session.id).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(Error::Conflict(NOT_LINKABLE.into())),
        Err(e) => return Err(e.into()),
    }
    if let Some(i) = &identity {
        // What Passbase shows is applied with the link itself: one write.
        let linked = apply_identity(app, session, i, started_ms).await?;
        tracing::info!(session_id = %linked.id, "passbase identity linked");
        if let Err(e) = settle_kept(app, &linked, identity_key).await {
            tracing::warn!(session_id = %linked.id, error = %e, "kept passbase deliveries not settled yet");
        }
        return Ok(linked);
    }
    for _ in 0..ATTEMPTS {
        let mut next = session.clone();
        next.provider_ref = Some(identity_key.to_owned());
        next.updated_at = app.clock.now();
        next.version = session.version + 1;
        match app
            .store
            .update_session(SessionWrite {
                session: &next,
                expected_version: session.version,
                history: None,
            })
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %next.id, "passbase identity linked");
                return Ok(next);
            }
            Err(StoreError::Conflict) => {
                session = app
                    .store
                    .get_session(&session.id)
                    .await?
                    .ok_or(Error::NotFound)?;
                if session.provider_ref.as_deref() == Some(identity_key) {
                    return Ok(session);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one session".into(),
    ))
}

/// After a link: deliveries kept for the identity are settled, with the identity read made for
/// the link applied first (their effect). Nothing kept: nothing more to write now (the webhook or
/// the overdue check brings the state). The link itself is done: a failure here leaves the rest
/// to the next refresh (or the delivery retry).
async fn after_link(
    app: &App,
    session: Session,
    identity_key: &str,
    identity: &Identity,
    started_ms: i64,
) -> Session {
    match app.store.unmatched_deliveries(PROVIDER, identity_key).await {
        Ok(kept) if kept.is_empty() => return session,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(session_id = %session.id, error = %e, "kept passbase deliveries not looked up");
            return session;
        }
    }
    let fallback = session.clone();
    match apply_identity(app, session, identity, started_ms).await {
        Ok(s) => {
            if let Err(e) = settle_kept(app, &s, identity_key).await {
                tracing::warn!(session_id = %s.id, error = %e, "kept passbase deliveries not settled yet");
            }
            s
        }
        Err(e) => {
            tracing::warn!(session_id = %fallback.id, error = %e, "passbase read after link not applied; the next refresh applies it");
            fallback
        }
    }
}

/// Settles the deliveries kept for this identity (their effect is the identity read just
/// applied), recording the reauthentications among them first.
async fn settle_kept(app: &App, session: &Session, identity_key: &str) -> Result<(), Error> {
    for d in app
        .store
        .unmatched_deliveries(PROVIDER, identity_key)
        .await?
    {
        if let Ok(event) = serde_json::from_str::<KeptEvent>(&d.payload)
            && event.event == webhook::IDENTITY_AUTHENTICATED
            && session.status == Status::Verified
        {
            record_reauthentication(app, session, identity_key, &event, &d.event_id).await?;
        }
        app.store
            .settle_delivery(&d, DeliveryState::Applied)
            .await?;
    }
    Ok(())
}

/// Re-reads the session's identity and applies it (the refresh dispatch point calls this).
pub async fn refresh(app: &App, session: Session) -> Result<Session, Error> {
    let Some(key) = session.provider_ref.clone() else {
        // Not linked yet: Passbase has nothing we could ask about.
        return Ok(session);
    };
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let started_ms = now_ms(app);
    let session = match app.passbase.identity(creds, &key).await? {
        IdentityLookup::Found(identity) => {
            apply_identity(app, session, &identity, started_ms).await?
        }
        // ASSUMPTION: a 404 for a linked key means Passbase has not created the identity yet.
        IdentityLookup::NotFound => {
            let p = crate::session::Proposal {
                status: Status::Created,
                provider_status: None,
                last_error: None,
                source: crate::session::Source::ProviderRead,
                unclear: Some(crate::session::NOT_FOUND),
            };
            let book = Bookkeeping {
                checked_at: Some(app.clock.now()),
                seen_ms: Some(started_ms),
                ..Default::default()
            };
            apply_with_retry(app, session, &p, &book).await?.0
        }
    };
    settle_kept(app, &session, &key).await?;
    Ok(session)
}

async fn apply_identity(
    app: &App,
    session: Session,
    identity: &Identity,
    started_ms: i64,
) -> Result<Session, Error> {
    let proposal = if belongs_elsewhere(identity, Some(&session.id)) {
        tracing::warn!(session_id = %session.id, "linked passbase identity names another session");
        status::mismatch(identity)
    } else {
        status::proposal(identity)
    };
    let book = Bookkeeping {
        checked_at: Some(app.clock.now()),
        seen_ms: Some(started_ms),
        // The identity's key, which a link sets with this very write.
        provider_ref: Some(identity.id.clone()),
        reason: None,
        evidence: identity.evidence(),
    };
    Ok(apply_with_retry(app, session, &proposal, &book).await?.0)
}

/// The minimal form of a Passbase event kept with its delivery (Passbase's events carry no
/// personal data: the identity key, the event, its status and times).
type KeptEvent = Event;

async fn record_reauthentication(
    app: &App,
    session: &Session,
    identity_key: &str,
    event: &Event,
    event_id: &str,
) -> Result<(), Error> {
    let at = event
        .updated
        .or(event.created)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(|| app.clock.now());
    let r = Reauthentication {
        tenant: session.tenant.clone(),
        user_id: session.user_id.clone(),
        provider: Provider::Passbase,
        identity_id: identity_key.to_owned(),
        session_id: session.id.clone(),
        at,
        // ASSUMPTION: IDENTITY_AUTHENTICATED reports an approved authentication unless it says
        // otherwise in `status`.
        outcome: event.status.as_deref().unwrap_or("approved").to_owned(),
        event_id: event_id.to_owned(),
    };
    app.store.add_reauthentication(&r).await?;
    tracing::info!(session_id = %session.id, "passbase reauthentication recorded");
    Ok(())
}

/// A webhook delivery, raw. It must decrypt and parse as a known Passbase event before anything
/// else.
pub async fn ingest_webhook(app: &App, body: &[u8]) -> Result<Ack, Error> {
    let secrets = app.secrets.get().await?;
    let Some(creds) = secrets.passbase.as_ref() else {
        return Err(Error::InvalidSignature);
    };
    let opened = webhook::open(
        creds.webhook_secrets(),
        app.config.passbase.allow_plaintext,
        body,
    )
    .ok_or(Error::InvalidSignature)?;
    let now = app.clock.now();
    let delivery = Delivery {
        provider: PROVIDER,
        event_id: webhook::event_id(&opened.event, &opened.plaintext),
        subjects: vec![opened.event.key.clone()],
        payload: serde_json::to_string(&opened.event)
            .map_err(|e| Error::Internal(format!("passbase event: {e}")))?,
        mark: None,
        received_at: now,
        expires_at: now + app.config.dedupe_ttl,
    };
    let ack = deliveries::receive(app, &delivery, || process(app, &delivery)).await?;
    tracing::info!(event = %opened.event.event, duplicate = ack.duplicate, deferred = ack.deferred, "passbase delivery");
    Ok(ack)
}

/// A recorded delivery: the identity read is the truth (their webhooks carry no trustworthy
/// ordering), applied to the session the identity is linked to, or that its metadata names.
pub async fn process(app: &App, delivery: &Delivery) -> Processed {
    let event: KeptEvent = serde_json::from_str(&delivery.payload)
        .map_err(|e| Error::Internal(format!("kept passbase event: {e}")))?;
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let linked = linked_session(app, &event.key).await?;
    let started_ms = now_ms(app);
    let read = app.passbase.identity(creds, &event.key).await;
    if let (Err(Error::Provider { .. }), Some(s)) = (&read, &linked) {
        super::sessions::note_unusable_answer(app, s.clone()).await;
    }
    let identity = match read? {
        IdentityLookup::Found(i) => i,
        IdentityLookup::NotFound => {
            tracing::info!(event = %event.event, "passbase delivery for an identity Passbase does not show yet: kept");
            return Ok(Some(Settle::unmatched()));
        }
    };
    let session = match linked {
        Some(s) => Some(s),
        None => link_by_reference(app, &identity).await?,
    };
    let Some(session) = session else {
        // Kept: linking this identity later (by the app, or by our reference) settles it.
        tracing::info!(event = %event.event, "passbase delivery matches no session yet: kept");
        return Ok(Some(Settle::unmatched()));
    };
    let id = session.id.clone();
    let session = apply_identity(app, session, &identity, started_ms).await?;
    // Recorded before the delivery is settled, so a failure below is retried whole (the same
    // event id records it once).
    if event.event == webhook::IDENTITY_AUTHENTICATED && session.status == Status::Verified {
        record_reauthentication(app, &session, &event.key, &event, &delivery.event_id).await?;
    }
    settle_kept(app, &session, &event.key).await?;
    tracing::info!(session_id = %id, event = %event.event, "passbase delivery applied");
    Ok(Some(Settle::applied()))
}

/// The session this identity is linked to, if any.
async fn linked_session(app: &App, identity_key: &str) -> Result<Option<Session>, Error> {
    let Some(r) = app.store.get_ref(&ref_key(identity_key)).await? else {
        return Ok(None);
    };
    Ok(app
        .store
        .get_session(&r.session_id)
        .await?
        .filter(|s| s.provider_ref.as_deref().is_none_or(|k| k == identity_key)))
}

/// The identity read names our session (the SDK's metaData): link it, unless that session is
/// not a waiting Passbase session.
async fn link_by_reference(app: &App, identity: &Identity) -> Result<Option<Session>, Error> {
    let Some(id) = identity.session_ref() else {
        return Ok(None);
    };
    let Some(s) = app.store.get_session(&id).await? else {
        return Ok(None);
    };
    let linkable = s.provider == Provider::Passbase
        && !s.status.is_final()
        && s.provider_ref.as_deref().is_none_or(|k| k == identity.id);
    if !linkable {
        return Ok(None);
    }
    let claim = RefClaim {
        key: ref_key(&identity.id),
        tenant: s.tenant.clone(),
        replaces: None,
    };
    match app.store.claim_ref(&claim, &s.id).await {
        Ok(()) => {
            tracing::info!(session_id = %s.id, "passbase identity linked by its metadata");
            Ok(Some(s))
        }
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/users/{user_id}/reauthentications`.
pub async fn reauthentications(
    app: &App,
    tenant: &str,
    user_id: &str,
    limit: usize,
) -> Result<Vec<Reauthentication>, Error> {
    Ok(app
        .store
        .list_reauthentications(tenant, user_id, limit)
        .await?)
}
