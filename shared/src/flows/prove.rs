//! Prove Verified Users: start a flow (`/v3/verify`), follow it (`/v3/verify-status`) until Prove
//! decides or a deadline passes, enroll the verified identity with Identity Manager, and record
//! Identity Manager's webhook events on the session that verified the identity.

use super::apply::{Bookkeeping, apply_with_retry};
use super::deliveries::{self, Ack, Processed, Settle};
use super::idempotency::{self, Claim, Done, Held, IdempotencyKey};
use crate::providers::prove::status::{self, Outcome};
use crate::providers::prove::{Phone, StatusRead, VerifyRequest, webhook};
use crate::secrets::ProveSecrets;
use crate::session::{
    HistoryEntry, IdentityEvent, Possession, Proposal, ProveDetails, Provider, Session, Status,
    Subject,
};
use crate::store::{
    Delivery, RefClaim, SessionWrite, StoreError, prove_customer_ref_key, prove_identity_ref_key,
};
use crate::{App, Error};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// Starts a Prove flow and its session. `/v3/verify` is sent exactly once per session (and
/// once per `Idempotency-Key`: the key is taken before Prove is called); the session is stored
/// only after Prove answered, so a failure leaves nothing behind.
pub async fn start(
    app: &App,
    tenant: &str,
    input: &StartInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    let secrets = app.secrets.get().await?;
    let creds = creds(&secrets)?;
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(Claim::Replay(done)) => return replay(app, tenant, &done).await,
        Some(Claim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = begin_flow(app, tenant, input, held.as_ref(), creds).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

async fn begin_flow(
    app: &App,
    tenant: &str,
    input: &StartInput,
    held: Option<&Held>,
    creds: &ProveSecrets,
) -> Result<Started, Error> {
    let created = app.clock.now();
    let mut session = Session::new(tenant, Provider::Prove, &input.user_id, created);
    let region = input.phone.region();
    // The customer as Prove knows it: unique per tenant and user, so that another app's user of
    // the same id is another Prove customer with identities of its own.
    let customer = Subject::of(tenant, &input.user_id);
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
        client_customer_id: customer.to_string(),
    };
    let answer = app.prove.verify(creds, region, &request).await?;
    let now = app.clock.now();
    let outcome = Outcome {
        success: &answer.success,
        possession_result: &answer.possession_result,
        verify_result: &answer.verify_result,
    };
    let proposal = status::proposal(&outcome);
    // An answer the gateway cannot read settles nothing: the flow starts as pending, and the
    // first read tells.
    session.status = if proposal.unclear.is_some() {
        Status::Pending
    } else {
        proposal.status
    };
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
            .enroll_identity(creds, region, &input.phone.for_prove(), customer.as_str())
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

    let done = held.map(|h| (h.done(app, &session.id, 201, None, None), h.owner()));
    for _ in 0..ATTEMPTS {
        let claims = match identity_of(&session) {
            Some(identity) => identity_claims(app, &session, identity).await?,
            None => Vec::new(),
        };
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
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = PROVIDER, status = session.status.as_str(), "session created");
                if let Some(identity) = identity_of(&session)
                    && match_kept_events(app, &session, identity).await
                    && let Some(fresh) = app.store.get_session(&session.id).await?
                {
                    session = fresh;
                }
                return Ok(Started {
                    session,
                    auth_token: answer.auth_token,
                    replayed: false,
                });
            }
            // The key was taken over (this request outlived its lease): its twin answers.
            Err(StoreError::Conflict) if held.is_some() && claims.is_empty() => {
                return Err(Error::StoreUnavailable(
                    "the Idempotency-Key was taken over; retry".into(),
                ));
            }
            // An identity's ref moved under us: read it again.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one identity".into(),
    ))
}

