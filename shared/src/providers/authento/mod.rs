//! Authento (authento.io), account-based verification. Everything about how Authento works is
//! here: the verification token we sign, the signed user-info API, its statuses, its webhooks,
//! and the adapter that puts them behind the provider seam.
//!
//! Assumptions where Authento's docs are silent (each is marked ASSUMPTION at its place):
//! - the token is HS256 and carries `exp` (ours: 15 minutes by default);
//! - the webhook digest is HMAC-SHA256 of the raw body, hex (base64 accepted);
//! - the webhook body names the user as `userIdentifier` (our JWT `sub`);
//! - user-info answers 404 `{"success":false,...}` for a user who never opened the flow.

mod adapter;
pub mod client;
mod data;
pub mod input;
mod settings;
pub mod status;
pub mod token;
mod verified;
pub mod webhook;

pub use adapter::Authento;
pub use client::{AuthentoClient, Lookup, UserInfo};
pub use data::{AuthentoData, VerificationType};
pub use settings::{Secrets, Settings};

use super::registry::{ExtraOp, ExtraRoute, Registration, WebhookRoute};

pub const NAME: &str = "authento";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    webhook: Some(WebhookRoute {
        path: "/v1/webhooks/authento",
        function: "webhook-authento",
        // One user-info read per delivery, applied to each of the user's sessions.
        operations: 1,
    }),
    // Tokens are signed here: a start calls nobody.
    start_operations: 0,
    routes: &[ExtraRoute {
        method: "POST",
        path: "/v1/tokens",
        function: "issue-token",
        op: ExtraOp::Start,
        operations: 0,
    }],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_AUTHENTO_SECRET_ID",
};

/// The ref of a user's track: one open session per tenant, user and verification type.
pub fn ref_key(subject: &str, verification_type: VerificationType) -> String {
    format!("authento#{subject}#{}", verification_type.as_str())
}
