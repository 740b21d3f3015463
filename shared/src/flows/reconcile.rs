//! Scheduled reconciliation (every minute): refreshes the sessions whose next check is due (pull-
//! based providers on their polling schedule, push providers whose webhook is overdue, decided
//! sessions whose provider's last answer settled nothing), expires open sessions of any provider
//! past their deadline, and retries the webhook deliveries whose processing failed or died.
//!
//! - Finds work through the sparse due index (`Store::due_sessions`, one query per shard), never a
//!   table scan: its cost follows what is due, not how many sessions exist.
//! - Bounded: at most `max_sessions` per run, `concurrency` provider reads at once, and no new
//!   work after `budget`; what is left is still due on the next run.
//! - Safe to run twice at once: every write is conditional on the session's version (a loser
//!   re-reads and decides again), and a failed read leaves the session as it was, still due.

use super::sessions::{expire_if_due, refresh_from_provider};
use crate::session::{Session, schedule};
use crate::store::{DueIndex, SessionWrite, StoreError, Stored};
use crate::{App, Error};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

/// What one run did: counts only (logged as one line, returned to the Lambda runtime).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Sessions the due index returned.
    pub due: usize,
    /// Read from their provider and written back (with their next check).
    pub refreshed: usize,
    /// Of those, how many changed status.
    pub changed: usize,
    /// Expired by our deadline.
    pub expired: usize,
    /// Push-provider sessions whose next check moved to their deadline.
    pub rescheduled: usize,
    /// Provider or store failures: those sessions are unchanged and due again next run.
    pub failed: usize,
    /// Left for the next run because the time budget ran out.
    pub deferred: usize,
    /// Shards whose query failed.
    pub shard_errors: usize,
    /// The webhook deliveries retried by this run.
    pub deliveries: super::deliveries::RetrySummary,
    pub elapsed_ms: u64,
}

enum Outcome {
    Refreshed { changed: bool },
    Expired,
    Rescheduled,
    Failed,
}

/// One run. Errors are counted, not returned: one bad session or shard must not stop the rest.
pub async fn run(app: Arc<App>) -> Summary {
    let started = Instant::now();
    let now = app.clock.now();
    let cfg = app.config.reconcile.clone();
    let mut summary = Summary::default();

    let index: Arc<dyn DueIndex> = app.store.clone();
    let mut due = find_due(&index, now, cfg.max_sessions, &mut summary).await;
    // Earliest first across shards.
    due.sort_by_key(|s| s.next_check_at);
    due.truncate(cfg.max_sessions);
    // How late the most overdue session is: a lag that grows run after run is an alarm.
    let lag = due
        .first()
        .and_then(|s| s.next_check_at)
        .map_or(std::time::Duration::ZERO, |at| {
            (now - at).try_into().unwrap_or_default()
        });
    summary.due = due.len();

    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for session in due {
        if started.elapsed() >= cfg.budget {
            summary.deferred += 1;
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        // The budget may have run out while waiting for a slot.
        if started.elapsed() >= cfg.budget {
            summary.deferred += 1;
            continue;
        }
        let app = app.clone();
        // In the invocation's span: the task's log lines keep its requestId.
        tasks.spawn(
            async move {
                let outcome = one(&app, session).await;
                drop(permit);
                outcome
            }
            .in_current_span(),
        );
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Outcome::Refreshed { changed }) => {
                summary.refreshed += 1;
                summary.changed += usize::from(changed);
            }
            Ok(Outcome::Expired) => summary.expired += 1,
            Ok(Outcome::Rescheduled) => summary.rescheduled += 1,
            Ok(Outcome::Failed) | Err(_) => summary.failed += 1,
        }
    }
    // Deliveries whose processing failed or died: with what is left of the budget.
    let left = cfg.budget.saturating_sub(started.elapsed());
    summary.deliveries =
        super::deliveries::retry_due(&app, app.clock.now(), cfg.max_sessions, left).await;
    summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        deliveries_due = summary.deliveries.due,
        deliveries_settled = summary.deliveries.settled,
        deliveries_failed = summary.deliveries.failed,
        due = summary.due,
        refreshed = summary.refreshed,
        changed = summary.changed,
        expired = summary.expired,
        rescheduled = summary.rescheduled,
        failed = summary.failed,
        deferred = summary.deferred,
        shard_errors = summary.shard_errors,
        ms = summary.elapsed_ms,
        "reconcile run"
    );
    crate::metrics::reconcile_run(&crate::metrics::ReconcileRun {
        due: summary.due,
        refreshed: summary.refreshed,
        changed: summary.changed,
        expired: summary.expired,
        failed: summary.failed,
        deferred: summary.deferred,
        deliveries_failed: summary.deliveries.failed,
        lag,
    });
    summary
}

/// Up to `max` due sessions over all shards: each shard is asked for its share first; shards that
/// filled their share are asked again for more while the run has room (most runs: one query each).
async fn find_due(
    index: &Arc<dyn DueIndex>,
    now: time::OffsetDateTime,
    max: usize,
    summary: &mut Summary,
) -> Vec<Stored<Session>> {
    let shards = index.due_shards();
    let mut found: Vec<Vec<Stored<Session>>> = vec![Vec::new(); usize::from(shards)];
    let mut limit = max.div_ceil(usize::from(shards)).max(1);
    let mut ask: Vec<u16> = (0..shards).collect();
    loop {
        // The shards are asked all at once: a run waits for one round trip, not sixteen.
        let mut queries = JoinSet::new();
        for &shard in &ask {
            let index = index.clone();
            queries.spawn(async move { (shard, index.due_sessions(shard, now, limit).await) });
        }
        while let Some(done) = queries.join_next().await {
            match done {
                Ok((shard, Ok(sessions))) => found[usize::from(shard)] = sessions,
                Ok((shard, Err(e))) => {
                    summary.shard_errors += 1;
                    tracing::warn!(shard, error = %e, "reconcile: due query failed");
                }
                Err(e) => {
                    summary.shard_errors += 1;
                    tracing::warn!(error = %e, "reconcile: due query task failed");
                }
            }
        }
        let total: usize = found.iter().map(Vec::len).sum();
        ask.retain(|&shard| found[usize::from(shard)].len() >= limit);
        if total >= max || ask.is_empty() {
            break;
        }
        limit += (max - total).div_ceil(ask.len());
    }
    found.into_iter().flatten().collect()
}

