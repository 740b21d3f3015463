//! Nevis identity verification: start a session (one Nevis `sessionId` per session of ours) and
//! refresh it from Nevis's API, the only source of its outcome (no webhooks: reconcile polls).

use super::apply::{Bookkeeping, apply_with_retry};
use super::idempotency::{self, IdempotencyKey};
use crate::error::FieldError;
use crate::providers::nevis::{status, wire};
use crate::secrets::NevisSecrets;
use crate::session::{HistoryEntry, Provider, Session, schedule};
use crate::store::{IdempotencyRecord, RefClaim, StoreError, nevis_ref_key};
use crate::{App, Error};
use serde_json::{Map, Value};

const PROVIDER: &str = "nevis";
const ATTEMPTS: usize = 3;

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
    for _ in 0..ATTEMPTS {
        if let Some(key) = idem
            && let Some(record) = idempotency::lookup(app, tenant, key).await?
        {
            return replay(app, &instance, &record).await;
        }
        // Nevis first: a session of ours always has its Nevis session. If storing fails below,
        // the Nevis session is left unused (it never starts) and the app gets a retryable 503.
        let created = app.nevis.create_session(creds).await?;
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
        let record = idem.map(|k| k.record(app, tenant, &session.id, 201, None));
        match app
            .store
            .create_session(&session, &history, Some(&claim), record.as_ref())
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = PROVIDER, "session created");
                return Ok(Started {
                    session,
                    start_url: created.start_url,
                });
            }
            // A twin request with the same Idempotency-Key won: answer what it answered.
            Err(StoreError::Conflict) if idem.is_some() => {
                tracing::warn!(
                    provider = PROVIDER,
                    "lost an idempotency race; an unused Nevis session is left behind"
                );
            }
            Err(StoreError::Conflict) => {
                return Err(Error::Provider {
                    provider: PROVIDER,
                    detail: "Nevis answered a sessionId that is already in use".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one idempotency key".into(),
    ))
}

/// The first answer again: the same session and its start URL (documented shape, by its id).
async fn replay(app: &App, instance: &str, r: &IdempotencyRecord) -> Result<Started, Error> {
    let session = app
        .store
        .get_session(&r.session_id)
        .await?
        .ok_or(Error::NotFound)?;
    let sid = session
        .provider_ref
        .clone()
        .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?;
    Ok(Started {
        session,
        start_url: wire::start_url(instance, &sid),
    })
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
        provider_ref: None,
        delivery: None,
        reason: None,
        evidence: None,
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
