//! Passbase's identity status onto our one status set (docs/providers/passbase.md#statuses).

use super::Identity;
use crate::session::{
    FailureCode, FailureTable, LastError, Proposal, Source, Status, UNKNOWN_STATUS,
};

/// Passbase's identity statuses that fail a session, on the one vocabulary
/// (docs/api.md#failure-codes): Passbase says no more than that it declined.
pub const FAILURES: FailureTable = &[
    ("declined", FailureCode::Rejected),
    ("unverified", FailureCode::Rejected),
];

/// The proposal an authoritative identity read makes.
pub fn proposal(identity: &Identity) -> Proposal {
    let status = match identity.status.as_str() {
        "created" => Status::Created,
        // `pending` is "the customer's turn" (a manual review, or a watchlist hit): the user is done.
        "processing" | "processed" | "pending" => Status::Processing,
        "approved" | "verified" => Status::Verified,
        "declined" | "unverified" => Status::Failed,
        // A status the gateway does not know claims nothing: noted, and read again later.
        _ => {
            return Proposal {
                status: Status::Created,
                provider_status: Some(identity.status.clone()),
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(UNKNOWN_STATUS),
            };
        }
    };
    Proposal {
        status,
        provider_status: Some(identity.status.clone()),
        last_error: (status == Status::Failed).then(|| {
            LastError::mapped(
                FAILURES,
                &identity.status,
                "Passbase declined the verification",
            )
        }),
        source: Source::ProviderRead,
        unclear: None,
    }
}

/// The proposal for a session whose linked identity names another session in its metadata:
/// someone else's documents, never this user's verification.
pub fn mismatch(identity: &Identity) -> Proposal {
    Proposal {
        status: Status::Failed,
        provider_status: Some(identity.status.clone()),
        // The gateway's own finding, not a word of Passbase's.
        last_error: Some(LastError {
            code: FailureCode::SessionMismatch,
            provider_code: None,
            message: "the Passbase identity belongs to another verification session".into(),
        }),
        source: Source::ProviderRead,
        unclear: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(status: &str) -> Identity {
        serde_json::from_value(serde_json::json!({"id": "x", "status": status})).unwrap()
    }

    #[test]
    fn maps_as_providers_md_section_6() {
        for (raw, ours) in [
            ("created", Status::Created),
            ("processing", Status::Processing),
            ("processed", Status::Processing),
            ("pending", Status::Processing),
            ("approved", Status::Verified),
            ("verified", Status::Verified),
            ("declined", Status::Failed),
            ("unverified", Status::Failed),
        ] {
            let p = proposal(&identity(raw));
            assert_eq!(p.status, ours, "{raw}");
            assert_eq!(p.provider_status.as_deref(), Some(raw));
        }
        let declined = proposal(&identity("declined"));
        let e = declined.last_error.unwrap();
        assert_eq!(e.code, FailureCode::Rejected);
        assert_eq!(e.provider_code.as_deref(), Some("declined"));
        let m = mismatch(&identity("approved")).last_error.unwrap();
        assert_eq!(
            (m.code, m.provider_code),
            (FailureCode::SessionMismatch, None)
        );
        assert_eq!(
            proposal(&identity("exploded")).unclear,
            Some(UNKNOWN_STATUS)
        );
    }
}
