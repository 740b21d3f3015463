//! API-key authentication: `Authorization: Bearer <key>`, the key's SHA-256 compared in constant
//! time with every configured digest. The key itself is never stored or logged.

use super::scopes::{Scope, Scopes};
use crate::Error;
use crate::secrets::SecretDoc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The credentials of an `Authorization: Bearer <token>` header: the scheme matched
/// case-insensitively (RFC 9110 section 11.1), then one or more spaces; `None` for another
/// scheme or an empty token. For every bearer-authenticated endpoint (ours, and the simulators').
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(rest.trim()).filter(|t| !t.is_empty())
}

/// Who called: the tenant (app) that holds the presented key, and what the key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    /// Which of the tenant's keys: the first characters of its digest (`verified::key_id`), for
    /// records of who did what (never the key, never its whole digest).
    pub key_id: String,
    pub scopes: Scopes,
}

impl Caller {
    /// `Forbidden` naming the scope when the key lacks it. Checked after authentication and
    /// before anything is read or written, so a refused request changes nothing.
    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden { scope })
        }
    }
}

/// The caller of the presented key.
pub fn authenticate(doc: &SecretDoc, authorization: Option<&str>) -> Result<Caller, Error> {
    let key = authorization
        .and_then(bearer_token)
        .ok_or(Error::Unauthenticated)?;
    let presented = Sha256::digest(key.as_bytes());
    let mut caller = None;
    // Every entry is compared, so the time taken says nothing about which one matched.
    for entry in doc.api_keys() {
        let Ok(stored) = hex::decode(&entry.sha256) else {
            continue;
        };
        if bool::from(stored.ct_eq(presented.as_slice())) {
            caller = Some(entry);
        }
    }
    caller
        .map(|e| Caller {
            tenant: e.tenant.clone(),
            key_id: crate::verified::key_id(&e.sha256),
            scopes: e.scopes.clone(),
        })
        .ok_or(Error::Unauthenticated)
}

/// Lower-case hex SHA-256 of a key: what goes into the secret.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::ApiKeyEntry;

    fn doc() -> SecretDoc {
        SecretDoc {
            parsed: Default::default(),
            reads: Default::default(),
            fingerprint_key: "k".repeat(32),
            api_keys: vec![
                ApiKeyEntry::new("app-a", digest("key-a")),
                ApiKeyEntry {
                    tenant: "app-b".into(),
                    sha256: digest("key-b"),
                    scopes: Scopes::parse(&["sessions:read".into()]).unwrap(),
                },
            ],
            providers: Default::default(),
        }
    }

    #[test]
    fn the_right_key_names_its_tenant() {
        let caller = authenticate(&doc(), Some("Bearer key-b")).unwrap();
        assert_eq!(caller.tenant, "app-b");
        assert_eq!(caller.key_id, digest("key-b")[..12]);
        assert!(caller.require(Scope::SessionsRead).is_ok());
        assert!(matches!(
            caller.require(Scope::SessionsWrite),
            Err(Error::Forbidden {
                scope: Scope::SessionsWrite
            })
        ));
        let implied = authenticate(&doc(), Some("Bearer key-a")).unwrap();
        assert!(implied.require(Scope::EndpointsWrite).is_ok());
        assert!(implied.require(Scope::Redact).is_err());
    }

    #[test]
    fn wrong_missing_or_malformed_keys_are_refused() {
        for h in [
            None,
            Some(""),
            Some("Bearer "),
            Some("Basic key-a"),
            Some("Bearer key-c"),
            Some("key-a"),
        ] {
            assert!(
                matches!(authenticate(&doc(), h), Err(Error::Unauthenticated)),
                "{h:?}"
            );
        }
    }

    #[test]
    fn bearer_token_reads_the_credentials_of_any_case_of_the_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        for h in [
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Basic abc",
            "",
            " Bearer abc",
        ] {
            assert_eq!(bearer_token(h), None, "{h:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        // RFC 9110 section 11.1: the auth-scheme is case-insensitive.
        for h in [
            "BEARER key-a",
            "bearer key-a",
            "bEaReR key-a",
            "Bearer key-a",
        ] {
            assert_eq!(
                authenticate(&doc(), Some(h)).unwrap().tenant,
                "app-a",
                "{h:?}"
            );
        }
        for h in ["Bearerkey-a", "Bearer", "Bear key-a"] {
            assert!(authenticate(&doc(), Some(h)).is_err(), "{h:?}");
        }
    }
}
