//! Authento after the token: refresh a session from the authoritative user-info read, and ingest
//! webhooks (authentic -> recorded -> re-read -> applied).

use super::apply::{Bookkeeping, apply_with_retry};
use crate::providers::authento::{Lookup, status, webhook};
use crate::session::{Session, VerificationType};
use crate::store::{Delivery, DeliveryOutcome, DeliveryState, authento_ref_key};
use crate::{App, Error};

const PROVIDER: &str = "authento";

/// Re-reads Authento for this session and applies what it says.
pub async fn refresh(app: &App, session: Session) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = secrets
        .authento
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))?;
    let started_ms = now_ms(app);
    let lookup = app
        .authento
        .basic_user_info(creds, &session.user_id)
        .await?;
    apply_lookup(app, session, &lookup, started_ms, None).await
}

async fn apply_lookup(
    app: &App,
    session: Session,
    lookup: &Lookup,
    started_ms: i64,
    delivery: Option<&str>,
) -> Result<Session, Error> {
    let vt = session.verification_type.unwrap_or(VerificationType::Basic);
    let proposal = status::proposal(lookup, vt);
    let book = Bookkeeping {
        checked_at: Some(app.clock.now()),
        seen_ms: Some(started_ms),
        provider_ref: match lookup {
            Lookup::Found(info) => Some(info.id.clone()),
            Lookup::NotFound => None,
        },
        delivery: delivery.map(|d| (PROVIDER, d)),
        reason: None,
        evidence: None,
    };
    let (session, _) = apply_with_retry(app, session, &proposal, &book).await?;
    Ok(session)
}

fn now_ms(app: &App) -> i64 {
    i64::try_from(app.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub duplicate: bool,
}

/// A webhook delivery, raw. Authenticity is checked on these exact bytes before anything else.
pub async fn ingest_webhook(
    app: &App,
    body: &[u8],
    digest: Option<&str>,
    alg: Option<&str>,
) -> Result<Ack, Error> {
    let secrets = app.secrets.get().await?;
    let Some(creds) = secrets.authento.as_ref() else {
        // Nothing to check it against: refuse it, change nothing.
        return Err(Error::InvalidSignature);
    };
    if !webhook::is_authentic(creds.webhook_secrets(), body, digest, alg) {
        return Err(Error::InvalidSignature);
    }
    let event = webhook::parse(body).map_err(Error::BadRequest)?;
    let event_id = webhook::event_id(body);
    let now = app.clock.now();
    let delivery = Delivery {
        provider: PROVIDER,
        event_id: event_id.clone(),
        subject: Some(event.user_identifier.clone()),
        received_at: now,
        expires_at: now + app.config.dedupe_ttl,
    };
    // Recorded before it is acted on: if anything below fails, a redelivery is processed again.
    if app.store.record_delivery(&delivery).await? == DeliveryOutcome::Duplicate {
        // `?`: the event name is Authento's free text, escaped so it cannot forge log lines.
        tracing::info!(event = ?event.event, "duplicate authento delivery");
        return Ok(Ack { duplicate: true });
    }

    let mut sessions = Vec::new();
    // The user's two (user, type) refs in one read.
    let keys = [VerificationType::Basic, VerificationType::Poa]
        .map(|vt| authento_ref_key(&event.user_identifier, vt.as_str()));
    for r in app.store.get_refs(&keys).await?.into_iter().flatten() {
        if let Some(s) = app.store.get_session(&r.session_id).await?
            && !s.status.is_final()
        {
            sessions.push(s);
        }
    }
    if sessions.is_empty() {
        // Kept: the first read of a session opened later for this user picks the state up.
        app.store
            .set_delivery_state(PROVIDER, &event_id, DeliveryState::Unmatched)
            .await?;
        tracing::info!(event = ?event.event, "authento delivery matches no open session");
        return Ok(Ack { duplicate: false });
    }
    // Their webhooks carry no trustworthy ordering: the API read is the truth, one read per user.
    let started_ms = now_ms(app);
    let lookup = app
        .authento
        .basic_user_info(creds, &event.user_identifier)
        .await?;
    for s in sessions {
        let id = s.id.clone();
        apply_lookup(app, s, &lookup, started_ms, Some(&event_id)).await?;
        tracing::info!(session_id = %id, event = ?event.event, "authento delivery applied");
    }
    Ok(Ack { duplicate: false })
}
