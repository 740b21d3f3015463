//! Writing a change to a session: the state machine decides, one conditional write stores the new
//! state with its history entry, and a lost race re-reads and decides again.

use super::contention::Contention;
use crate::session::{
    Decision, HistoryEntry, Polling, Proposal, ProviderData, Session, Source, Status, decide,
};
use crate::store::{SessionWrite, StoreError, Stored};
use crate::{App, Error};
use time::OffsetDateTime;

/// What else a write records besides the proposal.
#[derive(Debug, Clone, Default)]
pub struct Bookkeeping<'a> {
    /// The provider was read now (the per-session read budget).
    pub checked_at: Option<OffsetDateTime>,
    /// Start (ms) of the provider read behind the proposal: an older read than the stored one is
    /// refused, so two racing webhooks never leave the older state behind.
    pub seen_ms: Option<i64>,
    pub provider_ref: Option<String>,
    pub reason: Option<&'a str>,
    /// The provider's name for the webhook event behind this write, for the history.
    pub provider_event: Option<&'a str>,
    /// The provider's data from the same read (kept only from a read that is not stale).
    pub data: Option<ProviderData>,
}

/// Applies `proposal` to the session as read, retrying on a lost race against the fresh state.
/// Returns the session as stored afterwards and the decision taken.
pub async fn apply_with_retry(
    app: &App,
    mut current: Stored<Session>,
    proposal: &Proposal,
    book: &Bookkeeping<'_>,
) -> Result<(Stored<Session>, Decision), Error> {
    let polling = app.providers.get(&current.provider)?.polling();
    let mut contention = Contention::new("session");
    loop {
        match apply_once(app, &current, polling, proposal, book).await {
            Ok(done) => return Ok(done),
            Err(StoreError::Conflict) => {
                // Many writers on one session (a burst of webhooks and reads, two reconcile runs).
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

async fn apply_once(
    app: &App,
    read: &Stored<Session>,
    polling: Polling,
    proposal: &Proposal,
    book: &Bookkeeping<'_>,
) -> Result<(Stored<Session>, Decision), StoreError> {
    let current = &read.value;
    let now = app.clock.now();
    let stale = matches!((current.provider_seen_ms, book.seen_ms), (Some(stored), Some(ours)) if ours < stored);
    let decision = if current.is_redacted() {
        // Nothing a provider says changes a redacted session (a late webhook is acknowledged).
        Decision::Refuse("the session was redacted")
    } else if stale {
        Decision::Refuse("an older provider read than the stored one")
    } else {
        match decide(current.status, current.provider_status.as_deref(), proposal) {
            // A new reason on the same status and word, read from the provider: Stripe asks the
            // user again while `requires_input` (the user declined consent, their age): a change.
            Decision::Unchanged if new_reason(current, proposal) => Decision::Apply {
                transition: false,
                overturn: false,
            },
            d => d,
        }
    };

    let mut next = current.clone();
    let mut history = None;
    match decision {
        Decision::Apply {
            transition,
            overturn,
        } => {
            next.status = proposal.status;
            next.provider_status = proposal.provider_status.clone().or(next.provider_status);
            next.last_error = match proposal.status {
                Status::Failed => proposal.last_error.clone().or(next.last_error),
                _ => proposal.last_error.clone(),
            };
            next.updated_at = now;
            let reason = if overturn {
                Some("overturned".to_owned())
            } else if transition {
                book.reason
                    .map(str::to_owned)
                    .or_else(|| proposal.last_error.as_ref().map(|e| e.code.to_string()))
            } else if new_reason(current, proposal) {
                proposal.last_error.as_ref().map(|e| e.code.to_string())
            } else {
                Some("provider_status".to_owned())
            };
            history = Some(HistoryEntry {
                session_id: current.id.clone(),
                version: read.next_version(),
                at: now,
                from: current.status,
                to: proposal.status,
                provider_status: next.provider_status.clone(),
                source: proposal.source,
                reason,
                provider_event: book.provider_event.map(str::to_owned),
            });
        }
        Decision::Unclear(why) => {
            // Noted once per distinct answer (a provider that keeps answering 404 does not grow
            // the history); the session keeps its status and is read again later.
            let mark = match &proposal.provider_status {
                Some(word) => format!("{why}:{word}"),
                None => why.to_owned(),
            };
            if current.unclear.as_deref() != Some(mark.as_str()) {
                tracing::warn!(session_id = %current.id, provider = %current.provider, why, "provider answer settles nothing; noted, read again later");
                history = Some(HistoryEntry {
                    session_id: current.id.clone(),
                    version: read.next_version(),
                    at: now,
                    from: current.status,
                    to: current.status,
                    provider_status: proposal.provider_status.clone(),
                    source: proposal.source,
                    reason: Some(format!("unclear_{why}")),
                    provider_event: book.provider_event.map(str::to_owned),
                });
                next.unclear = Some(mark);
            }
        }
        Decision::Unchanged | Decision::Refuse(_) => {}
    }
    if !matches!(decision, Decision::Unclear(_))
        && !stale
        && proposal.source == Source::ProviderRead
    {
        // A clear answer: whatever was unclear before is settled.
        next.unclear = None;
    }
    if !stale {
        if let Some(at) = book.checked_at {
            next.last_checked_at = Some(at);
        }
        if let Some(ms) = book.seen_ms {
            next.provider_seen_ms = Some(ms);
        }
        if let Some(d) = &book.data {
            next.data = d.clone();
        }
    }
    if let Some(r) = &book.provider_ref {
        next.provider_ref = Some(r.clone());
    }
    // The next scheduled check is written with the result it follows (one conditional write).
    if matches!(decision, Decision::Unclear(_)) {
        crate::session::schedule::recheck(&mut next, now);
    } else {
        crate::session::schedule::after_write(
            &mut next,
            polling,
            current.status,
            !stale && book.checked_at.is_some(),
            now,
        );
    }
    if next == *current {
        return Ok((read.clone(), decision));
    }
    let next = app
        .store
        .update_session(SessionWrite {
            read,
            session: &next,
            history: history.as_ref(),
            at: now,
        })
        .await?;
    if let Decision::Apply {
        transition: true, ..
    } = decision
    {
        tracing::info!(session_id = %next.id, from = current.status.as_str(), to = next.status.as_str(), "session transition");
        if next.status.is_terminal() && !current.status.is_terminal() {
            crate::metrics::session_decided(next.provider.as_str(), next.status.as_str());
        }
    }
    Ok((next, decision))
}

/// The provider's authoritative read gives a reason the session does not hold yet.
fn new_reason(current: &Session, proposal: &Proposal) -> bool {
    proposal.source == Source::ProviderRead
        && proposal.unclear.is_none()
        && !current.status.is_final()
        && proposal.last_error.is_some()
        && proposal.last_error != current.last_error
}
