//! Authento after the token: refresh a session from the authoritative user-info read, and ingest
//! webhooks (authentic -> recorded -> re-read -> applied to every session of the user). Authento
//! knows the user by its subject (`session::Subject`), never by the app's user id.

use super::apply::{Bookkeeping, apply_with_retry};
use super::deliveries::{self, Ack, Processed, Settle};
use crate::providers::authento::{Lookup, status, webhook};
use crate::session::{Session, Subject, VerificationType};
use crate::store::{Delivery, authento_ref_key};
use crate::{App, Error};
use sha2::{Digest, Sha256};

const PROVIDER: &str = "authento";

/// Re-reads Authento for this session and applies what it says.
pub async fn refresh(app: &App, session: Session) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds = secrets
        .authento
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))?;
    let subject = Subject::of(&session.tenant, &session.user_id);
    let started_ms = now_ms(app);
    let lookup = app
        .authento
        .basic_user_info(creds, subject.as_str())
        .await?;
    apply_lookup(app, session, &lookup, started_ms).await
}

async fn apply_lookup(
    app: &App,
    session: Session,
    lookup: &Lookup,
    started_ms: i64,
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
        reason: None,
        evidence: None,
    };
    let (session, _) = apply_with_retry(app, session, &proposal, &book).await?;
    Ok(session)
}

fn now_ms(app: &App) -> i64 {
    i64::try_from(app.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The sessions a delivery about `user` concerns: the user's sessions of both tracks that can
/// still change (a decided one included: a reversal must reach it).
async fn sessions_of(app: &App, user: &str) -> Result<Vec<Session>, Error> {
    let keys = [VerificationType::Basic, VerificationType::Poa]
        .map(|vt| authento_ref_key(user, vt.as_str()));
    let mut sessions = Vec::new();
    for r in app.store.get_refs(&keys).await?.into_iter().flatten() {
        if let Some(s) = app.store.get_session(&r.session_id).await?
            && !s.status.is_final()
        {
            sessions.push(s);
        }
    }
    Ok(sessions)
}

/// Where the sessions a delivery concerns stand: their ids and when they last changed (a
/// change of status or provider word; bookkeeping writes do not count), or `none`.
fn mark(sessions: &[Session]) -> String {
    if sessions.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = sessions
        .iter()
        .map(|s| format!("{}:{}", s.id, s.updated_at.unix_timestamp_nanos()))
        .collect();
    parts.sort();
    hex::encode(&Sha256::digest(parts.join(",").as_bytes())[..8])
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
    let event = match webhook::parse(body) {
        Ok(e) => e,
        Err(why) => return deliveries::keep_unusable(app, PROVIDER, body, why).await,
    };
    // Only a subject the gateway issued can name a session; any other user is kept unmatched.
    let user = Subject::parse(&event.user_identifier)
        .map_or_else(|| event.user_identifier.clone(), |s| s.to_string());
    let sessions = sessions_of(app, &user).await?;
    let now = app.clock.now();
    let delivery = Delivery {
        provider: PROVIDER,
        event_id: webhook::event_id(body),
        subjects: vec![user.clone()],
        // All a later attempt needs: whom to re-read.
        payload: user.clone(),
        mark: Some(mark(&sessions)),
        received_at: now,
        expires_at: now + app.config.dedupe_ttl,
    };
    let ack = deliveries::receive(app, &delivery, || apply_to(app, &user, sessions)).await?;
    // `?`: the event name is Authento's text, escaped so it can never forge a log line.
    tracing::info!(event = ?event.event, duplicate = ack.duplicate, deferred = ack.deferred, "authento delivery");
    Ok(ack)
}

/// A recorded delivery, again (a retry, or a kept one): whom to re-read is its payload.
pub async fn process(app: &App, delivery: &Delivery) -> Processed {
    let sessions = sessions_of(app, &delivery.payload).await?;
    apply_to(app, &delivery.payload, sessions).await
}

/// One authoritative read for the user, applied to each of its sessions: the delivery is
/// applied only when every one of them has it (a failure leaves it due for a retry).
async fn apply_to(app: &App, user: &str, sessions: Vec<Session>) -> Processed {
    if sessions.is_empty() {
        // Kept: the first read of a session opened later for this user picks the state up.
        return Ok(Some(Settle {
            mark: Some(mark(&sessions)),
            ..Settle::unmatched()
        }));
    }
    let secrets = app.secrets.get().await?;
    let creds = secrets
        .authento
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))?;
    // Their webhooks carry no trustworthy ordering: the API read is the truth, one per user.
    let started_ms = now_ms(app);
    let lookup = match app.authento.basic_user_info(creds, user).await {
        Ok(lookup) => lookup,
        Err(e) => {
            if matches!(e, Error::Provider { .. }) {
                for s in sessions {
                    super::sessions::note_unusable_answer(app, s).await;
                }
            }
            return Err(e);
        }
    };
    let mut after = Vec::with_capacity(sessions.len());
    for s in sessions {
        let applied = apply_lookup(app, s, &lookup, started_ms).await?;
        tracing::info!(session_id = %applied.id, "authento delivery applied");
        after.push(applied);
    }
    Ok(Some(Settle {
        mark: Some(mark(&after)),
        ..Settle::applied()
    }))
}
