//! A verification session's status on our status set (docs/providers/stripe.md#statuses):
//! `requires_input` is the user's turn (with Stripe's `last_error` once a check failed: the user
//! may try again in the same session), `processing`, `verified`, and `canceled` (at Stripe).

use super::client::VerificationSession;
use crate::session::{
    FailureCode, FailureTable, LastError, Proposal, Source, Status, UNKNOWN_STATUS,
};

/// Stripe's `last_error.code` values (`gelato_session_last_error`; the list is open: a new one is
/// `unknown`, kept as the provider's code), and its `canceled` status, on the one vocabulary
/// (docs/api.md#failure-codes).
pub const FAILURES: FailureTable = &[
    ("abandoned", FailureCode::Abandoned),
    ("consent_declined", FailureCode::ConsentDeclined),
    ("country_not_supported", FailureCode::DocumentUnsupported),
    ("device_not_supported", FailureCode::DeviceUnsupported),
    ("under_supported_age", FailureCode::UnderAge),
    ("document_expired", FailureCode::DocumentExpired),
    (
        "document_type_not_supported",
        FailureCode::DocumentUnsupported,
    ),
    ("document_unverified_other", FailureCode::DocumentUnverified),
    // Stripe verifies an email address or phone number by a code sent to it.
    ("email_unverified_other", FailureCode::PossessionFailed),
    ("email_verification_declined", FailureCode::ConsentDeclined),
    (
        "id_number_insufficient_document_data",
        FailureCode::DocumentUnsupported,
    ),
    ("id_number_mismatch", FailureCode::DataMismatch),
    ("id_number_unverified_other", FailureCode::DataMismatch),
    ("phone_unverified_other", FailureCode::PossessionFailed),
    ("phone_verification_declined", FailureCode::ConsentDeclined),
    (
        "selfie_document_missing_photo",
        FailureCode::DocumentUnsupported,
    ),
    ("selfie_face_mismatch", FailureCode::SelfieMismatch),
    ("selfie_manipulated", FailureCode::LivenessFailed),
    ("selfie_unverified_other", FailureCode::LivenessFailed),
    // The status, not a `last_error` code: the session was canceled at Stripe.
    ("canceled", FailureCode::Canceled),
];

pub fn proposal(vs: &VerificationSession) -> Proposal {
    let (status, last_error) = match vs.status.as_str() {
        // ASSUMPTION: a failed check (`last_error`) is not a decision: Stripe asks for input again
        // and the user may retry in the same session.
        "requires_input" => (Status::Pending, vs.last_error.as_ref().map(last_error)),
        "processing" => (Status::Processing, None),
        "verified" => (Status::Verified, None),
        "canceled" => (
            Status::Canceled,
            Some(LastError::mapped(
                FAILURES,
                "canceled",
                "the verification session was canceled at Stripe",
            )),
        ),
        // A word the gateway does not know claims nothing: noted, and read again later.
        _ => {
            return Proposal {
                status: Status::Created,
                provider_status: Some(vs.status.clone()),
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(UNKNOWN_STATUS),
            };
        }
    };
    Proposal {
        status,
        provider_status: Some(vs.status.clone()),
        last_error,
        source: Source::ProviderRead,
        unclear: None,
    }
}

/// Stripe's code (`document_expired`, `selfie_face_mismatch`, ...; the list is open) and its
/// reason, which Stripe writes to be shown to the user.
fn last_error(e: &super::client::SessionError) -> LastError {
    let message = e
        .reason
        .clone()
        .unwrap_or_else(|| "Stripe needs the user to try again".to_owned());
    match &e.code {
        Some(code) => LastError::mapped(FAILURES, code, message),
        None => LastError {
            code: FailureCode::Unknown,
            provider_code: None,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(status: &str, error: Option<(&str, &str)>) -> VerificationSession {
        serde_json::from_value(serde_json::json!({
            "id": "vs_1", "status": status,
            "last_error": error.map(|(c, r)| serde_json::json!({"code": c, "reason": r})),
        }))
        .unwrap()
    }

    #[test]
    fn each_status_maps_as_the_provider_page_says() {
        let p = proposal(&vs("requires_input", None));
        assert_eq!((p.status, p.last_error), (Status::Pending, None));
        let p = proposal(&vs(
            "requires_input",
            Some(("document_expired", "The document is expired.")),
        ));
        assert_eq!(p.status, Status::Pending);
        let e = p.last_error.unwrap();
        assert_eq!(
            (e.code, e.provider_code.as_deref(), e.message.as_str()),
            (
                FailureCode::DocumentExpired,
                Some("document_expired"),
                "The document is expired."
            )
        );
        let e = proposal(&vs("requires_input", Some(("brand_new_code", "New."))))
            .last_error
            .unwrap();
        assert_eq!(e.code, FailureCode::Unknown);
        assert_eq!(e.provider_code.as_deref(), Some("brand_new_code"));
        let e = proposal(&vs("canceled", None)).last_error.unwrap();
        assert_eq!(e.code, FailureCode::Canceled);
        assert_eq!(p.provider_status.as_deref(), Some("requires_input"));
        assert_eq!(proposal(&vs("processing", None)).status, Status::Processing);
        assert_eq!(proposal(&vs("verified", None)).status, Status::Verified);
        assert_eq!(proposal(&vs("canceled", None)).status, Status::Canceled);
        assert_eq!(
            proposal(&vs("reviewing", None)).unclear,
            Some(UNKNOWN_STATUS)
        );
    }
}
