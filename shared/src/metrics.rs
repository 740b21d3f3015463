//! CloudWatch metrics as Embedded Metric Format (EMF) lines: one JSON object per line on stdout,
//! which CloudWatch Logs turns into metrics of the namespace `IDV_METRICS_NAMESPACE` (template.yaml:
//! `idv-gateway/<stack>`), read by the stack's alarms and dashboard. No client, no API call, no
//! added latency: a line is written and the invocation goes on.
//!
//! Written only inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set, as the runtime and `cargo lambda
//! watch` do), so tests and the local server print none. Dimensions are provider names and
//! outcomes only: never a session, tenant or user id (a dimension value is a new metric, and
//! would leak into CloudWatch's metric list).

use crate::Error;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DEFAULT_NAMESPACE: &str = "idv-gateway";

/// Every metric this module writes: the template's alarms and dashboard may read only these
/// (tests/integration/observability.rs), and docs/operate.md lists them.
pub const NAMES: &[&str] = &[
    "SessionsStarted",
    "SessionsDecided",
    "ProviderCalls",
    "ProviderErrors",
    "ProviderLatency",
    "WebhooksRejected",
    "WebhooksDuplicated",
    "ReconcileDue",
    "ReconcileRefreshed",
    "ReconcileChanged",
    "ReconcileExpired",
    "ReconcileFailed",
    "ReconcileDeferred",
    "ReconcileDeliveriesFailed",
    "ReconcileLag",
    "OutboundEvents",
    "OutboundDelivered",
    "OutboundRetrying",
    "OutboundFailed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF document. `dims` are the dimension values; `sets` the dimension sets to publish under
/// (names from `dims`; an empty set is the all-providers total the alarms read).
pub fn document(
    namespace: &str,
    timestamp_ms: u64,
    dims: &[(&str, &str)],
    sets: &[&[&str]],
    metrics: &[(&str, Unit, f64)],
) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": definitions,
            }],
        }),
    );
    for (k, v) in dims {
        doc.insert((*k).into(), json!(v));
    }
    for (name, _, value) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    Value::Object(doc)
}

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some())
}

