//! Prove Verified Users: start a flow (`/v3/verify`), follow it (`/v3/verify-status`) until Prove
//! decides or a deadline passes, enroll the verified identity with Identity Manager, and record
//! Identity Manager's webhook events on the session that verified the identity.

use super::apply::{Bookkeeping, apply_with_retry};
use super::idempotency::{self, IdempotencyKey};
use crate::providers::prove::status::{self, Outcome};
use crate::providers::prove::{Phone, StatusRead, VerifyRequest, webhook};
use crate::secrets::ProveSecrets;
use crate::session::{
    HistoryEntry, IdentityEvent, Possession, Proposal, ProveDetails, Provider, Session, Status,
};
use crate::store::{
    Delivery, DeliveryOutcome, DeliveryState, IdempotencyRecord, RefClaim, SessionWrite,
    StoreError, prove_identity_ref_key,
};
use crate::{App, Error};
use time::OffsetDateTime;

const PROVIDER: &str = "prove";
const ATTEMPTS: usize = 5;
/// At most this many identity events are shown on a session (newest first).
pub const SHOWN_EVENTS: usize = 50;

/// A validated `POST /v1/sessions` for Prove. Personal data lives here only for the request.
#[derive(Clone)]
pub struct StartInput {
    pub user_id: String,
    pub phone: Phone,
    pub first_name: String,
    pub last_name: String,
    pub possession: Possession,
    pub final_target_url: Option<String>,
    pub sms_message: Option<String>,
    pub email: Option<String>,
    pub allow_otp_retry: Option<bool>,
}

// Personal data never reaches a log through Debug.
impl std::fmt::Debug for StartInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartInput")
            .field("user_id", &self.user_id)
            .field("phone", &self.phone)
            .field("possession", &self.possession)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Started {
    pub session: Session,
    /// Prove's `authToken` for the client SDK: answered once, never stored.
    pub auth_token: Option<String>,
    /// An `Idempotency-Key` replay: the first answer's token cannot be given again.
    pub replayed: bool,
}

fn creds(secrets: &crate::secrets::SecretDoc) -> Result<&ProveSecrets, Error> {
    secrets
        .prove
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))
}

/// Starts a Prove flow and its session. `/v3/verify` is sent exactly once per session; the
/// session is stored only after Prove answered, so a failure leaves nothing behind.
pub async fn start(
    app: &App,
    tenant: &str,
    input: &StartInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    if let Some(key) = idem
        && let Some(record) = idempotency::lookup(app, tenant, key).await?
    {
        return replay(app, &record).await;
    }

    let created = app.clock.now();
    let mut session = Session::new(tenant, Provider::Prove, &input.user_id, created);
    let region = input.phone.region();
    let request = VerifyRequest {
        first_name: input.first_name.clone(),
        last_name: input.last_name.clone(),
        phone_number: input.phone.for_prove(),
        possession_type: input.possession.as_str().to_owned(),
        email_address: input.email.clone(),
        final_target_url: input.final_target_url.clone(),
        sms_message: input.sms_message.clone(),
        allow_otp_retry: input.allow_otp_retry,
        client_request_id: session.id.to_string(),
        client_customer_id: input.user_id.clone(),
    };
    let answer = app.prove.verify(creds, region, &request).await?;
    let now = app.clock.now();
    let outcome = Outcome {
        success: &answer.success,
        possession_result: &answer.possession_result,
        verify_result: &answer.verify_result,
    };
    let proposal = status::proposal(&outcome);
    session.status = proposal.status;
    session.provider_status = proposal.provider_status;
    session.last_error = proposal.last_error;
    session.provider_ref = Some(answer.correlation_id.clone());
    session.updated_at = now;
    session.last_checked_at = Some(now);
    session.expires_at = Some(created + app.config.prove.session_window);
    let window = match input.possession {
        Possession::Desktop => Some(app.config.prove.instant_link_window),
        Possession::Mobile => Some(app.config.prove.otp_window),
        Possession::None => None,
    };
    let mut details = ProveDetails {
        possession: input.possession,
        region,
        phone_masked: input.phone.masked(),
        possession_deadline: window
            .filter(|_| outcome.awaits_possession())
            .map(|w| now + w),
        identity_id: None,
        reverification_recommended: false,
    };
    // Verified at once (`possession_type: none`): enroll now, while the number is in hand. A
    // failure here is a retryable error and no session: the start is simply repeated.
    if session.status == Status::Verified {
        let id = app
            .prove
            .enroll_identity(creds, region, &input.phone.for_prove(), &input.user_id)
            .await?;
        details.identity_id = Some(id);
    }
    session.prove = Some(details);
    if !session.status.is_terminal() {
        // Prove is pull-based: scheduled reconciliation follows the flow from here.
        crate::session::schedule::first_check(&mut session, now);
    }
    let mut history = HistoryEntry::created(&session);
    history.to = session.status;
    history.provider_status = session.provider_status.clone();

    let record = idem.map(|k| k.record(app, tenant, &session.id, 201, None));
    for _ in 0..ATTEMPTS {
        let claim = match identity_of(&session) {
            Some(identity) => Some(RefClaim {
                key: prove_identity_ref_key(identity),
                tenant: tenant.to_owned(),
                replaces: app
                    .store
                    .get_ref(&prove_identity_ref_key(identity))
                    .await?
                    .map(|r| r.session_id),
            }),
            None => None,
        };
        match app
            .store
            .create_session(&session, &history, claim.as_ref(), record.as_ref())
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = PROVIDER, status = session.status.as_str(), "session created");
                return Ok(Started {
                    session,
                    auth_token: answer.auth_token,
                    replayed: false,
                });
            }
            Err(StoreError::Conflict) => {
                // A twin request with the same key won the race: answer what it stored. (Its
                // flow and ours both exist at Prove; ours is simply never used.)
                if let Some(key) = idem
                    && let Some(r) = idempotency::lookup(app, tenant, key).await?
                {
                    return replay(app, &r).await;
                }
                // Else the identity's ref moved under us: read it again.
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one identity".into(),
    ))
}

