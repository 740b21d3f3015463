//! Starting a verification, whatever the provider: the request validated by its adapter, the
//! `Idempotency-Key` taken before the provider is called, the provider called, the session
//! stored with its refs and the key's answer in one write (a retry's with the link from the
//! session it retries, `flows::retry`), and deliveries that came before it (kept under its refs)
//! applied.

use super::contention::Contention;
use super::idempotency::{self, Claim as KeyClaim, Done, Held, IdempotencyKey};
use super::refs::{self, Read, Resolved};
use crate::error::FieldError;
use crate::providers::Adapter;
use crate::providers::adapter::{Again, Cx, Opaque};
use crate::session::{HistoryEntry, Metadata, Session, StartOptions, schedule};
use crate::store::{SessionWrite, StoreError, Stored};
use crate::{App, Error};
use serde_json::Value;

/// A started (or reused, or replayed) session and what the app's client needs.
#[derive(Debug, Clone)]
pub struct Started {
    pub session: Session,
    pub client: Value,
}

/// The adapter of a start's provider, by the name the request gave.
pub fn adapter_named<'a>(app: &'a App, name: &str) -> Result<&'a dyn Adapter, Error> {
    app.providers.by_name(name).ok_or_else(|| {
        Error::invalid(
            "provider",
            "invalid_value",
            format!("one of {}", crate::providers::registry::names().join(", ")),
        )
    })
}

/// A start as `parse` validated it: the provider's input, the app's `metadata`, and what of it a
/// retry starts again with (`Adapter::retry_fields`).
pub struct Parsed {
    pub input: Opaque,
    pub metadata: Metadata,
    pub options: StartOptions,
}

/// Validates a start for `adapter`: every bad field at once, before anything else happens.
/// `metadata` is the gateway's, the same for every provider: the adapter never sees it. So is
/// the refusal of a `return_url` for a provider that takes none; one that takes it reads it.
pub fn parse(
    adapter: &dyn Adapter,
    body: &serde_json::Map<String, Value>,
) -> Result<Parsed, Error> {
    let mut errors = Vec::new();
    let metadata = crate::input::metadata(body, &mut errors);
    let no_return = adapter.takes_return_url().err();
    if let Some(why) = no_return
        && body.get("return_url").is_some_and(|v| !v.is_null())
    {
        errors.push(FieldError::new("return_url", "not_supported", why));
    }
    let drop_return = no_return.is_some() && body.contains_key("return_url");
    let input = if body.contains_key("metadata") || drop_return {
        let mut rest = body.clone();
        rest.remove("metadata");
        if drop_return {
            rest.remove("return_url");
        }
        adapter.parse_start(&rest)
    } else {
        adapter.parse_start(body)
    };
    match (input, errors.is_empty()) {
        (Ok(input), true) => Ok(Parsed {
            input,
            metadata,
            options: kept_options(adapter, body),
        }),
        (Ok(_), false) => Err(Error::InvalidRequest(errors)),
        (Err(Error::InvalidRequest(mut theirs)), _) => {
            theirs.append(&mut errors);
            Err(Error::InvalidRequest(theirs))
        }
        (Err(e), _) => Err(e),
    }
}

/// The fields of a valid start its adapter names for a retry, and its `return_url` where the
/// provider takes one (those given, `null` being absent): a retry sends the user back to the same
/// page.
fn kept_options(adapter: &dyn Adapter, body: &serde_json::Map<String, Value>) -> StartOptions {
    let return_url = adapter.takes_return_url().is_ok().then_some("return_url");
    adapter
        .retry_fields()
        .iter()
        .copied()
        .chain(return_url)
        .filter_map(|k| {
            let v = body.get(k).filter(|v| !v.is_null())?;
            Some((k.to_owned(), v.clone()))
        })
        .collect()
}

