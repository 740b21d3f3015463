//! idv-gateway core.
//!
//! Reads top-down: `http` (parse, authenticate, map errors) -> `flows` (the use cases) ->
//! `session` (model and state machine, no I/O), `store` (port + DynamoDB + in-memory),
//! `providers/<name>` (client + status mapping), `webhooks` (pure authenticity checks).
//! Storage and providers meet only in `flows`.

pub mod app;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod error;
pub mod events;
pub mod flows;
pub mod http;
pub mod ids;
pub mod input;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod providers;
pub mod scheduled;
pub mod secrets;
pub mod session;
pub mod store;
pub mod verified;
pub mod webhooks;

pub use app::App;
pub use error::Error;
