//! Lambda entry point of `events-api` (see template.yaml): the endpoints API and the events API.
//! All logic lives in the `idv` library.

#[tokio::main]
async fn main() -> Result<(), idv::http::lambda::LambdaError> {
    idv::http::lambda::run(env!("CARGO_BIN_NAME")).await
}
