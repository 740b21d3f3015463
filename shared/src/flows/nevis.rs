//! Nevis identity verification: start a session (one Nevis `sessionId` per session of ours) and
//! refresh it from Nevis's API, the only source of its outcome (no webhooks: reconcile polls).

use super::apply::{Bookkeeping, apply_with_retry};
use super::idempotency::{self, Claim, Done, Held, IdempotencyKey};
use crate::error::FieldError;
use crate::providers::nevis::{status, wire};
use crate::secrets::NevisSecrets;
use crate::session::{HistoryEntry, Provider, Session, schedule};
use crate::store::{RefClaim, StoreError, nevis_ref_key};
use crate::{App, Error};
use serde_json::{Map, Value};

const PROVIDER: &str = "nevis";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInput {
    pub user_id: String,
}

/// `POST /v1/sessions` with `provider: "nevis"`: `provider` and `user_id`, nothing else.
pub fn parse_start(body: &Map<String, Value>) -> Result<StartInput, Error> {
    let mut errors = Vec::new();
    for k in body.keys() {
        if k != "provider" && k != "user_id" {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "nevis sessions take no fields besides provider and user_id",
            ));
        }
    }
    let user_id = crate::input::user_id(body, &mut errors);
    match user_id {
        Some(user_id) if errors.is_empty() => Ok(StartInput { user_id }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

#[derive(Debug, Clone)]
pub struct Started {
    pub session: Session,
    /// Where to send the user (Nevis's `startUrl`).
    pub start_url: String,
}

pub async fn start(
    app: &App,
    tenant: &str,
    input: &StartInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    let secrets = app.secrets.get().await?;
    let creds = secrets
        .nevis
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))?;
    let instance = app.nevis.instance_url()?.to_owned();
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(Claim::Replay(done)) => return replay(app, tenant, &instance, &done).await,
        Some(Claim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = create(app, tenant, input, held.as_ref(), creds, &instance).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

async fn create(
    app: &App,
    tenant: &str,
    input: &StartInput,
    held: Option<&Held>,
    creds: &NevisSecrets,
    instance: &str,
) -> Result<Started, Error> {
    // Nevis first: a session of ours always has its Nevis session. If storing fails below, the
    // Nevis session is left unused (it never starts) and the app gets a retryable 503.
    let created = app.nevis.create_session(creds).await?;
    if !wire::is_start_url_of(instance, &created.start_url) {
        return Err(Error::Provider {
            provider: PROVIDER,
            detail: "startUrl is not a page of the Nevis instance".into(),
        });
    }
    let now = app.clock.now();
    let mut session = Session::new(tenant, Provider::Nevis, &input.user_id, now);
    session.provider_ref = Some(created.session_id.clone());
    session.expires_at = Some(now + app.config.nevis.session_ttl);
    schedule::first_check(&mut session, now);
    let history = HistoryEntry::created(&session);
    let claim = RefClaim {
        key: nevis_ref_key(&created.session_id),
        tenant: tenant.to_owned(),
        replaces: None,
    };
    // The start URL is kept with the key, so that a replay answers exactly the first answer.
    let done = held.map(|h| {
        let r = h.done(app, &session.id, 201, None, Some(created.start_url.clone()));
        (r, h.owner())
    });
    match app
        .store
        .create_session(
            &session,
            &history,
            std::slice::from_ref(&claim),
            done.as_ref().map(|(r, o)| (r, *o)),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(session_id = %session.id, provider = PROVIDER, "session created");
            Ok(Started {
                session,
                start_url: created.start_url,
            })
        }
        Err(StoreError::Conflict) if held.is_some() => Err(Error::StoreUnavailable(
            "the Idempotency-Key was taken over; retry".into(),
        )),
        Err(StoreError::Conflict) => Err(Error::Provider {
            provider: PROVIDER,
            detail: "Nevis answered a sessionId that is already in use".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The first answer again: the same session and the start URL it answered.
async fn replay(app: &App, tenant: &str, instance: &str, done: &Done) -> Result<Started, Error> {
    let session = idempotency::replayed_session(app, tenant, done).await?;
    let start_url = match &done.replay {
        Some(url) => url.clone(),
        // A key completed before start URLs were kept: the documented shape, by its id.
        None => wire::start_url(
            instance,
            session
                .provider_ref
                .as_deref()
                .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?,
        ),
    };
    Ok(Started { session, start_url })
}

/// Reads the session from Nevis and applies what it says.
pub async fn refresh(app: &App, session: Session) -> Result<Session, Error> {
    let secrets = app.secrets.get().await?;
    let creds: &NevisSecrets = secrets
        .nevis
        .as_ref()
        .ok_or(Error::ProviderNotConfigured(PROVIDER))?;
    let sid = session
        .provider_ref
        .clone()
        .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?;
    let started_ms = now_ms(app);
    let remote = app.nevis.get_session(creds, &sid).await?;
    let proposal = status::proposal(&remote);
    let book = Bookkeeping {
        checked_at: Some(app.clock.now()),
        seen_ms: Some(started_ms),
        ..Default::default()
    };
    let (session, _) = apply_with_retry(app, session, &proposal, &book).await?;
    Ok(session)
}

fn now_ms(app: &App) -> i64 {
    i64::try_from(app.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_start_takes_a_user_id_and_nothing_else() {
        assert_eq!(
            parse_start(&body(json!({"provider": "nevis", "user_id": "u-1"}))).unwrap(),
            StartInput {
                user_id: "u-1".into()
            }
        );
        let Err(Error::InvalidRequest(errors)) = parse_start(&body(
            json!({"provider": "nevis", "user_id": "a b", "lang": "en"}),
        )) else {
            panic!("refused")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lang", "user_id"]);
    }
}
