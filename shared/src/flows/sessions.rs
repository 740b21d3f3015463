//! Reading, listing and canceling sessions, and what is recorded about them (identity events,
//! reauthentications).

use super::apply::{Bookkeeping, apply_with_retry};
use super::load_owned;
use crate::session::{
    Decision, HistoryEntry, IdentityEvent, Proposal, Reauthentication, Session, Source, Status,
};
use crate::store::{Page, Stored};
use crate::{App, Error};

/// At most this many identity events are shown on a session (newest first).
pub const SHOWN_EVENTS: usize = 50;

/// The session, refreshed from its provider first when it is open and its last check is older
/// than `refresh_after` (so however often the app polls, the provider is read at most that often).
pub async fn get(app: &App, tenant: &str, id: &str, refresh: bool) -> Result<Session, Error> {
    let session = load_owned(&*app.store, tenant, id).await?;
    if session.is_redacted() {
        // Never read again from its provider, nor moved: as redacted.
        return Ok(session.into_value());
    }
    let session = expire_if_due(app, session).await?;
    if !refresh || session.status.is_terminal() || !is_due(app, &session) {
        return Ok(session.into_value());
    }
    Ok(refresh_from_provider(app, session).await?.into_value())
}

/// Reads the session's provider for its authoritative state and applies it: the one entry for
/// every caller that refreshes (app reads, scheduled reconciliation).
pub async fn refresh_from_provider(
    app: &App,
    session: Stored<Session>,
) -> Result<Stored<Session>, Error> {
    super::read::refresh(app, session).await
}

fn is_due(app: &App, s: &Session) -> bool {
    match s.last_checked_at {
        None => true,
        Some(at) => app.clock.now() - at >= app.config.refresh_after,
    }
}

/// Our own deadline: an open session past `expires_at` is expired, whatever the provider says.
pub(crate) async fn expire_if_due(app: &App, s: Stored<Session>) -> Result<Stored<Session>, Error> {
    match s.expires_at {
        Some(at) if !s.status.is_terminal() && at <= app.clock.now() => {
            let p = Proposal {
                status: Status::Expired,
                provider_status: None,
                last_error: None,
                source: Source::Deadline,
                unclear: None,
            };
            let book = Bookkeeping {
                reason: Some("deadline"),
                ..Default::default()
            };
            Ok(apply_with_retry(app, s, &p, &book).await?.0)
        }
        _ => Ok(s),
    }
}

pub async fn list(
    app: &App,
    tenant: &str,
    user_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, Error> {
    app.store
        .list_user_sessions(tenant, user_id, limit, cursor)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "cursor",
                "invalid",
                "this cursor does not belong to this listing",
            )
        })
}

/// `GET /v1/sessions/{id}/history`: how the session reached its state, newest first. The
/// stored state only: no provider read.
pub async fn history(app: &App, tenant: &str, id: &str) -> Result<Vec<HistoryEntry>, Error> {
    let (session, mut history) = super::load_owned_with_history(&*app.store, tenant, id).await?;
    history.reverse();
    if session.is_redacted() {
        // Half done (`redacting`): the stored words are not shown meanwhile.
        history = history.iter().map(HistoryEntry::erased).collect();
    }
    Ok(history)
}

/// Cancels an open session: at its provider first (for one that says it must be told), then
/// here; a session already over is a 409.
pub async fn cancel(app: &App, tenant: &str, id: &str) -> Result<Session, Error> {
    let session = load_owned(&*app.store, tenant, id).await?;
    if session.is_redacted() {
        return Err(Error::Conflict("the session was redacted".into()));
    }
    if session.value.status.is_terminal() {
        return Err(Error::Conflict(format!(
            "the session is already {}",
            session.value.status.as_str()
        )));
    }
    let secrets = app.secrets.get().await?;
    let cx = crate::providers::adapter::Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let told = app
        .providers
        .get(&session.value.provider)?
        .cancel(&cx, &session.value)
        .await;
    if let Err(Error::Conflict(why)) = told {
        // The provider no longer lets it be canceled (it decided meanwhile): what it says is
        // read now, so that the app's next read already has it. Best effort.
        if let Err(e) = refresh_from_provider(app, session).await {
            tracing::warn!(error = %e, "a session the provider refused to cancel was not refreshed");
        }
        return Err(Error::Conflict(why));
    }
    told?;
    let p = Proposal {
        status: Status::Canceled,
        provider_status: None,
        last_error: None,
        source: Source::App,
        unclear: None,
    };
    let book = Bookkeeping {
        reason: Some("canceled_by_app"),
        ..Default::default()
    };
    let (session, decision) = apply_with_retry(app, session, &p, &book).await?;
    match decision {
        Decision::Apply { .. } => Ok(session.into_value()),
        _ => Err(Error::Conflict(format!(
            "the session is already {}",
            session.status.as_str()
        ))),
    }
}

/// The identity events shown with a session whose provider records them (newest first).
pub async fn identity_events(app: &App, s: &Session) -> Result<Option<Vec<IdentityEvent>>, Error> {
    if !app.providers.get(&s.provider)?.shows_identity_events() {
        return Ok(None);
    }
    if s.is_redacted() {
        // Erased with it (a half-done redaction hides what is left).
        return Ok(Some(Vec::new()));
    }
    Ok(Some(app.store.identity_events(&s.id, SHOWN_EVENTS).await?))
}

/// `GET /v1/users/{user_id}/reauthentications`: the user's reauthentications, newest first.
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
