//! The Lambda side of scheduled work: an EventBridge scheduled event in, `flows::reconcile` run,
//! its summary out (and logged as one line by the flow).

use crate::App;
use crate::deadline::{ANSWER_MARGIN, instant_of};
use crate::flows::reconcile;
use crate::http::Function;
use lambda_runtime::{LambdaEvent, service_fn};

pub type LambdaError = lambda_runtime::Error;

/// What `functions/reconcile`'s main calls: logs, config and clients once per container.
pub async fn run_reconcile() -> Result<(), LambdaError> {
    let app = App::for_lambda(Function::RECONCILE).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        // The run stops starting work after its budget and every read has its own deadline
        // (`deadline::worst_case`); this is the backstop if something still hangs (the store):
        // the run ends before Lambda kills it. Dropping it then is a crash at that point, which
        // reconcile survives (conditional writes; unfinished sessions stay due).
        let answer_by = instant_of(event.context.deadline(), Function::RECONCILE)
            .checked_sub(ANSWER_MARGIN)
            .unwrap_or_else(tokio::time::Instant::now);
        async move {
            let run = reconcile::handle_scheduled_event(app, event.payload);
            let out = match tokio::time::timeout_at(answer_by, run).await {
                Ok(summary) => serde_json::to_value(summary).unwrap_or_default(),
                Err(_) => {
                    tracing::error!("reconcile run cut at its deadline");
                    serde_json::json!({"cut_at_deadline": true})
                }
            };
            Ok::<_, LambdaError>(out)
        }
    }))
    .await
}

/// What `functions/notify`'s main calls. Two triggers, one function: a DynamoDB stream batch
/// (`Records`) stores and sends the events of committed changes and answers which records to
/// retry (partial batch responses); an EventBridge schedule sweeps the due deliveries.
pub async fn run_notify() -> Result<(), LambdaError> {
    let app = App::for_lambda(Function::NOTIFY).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move { Ok::<_, LambdaError>(notify_event(&app, &event.payload).await) }
    }))
    .await
}

/// One invocation of `notify`, whatever triggered it.
pub async fn notify_event(
    app: &std::sync::Arc<App>,
    payload: &serde_json::Value,
) -> serde_json::Value {
    if payload.get("Records").is_some() {
        return crate::events::notify::on_stream_event(app, payload).await;
    }
    match crate::events::deliver::sweep(app).await {
        Ok(r) => {
            crate::metrics::outbound(0, r.delivered, r.retrying, r.failed);
            tracing::info!(
                delivered = r.delivered,
                retrying = r.retrying,
                failed = r.failed,
                "sweep"
            );
            serde_json::json!({"delivered": r.delivered, "retrying": r.retrying, "failed": r.failed, "skipped": r.skipped})
        }
        // Nothing is lost: what was due stays due for the next run.
        Err(e) => {
            tracing::warn!(error = %e, "sweep stopped");
            serde_json::json!({"error": e.to_string()})
        }
    }
}
