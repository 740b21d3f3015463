//! Passbase's webhook scheme: the body is `base64(IV ‖ AES-256-CBC(key, JSON))`, PKCS#7 padded,
//! with the 32-character webhook secret used as-is as the key (docs/providers/passbase.md#webhooks).
//! There is no MAC: knowing the key is the only proof of origin, so a body counts as authentic
//! only when it decrypts, unpads *and* parses as the event its caller expects (checked by the
//! caller).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

const BLOCK: usize = 16;
/// AES-256 wants exactly 32 key bytes: Passbase's secret is 32 ASCII characters.
pub const KEY_LEN: usize = 32;
/// More base64 than any accepted body holds (the HTTP layer caps bodies at 64 KiB) is refused.
const MAX_ENCODED: usize = 128 * 1024;

/// The plaintext of a body, or `None` for anything that is not base64 of an IV and whole
/// blocks decrypting under `secret` to a correctly padded message. Every failure looks the same
/// to the caller (one 401), so the answer is no padding oracle.
pub fn decrypt(secret: &str, body: &[u8]) -> Option<Vec<u8>> {
    if secret.len() != KEY_LEN || body.len() > MAX_ENCODED {
        return None;
    }
    // Whitespace is not part of the base64: a trailing newline from an HTTP client, or the line
    // breaks of an encoder that wraps (Ruby's `encode64`, MIME's 76 columns).
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let raw = STANDARD.decode(text).ok()?;
    if raw.len() < 2 * BLOCK || raw.len() % BLOCK != 0 {
        return None;
    }
    let (iv, ciphertext) = raw.split_at(BLOCK);
    Aes256CbcDec::new_from_slices(secret.as_bytes(), iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .ok()
}

/// The same construction, forwards: for the simulator and sample events. `iv` must be random.
pub fn encrypt(secret: &str, iv: [u8; BLOCK], plaintext: &[u8]) -> Option<String> {
    let enc = Aes256CbcEnc::new_from_slices(secret.as_bytes(), &iv).ok()?;
    let mut raw = iv.to_vec();
    raw.extend(enc.encrypt_padded_vec::<Pkcs7>(plaintext));
    Some(STANDARD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn decrypts_what_openssl_encrypts() {
        // printf '{"event":"VERIFICATION_COMPLETED"}' | openssl enc -aes-256-cbc -K <hex of KEY>
        //   -iv 000102030405060708090a0b0c0d0e0f | (printf IV bytes; cat) | base64
        let body = "AAECAwQFBgcICQoLDA0OD4J3M6iwm33/4/j96+uHliCrbu9ldpIuIkcYyXoHeoGKYqg9lhIoc/Je39nbmBJt3g==";
        let plain = decrypt(KEY, body.as_bytes()).expect("decrypts");
        assert_eq!(plain, br#"{"event":"VERIFICATION_COMPLETED"}"#);
    }

    #[test]
    fn round_trips_and_refuses_everything_else() {
        let body = encrypt(KEY, [7; 16], br#"{"a":1}"#).unwrap();
        assert_eq!(decrypt(KEY, body.as_bytes()).unwrap(), br#"{"a":1}"#);
        assert_eq!(
            decrypt(KEY, format!("{body}\n").as_bytes()).unwrap(),
            br#"{"a":1}"#
        );
        let wrapped = format!("{}\r\n{}\n", &body[..10], &body[10..]);
        assert_eq!(decrypt(KEY, wrapped.as_bytes()).unwrap(), br#"{"a":1}"#);
        assert!(decrypt("fedcba9876543210fedcba9876543210", body.as_bytes()).is_none());
        assert!(decrypt("short", body.as_bytes()).is_none());
        assert!(decrypt(KEY, &body.as_bytes()[..body.len() - 4]).is_none());
        assert!(decrypt(KEY, b"not base64 at all!").is_none());
        assert!(decrypt(KEY, br#"{"event":"VERIFICATION_COMPLETED"}"#).is_none());
        assert!(decrypt(KEY, b"").is_none());
    }
}
