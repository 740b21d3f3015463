//! Reading a session's provider and applying what it says: the one path from a provider's
//! authoritative state to a stored session, for app reads, reconcile, webhooks and links.

use super::apply::{Bookkeeping, apply_with_retry};
use super::refs;
use crate::providers::Adapter;
use crate::providers::adapter::{Claim, Cx, Fetched};
use crate::session::{Proposal, Session, Source};
use crate::store::Stored;
use crate::{App, Error};

/// Reads the session's provider for its authoritative state and applies it. A session with
/// nothing to ask about yet (not linked) is answered as it is.
pub async fn refresh(app: &App, session: Stored<Session>) -> Result<Stored<Session>, Error> {
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    Ok(refresh_with(app, &cx, session).await?.0)
}

/// `refresh`, answering the read too (`None`: nothing to ask about yet), for a caller that acts
/// on what the provider said beyond the session's state (a resume's fresh page).
pub(crate) async fn refresh_with(
    app: &App,
    cx: &Cx<'_>,
    session: Stored<Session>,
) -> Result<(Stored<Session>, Option<Fetched>), Error> {
    let adapter = app.providers.get(&session.provider)?;
    let Some(subject) = adapter.subject(&session) else {
        return Ok((session, None));
    };
    let fetched = match fetch(adapter, cx, &subject, Some(&session.value)).await {
        Ok(f) => f,
        Err(e) => {
            if matches!(e, Error::Provider { .. }) {
                note_unusable_answer(app, session).await;
            }
            return Err(e);
        }
    };
    let session = apply_read(app, adapter, cx, session, &fetched, None, None).await?;
    Ok((session, Some(fetched)))
}

/// One authoritative read, stamped with when it started.
pub(crate) async fn fetch(
    adapter: &dyn Adapter,
    cx: &Cx<'_>,
    subject: &str,
    session: Option<&Session>,
) -> Result<Fetched, Error> {
    let started_ms = cx.now_ms();
    Ok(Fetched {
        answer: adapter.fetch(cx, subject, session).await?,
        started_ms,
    })
}

/// A link made with a read: the provider id it sets, and the refs it took for it.
pub(crate) struct Link<'a> {
    pub subject: &'a str,
    pub claims: &'a [Claim],
}

/// Applies a read to one session: the refs it gives the session first (a webhook may name them
/// as soon as the provider knows them), then the state machine's decision in one conditional
/// write (with the provider id a `link` sets), then the deliveries kept for those refs.
/// `provider_event`: the webhook event the read was made for, by the provider's name.
pub(crate) async fn apply_read(
    app: &App,
    adapter: &dyn Adapter,
    cx: &Cx<'_>,
    session: Stored<Session>,
    fetched: &Fetched,
    link: Option<Link<'_>>,
    provider_event: Option<&str>,
) -> Result<Stored<Session>, Error> {
    let judgement = adapter.judge(cx, &fetched.answer, &session)?;
    refs::point(&*app.store, adapter.name(), &session, &judgement.claims).await?;
    let book = Bookkeeping {
        checked_at: Some(cx.now),
        seen_ms: Some(fetched.started_ms),
        provider_ref: judgement
            .provider_ref
            .or_else(|| link.as_ref().map(|l| l.subject.to_owned())),
        reason: judgement.reason,
        provider_event,
        data: judgement.data,
    };
    let (session, _) = apply_with_retry(app, session, &judgement.proposal, &book).await?;
    let mut kept = refs::kept_subjects(&judgement.claims);
    if let Some(l) = &link {
        kept.extend(refs::kept_subjects(l.claims));
    }
    Ok(super::webhook::match_kept(app, adapter, session, &kept, Some(fetched)).await)
}

/// A provider answered what the gateway cannot use (a body it cannot read, a refusal of its
/// credentials): that settles nothing either. Noted once in the session's history (like any
/// unclear answer), and the session is read again later with backoff, a decided one too. Best
/// effort: the caller reports the error whether or not the note is written.
pub(crate) async fn note_unusable_answer(app: &App, session: Stored<Session>) {
    let p = Proposal {
        status: session.status,
        provider_status: None,
        last_error: None,
        source: Source::ProviderRead,
        unclear: Some(crate::session::PROVIDER_ERROR),
    };
    let id = session.id.clone();
    if let Err(e) = apply_with_retry(app, session, &p, &Bookkeeping::default()).await {
        tracing::warn!(session_id = %id, error = %e, "an unusable provider answer not noted");
    }
}
