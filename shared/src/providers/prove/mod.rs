//! Prove (proveapis.com), legacy Verified Users: `/v3/verify` starts a flow, the client SDK's
//! `Authenticate()` proves possession, `/v3/verify-status` gives the result; Identity Manager
//! (`/v3/identity`) enrolls a verified identity and its webhooks report what happens to the number.
//!
//! Assumptions where Prove's docs are silent (each is marked ASSUMPTION at its place):
//! - a verified flow's `/v3/verify-status` may carry `identityId` (the field of the legacy SDK):
//!   Prove enrolled the identity, so the gateway does not enroll it again;
//! - the webhook JWT signs no body hash; its key is the Portal secret as shown (`whsec_...`);
//! - the webhook events' keys are `eventId`, `eventType`, `eventTimestamp`, `identityId`
//!   (`proveId` accepted), `clientCustomerId`;
//! - a flow whose possession window closed answers `/v3/verify-status` with 403 code 1003.

pub mod client;
pub mod phone;
pub mod status;
pub mod webhook;

pub use client::{ProveClient, StatusRead, VerifyRequest, VerifyResponse};
pub use phone::Phone;
