//! What a session keeps of Prove: no personal data but the masked number.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Prove's `possessionType`: how the user proves they hold the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Possession {
    /// OTP by SMS (after Mobile Auth); 2-minute window.
    Mobile,
    /// Instant Link by SMS; 3-minute window.
    Desktop,
    /// No possession check.
    None,
}

impl Possession {
    pub fn as_str(self) -> &'static str {
        match self {
            Possession::Mobile => "mobile",
            Possession::Desktop => "desktop",
            Possession::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Mobile, Self::Desktop, Self::None]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Which of Prove's possession APIs a flow uses (docs/providers/prove.md#which-flow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProveFlow {
    /// Legacy Verified Users: `/v3/verify`, then `/v3/verify-status`. Every session stored
    /// before Unify existed in the gateway is one (hence the default when reading them).
    #[default]
    VerifiedUsers,
    /// Unify (since October 2025, the only one new Prove accounts get): `/v3/unify`, then
    /// `/v3/unify-status`, and `/v3/unify-bind` after the app's own possession check.
    Unify,
}

impl ProveFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            ProveFlow::VerifiedUsers => "verified_users",
            ProveFlow::Unify => "unify",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::VerifiedUsers, Self::Unify]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// Which Prove platform serves the number: North America (+1) or the EU one for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProveRegion {
    Na,
    Eu,
}

/// A Prove session's own facts (`session::ProviderData`). The correlation id is the session's
/// `provider_ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProveData {
    /// The API the flow was started with, and so is read with, whatever the deployment says now.
    #[serde(default)]
    pub flow: ProveFlow,
    pub possession: Possession,
    pub region: ProveRegion,
    /// `+1*******011`: the only form of the phone number that is kept.
    pub phone_masked: String,
    /// Instant Link / OTP window: a flow still waiting on possession after this is expired.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub possession_deadline: Option<OffsetDateTime>,
    /// Identity Manager id of the verified identity (its webhooks name it): Verified Users'
    /// `identityId`, Unify's `proveId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// An Identity Manager event said the verified number changed hands or went away.
    #[serde(default)]
    pub reverification_recommended: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_stored_before_unify_reads_as_verified_users() {
        let old: ProveData = serde_json::from_str(
            r#"{"possession":"mobile","region":"na","phone_masked":"+1*******011","possession_deadline":null}"#,
        )
        .unwrap();
        assert_eq!(old.flow, ProveFlow::VerifiedUsers);
        let unify = ProveData {
            flow: ProveFlow::Unify,
            ..old
        };
        let back: ProveData =
            serde_json::from_value(serde_json::to_value(&unify).unwrap()).unwrap();
        assert_eq!(back, unify);
    }
}
