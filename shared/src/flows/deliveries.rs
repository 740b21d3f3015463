//! Webhook deliveries, whatever the provider. A delivery is recorded, with what a later attempt
//! needs, before it is acted on; processed under a lease (a twin delivery in flight is not
//! processed twice); settled only once every session it concerns has it (applied), or kept until
//! a session appears (unmatched). When processing fails (the provider's read, the store) or the
//! function dies, the delivery stays due, and the scheduled run retries it with backoff until it
//! is settled: once recorded, nothing valid is lost, whether or not the provider ever redelivers.

use super::webhook;
use crate::providers::adapter::Fetched;
use crate::session::Provider;
use crate::store::{Deliveries, Delivery, DeliveryState, DueDelivery, Recorded};
use crate::{App, Error};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};

/// How long one attempt holds a delivery: longer than any function runs, so a live attempt is
/// never overtaken; a dead one's delivery falls due when the lease ends.
pub const LEASE: Duration = Duration::minutes(2);
/// Retries: 30 s after the first failure, doubling up to an hour, until the dedupe window ends.
pub const RETRY_FIRST_DELAY: Duration = Duration::seconds(30);
pub const RETRY_MAX_DELAY: Duration = Duration::hours(1);

pub fn retry_delay(attempts: u32) -> Duration {
    (RETRY_FIRST_DELAY * 2_i32.pow(attempts.saturating_sub(1).min(8))).min(RETRY_MAX_DELAY)
}

/// What the webhook route answers: `duplicate` when the delivery was applied before (or a twin
/// holds it right now), `deferred` when it is kept for a retry by the gateway itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ack {
    pub duplicate: bool,
    pub deferred: bool,
}

/// How to settle a processed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub state: DeliveryState,
    /// Where what it concerns stands after it (see `Delivery::mark`), if it has a mark.
    pub mark: Option<String>,
}

impl Settle {
    pub fn applied() -> Self {
        Self {
            state: DeliveryState::Applied,
            mark: None,
        }
    }
    pub fn unmatched() -> Self {
        Self {
            state: DeliveryState::Unmatched,
            mark: None,
        }
    }
}

/// What processing concluded: settle it so, or `None` when the processing settled it itself
/// (in the same transaction as its effect).
pub type Processed = Result<Option<Settle>, Error>;

/// Records `delivery` and runs its first attempt (`first`, which may use what the caller already
/// read). Only a failure to record it is an error: once recorded it is the gateway's to finish.
pub async fn receive<F, Fut>(app: &App, delivery: &Delivery, first: F) -> Result<Ack, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Processed>,
{
    let now = app.clock.now();
    match app
        .store
        .record_delivery(delivery, now, now + LEASE)
        .await?
    {
        Recorded::Duplicate | Recorded::InFlight => Ok(Ack {
            duplicate: true,
            deferred: false,
        }),
        Recorded::Process { attempts } => {
            let settled = finish(app, delivery, attempts, first().await).await;
            Ok(Ack {
                duplicate: false,
                deferred: !settled,
            })
        }
    }
}

/// Records a batch of deliveries (one provider request carrying several events) before any of
/// them is acted on, then processes each: if the request is cut short (its deadline), every
/// event of it is already the gateway's to finish, and the retry does.
pub async fn receive_all(app: &App, deliveries: &[Delivery]) -> Result<Ack, Error> {
    let now = app.clock.now();
    let mut recorded = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        recorded.push(app.store.record_delivery(d, now, now + LEASE).await?);
    }
    let mut ack = Ack {
        duplicate: true,
        deferred: false,
    };
    for (d, r) in deliveries.iter().zip(recorded) {
        if let Recorded::Process { attempts } = r {
            ack.duplicate = false;
            ack.deferred |= !finish(app, d, attempts, process(app, d).await).await;
        }
    }
    Ok(ack)
}

