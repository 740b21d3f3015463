//! Lambda entry point of `notify` (see template.yaml): the table's stream (outbound events from
//! committed changes) and a schedule (retries of due deliveries). All logic lives in the `idv`
//! library.

#[tokio::main]
async fn main() -> Result<(), idv::scheduled::LambdaError> {
    idv::scheduled::run_notify().await
}
