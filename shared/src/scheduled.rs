//! The Lambda side of scheduled work: an EventBridge scheduled event in, `flows::reconcile` run,
//! its summary out (and logged as one line by the flow).

use crate::App;
use crate::flows::reconcile;
use lambda_runtime::{LambdaEvent, service_fn};

pub type LambdaError = lambda_runtime::Error;

/// What `functions/reconcile`'s main calls: logs, config and clients once per container.
pub async fn run_reconcile() -> Result<(), LambdaError> {
    let app = App::for_lambda().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let summary = reconcile::handle_scheduled_event(app, event.payload).await;
            Ok::<_, LambdaError>(summary)
        }
    }))
    .await
}