/// Settles what an attempt concluded, or files the delivery for a retry. `true` if settled.
async fn finish(app: &App, delivery: &Delivery, attempts: u32, outcome: Processed) -> bool {
    let failure = match outcome {
        Ok(None) => return true,
        Ok(Some(settle)) => match settle_or_forget(app, delivery, settle).await {
            Ok(()) => return true,
            // Its effect is in; the lease runs out and a retry settles it (changing nothing).
            Err(e) => e,
        },
        Err(e) => e,
    };
    let retry_at = app.clock.now() + retry_delay(attempts);
    tracing::warn!(
        provider = %delivery.provider,
        attempts,
        error = %failure,
        "delivery not settled; the gateway retries it"
    );
    if let Err(e) = app
        .store
        .defer_delivery(delivery.provider.as_str(), &delivery.event_id, retry_at)
        .await
    {
        // The lease runs out on its own and the delivery falls due then.
        tracing::warn!(provider = %delivery.provider, error = %e, "delivery not re-filed");
    }
    false
}

/// Settles a processed delivery. One that matched no session but names a provider identity a
/// redaction erased (its tombstone) is forgotten instead of kept: acknowledged, and nothing of it
/// stays (a late webhook, e.g. Stripe's `canceled` for the redaction the gateway asked for).
async fn settle_or_forget(app: &App, delivery: &Delivery, settle: Settle) -> Result<(), Error> {
    let provider = delivery.provider.as_str();
    if settle.state == DeliveryState::Unmatched
        && app
            .store
            .tombstoned(provider, &delivery.subjects, app.clock.now())
            .await?
    {
        app.store.forget_delivery(delivery).await?;
        tracing::info!(provider, "delivery about a redacted identity: forgotten");
        return Ok(());
    }
    let settled = Delivery {
        mark: settle.mark.or_else(|| delivery.mark.clone()),
        ..delivery.clone()
    };
    app.store.settle_delivery(&settled, settle.state).await?;
    Ok(())
}

/// Processes a recorded delivery again (a retry). Boxed: the callers' futures stay small.
pub fn process<'a>(
    app: &'a App,
    delivery: &'a Delivery,
) -> std::pin::Pin<Box<dyn Future<Output = Processed> + Send + 'a>> {
    process_with(app, delivery, None)
}

/// The same with a read just made for it. Boxed as a trait object: acting on a delivery may act
/// on kept ones, so the future refers to itself.
fn process_with<'a>(
    app: &'a App,
    delivery: &'a Delivery,
    cached: Option<&'a Fetched>,
) -> std::pin::Pin<Box<dyn Future<Output = Processed> + Send + 'a>> {
    Box::pin(webhook::process(app, delivery, None, cached))
}

/// Acts on a kept delivery now that a session claimed one of its refs (`cached`: a read just
/// made for it), and settles it; a failure files it for the scheduled retry. `true` if it was
/// acted on (the session may have changed).
pub(crate) async fn act_on_kept(app: &App, delivery: &Delivery, cached: Option<&Fetched>) -> bool {
    let outcome = process_with(app, delivery, cached).await;
    match outcome {
        Ok(Some(settle)) if settle.state == DeliveryState::Unmatched => false,
        outcome => {
            if !finish(app, delivery, 1, outcome).await {
                tracing::warn!(provider = %delivery.provider, "kept delivery not settled yet; the gateway retries it");
            }
            true
        }
    }
}

/// Keeps an authentic delivery the gateway cannot use (its shape is not one it knows): recorded,
/// answered 2xx (the provider would not retry a 4xx any better), logged. Only a fingerprint and
/// the body's outline are kept: the body itself may hold personal data.
pub async fn keep_unusable(
    app: &App,
    provider: &Provider,
    body: &[u8],
    why: &str,
) -> Result<Ack, Error> {
    use sha2::{Digest, Sha256};
    let now = app.clock.now();
    let delivery = Delivery {
        provider: provider.clone(),
        event_id: format!("unusable-{}", hex::encode(Sha256::digest(body))),
        subjects: Vec::new(),
        payload: outline(body),
        mark: None,
        received_at: now,
        expires_at: now + app.config.dedupe_ttl,
    };
    tracing::warn!(provider = %provider, why, outline = %delivery.payload, "authentic delivery of an unknown shape kept");
    // Settled at once: nothing could apply it later, and the same body again is a duplicate.
    receive(app, &delivery, || async { Ok(Some(Settle::applied())) }).await
}

