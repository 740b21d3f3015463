//! What a session keeps of Authento: the track it verifies and the page's options.

use serde::{Deserialize, Serialize};

/// Authento's two tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VerificationType {
    #[serde(rename = "BASIC")]
    Basic,
    #[serde(rename = "POA")]
    Poa,
}

impl VerificationType {
    pub const ALL: [Self; 2] = [Self::Basic, Self::Poa];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationType::Basic => "BASIC",
            VerificationType::Poa => "POA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An Authento session's own facts (`session::ProviderData`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthentoData {
    #[serde(rename = "vt", default, skip_serializing_if = "Option::is_none")]
    pub verification_type: Option<VerificationType>,
    /// `INDIVIDUAL` or `CORPORATE`, as the app asked.
    #[serde(rename = "ut", default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}
