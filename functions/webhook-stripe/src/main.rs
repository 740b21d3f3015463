//! Lambda entry point of `webhook-stripe` (see template.yaml). All logic lives in the `idv` library.

#[tokio::main]
async fn main() -> Result<(), idv::http::lambda::LambdaError> {
    idv::http::lambda::run(env!("CARGO_BIN_NAME")).await
}
