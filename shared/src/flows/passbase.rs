//! Passbase: open a session (linked to the SDK's identity access key, or waiting for it with our
//! reference for the SDK's metaData), link a key later, refresh from the authoritative identity
//! read, ingest encrypted webhooks (authentic -> recorded -> re-read -> applied), and record
//! reauthentications. A delivery that matches no session yet is kept and settled when its
//! identity is linked (by the app, or by the identity read showing our reference).

use super::apply::{Bookkeeping, apply_with_retry};
use super::idempotency::{self, IdempotencyKey};
use super::load_owned;
use crate::providers::passbase::webhook::{self, Event};
use crate::providers::passbase::{Identity, IdentityLookup, ref_key, status};
use crate::secrets::PassbaseSecrets;
use crate::session::{HistoryEntry, Provider, Reauthentication, Session, SessionId, Status};
use crate::store::{Delivery, DeliveryOutcome, DeliveryState, RefClaim, SessionWrite, StoreError};
use crate::{App, Error};
use time::OffsetDateTime;

const PROVIDER: &str = "passbase";
const ATTEMPTS: usize = 4;

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

/// `POST /v1/sessions` with `provider: "passbase"`.
pub async fn start(
    app: &App,
    tenant: &str,
    input: &StartInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    for _ in 0..ATTEMPTS {
        if let Some(key) = idem
            && let Some(record) = idempotency::lookup(app, tenant, key).await?
        {
            return app
                .store
                .get_session(&record.session_id)
                .await?
                .ok_or(Error::NotFound);
        }
        if let Some(k) = &input.identity_key
            && app.store.get_ref(&ref_key(k)).await?.is_some()
        {
            return Err(Error::Conflict(
                "this Passbase identity is already linked to a session".into(),
            ));
        }
        let now = app.clock.now();
        // ASSUMPTION: Passbase documents no expiry for sessions or keys: `expires_at` stays null.
        let mut session = Session::new(tenant, Provider::Passbase, &input.user_id, now);
        session.provider_ref = input.identity_key.clone();
        // Push provider: reconcile reads it if its webhook is overdue.
        crate::session::schedule::first_check(&mut session, now);
        let history = HistoryEntry::created(&session);
        let claim = input.identity_key.as_ref().map(|k| RefClaim {
            key: ref_key(k),
            tenant: tenant.to_owned(),
            replaces: None,
        });
        let record = idem.map(|k| k.record(app, tenant, &session.id, 201, None));
        match app
            .store
            .create_session(&session, &history, claim.as_ref(), record.as_ref())
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = PROVIDER, linked = input.identity_key.is_some(), "session created");
                return Ok(match &input.identity_key {
                    Some(k) => settle_after_link(app, creds, session, k).await,
                    None => session,
                });
            }
            // The key was linked, or the Idempotency-Key used, by a twin request: look again.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one identity".into(),
    ))
}

/// `POST /v1/sessions/{id}/link`: ties a waiting session to the identity the SDK reported.
/// Linking the same key again answers the session; another key, or a key linked elsewhere, is 409.
pub async fn link(app: &App, tenant: &str, id: &str, identity_key: &str) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let mut session = load_owned(app, tenant, id).await?;
    if session.provider != Provider::Passbase {
        return Err(Error::Conflict(
            "only a Passbase session can be linked to a Passbase identity".into(),
        ));
    }
    for _ in 0..ATTEMPTS {
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
        let claim = RefClaim {
            key: ref_key(identity_key),
            tenant: tenant.to_owned(),
            replaces: None,
        };
        match app.store.claim_ref(&claim, &session.id).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(Error::Conflict(
                    "this Passbase identity is already linked to another session".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
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
                applies_delivery: None,
            })
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %next.id, "passbase identity linked");
                return Ok(settle_after_link(app, creds, next, identity_key).await);
            }
            Err(StoreError::Conflict) => {
                session = app
                    .store
                    .get_session(&session.id)
                    .await?
                    .ok_or(Error::NotFound)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one session".into(),
    ))
}

/// After a link: deliveries kept for this identity are matched now, by one identity read. The
/// link itself is done; if Passbase cannot be read now, they stay kept and the next refresh of
/// the session settles them.
async fn settle_after_link(
    app: &App,
    creds: &PassbaseSecrets,
    session: Session,
    identity_key: &str,
) -> Session {
    let kept = match app.store.unmatched_deliveries(PROVIDER, identity_key).await {
        Ok(kept) if !kept.is_empty() => kept,
        Ok(_) => return session,
        Err(e) => {
            tracing::warn!(session_id = %session.id, error = %e, "kept passbase deliveries not looked up");
            return session;
        }
    };
    let fallback = session.clone();
    match read_and_apply(app, creds, session, identity_key, None).await {
        Ok(s) => match settle_kept(app, &s, identity_key, &kept).await {
            Ok(()) => s,
            Err(e) => {
                tracing::warn!(session_id = %s.id, error = %e, "kept passbase deliveries not settled");
                s
            }
        },
        Err(e) => {
            tracing::warn!(session_id = %fallback.id, error = %e, "passbase read after link failed; kept deliveries wait for the next refresh");
            fallback
        }
    }
}

