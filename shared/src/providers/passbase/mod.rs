//! Passbase. Everything about how Passbase works is here: the identities API (`X-API-KEY`), its
//! identity model read without personal data, its statuses, its encrypted webhooks, and the
//! adapter that puts them behind the provider seam.
//!
//! Assumptions where Passbase's docs are silent (each is marked ASSUMPTION at its place):
//! - the webhooks other than `VERIFICATION_REVIEWED` carry the same envelope
//!   (`event`, `key`, `status`, `created`, `updated`, `processed`);
//! - the documented event names are all there are: an unknown name is refused (with CBC and no
//!   MAC, a rewritten first block would otherwise pass as a new event);
//! - a delivery is identified by key, event, `updated` (or `created`) and a hash of its plaintext;
//! - `IDENTITY_AUTHENTICATED` without a `status` reports an approved reauthentication;
//! - the identity's `metadata` comes back as the JSON object the app encrypted for the SDK,
//!   `{"session_ref": "ses_..."}` (a JSON string of it is accepted too);
//! - the formats of the data points read as verified data (`verified.rs`).

mod adapter;
pub mod client;
mod data;
pub mod identity;
pub mod input;
mod settings;
pub mod status;
mod verified;
pub mod webhook;

pub use adapter::{Passbase, client_metadata};
pub use client::{IdentityLookup, PassbaseClient};
pub use data::Evidence;
pub use identity::Identity;
pub use settings::{Secrets, Settings};

use super::registry::{Registration, WebhookRoute};

pub const NAME: &str = "passbase";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    webhook: Some(WebhookRoute {
        path: "/v1/webhooks/passbase",
        function: "webhook-passbase",
        // One identity read per delivery.
        operations: 1,
    }),
    // The identity read of a start with the SDK's key.
    start_operations: 1,
    routes: &[],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_PASSBASE_SECRET_ID",
};

/// The key of the ref that ties a Passbase identity (the SDK's identity access key, the webhook's
/// `key`) to its session.
pub fn ref_key(identity_key: &str) -> String {
    format!("passbase#{identity_key}")
}

/// Passbase identity ids are UUIDs (`identityAccessKey`); anything else is refused before it
/// reaches a URL or the table.
pub fn is_identity_key(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_are_uuids() {
        assert!(is_identity_key("b76e244e-26a3-49ef-9c72-3e599bf0b5f2"));
        assert!(!is_identity_key("b76e244e26a349ef9c723e599bf0b5f2"));
        assert!(!is_identity_key("../../settings-aaaa-bbbb-cccc-dddddddd"));
        assert!(!is_identity_key(""));
    }
}
