//! Stripe Identity: VerificationSessions (`/v1/identity/verification_sessions`). A start creates
//! one (type `document` or `id_number`) and hands the app its hosted `url`; the authoritative read
//! is the session itself (retrieve); a cancel by the app cancels it at Stripe; webhooks signed
//! with `Stripe-Signature` say "read the session again".
//!
//! Assumptions where Stripe's docs are silent (each is marked ASSUMPTION at its place):
//! - a verification session does not expire on Stripe's side in a way the API reports (its `url`
//!   lives 48 hours, its `client_secret` 24; a new `url` comes with a retrieve while it is
//!   `requires_input`): our own deadline (`IDV_STRIPE_SESSION_TTL_SECONDS`) ends it here;
//! - `requires_input` with a `last_error` is the user's turn again, not a decision: Stripe lets
//!   the user retry in the same session;
//! - a cancel Stripe refuses (400) is answered by reading the session: already canceled is done,
//!   anything else is the app's conflict;
//! - the hosted `url`'s format is not documented: any absolute http(s) URL of the API's scheme
//!   is handed on;
//! - the nested expansion `verified_outputs.dob` is answered for the gateway's key (`verified.rs`).

mod adapter;
pub mod client;
pub mod input;
mod settings;
pub mod status;
mod verified;
pub mod webhook;

pub use adapter::Stripe;
pub use client::{Lookup, StripeClient, VerificationSession};
pub use settings::{Secrets, Settings};

use super::registry::{Registration, WebhookRoute};

pub const NAME: &str = "stripe";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    webhook: Some(WebhookRoute {
        path: "/v1/webhooks/stripe",
        function: "webhook-stripe",
        // One read of the verification session per event.
        operations: 1,
    }),
    // One create (or, for a cancel, one cancel and at most one read: the start function serves
    // both; the create is the longest).
    start_operations: 1,
    routes: &[],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_STRIPE_SECRET_ID",
};

/// The ref of a verification session: one session of ours per Stripe `vs_` id.
pub fn ref_key(verification_session: &str) -> String {
    format!("stripe#{verification_session}")
}

/// Stripe object ids: a prefix and up to 250 letters, digits and `_` (they reach URLs and keys).
pub fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        (1..=250).contains(&rest.len())
            && rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_alphanumerics() {
        assert!(is_id("vs_1Pgc76B7WZ01zgkWBdQi8PTU", "vs_"));
        assert!(!is_id("vs_", "vs_"));
        assert!(!is_id("vs_../../x", "vs_"));
        assert!(!is_id("evt_1", "vs_"));
        assert!(is_id("evt_1Pgc76B7WZ01zgkWwyRHS12y", "evt_"));
    }
}
