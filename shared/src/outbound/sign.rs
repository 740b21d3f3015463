//! The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` per active secret, space-separated,
//! over `"{webhook-id}.{webhook-timestamp}.{body}"` with the exact body bytes sent.

use super::secret::SigningSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header value. During a rotation pass both secrets (the new one first): a receiver holding
/// either verifies, since verifiers accept any matching `v1` entry.
pub fn sign(secrets: &[&SigningSecret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let ts = timestamp_secs.to_string();
    secrets
        .iter()
        .map(|secret| {
            // new_from_slice accepts any key length for HMAC.
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC takes any key");
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn the_standard_webhooks_test_vector() {
        let secret = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            sign(
                &[&secret],
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                BODY
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn two_secrets_give_two_entries_and_every_input_counts() {
        let old = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let new = SigningSecret::generate();
        let both = sign(
            &[&new, &old],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            BODY,
        );
        let entries: Vec<&str> = both.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1],
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        assert_eq!(
            entries[0],
            sign(&[&new], "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, BODY)
        );
        let base = sign(&[&old], "msg_a", 1, b"x");
        assert_ne!(base, sign(&[&old], "msg_b", 1, b"x"));
        assert_ne!(base, sign(&[&old], "msg_a", 2, b"x"));
        assert_ne!(base, sign(&[&old], "msg_a", 1, b"y"));
        assert_eq!(sign(&[], "msg_a", 1, b"x"), "");
    }
}
