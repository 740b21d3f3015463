//! One attempt of one delivery, and the sweep that attempts every due one. An attempt leases the
//! delivery first (a crash mid-attempt leaves it due when the lease runs out: at least once,
//! under the same `webhook-id`), sends, then records what happened and when it is due again.
//! Deliveries are worked endpoint by endpoint, each endpoint's on its own task, so a slow or
//! dead endpoint never holds up another's.

use super::model::{AttemptRecord, Endpoint, Event, OutboundDelivery, OutboundKey, OutboundState};
use super::schedule;
use super::send::{Answer, Outcome, Outgoing};
use crate::{App, Error};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// How long an attempt holds its delivery: longer than any send may take.
pub const LEASE: time::Duration = time::Duration::seconds(120);

/// Due deliveries one sweep takes from each shard.
const SWEEP_PER_SHARD: usize = 100;

/// A run starts no attempt after this long (notify's timeout in template.yaml is 60 s, and one
/// attempt takes at most `IDV_OUTBOUND_TIMEOUT_MS`, 30 s at most): what is left stays due.
pub const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(25);

/// How one delivery's attempt went, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    Delivered,
    /// Failed; due again. `answered`: the endpoint answered (with a status).
    Retrying {
        answered: bool,
    },
    /// Failed for good (schedule run out, 410, endpoint disabled or deleted).
    Failed,
    /// Not ours: leased by another attempt, or no longer pending.
    Skipped,
}

