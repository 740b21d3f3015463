//! The integration suite: one binary, one module per area of docs/api.md.

mod authento_flow;
mod concurrency;
mod events;
mod openapi;
mod passbase_flow;
mod passbase_store;
mod passbase_support;
mod passbase_webhooks;
mod secrets;
mod store_contract;
mod webhooks;
