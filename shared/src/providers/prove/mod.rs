//! Prove (proveapis.com), in either of its possession APIs (`IDV_PROVE_FLOW`): Unify
//! (`/v3/unify` starts a flow, the client SDK's `Authenticate()` proves possession,
//! `/v3/unify-status` gives the result, `/v3/unify-bind` after the app's own check in the
//! customer-supplied-possession flow) or legacy Verified Users (`/v3/verify`, then
//! `/v3/verify-status`); Identity Manager (`/v3/identity`) knows a verified identity and its
//! webhooks report what happens to the number.
//!
//! Assumptions where Prove's docs are silent (each is marked ASSUMPTION at its place):
//! - a verified flow's `/v3/verify-status` may carry `identityId` (the field of the legacy SDK):
//!   Prove enrolled the identity, so the gateway does not enroll it again;
//! - the webhook JWT signs no body hash; its key is the Portal secret as shown (`whsec_...`);
//! - the webhook events' keys are `eventId`, `eventType`, `eventTimestamp`, `identityId`
//!   (`proveId` accepted), `clientCustomerId`;
//! - a flow whose possession window closed answers `/v3/verify-status` with 403 code 1003.

mod adapter;
pub mod client;
mod data;
pub mod input;
pub mod phone;
mod settings;
pub mod status;
pub mod webhook;

pub use adapter::Prove;
pub use client::{ProveClient, StatusRead, VerifyRequest, VerifyResponse};
pub use data::{Possession, ProveData, ProveFlow, ProveRegion};
pub use phone::Phone;
pub use settings::{Secrets, Settings};

use super::registry::{Registration, WebhookRoute};

pub const NAME: &str = "prove";

pub const REGISTRATION: Registration = Registration {
    name: NAME,
    webhook: Some(WebhookRoute {
        path: "/v1/webhooks/prove",
        function: "webhook-prove",
        // Its events are recorded as they are: no read.
        operations: 0,
    }),
    // /v3/verify, then /v3/identity when verified at once; a bind (served by the same
    // function) reads /v3/unify-status, then sends /v3/unify-bind.
    start_operations: 2,
    routes: &[],
    settings: settings::read,
    build: adapter::build,
    check_secret: settings::check_secret,
    secret_id_env: "IDV_PROVE_SECRET_ID",
};

/// The ref of an Identity Manager identity: the latest verified session that enrolled it (its
/// webhooks name the identity).
pub fn identity_ref_key(identity_id: &str) -> String {
    format!("prove#identity#{identity_id}")
}

/// The ref of a Prove customer (our `clientCustomerId`, a `Subject`): its latest verified
/// session, which Identity Manager events that name only the customer find.
pub fn customer_ref_key(subject: &str) -> String {
    format!("prove#customer#{subject}")
}
