//! Authento (authento.io), account-based verification. Everything about how Authento works is
//! here: the verification token we sign, the signed user-info API, its statuses, its webhooks.
//!
//! Assumptions where Authento's docs are silent (each is marked ASSUMPTION at its place):
//! - the token is HS256 and carries `exp` (ours: 15 minutes by default);
//! - the webhook digest is HMAC-SHA256 of the raw body, hex (base64 accepted);
//! - the webhook body names the user as `userIdentifier` (our JWT `sub`);
//! - user-info answers 404 `{"success":false,...}` for a user who never opened the flow.

pub mod client;
pub mod status;
pub mod token;
pub mod webhook;

pub use client::{AuthentoClient, Lookup, UserInfo};
