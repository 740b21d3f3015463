//! Nevis IDV statuses on our status set (docs/providers/nevis.md#statuses): `pending` (the user has not started)
//! is `created`, `in_progress` is `pending`, `verified` and `failed` are decisions; a failure
//! carries Nevis's error codes in `last_error`.

use super::wire::NevisSession;
use crate::session::{
    FailureCode, FailureTable, LastError, Proposal, Source, Status, UNKNOWN_STATUS,
};

/// Nevis's error codes on the one vocabulary (docs/api.md#failure-codes). ASSUMPTION: Nevis
/// documents no IDV error codes; these are the ones its simulator reports
/// (`local/src/sandbox/nevis.rs`), and any other is `unknown`, kept as the provider's code.
pub const FAILURES: FailureTable = &[
    ("DOCUMENT_NOT_READABLE", FailureCode::DocumentUnreadable),
    ("DOCUMENT_EXPIRED", FailureCode::DocumentExpired),
    ("DOCUMENT_NOT_SUPPORTED", FailureCode::DocumentUnsupported),
    ("FACE_MISMATCH", FailureCode::SelfieMismatch),
    ("LIVENESS_CHECK_FAILED", FailureCode::LivenessFailed),
];

pub fn proposal(s: &NevisSession) -> Proposal {
    let word = s.status.to_ascii_lowercase();
    let (status, last_error) = match word.as_str() {
        "pending" => (Status::Created, None),
        "in_progress" => (Status::Pending, None),
        "verified" => (Status::Verified, None),
        "failed" => (Status::Failed, Some(failure(s))),
        // An undocumented word claims nothing: noted, and read again later.
        _ => {
            return Proposal {
                status: Status::Created,
                provider_status: Some(s.status.clone()),
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(UNKNOWN_STATUS),
            };
        }
    };
    Proposal {
        status,
        provider_status: Some(s.status.clone()),
        last_error,
        source: Source::ProviderRead,
        unclear: None,
    }
}

/// The first error code decides; every code is in the message (Nevis may report several).
fn failure(s: &NevisSession) -> LastError {
    match s.errors.first() {
        None => LastError {
            code: FailureCode::Unknown,
            provider_code: None,
            message: "Nevis reported the verification as failed without an error code".into(),
        },
        Some(first) => LastError::mapped(
            FAILURES,
            &first.code,
            format!(
                "Nevis error codes: {}",
                s.errors
                    .iter()
                    .map(|e| e.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::nevis::wire::NevisError;

    fn session(status: &str, codes: &[&str]) -> NevisSession {
        NevisSession {
            session_id: Some("123456789".into()),
            status: status.into(),
            errors: codes
                .iter()
                .map(|c| NevisError {
                    code: (*c).into(),
                    message: None,
                })
                .collect(),
        }
    }

    #[test]
    fn each_word_maps_as_providers_md_says() {
        assert_eq!(proposal(&session("pending", &[])).status, Status::Created);
        assert_eq!(
            proposal(&session("in_progress", &[])).status,
            Status::Pending
        );
        assert_eq!(proposal(&session("verified", &[])).status, Status::Verified);
        let p = proposal(&session("failed", &["FACE_MISMATCH", "LIVENESS_FAILED"]));
        assert_eq!(p.status, Status::Failed);
        let e = p.last_error.unwrap();
        assert_eq!(e.code, FailureCode::SelfieMismatch);
        assert_eq!(e.provider_code.as_deref(), Some("FACE_MISMATCH"));
        assert!(e.message.contains("LIVENESS_FAILED"));
        assert_eq!(p.provider_status.as_deref(), Some("failed"));
    }

    #[test]
    fn an_unknown_word_settles_nothing() {
        let p = proposal(&session("paused", &[]));
        assert_eq!(p.unclear, Some(UNKNOWN_STATUS));
        assert_eq!(p.provider_status.as_deref(), Some("paused"));
    }

    #[test]
    fn a_failure_without_codes_still_says_failed() {
        let p = proposal(&session("failed", &[]));
        let e = p.last_error.unwrap();
        assert_eq!((e.code, e.provider_code), (FailureCode::Unknown, None));
        let odd = proposal(&session("failed", &["SOMETHING_NEW"]))
            .last_error
            .unwrap();
        assert_eq!(odd.code, FailureCode::Unknown);
        assert_eq!(odd.provider_code.as_deref(), Some("SOMETHING_NEW"));
    }
}
