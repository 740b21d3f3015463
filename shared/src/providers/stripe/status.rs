//! A verification session's status on our status set (docs/providers/stripe.md#statuses):
//! `requires_input` is the user's turn (with Stripe's `last_error` once a check failed: the user
//! may try again in the same session), `processing`, `verified`, and `canceled` (at Stripe).

use super::client::VerificationSession;
use crate::session::{LastError, Proposal, Source, Status, UNKNOWN_STATUS};

pub fn proposal(vs: &VerificationSession) -> Proposal {
    let (status, last_error) = match vs.status.as_str() {
        // ASSUMPTION: a failed check (`last_error`) is not a decision: Stripe asks for input again
        // and the user may retry in the same session.
        "requires_input" => (Status::Pending, vs.last_error.as_ref().map(last_error)),
        "processing" => (Status::Processing, None),
        "verified" => (Status::Verified, None),
        "canceled" => (
            Status::Canceled,
            Some(LastError {
                code: "canceled".into(),
                message: "the verification session was canceled at Stripe".into(),
            }),
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
    LastError {
        code: e
            .code
            .clone()
            .unwrap_or_else(|| "requires_input".to_owned()),
        message: e
            .reason
            .clone()
            .unwrap_or_else(|| "Stripe needs the user to try again".to_owned()),
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
            (e.code.as_str(), e.message.as_str()),
            ("document_expired", "The document is expired.")
        );
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
