//! Authento's track statuses on our status set (docs/providers/authento.md#statuses): the track that the session's
//! verification type asked for decides.

use super::VerificationType;
use super::client::Lookup;
use crate::session::Proposal;
use crate::session::{
    FailureCode, FailureTable, LastError, NOT_FOUND, Source, Status, UNKNOWN_STATUS,
};

/// Authento's words that fail a session, on the one vocabulary (docs/api.md#failure-codes): a
/// track status, as Authento spells it (matched in any case).
pub const FAILURES: FailureTable = &[("REJECTED", FailureCode::Rejected)];

pub fn proposal(lookup: &Lookup, vt: VerificationType) -> Proposal {
    let info = match lookup {
        // ASSUMPTION: the user never opened the flow. News for nobody; never grounds to undo a
        // decision (a user erased at Authento, a wrong API URL).
        Lookup::NotFound => return unclear(NOT_FOUND, None),
        Lookup::Found(info) => info,
    };
    let word = match vt {
        VerificationType::Basic => info.status.basic.as_str(),
        VerificationType::Poa => info.status.poa.as_str(),
    };
    let upper = word.to_ascii_uppercase();
    let (status, last_error) = match upper.as_str() {
        "UNVERIFIED" | "INFO_REQUIRED" => (Status::Pending, None),
        "PROCESSING" | "ON_HOLD" => (Status::Processing, None),
        "VERIFIED" => (Status::Verified, None),
        "REJECTED" => (
            Status::Failed,
            Some(LastError {
                provider_code: Some(word.to_owned()),
                ..LastError::mapped(FAILURES, &upper, "Authento rejected the verification")
            }),
        ),
        // A word the gateway does not know claims nothing: noted, and read again later.
        _ => return unclear(UNKNOWN_STATUS, Some(word)),
    };
    Proposal {
        status,
        provider_status: Some(word.to_owned()),
        last_error,
        source: Source::ProviderRead,
        unclear: None,
    }
}

fn unclear(why: &'static str, word: Option<&str>) -> Proposal {
    Proposal {
        status: Status::Created,
        provider_status: word.map(str::to_owned),
        last_error: None,
        source: Source::ProviderRead,
        unclear: Some(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::authento::client::{Tracks, UserInfo};

    fn found(basic: &str, poa: &str) -> Lookup {
        Lookup::Found(UserInfo {
            id: "c1".into(),
            status: Tracks {
                basic: basic.into(),
                poa: poa.into(),
            },
            time_updated: None,
        })
    }

    #[test]
    fn each_word_maps_as_providers_md_says() {
        let b = VerificationType::Basic;
        assert_eq!(proposal(&Lookup::NotFound, b).unclear, Some(NOT_FOUND));
        let odd = proposal(&found("BRAND_NEW_WORD", "X"), b);
        assert_eq!(odd.unclear, Some(UNKNOWN_STATUS));
        assert_eq!(odd.provider_status.as_deref(), Some("BRAND_NEW_WORD"));
        assert_eq!(
            proposal(&found("UNVERIFIED", "X"), b).status,
            Status::Pending
        );
        assert_eq!(
            proposal(&found("INFO_REQUIRED", "X"), b).status,
            Status::Pending
        );
        assert_eq!(
            proposal(&found("PROCESSING", "X"), b).status,
            Status::Processing
        );
        assert_eq!(
            proposal(&found("VERIFIED", "X"), b).status,
            Status::Verified
        );
        let rejected = proposal(&found("REJECTED", "X"), b);
        assert_eq!(rejected.status, Status::Failed);
        let e = rejected.last_error.unwrap();
        assert_eq!(e.code, FailureCode::Rejected);
        assert_eq!(e.provider_code.as_deref(), Some("REJECTED"));
        assert!(!e.retryable());
        let lower = proposal(&found("rejected", "X"), b).last_error.unwrap();
        assert_eq!(
            (lower.code, lower.provider_code.as_deref()),
            (FailureCode::Rejected, Some("rejected"))
        );
    }

    #[test]
    fn the_sessions_own_track_decides() {
        let p = proposal(&found("VERIFIED", "PROCESSING"), VerificationType::Poa);
        assert_eq!(p.status, Status::Processing);
        assert_eq!(p.provider_status.as_deref(), Some("PROCESSING"));
    }
}
