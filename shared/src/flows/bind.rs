//! `POST /v1/sessions/{id}/bind`: the app ran its own possession check for a session whose
//! provider asked for one (Prove Unify's customer-supplied possession: unify-status answered
//! `possession_required`), and the check passed. The provider binds (`/v3/unify-bind`) and its
//! answer is applied like a read, whatever the provider. Binding a verified session again answers
//! it; a session that waits for no bind is 409.

use super::load_owned;
use super::read::{apply_read, refresh};
use crate::providers::adapter::{Cx, Fetched};
use crate::session::{Session, Status};
use crate::{App, Error};
use serde_json::{Map, Value};

/// The body is checked before anything is read: it must be a bind request of some provider that
/// takes binds (which one is the session's to say).
pub fn check(app: &App, body: &Map<String, Value>) -> Result<(), Error> {
    let mut first_refusal = None;
    for adapter in app.providers.iter() {
        match adapter.parse_bind(body) {
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => {
                first_refusal.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(first_refusal.unwrap_or(Error::NotFound))
}

pub async fn bind(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Session, Error> {
    let mut session = load_owned(&*app.store, tenant, id).await?;
    let adapter = app.providers.get(&session.provider)?;
    let Some(input) = adapter.parse_bind(body) else {
        return Err(Error::Conflict(format!(
            "a {} session takes no bind",
            session.provider
        )));
    };
    let input = input?;
    // The app may ask as soon as its check passed, before anything read what the provider waits
    // for: it is read first then (a failed read changes nothing, and is retryable).
    if !adapter.awaits_bind(&session) && !session.status.is_final() {
        session = refresh(app, session).await?;
    }
    if !adapter.awaits_bind(&session) {
        // A repeat of a bind that passed (or a key that authenticated meanwhile): the session.
        if session.status == Status::Verified {
            return Ok(session.into_value());
        }
        return Err(Error::Conflict(if session.status.is_final() {
            format!("the session is already {}", session.status.as_str())
        } else {
            "the session waits for no bind: its provider did not ask for the app's own possession check".into()
        }));
    }
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let started_ms = cx.now_ms();
    let fetched = Fetched {
        answer: adapter.bind(&cx, &session, input).await?,
        started_ms,
    };
    let bound = apply_read(app, adapter, &cx, session, &fetched, None, None).await?;
    tracing::info!(session_id = %bound.id, provider = %bound.provider, status = bound.status.as_str(), "bound after the app's possession check");
    Ok(bound.into_value())
}
