//! An endpoint's signing secret: `whsec_` + standard base64 of 24 to 64 random bytes. The HMAC key
//! is the decoded bytes, not the string (Standard Webhooks; unlike Stripe's `whsec_`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const PREFIX: &str = "whsec_";
/// Bytes in a secret the gateway generates (the spec allows 24 to 64).
const GENERATED_LEN: usize = 32;
const MIN_LEN: usize = 24;
const MAX_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a signing secret starts with `whsec_`")]
    Prefix,
    #[error("a signing secret is `whsec_` followed by standard base64")]
    Base64,
    #[error("a signing secret decodes to 24 to 64 bytes, not {0}")]
    Length(usize),
}

/// The decoded key. Clone is cheap enough (at most 64 bytes); Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// A new secret from the OS's CSPRNG (through `rand`'s thread RNG, seeded from it).
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_LEN];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>`. Accepts unpadded base64 too, as the reference libraries do.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD
            .decode(b64)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
            .map_err(|_| SecretError::Base64)?;
        if !(MIN_LEN..=MAX_LEN).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// The `whsec_…` form, shown to the app once and kept in the store.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The HMAC key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(whsec_…)")
    }
}

impl std::str::FromStr for SigningSecret {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.key().len(), 32);
        let shown = a.expose();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&shown).unwrap(), a);
    }

    #[test]
    fn parse_refuses_what_is_not_a_secret() {
        assert_eq!(
            SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Prefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!"),
            Err(SecretError::Base64)
        );
        // 16 bytes: too short; 65 bytes: too long.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        assert_eq!(SigningSecret::parse(&short), Err(SecretError::Length(16)));
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(SigningSecret::parse(&long), Err(SecretError::Length(65)));
        for n in [24, 64] {
            let ok = format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
            assert_eq!(SigningSecret::parse(&ok).unwrap().key().len(), n);
        }
        // Unpadded, as the reference libraries accept it.
        let unpadded = format!("whsec_{}", STANDARD.encode([1u8; 32]).trim_end_matches('='));
        assert!(SigningSecret::parse(&unpadded).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let s = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let shown = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(!shown.contains("C2FV"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", s.key())), "{shown}");
    }
}