/// The refs a verified session takes for its identity: the identity's and its customer's, each
/// replacing an older verified session of the same tenant (the latest verified session of an
/// identity gets its events).
async fn identity_claims(
    app: &App,
    session: &Session,
    identity: &str,
) -> Result<Vec<RefClaim>, Error> {
    let keys = [
        prove_identity_ref_key(identity),
        prove_customer_ref_key(Subject::of(&session.tenant, &session.user_id).as_str()),
    ];
    let current = app.store.get_refs(&keys).await?;
    let mut claims = Vec::with_capacity(2);
    for (key, r) in keys.into_iter().zip(current) {
        match r {
            Some(r) if r.session_id == session.id => {}
            Some(r) if r.tenant != session.tenant => {
                // Identities and customers are per tenant: this cannot happen unless Prove
                // answered another tenant's identity. Never move another tenant's ref.
                return Err(Error::Provider {
                    provider: PROVIDER,
                    detail: "Prove answered an identity enrolled for another customer".into(),
                });
            }
            r => claims.push(RefClaim {
                key,
                tenant: session.tenant.clone(),
                replaces: r.map(|r| r.session_id),
            }),
        }
    }
    Ok(claims)
}

fn identity_of(s: &Session) -> Option<&str> {
    s.prove.as_ref()?.identity_id.as_deref()
}

/// The first answer's session, as it is now. Our choice (openapi.yaml, README): the `authToken`
/// is never stored, so a replay cannot give it again; it says so with `replayed` instead.
async fn replay(app: &App, tenant: &str, done: &Done) -> Result<Started, Error> {
    Ok(Started {
        session: idempotency::replayed_session(app, tenant, done).await?,
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
    // The identity's refs first: a webhook may name the identity as soon as Prove enrolled it.
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
            let session = store_identity_id(app, session, id.clone()).await?;
            // Events that came before the gateway knew the identity are matched now.
            if match_kept_events(app, &session, &id).await {
                return Ok(app.store.get_session(&session.id).await?.unwrap_or(session));
            }
            Ok(session)
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

/// Identity Manager events kept because no session knew their identity (or customer) yet are
/// recorded on `session` now (`true` if any was). Best effort: what fails stays kept, and a
/// redelivery or the next verified read of the identity matches it.
async fn match_kept_events(app: &App, session: &Session, identity: &str) -> bool {
    let mut matched = false;
    let subjects = [
        identity_subject(identity),
        customer_subject(Subject::of(&session.tenant, &session.user_id).as_str()),
    ];
    for subject in subjects {
        let kept = match app.store.unmatched_deliveries(PROVIDER, &subject).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(session_id = %session.id, error = %e, "kept prove events not looked up");
                return matched;
            }
        };
        for d in kept {
            match super::deliveries::process(app, &d).await {
                Ok(None) => matched = true,
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(session_id = %session.id, error = %e, "kept prove event not matched yet");
                }
            }
        }
    }
    matched
}

