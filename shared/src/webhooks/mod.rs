//! Webhook authenticity schemes: pure functions over the raw bytes, constant-time, fail closed.

pub mod hmac_digest;
