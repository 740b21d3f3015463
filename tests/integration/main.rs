//! The integration suite: one binary, one module per area of docs/api.md.

mod authento_flow;
mod concurrency;
mod events;
mod nevis_flow;
mod openapi;
mod reconcile;
mod secrets;
mod store_contract;
mod webhooks;
