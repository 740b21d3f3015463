//! Lambda entry point of `reconcile` (see template.yaml): EventBridge runs it every minute. All
//! logic lives in the `idv` library.

#[tokio::main]
async fn main() -> Result<(), idv::scheduled::LambdaError> {
    idv::scheduled::run_reconcile().await
}
