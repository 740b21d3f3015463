//! Webhook authenticity schemes: pure functions over the raw bytes, constant-time, fail closed.

pub mod aes_cbc_body;
pub mod hmac_digest;
