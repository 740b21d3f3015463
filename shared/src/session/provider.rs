//! Which provider a session, ref or delivery belongs to.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// A provider's name (`"authento"`, `"stripe"`). What a name means is the provider registry's
/// business (`providers::registry`): the domain only carries and compares names, so that a
/// provider is added without touching it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provider(Cow<'static, str>);

impl Provider {
    /// A provider's own name for itself (a constant of its module).
    pub const fn named(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// A name read back from storage or a request: 1-32 of `[a-z0-9_]`, starting with a letter.
    pub fn parse(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        let ok = (1..=32).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        ok.then(|| Self(Cow::Owned(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Provider {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Provider {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Provider {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Provider::parse(&name).ok_or_else(|| serde::de::Error::custom("not a provider name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lower_case_words() {
        assert_eq!(Provider::parse("stripe"), Some(Provider::named("stripe")));
        assert_eq!(
            Provider::parse("x_2").map(|p| p.to_string()).as_deref(),
            Some("x_2")
        );
        for bad in ["", "Stripe", "2fa", "a-b", "a b", &"a".repeat(33)] {
            assert!(Provider::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Provider::named("prove") == "prove");
    }
}
