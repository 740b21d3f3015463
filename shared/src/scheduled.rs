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
    let app = App::for_lambda().await?;
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
