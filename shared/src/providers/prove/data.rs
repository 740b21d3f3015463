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
    pub possession: Possession,
    pub region: ProveRegion,
    /// `+1*******011`: the only form of the phone number that is kept.
    pub phone_masked: String,
    /// Instant Link / OTP window: a flow still waiting on possession after this is expired.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub possession_deadline: Option<OffsetDateTime>,
    /// Identity Manager id of the verified identity (its webhooks name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// An Identity Manager event said the verified number changed hands or went away.
    #[serde(default)]
    pub reverification_recommended: bool,
}