fn namespace() -> &'static str {
    static NS: OnceLock<String> = OnceLock::new();
    NS.get_or_init(|| {
        std::env::var("IDV_METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    })
}

fn emit(dims: &[(&str, &str)], sets: &[&[&str]], metrics: &[(&str, Unit, f64)]) {
    if !enabled() {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut line = document(namespace(), now, dims, sets, metrics).to_string();
    line.push('\n');
    // One write of the whole line under stdout's lock: never interleaved with a log line.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

/// Per provider, and the total over providers (the alarms read the total).
const BY_PROVIDER: &[&[&str]] = &[&["Provider"], &[]];

/// A session was created with `provider`.
pub fn session_started(provider: &str) {
    emit(
        &[("Provider", provider)],
        BY_PROVIDER,
        &[("SessionsStarted", Unit::Count, 1.0)],
    );
}

/// A session reached a terminal status (`outcome`: verified, failed, expired, canceled).
pub fn session_decided(provider: &str, outcome: &str) {
    emit(
        &[("Provider", provider), ("Outcome", outcome)],
        &[&["Provider", "Outcome"]],
        &[("SessionsDecided", Unit::Count, 1.0)],
    );
}

/// Whether a provider operation's error is the provider's failure (counted in `ProviderErrors`),
/// rather than an answer about the request (a 4xx the client reads).
pub fn is_provider_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::Provider { .. } | Error::ProviderUnavailable { .. }
    )
}

/// One provider operation (all its attempts), how long it took and whether the provider failed.
pub fn provider_call(provider: &str, took: Duration, failed: bool) {
    emit(
        &[("Provider", provider)],
        BY_PROVIDER,
        &[
            ("ProviderCalls", Unit::Count, 1.0),
            ("ProviderErrors", Unit::Count, f64::from(u8::from(failed))),
            (
                "ProviderLatency",
                Unit::Milliseconds,
                took.as_secs_f64() * 1000.0,
            ),
        ],
    );
}

/// A webhook delivery refused (not authentic, or not readable).
pub fn webhook_rejected(provider: &str) {
    emit(
        &[("Provider", provider)],
        BY_PROVIDER,
        &[("WebhooksRejected", Unit::Count, 1.0)],
    );
}

/// An authentic delivery already received (a provider's redelivery).
pub fn webhook_duplicated(provider: &str) {
    emit(
        &[("Provider", provider)],
        BY_PROVIDER,
        &[("WebhooksDuplicated", Unit::Count, 1.0)],
    );
}

/// Whether a webhook's error means the delivery was refused (4xx), not that the gateway failed.
pub fn is_webhook_rejection(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidSignature
            | Error::BadRequest(_)
            | Error::InvalidRequest(_)
            | Error::UnsupportedMediaType
            | Error::PayloadTooLarge { .. }
    )
}

/// One reconcile run's counts, and its lag: how late the most overdue session it found was.
pub struct ReconcileRun {
    pub due: usize,
    pub refreshed: usize,
    pub changed: usize,
    pub expired: usize,
    pub failed: usize,
    pub deferred: usize,
    pub deliveries_failed: usize,
    pub lag: Duration,
}

pub fn reconcile_run(run: &ReconcileRun) {
    #[allow(clippy::cast_precision_loss)] // counts are bounded by IDV_RECONCILE_MAX_SESSIONS
    let n = |v: usize| v as f64;
    emit(
        &[],
        &[&[]],
        &[
            ("ReconcileDue", Unit::Count, n(run.due)),
            ("ReconcileRefreshed", Unit::Count, n(run.refreshed)),
            ("ReconcileChanged", Unit::Count, n(run.changed)),
            ("ReconcileExpired", Unit::Count, n(run.expired)),
            ("ReconcileFailed", Unit::Count, n(run.failed)),
            ("ReconcileDeferred", Unit::Count, n(run.deferred)),
            (
                "ReconcileDeliveriesFailed",
                Unit::Count,
                n(run.deliveries_failed),
            ),
            ("ReconcileLag", Unit::Seconds, run.lag.as_secs_f64()),
        ],
    );
}

/// What notify did with one stream batch (`events` stored) or one sweep (`events` 0): its delivery
/// attempts by outcome (`retrying`: failed, due again; `failed`: failed for good).
pub fn outbound(events: u32, delivered: u32, retrying: u32, failed: u32) {
    emit(
        &[],
        &[&[]],
        &[
            ("OutboundEvents", Unit::Count, f64::from(events)),
            ("OutboundDelivered", Unit::Count, f64::from(delivered)),
            ("OutboundRetrying", Unit::Count, f64::from(retrying)),
            ("OutboundFailed", Unit::Count, f64::from(failed)),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape CloudWatch requires (EMF specification): `_aws` with a millisecond Timestamp and
    /// one directive naming the namespace, the dimension sets and each metric with its unit; every
    /// dimension and metric as a top-level member of the same object.
    fn assert_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some(), "{doc}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert!(d["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
        for set in d["Dimensions"].as_array().expect("dimension sets") {
            for name in set.as_array().expect("a set") {
                let name = name.as_str().expect("a dimension name");
                assert!(
                    doc[name].is_string(),
                    "dimension {name} has no value: {doc}"
                );
            }
        }
        for m in d["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("a metric name");
            assert!(
                ["Count", "Milliseconds", "Seconds"].contains(&m["Unit"].as_str().unwrap()),
                "{m}"
            );
            assert!(doc[name].is_number(), "metric {name} has no value: {doc}");
        }
    }

    #[test]
    fn provider_call_is_one_emf_document_with_the_total_over_providers() {
        let doc = document(
            "idv-gateway/test",
            1_700_000_000_123,
            &[("Provider", "stripe")],
            BY_PROVIDER,
            &[
                ("ProviderCalls", Unit::Count, 1.0),
                ("ProviderErrors", Unit::Count, 0.0),
                ("ProviderLatency", Unit::Milliseconds, 12.5),
            ],
        );
        assert_emf(&doc);
        assert_eq!(
            doc,
            json!({
                "_aws": {"Timestamp": 1_700_000_000_123_u64, "CloudWatchMetrics": [{
                    "Namespace": "idv-gateway/test",
                    "Dimensions": [["Provider"], []],
                    "Metrics": [
                        {"Name": "ProviderCalls", "Unit": "Count"},
                        {"Name": "ProviderErrors", "Unit": "Count"},
                        {"Name": "ProviderLatency", "Unit": "Milliseconds"}]}]},
                "Provider": "stripe",
                "ProviderCalls": 1.0, "ProviderErrors": 0.0, "ProviderLatency": 12.5
            })
        );
        // One line: CloudWatch reads a log event, and a line is one.
        assert!(!doc.to_string().contains('\n'));
    }

    #[test]
    fn a_dimension_set_naming_a_missing_value_is_caught() {
        let doc = document("ns", 1, &[], &[&["Provider"]], &[("X", Unit::Count, 1.0)]);
        let caught = std::panic::catch_unwind(|| assert_emf(&doc));
        assert!(caught.is_err(), "assert_emf must refuse {doc}");
    }

    /// `NAMES` is exactly the names the helpers above write (read from this file's source).
    #[test]
    fn names_lists_every_metric_written() {
        let source = include_str!("metrics.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        // Each `("Name", Unit::X, value)`, however rustfmt breaks its lines.
        let mut written: Vec<&str> = code
            .match_indices("Unit::")
            .filter(|(i, _)| {
                let after = &code[i + "Unit::".len()..];
                after
                    .trim_start_matches(char::is_alphabetic)
                    .starts_with(',')
            })
            .filter_map(|(i, _)| {
                let before = code[..i].trim_end().strip_suffix(',')?.trim_end();
                let name = before.strip_suffix('"')?;
                Some(&name[name.rfind('"')? + 1..])
            })
            .collect();
        written.sort_unstable();
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(written, names);
    }

    #[test]
    fn failures_are_classified() {
        assert!(is_provider_failure(&Error::ProviderUnavailable {
            provider: "prove",
            detail: "x".into(),
            retry_after: Duration::from_secs(1),
        }));
        assert!(!is_provider_failure(&Error::NotFound));
        assert!(is_webhook_rejection(&Error::InvalidSignature));
        assert!(!is_webhook_rejection(&Error::StoreUnavailable("x".into())));
    }
}
