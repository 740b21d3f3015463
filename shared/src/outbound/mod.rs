//! Outbound webhooks to apps: the delivery transport, signed per Standard Webhooks.
//!
//! Self-contained: it knows nothing of events, endpoints or the store. `secret` holds an
//! endpoint's `whsec_` key, `sign` makes the `webhook-signature` header, `guard` decides which
//! URLs and addresses may be reached (SSRF), `send` makes one attempt and says what happened.
//! Retry schedules and endpoint state belong to the caller.

pub mod guard;
pub mod secret;
pub mod send;
pub mod sign;

pub use guard::{AddrClass, GuardError, Policy, validate_url};
pub use secret::{SecretError, SigningSecret};
pub use send::{
    Attempt, DEFAULT_TIMEOUT, Dial, DialError, DialRequest, DialResponse, HttpDial,
    MAX_RESPONSE_BYTES, Message, Outcome, Resolve, Sender, SystemResolver,
};
pub use sign::sign;

#[cfg(test)]
mod tests;