/// Marks kept deliveries applied (their effect is the identity read just applied), recording the
/// reauthentications among them first.
async fn settle_kept(
    app: &App,
    session: &Session,
    identity_key: &str,
    kept: &[String],
) -> Result<(), Error> {
    for event_id in kept {
        // The event id is `key#event#updated` (webhook::event_id).
        let mut parts = event_id.rsplitn(3, '#');
        let at = parts.next().and_then(|t| t.parse::<i64>().ok());
        let name = parts.next().unwrap_or_default();
        if name == webhook::IDENTITY_AUTHENTICATED && session.status == Status::Verified {
            record_reauthentication(app, session, identity_key, at, None, event_id).await?;
        }
        app.store
            .set_delivery_state(PROVIDER, event_id, DeliveryState::Applied)
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
    let session = read_and_apply(app, creds, session, &key, None).await?;
    let kept = app.store.unmatched_deliveries(PROVIDER, &key).await?;
    if !kept.is_empty() {
        settle_kept(app, &session, &key, &kept).await?;
    }
    Ok(session)
}

async fn read_and_apply(
    app: &App,
    creds: &PassbaseSecrets,
    session: Session,
    identity_key: &str,
    delivery: Option<&str>,
) -> Result<Session, Error> {
    let started_ms = now_ms(app);
    match app.passbase.identity(creds, identity_key).await? {
        IdentityLookup::Found(identity) => {
            apply_identity(app, session, &identity, started_ms, delivery).await
        }
        // ASSUMPTION: a 404 for a linked key means Passbase has not created the identity yet.
        IdentityLookup::NotFound => Ok(session),
    }
}

async fn apply_identity(
    app: &App,
    session: Session,
    identity: &Identity,
    started_ms: i64,
    delivery: Option<&str>,
) -> Result<Session, Error> {
    let proposal = status::proposal(identity)?;
    let book = Bookkeeping {
        checked_at: Some(app.clock.now()),
        seen_ms: Some(started_ms),
        provider_ref: Some(identity.id.clone()),
        delivery: delivery.map(|d| (PROVIDER, d)),
        reason: None,
        evidence: identity.evidence(),
    };
    Ok(apply_with_retry(app, session, &proposal, &book).await?.0)
}

async fn record_reauthentication(
    app: &App,
    session: &Session,
    identity_key: &str,
    at_unix: Option<i64>,
    outcome: Option<&str>,
    event_id: &str,
) -> Result<(), Error> {
    let at = at_unix
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
        outcome: outcome.unwrap_or("approved").to_owned(),
        event_id: event_id.to_owned(),
    };
    app.store.add_reauthentication(&r).await?;
    tracing::info!(session_id = %session.id, "passbase reauthentication recorded");
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub duplicate: bool,
}

/// A webhook delivery, raw. It must decrypt and parse as a Passbase event before anything else.
pub async fn ingest_webhook(app: &App, body: &[u8]) -> Result<Ack, Error> {
    let secrets = app.secrets.get().await?;
    let Some(creds) = secrets.passbase.as_ref() else {
        return Err(Error::InvalidSignature);
    };
    let event = webhook::open(
        &creds.webhook_secret,
        app.config.passbase.allow_plaintext,
        body,
    )
    .ok_or(Error::InvalidSignature)?;
    let event_id = webhook::event_id(&event);
    let now = app.clock.now();
    let delivery = Delivery {
        provider: PROVIDER,
        event_id: event_id.clone(),
        subject: Some(event.key.clone()),
        received_at: now,
        expires_at: now + app.config.dedupe_ttl,
    };
    // Recorded before it is acted on: if anything below fails, a redelivery is processed again.
    if app.store.record_delivery(&delivery).await? == DeliveryOutcome::Duplicate {
        tracing::info!(event = %event.event, "duplicate passbase delivery");
        return Ok(Ack { duplicate: true });
    }

    let linked = linked_session(app, &event.key).await?;
    // Their webhooks carry no trustworthy ordering: the identity read is the truth.
    let started_ms = now_ms(app);
    let identity = match app.passbase.identity(creds, &event.key).await? {
        IdentityLookup::Found(i) => i,
        IdentityLookup::NotFound => {
            app.store.keep_unmatched(&delivery).await?;
            tracing::info!(event = %event.event, "passbase delivery for an identity Passbase does not show yet");
            return Ok(Ack { duplicate: false });
        }
    };
    let session = match linked {
        Some(s) => Some(s),
        None => link_by_reference(app, &identity).await?,
    };
    let Some(session) = session else {
        // Kept: linking this identity later (by the app, or by our reference) settles it.
        app.store.keep_unmatched(&delivery).await?;
        tracing::info!(event = %event.event, "passbase delivery matches no session yet");
        return Ok(Ack { duplicate: false });
    };
    apply_event(app, session, &event, &identity, started_ms, &event_id).await?;
    Ok(Ack { duplicate: false })
}

async fn apply_event(
    app: &App,
    session: Session,
    event: &Event,
    identity: &Identity,
    started_ms: i64,
    event_id: &str,
) -> Result<(), Error> {
    let id = session.id.clone();
    // Recorded before the delivery is marked applied, so a failure below is retried whole.
    if event.event == webhook::IDENTITY_AUTHENTICATED
        && !session.status.is_final()
        && status::proposal(identity)?.status == Status::Verified
    {
        record_reauthentication(
            app,
            &session,
            &event.key,
            event.updated.or(event.created),
            event.status.as_deref(),
            event_id,
        )
        .await?;
    }
    let session = apply_identity(app, session, identity, started_ms, Some(event_id)).await?;
    let kept = app.store.unmatched_deliveries(PROVIDER, &event.key).await?;
    if !kept.is_empty() {
        settle_kept(app, &session, &event.key, &kept).await?;
    }
    tracing::info!(session_id = %id, event = %event.event, "passbase delivery applied");
    Ok(())
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
