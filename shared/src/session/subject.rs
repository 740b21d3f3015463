//! The one rule for every identifier the gateway hands a provider on a user's behalf (Authento's
//! `sub`, Prove's `clientCustomerId` and so Identity Manager's identities): an opaque id derived
//! from the tenant *and* the user, so that two apps' user `42` are two users at every provider.
//! No tenant can then see, reuse, overwrite or learn of another's provider-side user: the gateway
//! only ever derives the subject from the caller's own tenant.
//!
//! The subject is a name-based UUID (RFC 9562 version 8, SHA-256 of a versioned, length-framed
//! tenant and user id), so it fits wherever a provider expects a GUID and reveals neither the
//! app nor its user id. It is not a secret and needs no key: it only has to be unique and stable.
//! Changing the derivation would orphan every provider-side user, hence the version in its input.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

const DOMAIN: &[u8] = b"idv-gateway/subject/v1";

impl Subject {
    /// The subject of `user_id` of `tenant`, the same in every process and release.
    pub fn of(tenant: &str, user_id: &str) -> Self {
        let mut h = Sha256::new();
        for part in [DOMAIN, tenant.as_bytes(), user_id.as_bytes()] {
            // Length-framed: ("ab", "c") and ("a", "bc") are different subjects.
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x80; // version 8
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
        let x = hex::encode(b);
        Self(format!(
            "{}-{}-{}-{}-{}",
            &x[..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..]
        ))
    }

    /// A subject as a provider hands it back (a webhook's user identifier): the shape we mint,
    /// in lower case, or nothing.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let shaped = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        shaped.then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_of_two_tenants_is_two_subjects_and_each_is_stable() {
        let a = Subject::of("app-a", "42");
        assert_eq!(a, Subject::of("app-a", "42"));
        assert_ne!(a, Subject::of("app-b", "42"));
        assert_ne!(Subject::of("ab", "c"), Subject::of("a", "bc"));
        assert!(!a.as_str().contains("42") && !a.as_str().contains("app-a"));
    }

    #[test]
    fn a_subject_is_a_version_8_uuid_and_parses_back() {
        let s = Subject::of("t", "u");
        let x = s.as_str();
        assert_eq!(x.len(), 36);
        assert_eq!(&x[14..15], "8", "{x}");
        assert!(matches!(&x[19..20], "8" | "9" | "a" | "b"), "{x}");
        assert_eq!(Subject::parse(x), Some(s.clone()));
        assert_eq!(Subject::parse(&x.to_ascii_uppercase()), Some(s));
        assert_eq!(Subject::parse("user-42"), None);
    }

    #[test]
    fn the_derivation_never_changes() {
        // Pinned (computed independently with Python's hashlib): a change here orphans every
        // user at every provider.
        assert_eq!(
            Subject::of("app-a", "user-42").as_str(),
            "d0d4090d-8075-875c-9d64-a547ea355bef"
        );
    }
}
