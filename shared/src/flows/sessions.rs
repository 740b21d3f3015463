//! Reading, listing and canceling sessions, and what is recorded about them (identity events,
//! reauthentications).

use super::apply::{Bookkeeping, apply_with_retry};
use super::load_owned;
use crate::error::FieldError;
use crate::session::Provider;
use crate::session::{
    Decision, HistoryEntry, IdentityEvent, Proposal, Reauthentication, Session, Source, Status,
};
use crate::store::{Page, SessionFilter, Stored};
use crate::{App, Error};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// A page of the tenant's sessions that `filter` wants, newest first, as stored: a listing reads
/// no provider and expires nothing.
pub async fn list(
    app: &App,
    tenant: &str,
    filter: &SessionFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, Error> {
    app.store
        .list_sessions(tenant, filter, limit, cursor)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "cursor",
                "invalid",
                "this cursor does not belong to this listing",
            )
        })
}

/// The last second a creation-time filter names: later ones are all the same (no session is that
/// young; the store's keys hold 20 digits of nanoseconds).
const LAST_SECOND: i128 = 99_999_999_999;

/// `GET /v1/sessions`'s filters from the query string (`param` reads one), every bad one at
/// once. `created_after` and `created_before` compare with `created_at` as the API shows it
/// (whole seconds): after `T` is from the first whole second past `T`, before `T` is up to the
/// last whole second before it.
pub fn filter<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<SessionFilter, Error> {
    let mut errors = Vec::new();
    let status = param("status").and_then(|v| {
        let s = Status::parse(v);
        if s.is_none() {
            errors.push(FieldError::new(
                "status",
                "invalid_value",
                "one of created, pending, processing, verified, failed, expired, canceled",
            ));
        }
        s
    });
    let provider = param("provider").and_then(|v| {
        let known = crate::providers::registry::names();
        if known.contains(&v) {
            Provider::parse(v)
        } else {
            errors.push(FieldError::new(
                "provider",
                "invalid_value",
                format!("one of {}", known.join(", ")),
            ));
            None
        }
    });
    let user_id = param("user_id").and_then(|v| match crate::input::user_id_param(v) {
        Ok(()) => Some(v.to_owned()),
        Err(Error::InvalidRequest(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(_) => None,
    });
    let mut time = |name: &str| {
        let v = param(name)?;
        match OffsetDateTime::parse(v, &Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(FieldError::new(
                    name,
                    "invalid_format",
                    "an RFC 3339 time (2026-11-21T22:30:00Z)",
                ));
                None
            }
        }
    };
    let after = time("created_after");
    let before = time("created_before");
    if !errors.is_empty() {
        return Err(Error::InvalidRequest(errors));
    }
    const NS: i128 = 1_000_000_000;
    let second = |t: OffsetDateTime| t.unix_timestamp_nanos().div_euclid(NS);
    // Before 1970 is before every session; the store's keys end in the year 5138.
    let at = |secs: i128| {
        let secs = i64::try_from(secs.clamp(0, LAST_SECOND)).unwrap_or(0);
        OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    Ok(SessionFilter {
        user_id,
        status,
        provider,
        // Shown second > T: from the second after T's (whole or not).
        created_from: after.map(|t| at(second(t) + 1)),
        // Shown second < T: up to T's second, or T itself when T is a whole second.
        created_until: before.map(|t| {
            let whole = t.unix_timestamp_nanos().rem_euclid(NS) == 0;
            at(second(t) + i128::from(!whole))
        }),
        with_redacting: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<SessionFilter, Vec<(String, String)>> {
        filter(|k| q.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).map_err(|e| match e {
            Error::InvalidRequest(f) => f.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("{other:?}"),
        })
    }

    fn at(rfc3339: &str) -> OffsetDateTime {
        OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap()
    }

    #[test]
    fn every_filter_is_read_and_every_bad_one_named() {
        let f = parse(&[
            ("status", "verified"),
            ("provider", "stripe"),
            ("user_id", "user-42"),
        ])
        .unwrap();
        assert_eq!(f.status, Some(Status::Verified));
        assert_eq!(f.provider, Some(Provider::named("stripe")));
        assert_eq!(f.user_id.as_deref(), Some("user-42"));
        assert_eq!(parse(&[]).unwrap(), SessionFilter::default());
        let mut bad = parse(&[
            ("status", "done"),
            ("provider", "acme"),
            ("user_id", "a b"),
            ("created_after", "yesterday"),
            ("created_before", "2026-11-21"),
        ])
        .unwrap_err();
        bad.sort();
        let fields: Vec<&str> = bad.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "created_after",
                "created_before",
                "provider",
                "status",
                "user_id"
            ]
        );
    }

    #[test]
    fn creation_times_compare_with_the_whole_seconds_shown() {
        // After T: from the first whole second past T.
        let f = parse(&[("created_after", "2026-11-21T22:30:00Z")]).unwrap();
        assert_eq!(f.created_from, Some(at("2026-11-21T22:30:01Z")));
        let f = parse(&[("created_after", "2026-11-21T22:30:00.5Z")]).unwrap();
        assert_eq!(f.created_from, Some(at("2026-11-21T22:30:01Z")));
        // Before T: up to T when T is whole, else through T's second.
        let f = parse(&[("created_before", "2026-11-21T22:30:00Z")]).unwrap();
        assert_eq!(f.created_until, Some(at("2026-11-21T22:30:00Z")));
        let f = parse(&[("created_before", "2026-11-21T22:30:00.25Z")]).unwrap();
        assert_eq!(f.created_until, Some(at("2026-11-21T22:30:01Z")));
        // Offsets are times like any other; lower-case separators are RFC 3339 too.
        let f = parse(&[("created_after", "2026-11-21t23:30:00+01:00")]).unwrap();
        assert_eq!(f.created_from, Some(at("2026-11-21T22:30:01Z")));
        // A leap second is the last instant of its minute.
        let f = parse(&[("created_after", "2016-12-31T23:59:60Z")]).unwrap();
        assert_eq!(f.created_from, Some(at("2017-01-01T00:00:00Z")));
        // Before 1970 and far in the future are clamped, never refused.
        let f = parse(&[
            ("created_after", "1900-01-01T00:00:00Z"),
            ("created_before", "9999-12-31T23:59:59Z"),
        ])
        .unwrap();
        assert_eq!(f.created_from, Some(OffsetDateTime::UNIX_EPOCH));
        assert_eq!(
            f.created_until.map(|t| t.unix_timestamp()),
            Some(i64::try_from(LAST_SECOND).unwrap())
        );
    }
}