/// Points the identity's and the customer's refs at this session (the latest verified one wins).
async fn point_identity_at(app: &App, identity: &str, session: &Session) -> Result<(), Error> {
    for _ in 0..ATTEMPTS {
        let claims = identity_claims(app, session, identity).await?;
        let mut lost = false;
        for claim in &claims {
            match app.store.claim_ref(claim, &session.id).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => lost = true,
                Err(e) => return Err(e.into()),
            }
        }
        if !lost {
            return Ok(());
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

/// The minimal form of an Identity Manager event that is kept to match it later: what it says
/// happened to whose identity, never a phone number or a description.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptEvent {
    #[serde(rename = "t")]
    event_type: String,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    #[serde(rename = "at", default, skip_serializing_if = "Option::is_none")]
    occurred_at: Option<String>,
}

fn identity_subject(identity: &str) -> String {
    format!("identity:{identity}")
}

fn customer_subject(customer: &str) -> String {
    format!("customer:{customer}")
}

/// An Identity Manager delivery, raw: the JWT is checked before the body is read and bound to
/// this body (a captured token over another body is refused); each event is recorded before it
/// is acted on, deduplicated by its id, and kept until a session knows its identity.
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
    let Some(token) =
        webhook::authenticate(creds.webhook_secrets(), authorization, now.unix_timestamp())
    else {
        return Err(Error::InvalidSignature);
    };
    if let Some(jti) = &token.id {
        let expires = OffsetDateTime::from_unix_timestamp(token.expires_unix)
            .unwrap_or(now + time::Duration::minutes(10));
        let bound = app
            .store
            .bind_delivery_token(
                PROVIDER,
                &hex::encode(Sha256::digest(jti.as_bytes())),
                &hex::encode(Sha256::digest(body)),
                expires,
            )
            .await?;
        if !bound {
            tracing::warn!("a prove token came again with another body: refused");
            return Err(Error::InvalidSignature);
        }
    }
    let events = match webhook::parse(body) {
        Ok(events) => events,
        Err(why) => return deliveries::keep_unusable(app, PROVIDER, body, why).await,
    };
    let mut deliveries = Vec::with_capacity(events.len());
    for e in &events {
        let kept = KeptEvent {
            event_type: e.event_type.clone(),
            identity: e.identity_id.clone(),
            customer: e.client_customer_id.clone(),
            occurred_at: e.event_timestamp.clone(),
        };
        let subjects = kept
            .identity
            .iter()
            .map(|i| identity_subject(i))
            .chain(kept.customer.iter().map(|c| customer_subject(c)))
            .collect();
        deliveries.push(Delivery {
            provider: PROVIDER,
            event_id: e.event_id.clone(),
            subjects,
            payload: serde_json::to_string(&kept)
                .map_err(|e| Error::Internal(format!("prove event: {e}")))?,
            mark: None,
            received_at: now,
            expires_at: now + app.config.dedupe_ttl,
        });
    }
    // Every event recorded before any is acted on: Prove does not retry, and a request cut at
    // its deadline must leave each event to the gateway's own retry.
    let ack = deliveries::receive_all(app, &deliveries).await?;
    tracing::info!(
        events = events.len(),
        duplicate = ack.duplicate,
        deferred = ack.deferred,
        "prove delivery"
    );
    Ok(ack)
}

/// A recorded event: recorded on the session its identity (or else its customer) points to, or
/// kept until one does.
pub async fn process(app: &App, delivery: &Delivery) -> Processed {
    let kept: KeptEvent = serde_json::from_str(&delivery.payload)
        .map_err(|e| Error::Internal(format!("kept prove event: {e}")))?;
    let mut target = None;
    if let Some(identity) = &kept.identity {
        target = app.store.get_ref(&prove_identity_ref_key(identity)).await?;
    }
    if target.is_none()
        && let Some(customer) = kept.customer.as_deref().and_then(Subject::parse)
    {
        target = app
            .store
            .get_ref(&prove_customer_ref_key(customer.as_str()))
            .await?;
    }
    let session = match target {
        Some(r) => app.store.get_session(&r.session_id).await?,
        None => None,
    };
    let Some(session) = session else {
        tracing::info!(event_type = %kept.event_type, "prove event names no enrolled identity yet: kept");
        return Ok(Some(Settle::unmatched()));
    };
    let event = IdentityEvent {
        session_id: session.id.clone(),
        event_id: delivery.event_id.clone(),
        event_type: kept.event_type.clone(),
        occurred_at: kept.occurred_at.as_deref().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }),
        received_at: delivery.received_at,
    };
    record_event(app, session, &event, delivery).await?;
    // Settled with the event, in its transaction.
    Ok(None)
}

/// Stores the event with the session (flagged for re-verification when the verified number
/// changed hands or went away) and the delivery's settling, in one transaction.
async fn record_event(
    app: &App,
    mut current: Session,
    event: &IdentityEvent,
    delivery: &Delivery,
) -> Result<(), Error> {
    let reverify = webhook::REVERIFY_EVENTS.contains(&event.event_type.as_str());
    for _ in 0..ATTEMPTS {
        let mut next = current.clone();
        // An event exists only for an identity Prove verified and enrolled: a session that has
        // not read its outcome yet is verified at Prove, and is flagged too.
        let flaggable = !matches!(
            current.status,
            Status::Failed | Status::Expired | Status::Canceled
        );
        if reverify
            && flaggable
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
        };
        match app.store.add_identity_event(write, event, delivery).await {
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