/// What a batch of attempts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl Report {
    fn add(&mut self, a: Attempted) {
        match a {
            Attempted::Delivered => self.delivered += 1,
            Attempted::Retrying { .. } => self.retrying += 1,
            Attempted::Failed => self.failed += 1,
            Attempted::Skipped => self.skipped += 1,
        }
    }
    fn merge(&mut self, o: Report) {
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// The secrets an endpoint signs with now: its own, and the previous one while it overlaps.
fn signing_secrets(
    fingerprint_key: &str,
    e: &Endpoint,
    now: OffsetDateTime,
) -> Option<Vec<String>> {
    let mut out = vec![super::seal::open(
        fingerprint_key,
        &e.tenant,
        &e.id,
        &e.secret,
    )?];
    if let Some((sealed, until)) = &e.previous_secret
        && *until > now
        && let Some(old) = super::seal::open(fingerprint_key, &e.tenant, &e.id, sealed)
    {
        out.push(old);
    }
    Some(out)
}

/// Ends a delivery without sending (its endpoint is gone or disabled, its event expired).
fn give_up(d: &mut OutboundDelivery, reason: &str) {
    d.state = OutboundState::Failed;
    d.next_at = None;
    d.reason = Some(reason.to_owned());
}

/// One attempt of a delivery, with its event and endpoint if the caller has them.
pub async fn attempt(
    app: &App,
    key: &OutboundKey,
    known: Option<(&Event, &Endpoint)>,
) -> Result<Attempted, Error> {
    let now = app.clock.now();
    let lease = crate::ids::random_token();
    let Some(mut d) = app
        .store
        .lease_outbound(key, &lease, now, now + LEASE)
        .await?
    else {
        return Ok(Attempted::Skipped);
    };
    let (event, endpoint) = match known {
        Some((ev, ep)) => (Some(ev.clone()), Some(ep.clone())),
        None => (
            app.store.event(&key.tenant, &key.event_id).await?,
            app.store
                .get_endpoint(&key.tenant, &key.endpoint_id)
                .await?,
        ),
    };
    let (event, endpoint) = match (event, endpoint) {
        (Some(ev), Some(ep)) if ep.enabled => (ev, ep),
        (None, _) => return settle(app, d, &lease, "event_expired").await,
        (_, None) => return settle(app, d, &lease, "endpoint_deleted").await,
        (_, Some(_)) => return settle(app, d, &lease, "endpoint_disabled").await,
    };
    let doc = app.secrets.get().await?;
    let answer = match signing_secrets(doc.fingerprint_key(), &endpoint, now) {
        Some(secrets) => {
            let message = Outgoing {
                id: event.id.clone(),
                timestamp: now.unix_timestamp(),
                body: event.body.clone(),
                url: endpoint.url.clone(),
                secrets,
            };
            app.outbound.post(&message).await
        }
        // Sealed under another fingerprint_key (it was replaced): nothing can sign. Kept failing
        // on the schedule, so that restoring the key (or rotating the secret) recovers it.
        None => Answer {
            outcome: Outcome::Failed,
            status: None,
            latency_ms: 0,
            error: Some("the endpoint's secret cannot be opened".into()),
            retry_after: None,
        },
    };
    d.attempts.push(AttemptRecord {
        at: now,
        status: answer.status,
        latency_ms: answer.latency_ms,
        error: answer.error.clone(),
    });
    d.round += 1;
    let attempted = match answer.outcome {
        Outcome::Delivered => {
            d.state = OutboundState::Delivered;
            d.next_at = None;
            Attempted::Delivered
        }
        Outcome::Gone => {
            give_up(&mut d, "gone");
            Attempted::Failed
        }
        Outcome::Failed => {
            let jitter: f64 = rand::rng().random();
            match schedule::next_delay(d.round, answer.retry_after, jitter) {
                Some(delay) => {
                    d.next_at = Some(now + delay);
                    Attempted::Retrying {
                        answered: answer.status.is_some(),
                    }
                }
                None => {
                    give_up(&mut d, "schedule_exhausted");
                    Attempted::Failed
                }
            }
        }
    };
    record(app, &d, &lease).await?;
    health(app, &endpoint, answer.outcome, now).await;
    tracing::info!(
        event = %key.event_id,
        endpoint = %key.endpoint_id,
        status = answer.status,
        ms = answer.latency_ms,
        outcome = ?attempted,
        "outbound attempt"
    );
    Ok(attempted)
}

async fn settle(
    app: &App,
    mut d: OutboundDelivery,
    lease: &str,
    reason: &str,
) -> Result<Attempted, Error> {
    give_up(&mut d, reason);
    record(app, &d, lease).await?;
    Ok(Attempted::Failed)
}

async fn record(app: &App, d: &OutboundDelivery, lease: &str) -> Result<(), Error> {
    match app.store.record_outbound(d, lease).await {
        // Resent meanwhile: the resend's round stands.
        Ok(()) | Err(crate::store::StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An endpoint's health after an attempt: a 410 disables it, and so does failing every attempt
/// for `schedule::DISABLE_AFTER`; a success clears the failing streak. Best effort: a lost race
/// (another attempt wrote it) is left to the next attempt.
async fn health(app: &App, e: &Endpoint, outcome: Outcome, now: OffsetDateTime) {
    let mut next = e.clone();
    match outcome {
        Outcome::Delivered if e.failing_since.is_some() => next.failing_since = None,
        Outcome::Delivered => return,
        Outcome::Gone => {
            next.enabled = false;
            next.disabled_reason = Some("gone".into());
        }
        Outcome::Failed => match e.failing_since {
            None => next.failing_since = Some(now),
            Some(since) if now - since >= schedule::DISABLE_AFTER => {
                next.enabled = false;
                next.disabled_reason = Some("failing".into());
            }
            Some(_) => return,
        },
    }
    next.updated_at = now;
    if let Err(err) = app.store.put_endpoint(&next, Some(e.version)).await {
        tracing::info!(endpoint = %e.id, error = %err, "endpoint health not written");
    }
    if !next.enabled {
        tracing::warn!(endpoint = %e.id, reason = ?next.disabled_reason, "endpoint disabled");
    }
}

/// Work for one endpoint: its due deliveries, attempted one after the other.
type Queue = Vec<(OutboundKey, Option<(Event, Endpoint)>)>;

/// Attempts deliveries endpoint by endpoint, every endpoint on its own task. An endpoint that
/// did not answer at all (a timeout, a refused connection) gets no more attempts this round: its
/// other deliveries stay due, instead of each waiting out its own timeout. No attempt starts
/// after `RUN_BUDGET`: what is left stays due for the next sweep.
pub async fn run(app: &Arc<App>, work: Vec<(OutboundKey, Option<(Event, Endpoint)>)>) -> Report {
    let stop_at = tokio::time::Instant::now() + RUN_BUDGET;
    let mut queues: BTreeMap<(String, String), Queue> = BTreeMap::new();
    for (k, known) in work {
        queues
            .entry((k.tenant.clone(), k.endpoint_id.clone()))
            .or_default()
            .push((k, known));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (_, queue) in queues {
        let app = Arc::clone(app);
        tasks.spawn(async move {
            let mut report = Report::default();
            for (k, known) in queue {
                if tokio::time::Instant::now() >= stop_at {
                    break;
                }
                let known = known.as_ref().map(|(ev, ep)| (ev, ep));
                match attempt(&app, &k, known).await {
                    Ok(a) => {
                        report.add(a);
                        if a == (Attempted::Retrying { answered: false }) {
                            break;
                        }
                    }
                    Err(e) => {
                        // Left leased: due again when the lease runs out.
                        tracing::warn!(event = %k.event_id, error = %e, "outbound attempt failed");
                        break;
                    }
                }
            }
            report
        });
    }
    let mut total = Report::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            total.merge(r);
        }
    }
    total
}

/// Attempts every delivery due now (the schedule's retries, deliveries whose attempt died,
/// resends).
pub async fn sweep(app: &Arc<App>) -> Result<Report, Error> {
    let now = app.clock.now();
    let mut due = Vec::new();
    for shard in 0..app.store.outbound_shards() {
        for k in app.store.due_outbound(shard, now, SWEEP_PER_SHARD).await? {
            due.push((k, None));
        }
    }
    Ok(run(app, due).await)
}
