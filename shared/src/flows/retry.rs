//! `POST /v1/sessions/{id}/retry`: a new attempt after a session failed, expired or was canceled.
//! The new session is the same tenant's, user's and provider's, started as the first one was (its
//! kept start fields, `Adapter::retry_fields`, and its `metadata`) unless the body says otherwise,
//! and linked both ways in the one write that creates it: the new session's
//! `previous_session_id`, the old one's `next_session_id`. A session is retried once: a second
//! retry is 409 naming the first (an `Idempotency-Key` replay answers it again). A `last_error`
//! that is not `retryable` is advice to the app, not a refusal: a new start of the user is never
//! refused either (docs/api.md#retry).

use super::idempotency::{self, Claim as KeyClaim, IdempotencyKey};
use super::load_owned;
use super::sessions::expire_if_due;
use super::start::{self, Started};
use crate::error::FieldError;
use crate::providers::adapter::Cx;
use crate::session::{HistoryEntry, Session, SessionId, Source, Status};
use crate::store::Stored;
use crate::{App, Error};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Retries the session `id` of `tenant` with `body` (start fields over the kept ones, and
/// `metadata`): the new session and its `client`.
pub async fn retry(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    // Bad input is refused before anything is written (the session is only read for it).
    let previous = load_owned(&*app.store, tenant, id).await?;
    // Before its (erased) start fields are read: a redacted session is never started again.
    not_redacted(&previous)?;
    let fields: Vec<_> = ["provider", "user_id"]
        .into_iter()
        .filter(|k| body.contains_key(*k))
        .map(|k| {
            FieldError::new(
                k,
                "unknown_field",
                "a retry keeps the session's provider and user",
            )
        })
        .collect();
    if !fields.is_empty() {
        return Err(Error::InvalidRequest(fields));
    }
    let adapter = app.providers.get(&previous.provider)?;
    let mut parsed = start::parse(adapter, &request(&previous, body))?;
    if body.get("metadata").is_none_or(Value::is_null) {
        parsed.metadata = previous.metadata.clone();
    }
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(KeyClaim::Replay(done)) => return start::replay(app, &cx, tenant, &done).await,
        Some(KeyClaim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = async {
        // An open session past its deadline is expired now, and so retried.
        let previous = expire_if_due(app, previous).await?;
        retryable(&previous)?;
        start::open(
            app,
            adapter,
            &cx,
            tenant,
            parsed,
            held.as_ref(),
            Some(previous),
        )
        .await
    }
    .await;
    if let Ok(s) = &result {
        tracing::info!(session_id = %s.session.id, previous = id, "session retried");
    }
    idempotency::releasing(app, held.as_ref(), result).await
}

/// The start request of a retry: the session's kept start fields, the body's over them (`null`
/// drops one), and the session's user.
fn request(previous: &Session, body: &Map<String, Value>) -> Map<String, Value> {
    let mut request = previous.start_options.clone();
    for (k, v) in body {
        request.insert(k.clone(), v.clone());
    }
    request.insert("user_id".into(), Value::String(previous.user_id.clone()));
    request
}

/// A redacted session (or one being redacted) is 409: its user and start fields are erased,
/// and a retry would start a flow for no one the app can name.
fn not_redacted(s: &Session) -> Result<(), Error> {
    if s.is_redacted() {
        return Err(Error::Conflict("the session was redacted".into()));
    }
    Ok(())
}

/// Whether a session may be retried: not redacted, over without being verified, and not
/// retried yet.
pub(super) fn retryable(s: &Session) -> Result<(), Error> {
    not_redacted(s)?;
    if let Some(next) = &s.next_session_id {
        return Err(Error::Conflict(format!(
            "the session was retried already, by {next}"
        )));
    }
    match s.status {
        Status::Failed | Status::Expired | Status::Canceled => Ok(()),
        Status::Verified => Err(Error::Conflict(
            "the session is verified: there is nothing to retry".into(),
        )),
        open => Err(Error::Conflict(format!(
            "the session is {}: only a failed, expired or canceled session is retried (resume it, or cancel it first)",
            open.as_str()
        ))),
    }
}

/// The retried session's next state, linked to the retry `next`, and its history entry (its
/// status unchanged).
pub(super) fn linked(
    previous: &Stored<Session>,
    next: &SessionId,
    at: OffsetDateTime,
) -> (Session, HistoryEntry) {
    let mut linked = previous.value.clone();
    linked.next_session_id = Some(next.clone());
    linked.updated_at = at;
    let entry = HistoryEntry {
        session_id: previous.id.clone(),
        version: previous.next_version(),
        at,
        from: previous.status,
        to: previous.status,
        provider_status: previous.provider_status.clone(),
        source: Source::App,
        reason: Some("retried".into()),
        provider_event: None,
    };
    (linked, entry)
}

/// A retry whose provider answers an open session of the user instead of a new one (Authento:
/// one open session per user and track): that session is the way on, not a second one.
pub(super) fn open_elsewhere(open: &Session) -> Error {
    Error::Conflict(format!(
        "the user has an open session for this already, {}: resume it instead",
        open.id
    ))
}
