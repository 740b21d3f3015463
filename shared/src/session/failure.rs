//! The one failure vocabulary (docs/api.md#failure-codes): a closed list of `last_error.code`
//! values every provider's words are mapped onto, each provider's own word kept beside it. An app
//! branches on the code, never on a provider's word. Each provider's mapping lives in its
//! `status.rs`, and is shown through `Adapter::failure_codes`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The document could not be read (blurred, glare, cut off).
    DocumentUnreadable,
    DocumentExpired,
    /// The document's type or issuing country is not accepted, or it lacks what a check needs
    /// (a photo, an ID number).
    DocumentUnsupported,
    /// The document was read but not accepted (it looks forged, its data is inconsistent).
    DocumentUnverified,
    /// The selfie does not match the document's photo.
    SelfieMismatch,
    /// The liveness check failed, or the selfie looks manipulated.
    LivenessFailed,
    /// The user could not prove they hold the phone number (or email address).
    PossessionFailed,
    /// The identity data given does not match the provider's sources (an ID number, the owner of
    /// a phone number).
    DataMismatch,
    /// The user declined to be verified, or to share what a check needs.
    ConsentDeclined,
    UnderAge,
    /// The user's device cannot run the flow (no camera, camera access refused).
    DeviceUnsupported,
    /// The user began the flow and left it without submitting.
    Abandoned,
    /// The provider's decision (automated or a manual review) refused the user, without a more
    /// specific reason.
    Rejected,
    /// The provider's result belongs to another session (someone else's identity was linked).
    SessionMismatch,
    /// The provider's flow timed out before the user finished.
    Expired,
    /// The provider canceled the flow.
    Canceled,
    /// A word the gateway does not know (kept in `provider_code`), or none at all.
    Unknown,
}

impl FailureCode {
    /// Every code, in the order docs/api.md lists them.
    pub const ALL: [FailureCode; 17] = [
        FailureCode::DocumentUnreadable,
        FailureCode::DocumentExpired,
        FailureCode::DocumentUnsupported,
        FailureCode::DocumentUnverified,
        FailureCode::SelfieMismatch,
        FailureCode::LivenessFailed,
        FailureCode::PossessionFailed,
        FailureCode::DataMismatch,
        FailureCode::ConsentDeclined,
        FailureCode::UnderAge,
        FailureCode::DeviceUnsupported,
        FailureCode::Abandoned,
        FailureCode::Rejected,
        FailureCode::SessionMismatch,
        FailureCode::Expired,
        FailureCode::Canceled,
        FailureCode::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::DocumentUnreadable => "document_unreadable",
            FailureCode::DocumentExpired => "document_expired",
            FailureCode::DocumentUnsupported => "document_unsupported",
            FailureCode::DocumentUnverified => "document_unverified",
            FailureCode::SelfieMismatch => "selfie_mismatch",
            FailureCode::LivenessFailed => "liveness_failed",
            FailureCode::PossessionFailed => "possession_failed",
            FailureCode::DataMismatch => "data_mismatch",
            FailureCode::ConsentDeclined => "consent_declined",
            FailureCode::UnderAge => "under_age",
            FailureCode::DeviceUnsupported => "device_unsupported",
            FailureCode::Abandoned => "abandoned",
            FailureCode::Rejected => "rejected",
            FailureCode::SessionMismatch => "session_mismatch",
            FailureCode::Expired => "expired",
            FailureCode::Canceled => "canceled",
            FailureCode::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether a new attempt of the same user may succeed: the cause can change (another
    /// document, another try at the selfie, the user's mind). `false` only where it cannot: the
    /// user's age, a decision of the provider, and a cause the gateway does not know (an app
    /// should not loop on it).
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            FailureCode::UnderAge | FailureCode::Rejected | FailureCode::Unknown
        )
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's table of its own words onto the vocabulary: the word is matched exactly; a word
/// not in it is `Unknown` (and kept as the provider's code).
pub type FailureTable = &'static [(&'static str, FailureCode)];

/// The code a provider's word maps to in its table.
pub fn lookup(table: FailureTable, provider_code: &str) -> FailureCode {
    table
        .iter()
        .find(|(raw, _)| *raw == provider_code)
        .map_or(FailureCode::Unknown, |(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_and_serializes_as_it_prints() {
        for c in FailureCode::ALL {
            assert_eq!(FailureCode::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(FailureCode::parse("FACE_MISMATCH"), None);
    }

    #[test]
    fn a_word_outside_a_table_is_unknown() {
        let table: FailureTable = &[("X", FailureCode::Rejected)];
        assert_eq!(lookup(table, "X"), FailureCode::Rejected);
        assert_eq!(lookup(table, "x"), FailureCode::Unknown);
    }
}
