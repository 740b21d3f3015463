//! Authento's webhook: `X-PAYLOAD-DIGEST` over the raw body, then a small JSON body that only tells
//! us whom to re-read. ASSUMPTION (no example payload is published): the body is
//! `{"event": "...", "userIdentifier": "<our sub>", "status": {...}}`; `sub` is accepted as well.

use crate::webhooks::hmac_digest;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const DIGEST_HEADER: &str = "x-payload-digest";
/// Sumsub-style algorithm header; when present it must name HMAC-SHA256.
pub const DIGEST_ALG_HEADER: &str = "x-payload-digest-alg";

/// Authentic iff the algorithm (if named) is HMAC-SHA256 and the digest matches one secret.
pub fn is_authentic<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    body: &[u8],
    digest: Option<&str>,
    alg: Option<&str>,
) -> bool {
    if let Some(alg) = alg
        && !matches!(
            alg.trim().to_ascii_uppercase().as_str(),
            "HMAC_SHA256_HEX" | "HMAC_SHA256"
        )
    {
        return false;
    }
    digest.is_some_and(|d| hmac_digest::verify(secrets, body, d))
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    /// The user as Authento knows it: the `sub` of the token the gateway issued (a subject).
    #[serde(alias = "sub")]
    #[serde(rename = "userIdentifier")]
    pub user_identifier: String,
}

/// The event, or why the body (authentic: checked before) is not one the gateway can use. The
/// reason never quotes the body (serde's messages can).
pub fn parse(body: &[u8]) -> Result<Event, &'static str> {
    let event: Event =
        serde_json::from_slice(body).map_err(|_| "not an Authento webhook object")?;
    let key_like =
        |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
    if !key_like(&event.user_identifier) || !key_like(&event.event) {
        return Err("the event or user identifier is not usable");
    }
    Ok(event)
}

/// Authento payloads carry no event id: a delivery is identified by the SHA-256 of its body. (Two
/// deliveries of one body are told apart by what they concern: see `store::Delivery::mark`.)
pub fn event_id(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hmac_sha256_is_accepted_as_algorithm() {
        let body = b"{}";
        let d = hmac_digest::sign_hex("s", body);
        assert!(is_authentic(["s"], body, Some(&d), None));
        assert!(is_authentic(["s"], body, Some(&d), Some("HMAC_SHA256_HEX")));
        assert!(!is_authentic(["s"], body, Some(&d), Some("HMAC_SHA1_HEX")));
        assert!(!is_authentic(["s"], body, None, None));
    }

    #[test]
    fn parses_the_assumed_shape() {
        let e = parse(
            br#"{"event":"REVIEWED","userIdentifier":"user-42","status":{"basic":"VERIFIED"}}"#,
        )
        .unwrap();
        assert_eq!(e.user_identifier, "user-42");
        assert!(parse(br#"{"event":"REVIEWED"}"#).is_err());
        assert!(parse(br#"{"event":"REVIEWED","userIdentifier":"bad id"}"#).is_err());
        let err = parse(br#"{"event":"REVIEWED","userIdentifier":1,"x":"jane@example.com"}"#);
        assert!(!format!("{err:?}").contains("jane"));
        assert!(parse(b"not json").is_err());
    }
}
