//! `POST /v1/sessions/{id}/link`: the provider-side id the client SDK reported after the session
//! started (Passbase's identity access key), tied to a waiting session, whatever the provider.
//! Linking the same id again answers the session; another id, an id linked elsewhere, or one
//! whose provider says it belongs to another session is 409.

use super::load_owned;
use super::read::{Link, apply_read, fetch};
use super::refs;
use crate::providers::adapter::{ClaimRule, Cx, Taken};
use crate::session::Session;
use crate::{App, Error};
use serde_json::{Map, Value};

/// The body is checked before anything is read: it must be a link request of some provider that
/// takes links (which one is the session's to say).
pub fn check(app: &App, body: &Map<String, Value>) -> Result<(), Error> {
    let mut first_refusal = None;
    for adapter in app.providers.iter() {
        match adapter.parse_link(body) {
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => {
                first_refusal.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(first_refusal.unwrap_or(Error::NotFound))
}

pub async fn link(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Session, Error> {
    let session = load_owned(&*app.store, tenant, id).await?;
    let adapter = app.providers.get(&session.provider)?;
    let Some(subject) = adapter.parse_link(body) else {
        return Err(Error::Conflict(format!(
            "a {} session takes no link",
            session.provider
        )));
    };
    let subject = subject?;
    match session.provider_ref.as_deref() {
        Some(k) if k == subject => return Ok(session.into_value()),
        Some(_) => {
            return Err(Error::Conflict(
                "the session is already linked to another provider id".into(),
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
    let claims = adapter.link_claims(&subject);
    // One answer for every refused link: it says nothing of where the id belongs.
    let refused = claims
        .iter()
        .find_map(|c| match c.rule {
            ClaimRule::Free(taken) => Some(refs::refused(adapter.name(), taken)),
            _ => None,
        })
        .unwrap_or_else(|| refs::refused(adapter.name(), Taken::Conflict("not linkable")));
    // The provider's word first: an id that names another session is not this one's. A failed
    // read changes nothing (retryable).
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let fetched = fetch(adapter, &cx, &subject, Some(&session.value)).await?;
    if adapter
        .names(&fetched.answer)
        .is_some_and(|named| named != session.id)
    {
        return Err(refused);
    }
    refs::point(&*app.store, adapter.name(), &session, &claims).await?;
    // What the provider shows is applied with the link itself: one write.
    let link = Link {
        subject: &subject,
        claims: &claims,
    };
    let linked = apply_read(app, adapter, &cx, session, &fetched, Some(link), None).await?;
    tracing::info!(session_id = %linked.id, provider = %linked.provider, "provider id linked");
    Ok(linked.into_value())
}
