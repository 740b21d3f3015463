//! The integration suite: one binary, one module per area of docs/api.md.

mod authento_flow;
mod concurrency;
mod deadlines;
mod docs;
mod dynamodb_costs;
mod events;
mod history;
mod iam;
mod idempotency;
mod never_lost;
mod nevis_flow;
mod observability;
mod openapi;
mod passbase_flow;
mod passbase_support;
mod passbase_webhooks;
mod prove_flow;
mod prove_webhooks;
mod provider_faults;
mod reconcile;
mod secrets;
mod store;
mod stripe_flow;
mod stripe_sim;
mod tenancy;
mod webhooks;