/// A body's outline without its values: the JSON type, and an object's keys with their types.
fn outline(body: &[u8]) -> String {
    use serde_json::Value;
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    let key_ok =
        |k: &str| k.len() <= 64 && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m
            .iter()
            .take(32)
            .map(|(k, v)| {
                let k = if key_ok(k) { k.as_str() } else { "?" };
                format!("{k}:{}", kind(v))
            })
            .collect::<Vec<_>>()
            .join(","),
        Ok(Value::Array(a)) => format!("array of {}", a.len()),
        Ok(v) => kind(&v).to_owned(),
        Err(_) => format!("not JSON ({} bytes)", body.len()),
    }
}

/// What one scheduled retry pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetrySummary {
    /// Deliveries the retry index returned.
    pub due: usize,
    /// Settled by this pass.
    pub settled: usize,
    /// Failed again (due later, further back).
    pub failed: usize,
    /// Shards whose query failed.
    pub shard_errors: usize,
}

/// The deliveries due by `now`, earliest received first, at most `max`: one query per retry
/// shard, all at once (a pass waits for one round trip, not sixteen).
async fn due_now(
    deliveries: Arc<dyn Deliveries>,
    now: OffsetDateTime,
    max: usize,
    summary: &mut RetrySummary,
) -> Vec<DueDelivery> {
    let shards = deliveries.retry_shards();
    let per_shard = max.div_ceil(usize::from(shards)).max(1);
    let mut queries = tokio::task::JoinSet::new();
    for shard in 0..shards {
        let deliveries = deliveries.clone();
        queries.spawn(async move { deliveries.due_deliveries(shard, now, per_shard).await });
    }
    let mut due = Vec::new();
    while let Some(done) = queries.join_next().await {
        match done {
            Ok(Ok(list)) => due.extend(list),
            Ok(Err(e)) => {
                summary.shard_errors += 1;
                tracing::warn!(error = %e, "delivery retry: shard query failed");
            }
            Err(e) => {
                summary.shard_errors += 1;
                tracing::warn!(error = %e, "delivery retry: shard query task failed");
            }
        }
    }
    due.sort_by_key(|d| d.delivery.received_at);
    due.truncate(max);
    due
}

/// Retries the deliveries due by `now` (at most `max`), one shard query each, concurrently.
/// Stops starting new ones after `budget`.
pub async fn retry_due(
    app: &App,
    now: OffsetDateTime,
    max: usize,
    budget: StdDuration,
) -> RetrySummary {
    let started = std::time::Instant::now();
    let mut summary = RetrySummary::default();
    let due = due_now(app.store.clone(), now, max, &mut summary).await;
    summary.due = due.len();
    for d in due {
        if started.elapsed() >= budget {
            break;
        }
        let now = app.clock.now();
        let (provider, event_id) = (d.delivery.provider.as_str(), d.delivery.event_id.as_str());
        match app
            .store
            .lease_delivery(provider, event_id, now, now + LEASE)
            .await
        {
            Ok(true) => {}
            // Taken by another run, or settled meanwhile.
            Ok(false) => continue,
            Err(e) => {
                summary.failed += 1;
                tracing::warn!(provider, error = %e, "delivery retry: lease not taken");
                continue;
            }
        }
        let outcome = process(app, &d.delivery).await;
        if finish(app, &d.delivery, d.attempts.saturating_add(1), outcome).await {
            summary.settled += 1;
        } else {
            summary.failed += 1;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_30_seconds_to_an_hour() {
        let secs: Vec<i64> = (1..=9).map(|a| retry_delay(a).whole_seconds()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn an_outline_keeps_keys_and_types_never_values() {
        let o = outline(br#"{"event":"X","phone":"+12001004011","n":1,"weird key":true}"#);
        assert_eq!(o, "event:string,n:number,phone:string,?:bool");
        assert!(!o.contains("2001004011"));
        assert_eq!(outline(b"not json"), "not JSON (8 bytes)");
        assert_eq!(outline(b"[1,2]"), "array of 2");
    }
}
