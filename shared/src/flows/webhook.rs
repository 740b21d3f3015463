//! Webhook deliveries, whatever the provider: authentic (checked on the raw request by the
//! provider's dialect) -> recorded (each event, before any is acted on) -> acted on: re-read and
//! applied to every session the event names, or recorded on the first one; kept under its refs
//! when none does yet, and acted on once a session claims one of them.

use super::deliveries::{self, Ack, Processed, Settle};
use super::read::{Link, apply_read, fetch, note_unusable_answer};
use crate::providers::Adapter;
use crate::providers::adapter::{Action, Cx, Dialect, Event, Fetched};
use crate::session::{HistoryEntry, Session, SessionId, Source};
use crate::store::{Delivery, SessionWrite, StoreError, Stored};
use crate::{App, Error};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// A delivery to `adapter`'s webhook route, raw.
pub async fn ingest(
    app: &App,
    adapter: &dyn Adapter,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Ack, Error> {
    let dialect = adapter.webhook().ok_or(Error::NotFound)?;
    let secrets = app.secrets.get().await?;
    let now = app.clock.now();
    let cx = Cx {
        secrets: &secrets,
        now,
    };
    let authentic = dialect.authenticate(&cx, headers, body)?;
    let provider = adapter.provider();
    if let Some(token) = &authentic.token {
        // A token that does not cover the body is bound to the first body it came with: a
        // captured one replayed over another body is refused.
        let bound = app
            .store
            .bind_delivery_token(
                provider.as_str(),
                &hex::encode(Sha256::digest(token.id.as_bytes())),
                &hex::encode(Sha256::digest(body)),
                token.expires,
            )
            .await?;
        if !bound {
            tracing::warn!(provider = %provider, "a token came again with another body: refused");
            return Err(Error::InvalidSignature);
        }
    }
    let events = match dialect.events(&authentic) {
        Ok(events) => events,
        Err(why) => return deliveries::keep_unusable(app, &provider, &authentic.body, why).await,
    };
    let mut recorded = Vec::with_capacity(events.len());
    let mut located = None;
    for e in events {
        let mark = if e.content_id {
            // Where the sessions it concerns stand now: the same body after they change is a
            // new event. They are read once, for the mark and for the first attempt.
            let sessions = sessions_named(app, dialect, &e.subjects).await?;
            let mark = mark(&sessions);
            located = Some(sessions);
            Some(mark)
        } else {
            None
        };
        tracing::info!(provider = %provider, event = ?e.name, "delivery");
        recorded.push(Delivery {
            provider: provider.clone(),
            event_id: e.event_id,
            subjects: e.subjects,
            payload: e.payload,
            mark,
            received_at: now,
            expires_at: now + app.config.dedupe_ttl,
        });
    }
    let ack = match recorded.as_slice() {
        [one] => deliveries::receive(app, one, || process(app, one, located, None)).await?,
        // Every event recorded before any is acted on: a request cut at its deadline leaves
        // each to the gateway's own retry.
        many => deliveries::receive_all(app, many).await?,
    };
    tracing::info!(provider = %provider, events = recorded.len(), duplicate = ack.duplicate, deferred = ack.deferred, "delivery answered");
    Ok(ack)
}

/// Acts on a recorded delivery. `located`: the sessions its subjects name, if the caller just
/// read them; `cached`: a read of its provider just made for the same subject.
pub(crate) async fn process(
    app: &App,
    delivery: &Delivery,
    located: Option<Vec<Stored<Session>>>,
    cached: Option<&Fetched>,
) -> Processed {
    let adapter = app.providers.get(&delivery.provider)?;
    let dialect = adapter
        .webhook()
        .ok_or_else(|| Error::Internal(format!("a delivery of {}", delivery.provider)))?;
    let event = Event {
        id: &delivery.event_id,
        payload: &delivery.payload,
        received_at: delivery.received_at,
    };
    match dialect.action() {
        Action::Record => {
            let Some(session) = first_session_named(app, dialect, &delivery.subjects).await? else {
                tracing::info!(provider = %delivery.provider, "event names no session yet: kept");
                return Ok(Some(Settle::unmatched()));
            };
            record(app, dialect, session, &event, delivery).await?;
            // Settled with the event, in its transaction.
            Ok(None)
        }
        Action::Reread { without_session } => {
            let sessions = match located {
                Some(s) => s,
                None => sessions_named(app, dialect, &delivery.subjects).await?,
            };
            if sessions.is_empty() && !without_session {
                // Kept: a session that claims one of its refs later acts on it.
                return Ok(Some(Settle {
                    mark: delivery.mark.as_ref().map(|_| mark(&[])),
                    ..Settle::unmatched()
                }));
            }
            reread(app, adapter, dialect, &event, delivery, sessions, cached).await
        }
    }
}

/// One authoritative read for the event, applied to each session it concerns: the delivery is
/// applied only when every one of them has it (a failure leaves it due for a retry).
async fn reread(
    app: &App,
    adapter: &dyn Adapter,
    dialect: &dyn Dialect,
    event: &Event<'_>,
    delivery: &Delivery,
    mut sessions: Vec<Stored<Session>>,
    cached: Option<&Fetched>,
) -> Processed {
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let subject = dialect.subject(event)?;
    let read;
    let fetched = match cached {
        Some(f) => f,
        None => {
            read = match fetch(adapter, &cx, &subject, sessions.first().map(|s| &s.value)).await {
                Ok(f) => f,
                Err(e) => {
                    if matches!(e, Error::Provider { .. }) {
                        for s in sessions {
                            note_unusable_answer(app, s).await;
                        }
                    }
                    return Err(e);
                }
            };
            &read
        }
    };
    let mut link_claims = None;
    if sessions.is_empty() {
        // The answer may name the session it belongs to (our reference in the provider's
        // metadata): that session takes the event's refs, if it is waiting for them.
        match linkable(app, adapter, fetched, &subject).await? {
            Some((s, claims)) => {
                sessions.push(s);
                link_claims = Some(claims);
            }
            None => {
                tracing::info!(provider = %delivery.provider, "delivery matches no session yet: kept");
                return Ok(Some(Settle::unmatched()));
            }
        }
    }
    let mut after = Vec::with_capacity(sessions.len());
    let name = dialect.event_name(event);
    for s in sessions {
        let link = link_claims.as_deref().map(|claims| Link {
            subject: &subject,
            claims,
        });
        let applied = apply_read(app, adapter, &cx, s, fetched, link, name.as_deref()).await?;
        // Recorded before the delivery is settled, so that a failure is retried whole (the same
        // event id records it once).
        if let Some(r) = dialect.reauthentication(event, &applied) {
            app.store.add_reauthentication(&r).await?;
            tracing::info!(session_id = %applied.id, "reauthentication recorded");
        }
        tracing::info!(session_id = %applied.id, provider = %delivery.provider, "delivery applied");
        after.push(applied);
    }
    Ok(Some(Settle {
        mark: delivery.mark.as_ref().map(|_| mark(&after)),
        ..Settle::applied()
    }))
}

/// The session a provider's answer names, if it is a session of this provider waiting for the
/// event's subject (not linked yet, or linked to it) and can take the event's refs.
async fn linkable(
    app: &App,
    adapter: &dyn Adapter,
    fetched: &Fetched,
    subject: &str,
) -> Result<Option<(Stored<Session>, Vec<crate::providers::adapter::Claim>)>, Error> {
    let Some(id) = adapter.names(&fetched.answer) else {
        return Ok(None);
    };
    let Some(s) = app.store.get_session(&id).await? else {
        return Ok(None);
    };
    // A redacted session never takes a provider id again.
    let waiting = s.provider == adapter.provider()
        && !s.is_redacted()
        && !s.status.is_final()
        && s.provider_ref.as_deref().is_none_or(|k| k == subject);
    if !waiting {
        return Ok(None);
    }
    let claims = adapter.link_claims(subject);
    match super::refs::point(&*app.store, adapter.name(), &s, &claims).await {
        Ok(()) => {
            tracing::info!(session_id = %s.id, "provider id linked by the session it names");
            Ok(Some((s, claims)))
        }
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records an event on the session with the session's data after it, and settles the delivery,
/// in one transaction.
async fn record(
    app: &App,
    dialect: &dyn Dialect,
    mut current: Stored<Session>,
    event: &Event<'_>,
    delivery: &Delivery,
) -> Result<(), Error> {
    let mut contention = super::contention::Contention::new("session");
    loop {
        let recording = dialect.record(event, &current)?;
        let mut next = current.value.clone();
        if let Some(data) = recording.data {
            next.data = data;
            next.updated_at = event.received_at;
        }
        let now = app.clock.now();
        // The session's history says an event came, by the provider's name; the event itself
        // is in the journal.
        let history = HistoryEntry {
            session_id: current.id.clone(),
            version: current.next_version(),
            at: now,
            from: current.status,
            to: current.status,
            provider_status: current.provider_status.clone(),
            source: Source::Webhook,
            reason: Some("identity_event".into()),
            provider_event: Some(recording.event.event_type.clone()),
        };
        let write = SessionWrite {
            read: &current,
            session: &next,
            history: Some(&history),
            at: now,
        };
        match app
            .store
            .add_identity_event(write, &recording.event, delivery)
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %next.id, event_type = %recording.event.event_type, "identity event recorded");
                return Ok(());
            }
            Err(StoreError::Conflict) => {
                contention.lost().await?;
                current = app
                    .store
                    .get_session(&current.id)
                    .await?
                    .ok_or(Error::NotFound)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deliveries kept under `subjects` (they came before any session had their refs), acted on now
/// that `session` claimed them; `cached`: the read just made for it. Best effort: what fails is
/// retried by the scheduled run. The session as stored afterwards.
pub(crate) async fn match_kept(
    app: &App,
    adapter: &dyn Adapter,
    session: Stored<Session>,
    subjects: &[String],
    cached: Option<&Fetched>,
) -> Stored<Session> {
    let mut acted = false;
    for subject in subjects {
        let kept = match app
            .store
            .unmatched_deliveries(adapter.name(), subject)
            .await
        {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(session_id = %session.id, error = %e, "kept deliveries not looked up");
                continue;
            }
        };
        for d in kept {
            acted |= deliveries::act_on_kept(app, &d, cached).await;
        }
    }
    if !acted {
        return session;
    }
    match app.store.get_session(&session.id).await {
        Ok(Some(fresh)) => fresh,
        _ => session,
    }
}

/// The sessions the refs of `subjects` name and that can still change (a decided one included:
/// a reversal must reach it), each once.
async fn sessions_named(
    app: &App,
    dialect: &dyn Dialect,
    subjects: &[String],
) -> Result<Vec<Stored<Session>>, Error> {
    let keys: Vec<String> = subjects.iter().flat_map(|s| dialect.refs(s)).collect();
    let mut seen: Vec<SessionId> = Vec::new();
    let mut sessions = Vec::new();
    for r in app.store.get_refs(&keys).await?.into_iter().flatten() {
        if seen.contains(&r.session_id) {
            continue;
        }
        seen.push(r.session_id.clone());
        if let Some(s) = app.store.get_session(&r.session_id).await?
            && !s.status.is_final()
        {
            sessions.push(s);
        }
    }
    Ok(sessions)
}

/// The session the first ref of `subjects` names (in order of preference).
async fn first_session_named(
    app: &App,
    dialect: &dyn Dialect,
    subjects: &[String],
) -> Result<Option<Stored<Session>>, Error> {
    for key in subjects.iter().flat_map(|s| dialect.refs(s)) {
        if let Some(r) = app.store.get_ref(&key).await? {
            return Ok(app.store.get_session(&r.session_id).await?);
        }
    }
    Ok(None)
}

/// Where the sessions a delivery concerns stand: their ids and when they last changed (a
/// change of status or provider word; bookkeeping writes do not count), or `none`.
fn mark(sessions: &[Stored<Session>]) -> String {
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