fn identity_of(s: &Session) -> Option<&str> {
    s.prove.as_ref()?.identity_id.as_deref()
}

/// The first answer's session, as it is now. Our choice (openapi.yaml, README): the `authToken`
/// is never stored, so a replay cannot give it again; it says so with `replayed` instead.
async fn replay(app: &App, r: &IdempotencyRecord) -> Result<Started, Error> {
    let session = app
        .store
        .get_session(&r.session_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Started {
        session,
        auth_token: None,
        replayed: true,
    })
}

/// Reads `/v3/verify-status` and applies it; expires a flow that Prove closed or whose
/// possession window passed while Prove still waits on the user.
pub async fn refresh(app: &App, session: Session) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let (Some(details), Some(correlation_id)) =
        (session.prove.clone(), session.provider_ref.clone())
    else {
        return Err(Error::Internal("prove session without its flow".into()));
    };
    let started_ms = now_ms(app);
    let read = app
        .prove
        .verify_status(creds, details.region, &correlation_id, session.id.as_str())
        .await?;
    let now = app.clock.now();
    let mut identity = None;
    let (proposal, reason): (Proposal, Option<&'static str>) = match read {
        StatusRead::StepNotAllowed => {
            let code = if session.status == Status::Pending {
                "possession_timeout"
            } else {
                "flow_expired"
            };
            (status::expired(code), Some(code))
        }
        StatusRead::Status(r) => {
            let o = Outcome {
                success: &r.success,
                possession_result: &r.possession_result,
                verify_result: &r.verify_result,
            };
            let past_deadline = details.possession_deadline.is_some_and(|d| d <= now);
            if o.awaits_possession() && past_deadline {
                (
                    status::expired("possession_timeout"),
                    Some("possession_timeout"),
                )
            } else {
                let p = status::proposal(&o);
                if p.status == Status::Verified {
                    identity = r.identity_id.clone();
                }
                (p, None)
            }
        }
    };
    // The identity's ref first: a webhook may name the identity as soon as Prove enrolled it.
    if let Some(id) = &identity
        && details.identity_id.as_deref() != Some(id)
    {
        point_identity_at(app, id, &session).await?;
    }
    let book = Bookkeeping {
        checked_at: Some(now),
        seen_ms: Some(started_ms),
        reason,
        ..Default::default()
    };
    let (session, _) = apply_with_retry(app, session, &proposal, &book).await?;
    match identity {
        Some(id) if session.status == Status::Verified && identity_of(&session) != Some(&id) => {
            store_identity_id(app, session, id).await
        }
        None if session.status == Status::Verified && identity_of(&session).is_none() => {
            // ASSUMPTION: Prove enrolls a verified flow and says so with identityId. Without it
            // we cannot enroll later: the number was never stored.
            tracing::warn!(session_id = %session.id, "verified prove flow without an identity id; no Identity Manager events for it");
            Ok(session)
        }
        _ => Ok(session),
    }
}

