//! What an API key may do. Each key in the secret document lists its scopes; each app route
//! needs exactly one (`Route::scope`), so a route added later cannot be reached by accident
//! without one being chosen for it.

use std::fmt;

/// One permission of an API key, as written in the secret (`"sessions:read"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read sessions, their history, a user's sessions and reauthentications.
    SessionsRead,
    /// Start, cancel, link sessions and issue client tokens.
    SessionsWrite,
    /// Read outbound events and their delivery attempts.
    EventsRead,
    /// Resend an outbound event.
    EventsWrite,
    /// Read webhook endpoints.
    EndpointsRead,
    /// Create, change, delete webhook endpoints and rotate their secrets.
    EndpointsWrite,
    /// Read what a provider verified about a user, live (personal data).
    VerifiedDataRead,
    /// Erase a session's or a user's data.
    Redact,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
        Scope::VerifiedDataRead,
        Scope::Redact,
    ];

    /// What a key written without `scopes` may do: everything keys could do before scopes
    /// existed. Reading personal data and erasing came later and are never implied: a key gets
    /// them only by naming them.
    pub const IMPLIED: [Scope; 6] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SessionsRead => "sessions:read",
            Scope::SessionsWrite => "sessions:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::EndpointsRead => "endpoints:read",
            Scope::EndpointsWrite => "endpoints:write",
            Scope::VerifiedDataRead => "verified_data:read",
            Scope::Redact => "redact",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's scopes, parsed once when the secret is read. `None` in the document means
/// `Scope::IMPLIED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn implied() -> Scopes {
        Scopes(Scope::IMPLIED.to_vec())
    }

    /// The scopes as written; an unknown name is an error naming it (a typo must not silently
    /// take a permission away or, worse, be read as another).
    pub fn parse(names: &[String]) -> Result<Scopes, String> {
        let mut scopes = Vec::with_capacity(names.len());
        for n in names {
            let s = Scope::parse(n).ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope {n:?} (known: {})", known.join(", "))
            })?;
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        scopes.sort_unstable();
        Ok(Scopes(scopes))
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("sessions"), None);
        assert_eq!(Scope::parse("SESSIONS:READ"), None);
    }

    #[test]
    fn implied_scopes_never_include_personal_data_or_erasure() {
        let implied = Scopes::implied();
        assert!(!implied.allows(Scope::VerifiedDataRead));
        assert!(!implied.allows(Scope::Redact));
        assert!(implied.allows(Scope::SessionsWrite));
    }

    #[test]
    fn an_unknown_scope_is_named() {
        let e = Scopes::parse(&["sessions:read".into(), "session:write".into()]).unwrap_err();
        assert!(e.contains("\"session:write\""), "{e}");
        let s = Scopes::parse(&["redact".into(), "redact".into()]).unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Scope::Redact]);
    }
}