/// Starts a verification of what `parse` validated for `tenant`.
pub async fn start(
    app: &App,
    adapter: &dyn Adapter,
    tenant: &str,
    parsed: Parsed,
    idem: Option<&IdempotencyKey>,
) -> Result<Started, Error> {
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(KeyClaim::Replay(done)) => return replay(app, &cx, tenant, &done).await,
        Some(KeyClaim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = open(app, adapter, &cx, tenant, parsed, held.as_ref(), None).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

/// Opens a session (`previous`: as the retry of that session, linked both ways in one write).
pub(super) async fn open(
    app: &App,
    adapter: &dyn Adapter,
    cx: &Cx<'_>,
    tenant: &str,
    parsed: Parsed,
    held: Option<&Held>,
    previous: Option<Stored<Session>>,
) -> Result<Started, Error> {
    let Parsed {
        input,
        metadata,
        options,
    } = parsed;
    let mut previous = previous;
    let name = adapter.name();
    // Refs the request alone determines: a taken one is refused, and an open session under a
    // reusable one is the answer, before the provider is called.
    let mut claims = adapter.start_claims(tenant, &input)?;
    let request = adapter.reuse_request(&input);
    let request = request.as_deref();
    let early = match refs::resolve(&*app.store, name, tenant, None, &claims, Read::All).await? {
        Resolved::Reuse(s) if previous.is_some() => return Err(super::retry::open_elsewhere(&s)),
        Resolved::Reuse(s) => return reuse(app, adapter, cx, held, *s, request).await,
        Resolved::Take(take) => take,
    };
    let opening = adapter.start(cx, tenant, input).await?;
    let mut session = opening.session;
    session.metadata = metadata;
    session.start_options = options;
    session.previous_session_id = previous.as_ref().map(|p| p.id.clone());
    if !session.status.is_terminal() {
        // Pull providers are polled from here; push providers read when their webhook is overdue.
        schedule::first_check(&mut session, adapter.polling(), cx.now);
    }
    let mut history = HistoryEntry::created(&session);
    history.to = session.status;
    history.provider_status = session.provider_status.clone();
    let done = held.map(|h| {
        let record = h.done(
            app,
            &session.id,
            201,
            opening.issued_at,
            opening.replay.clone(),
        );
        (record, h.owner())
    });
    let later = opening.claims;

    let mut contention = Contention::new("session");
    let mut tried = None;
    loop {
        // The first attempt takes what was read before the provider was called, and spends no
        // read on keys the write itself checks; after a lost race everything is read again.
        let resolved = if contention.lost_any() {
            let all: Vec<_> = claims.iter().chain(&later).cloned().collect();
            refs::resolve(
                &*app.store,
                name,
                tenant,
                Some(&session.id),
                &all,
                Read::All,
            )
            .await?
        } else {
            match refs::resolve(
                &*app.store,
                name,
                tenant,
                Some(&session.id),
                &later,
                Read::NotFree,
            )
            .await?
            {
                Resolved::Take(more) => Resolved::Take(early.iter().cloned().chain(more).collect()),
                reuse => reuse,
            }
        };
        let take = match resolved {
            Resolved::Reuse(s) if previous.is_some() => {
                return Err(super::retry::open_elsewhere(&s));
            }
            // Someone opened a session for this key first: theirs is the answer.
            Resolved::Reuse(s) => return reuse(app, adapter, cx, held, *s, request).await,
            Resolved::Take(take) => take,
        };
        let attempt = (take, previous.as_ref().map(|p| p.version));
        if held.is_some() && tried.as_ref() == Some(&attempt) {
            // The refs (and the retried session) stand as before: what moved is the key, taken
            // over by a twin request after this one outlived its lease. The twin answers.
            return Err(Error::StoreUnavailable(
                "the Idempotency-Key was taken over; retry".into(),
            ));
        }
        let completes = done.as_ref().map(|(r, o)| (r, *o));
        let written = match &previous {
            None => {
                app.store
                    .create_session(&session, &history, &attempt.0, completes)
                    .await
            }
            Some(p) => {
                let (next, entry) = super::retry::linked(p, &session.id, cx.now);
                let write = SessionWrite {
                    read: p,
                    session: &next,
                    history: Some(&entry),
                    at: cx.now,
                };
                app.store
                    .create_retry(write, &session, &history, &attempt.0, completes)
                    .await
                    .map(|_| ())
            }
        };
        match written {
            Ok(()) => break,
            Err(StoreError::Conflict) => {
                tried = Some(attempt);
                contention.lost().await?;
                if let Some(p) = &previous {
                    // The retried session may have moved (retried by another request meanwhile).
                    let fresh = app.store.get_session(&p.id).await?.ok_or(Error::NotFound)?;
                    super::retry::retryable(&fresh)?;
                    previous = Some(fresh);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(session_id = %session.id, provider = name, status = session.status.as_str(), "session created");
    crate::metrics::session_started(name);
    claims.extend(later);
    let kept = refs::kept_subjects(&claims);
    let created = crate::store::Stored::created(session);
    let session =
        super::webhook::match_kept(app, adapter, created, &kept, opening.read.as_ref()).await;
    Ok(Started {
        session: session.into_value(),
        client: opening.client,
    })
}

/// An open session a reusable ref names: its `client` again (a new token for the same user),
/// and the key completed with it. The session keeps the `metadata` it was created with: this
/// request's is not applied (docs/api.md#metadata).
async fn reuse(
    app: &App,
    adapter: &dyn Adapter,
    cx: &Cx<'_>,
    held: Option<&Held>,
    session: Session,
    request: Option<&str>,
) -> Result<Started, Error> {
    let reused = adapter.reused(cx, &session, request)?;
    if let Some(h) = held {
        h.complete(
            &*app.store,
            &h.done(app, &session.id, 201, reused.issued_at, reused.replay),
        )
        .await?;
    }
    Ok(Started {
        session,
        client: reused.client,
    })
}

/// The first answer again: the same session as it is now, and its `client` as its adapter can
/// give it again.
pub(super) async fn replay(
    app: &App,
    cx: &Cx<'_>,
    tenant: &str,
    done: &Done,
) -> Result<Started, Error> {
    let session = idempotency::replayed_session(&*app.store, tenant, done).await?;
    // Its client step (token, URL) cannot be answered again: what it was made of is erased.
    if session.is_redacted() {
        return Err(Error::Conflict(
            "the session this Idempotency-Key started was redacted: use a new key".into(),
        ));
    }
    let adapter = app.providers.get(&session.provider)?;
    let client = adapter.replayed(
        cx,
        &session,
        &Again {
            issued_at: done.issued_at,
            replay: done.replay.as_deref(),
        },
    )?;
    Ok(Started { session, client })
}