/// Points the identity's ref at this session (the latest verified one wins).
async fn point_identity_at(app: &App, identity: &str, session: &Session) -> Result<(), Error> {
    let key = prove_identity_ref_key(identity);
    for _ in 0..ATTEMPTS {
        let current = app.store.get_ref(&key).await?.map(|r| r.session_id);
        if current.as_ref() == Some(&session.id) {
            return Ok(());
        }
        let claim = RefClaim {
            key: key.clone(),
            tenant: session.tenant.clone(),
            replaces: current,
        };
        match app.store.claim_ref(&claim, &session.id).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one identity".into(),
    ))
}

/// Writes the identity id onto the session (no status change, no history entry).
async fn store_identity_id(app: &App, mut current: Session, id: String) -> Result<Session, Error> {
    for _ in 0..ATTEMPTS {
        let mut next = current.clone();
        if let Some(p) = next.prove.as_mut() {
            p.identity_id = Some(id.clone());
        }
        next.version = current.version + 1;
        let write = SessionWrite {
            session: &next,
            expected_version: current.version,
            history: None,
            applies_delivery: None,
        };
        match app.store.update_session(write).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict) => {
                current = app
                    .store
                    .get_session(&current.id)
                    .await?
                    .ok_or(Error::NotFound)?;
                if identity_of(&current) == Some(&id) {
                    return Ok(current);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one session".into(),
    ))
}

fn now_ms(app: &App) -> i64 {
    i64::try_from(app.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The identity events shown on a Prove session.
pub async fn identity_events(app: &App, s: &Session) -> Result<Vec<IdentityEvent>, Error> {
    Ok(app.store.identity_events(&s.id, SHOWN_EVENTS).await?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Every event of the delivery had been applied before.
    pub duplicate: bool,
}

/// An Identity Manager delivery, raw: the JWT is checked before the body is read, each event is
/// recorded before it is acted on, and deduplicated by its event id.
pub async fn ingest_webhook(
    app: &App,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<Ack, Error> {
    let secrets = app.secrets.get().await?;
    let Some(creds) = secrets.prove.as_ref() else {
        // Nothing to check it against: refuse it, change nothing.
        return Err(Error::InvalidSignature);
    };
    let now = app.clock.now();
    if !webhook::is_authentic(creds.webhook_secrets(), authorization, now.unix_timestamp()) {
        return Err(Error::InvalidSignature);
    }
    let events = webhook::parse(body).map_err(Error::BadRequest)?;
    let mut duplicate = true;
    for e in &events {
        let delivery = Delivery {
            provider: PROVIDER,
            event_id: e.event_id.clone(),
            subject: Some(e.identity_id.clone()),
            received_at: now,
            expires_at: now + app.config.dedupe_ttl,
        };
        if app.store.record_delivery(&delivery).await? == DeliveryOutcome::Duplicate {
            tracing::info!(event_type = %e.event_type, "duplicate prove event");
            continue;
        }
        duplicate = false;
        let session = match app
            .store
            .get_ref(&prove_identity_ref_key(&e.identity_id))
            .await?
        {
            Some(r) => app.store.get_session(&r.session_id).await?,
            None => None,
        };
        let Some(session) = session else {
            app.store
                .set_delivery_state(PROVIDER, &e.event_id, DeliveryState::Unmatched)
                .await?;
            tracing::info!(event_type = %e.event_type, "prove event names no enrolled identity");
            continue;
        };
        let event = IdentityEvent {
            session_id: session.id.clone(),
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            occurred_at: e.event_timestamp.as_deref().and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            }),
            received_at: now,
        };
        record_event(app, session, &event).await?;
    }
    Ok(Ack { duplicate })
}

/// Stores the event with the session (flagged for re-verification when the verified number
/// changed hands or went away) and the delivery's `applied` mark, in one transaction.
async fn record_event(app: &App, mut current: Session, event: &IdentityEvent) -> Result<(), Error> {
    let reverify = webhook::REVERIFY_EVENTS.contains(&event.event_type.as_str());
    for _ in 0..ATTEMPTS {
        let mut next = current.clone();
        if reverify
            && current.status == Status::Verified
            && let Some(p) = next.prove.as_mut()
            && !p.reverification_recommended
        {
            p.reverification_recommended = true;
            next.updated_at = event.received_at;
        }
        next.version = current.version + 1;
        let write = SessionWrite {
            session: &next,
            expected_version: current.version,
            history: None,
            applies_delivery: Some((PROVIDER, &event.event_id)),
        };
        match app.store.add_identity_event(write, event).await {
            Ok(()) => {
                tracing::info!(session_id = %next.id, event_type = %event.event_type, reverification = reverify, "prove identity event recorded");
                return Ok(());
            }
            Err(StoreError::Conflict) => {
                current = app
                    .store
                    .get_session(&current.id)
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
