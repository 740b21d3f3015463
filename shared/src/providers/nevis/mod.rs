//! Nevis Authentication Cloud, identity verification (IDV). Pull only: Nevis documents no
//! webhooks, so the gateway polls `GET idverification/sessions/{sessionId}`.
//!
//! Documented (Nevis IDV integration guide): `POST idverification/sessions` answers a nine-digit
//! `sessionId` and a `startUrl` (`https://{instance}.mauth.nevis.cloud/idv/welcome.html?tc={id}`);
//! the bearer access key authenticates; statuses are `pending`, `in_progress`, `failed`,
//! `verified`; a finished session carries its result or error codes.
//!
//! Our assumptions where the docs are silent, all in `wire.rs` (each marked ASSUMPTION):
//! - the paths are `/api/v1/idverification/sessions[/{sessionId}]` under the instance URL;
//! - the POST body is `{}` and the answer is `{"sessionId": "...", "startUrl": "..."}` (200 or 201);
//! - the GET answer is `{"sessionId", "status", "result"?: {...}, "errors"?: [{"code", "message"?}]}`;
//! - error statuses follow Nevis ID Cloud's generic table (400/401/403/404/405/409/415/422/5xx);
//! - sessions do not expire on Nevis's side in a way the API reports: our own deadline does it;
//! - the fields of `result` (verified data: `verified.rs`).

mod adapter;
pub mod client;
pub mod input;
mod settings;
pub mod status;
mod verified;
pub mod wire;

pub use adapter::Nevis;
pub use client::NevisClient;
pub use settings::{Secrets, Settings};
pub use wire::{Created, NevisError, NevisSession};

use super::registry::Registration;

pub const NAME: &str = "nevis";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    // No webhooks: reconcile polls.
    webhook: None,
    // One create.
    start_operations: 1,
    routes: &[],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_NEVIS_SECRET_ID",
};

/// The ref of a Nevis session: one session of ours per Nevis `sessionId`.
pub fn ref_key(nevis_session_id: &str) -> String {
    format!("nevis#{nevis_session_id}")
}
