//! `digest = HMAC-SHA256(secret, raw body)`, presented as hex or base64 (Authento's
//! `X-PAYLOAD-DIGEST`). Every accepted secret is tried (rotation); comparison is constant-time.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The presented digest as bytes, if it is hex or base64 of 32 bytes.
fn decode(presented: &str) -> Option<Vec<u8>> {
    let p = presented.trim();
    if p.len() == 64 && p.bytes().all(|c| c.is_ascii_hexdigit()) {
        return hex::decode(p).ok();
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|e| e.decode(p).ok())
        .filter(|b| b.len() == 32)
}

/// True if `presented` is the HMAC-SHA256 of `body` under one of `secrets`.
pub fn verify<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    body: &[u8],
    presented: &str,
) -> bool {
    let Some(tag) = decode(presented) else {
        return false;
    };
    let mut ok = false;
    for secret in secrets {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(body);
        // verify_slice compares in constant time; keep trying the others so that timing does not
        // tell which secret matched.
        ok |= mac.verify_slice(&tag).is_ok();
    }
    ok
}

/// Hex HMAC-SHA256, for senders (simulators, tests, the bench).
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event":"REVIEWED"}"#;

    #[test]
    fn hex_in_either_case_and_base64_are_accepted() {
        let hex_tag = sign_hex("s3cret", BODY);
        assert!(verify(["s3cret"], BODY, &hex_tag));
        assert!(verify(["s3cret"], BODY, &hex_tag.to_uppercase()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(&hex_tag).unwrap());
        assert!(verify(["s3cret"], BODY, &b64));
    }

    #[test]
    fn forged_truncated_or_other_body_fails() {
        let tag = sign_hex("s3cret", BODY);
        assert!(!verify(["other"], BODY, &tag));
        assert!(!verify(["s3cret"], &BODY[..BODY.len() - 1], &tag));
        assert!(!verify(["s3cret"], BODY, &tag[..63]));
        assert!(!verify(["s3cret"], BODY, ""));
        assert!(!verify(Vec::<&str>::new(), BODY, &tag));
    }

    #[test]
    fn previous_secret_still_verifies_during_rotation() {
        let tag = sign_hex("old", BODY);
        assert!(verify(["new", "old"], BODY, &tag));
    }
}
