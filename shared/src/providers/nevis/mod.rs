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
//! - sessions do not expire on Nevis's side in a way the API reports: our own deadline does it.

pub mod client;
pub mod status;
pub mod wire;

pub use client::NevisClient;
pub use wire::{Created, NevisError, NevisSession};
