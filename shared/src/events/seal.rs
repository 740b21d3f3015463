//! Endpoint signing secrets at rest: sealed with AES-256-GCM under a key derived from the
//! secret document's `fingerprint_key`, bound to their tenant and endpoint. A copy of the table
//! (a backup, an export) then holds no secret that could sign as the gateway, and a sealed secret
//! moved to another endpoint does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const VERSION: &str = "v1.";

fn cipher(fingerprint_key: &str) -> Aes256Gcm {
    // Domain-separated from the key's other use (request fingerprints).
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(fingerprint_key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"idv-gateway/endpoint-secrets/v1");
    let key = mac.finalize().into_bytes();
    Aes256Gcm::new_from_slice(&key).expect("32-byte key")
}

fn aad(tenant: &str, endpoint_id: &str) -> Vec<u8> {
    format!("{tenant}\n{endpoint_id}").into_bytes()
}

/// Seals a secret for one endpoint of one tenant.
pub fn seal(fingerprint_key: &str, tenant: &str, endpoint_id: &str, secret: &str) -> String {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher(fingerprint_key)
        .encrypt(
            &Nonce::try_from(&nonce[..]).expect("12 bytes"),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad(tenant, endpoint_id),
            },
        )
        .expect("AES-GCM encrypts any message of this size");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    format!("{VERSION}{}", B64.encode(out))
}

/// Opens what `seal` sealed for this endpoint; `None` if it was sealed under another key, for
/// another endpoint, or altered.
pub fn open(
    fingerprint_key: &str,
    tenant: &str,
    endpoint_id: &str,
    sealed: &str,
) -> Option<String> {
    let raw = B64.decode(sealed.strip_prefix(VERSION)?).ok()?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce = Nonce::try_from(nonce).ok()?;
    let plain = cipher(fingerprint_key)
        .decrypt(
            &nonce,
            Payload {
                msg: ct,
                aad: &aad(tenant, endpoint_id),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_endpoint_under_its_key() {
        let k = "k".repeat(32);
        let sealed = seal(&k, "t", "ep_1", "whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(open(&k, "t", "ep_1", &sealed).as_deref(), Some("whsec_abc"));
        assert_eq!(open(&k, "t", "ep_2", &sealed), None);
        assert_eq!(open(&k, "u", "ep_1", &sealed), None);
        assert_eq!(open(&"x".repeat(32), "t", "ep_1", &sealed), None);
        let mut bad = sealed.clone();
        bad.pop();
        bad.push('A');
        assert_eq!(open(&k, "t", "ep_1", &bad), None);
    }
}