async fn one(app: &App, session: Stored<Session>) -> Outcome {
    let id = session.id.clone();
    let before = session.status;
    let now = app.clock.now();
    let as_read = session.clone();
    let result = if session.is_redacted() {
        // A redaction to finish, or its provider deletion to try again: never a provider read.
        super::redact::finish(app, session)
            .await
            .map(|_| Outcome::Refreshed { changed: false })
    } else if !session.status.is_terminal() && session.expires_at.is_some_and(|at| at <= now) {
        expire_if_due(app, session).await.map(|s| {
            if s.status.is_terminal() && s.status != before {
                Outcome::Expired
            } else {
                Outcome::Refreshed { changed: false }
            }
        })
    } else {
        // Pull providers are due by their polling schedule; push providers when their webhook is
        // overdue; decided sessions when the provider's last answer settled nothing. Either way
        // the provider's API is the truth.
        match refresh_from_provider(app, session).await {
            Ok(s) if !s.status.is_final() && s.next_check_at.is_some_and(|at| at <= now) => {
                // Nothing could be read (e.g. a Passbase session not linked yet): back off, or
                // it would be due again on every run.
                reschedule(app, s, schedule::back_off)
                    .await
                    .map(|()| Outcome::Rescheduled)
            }
            Ok(s) => Ok(Outcome::Refreshed {
                changed: s.status != before,
            }),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => {
            // No personal data in `e`. The session goes further back with every failure in a
            // row, so that sessions whose reads keep failing never crowd out the others.
            tracing::warn!(session_id = %id, error = %e, "reconcile: session not refreshed");
            if let Err(e) = reschedule(app, as_read, schedule::after_failure).await {
                tracing::warn!(session_id = %id, error = %e, "reconcile: failed session not backed off");
            }
            Outcome::Failed
        }
    }
}

/// Writes a new next check (`plan` decides it) over a session as read. A lost race means someone
/// else wrote it (and its schedule): nothing to do.
async fn reschedule(
    app: &App,
    read: Stored<Session>,
    plan: fn(&mut Session, crate::session::Polling, time::OffsetDateTime),
) -> Result<(), Error> {
    let polling = app.providers.get(&read.provider)?.polling();
    let now = app.clock.now();
    let mut next = read.value.clone();
    plan(&mut next, polling, now);
    match app
        .store
        .update_session(SessionWrite {
            read: &read,
            session: &next,
            history: None,
            at: now,
        })
        .await
    {
        Ok(_) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The Lambda entry: an EventBridge scheduled event in, the run's summary out. The event carries
/// nothing the run needs (the time is the clock's); it is accepted whatever its shape.
pub async fn handle_scheduled_event(app: Arc<App>, _event: serde_json::Value) -> Summary {
    run(app).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::secrets::{SecretDoc, SecretSource};
    use crate::session::HistoryEntry;
    use crate::store::{Inspect, MemoryStore, Sessions, Store};

    fn app(max: &str, store: Arc<dyn Store>, now: time::OffsetDateTime) -> App {
        let config = Config::from_lookup(|k| match k {
            "IDV_STORE" => Some("memory".into()),
            "IDV_SECRETS_FILE" => Some("(inline)".into()),
            "IDV_RECONCILE_MAX_SESSIONS" => Some(max.into()),
            _ => None,
        })
        .unwrap();
        App::new(
            config,
            store,
            SecretSource::Static(Arc::new(SecretDoc::default())),
            Arc::new(ManualClock::new(now)),
        )
    }

    /// Due sessions, all in one shard, due 30, 20 and 10 seconds ago.
    async fn crowded_shard(store: &MemoryStore, now: time::OffsetDateTime) -> Vec<Session> {
        let mut made = Vec::new();
        while made.len() < 3 {
            let mut s = Session::new(
                "t",
                crate::session::Provider::named(crate::providers::nevis::NAME),
                "u",
                now,
            );
            if store.due_shard_of(&s.id) != 5 {
                continue;
            }
            s.next_check_at = Some(now - time::Duration::seconds(30 - 10 * made.len() as i64));
            store
                .create_session(&s, &HistoryEntry::created(&s), &[], None)
                .await
                .unwrap();
            made.push(s);
        }
        made
    }

    #[tokio::test]
    async fn a_crowded_shard_gets_the_room_others_leave() {
        let now = time::OffsetDateTime::now_utc();
        let store = Arc::new(MemoryStore::new());
        let made = crowded_shard(&store, now).await;
        // A cap of 2 is a share of 1 per shard; the one crowded shard is asked again for more.
        let app = app("2", store, now);
        let mut summary = Summary::default();
        let index: Arc<dyn DueIndex> = app.store.clone();
        let mut found = find_due(&index, now, 2, &mut summary).await;
        found.sort_by_key(|s| s.next_check_at);
        let ids: Vec<_> = found.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, [made[0].id.clone(), made[1].id.clone()]);
        assert_eq!(summary.shard_errors, 0);
    }
}
