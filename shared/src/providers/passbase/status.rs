//! Passbase's identity status onto our one status set (providers.md §6).

use super::Identity;
use crate::Error;
use crate::session::{LastError, Proposal, Source, Status};

/// The proposal an authoritative identity read makes.
pub fn proposal(identity: &Identity) -> Result<Proposal, Error> {
    let status = match identity.status.as_str() {
        "created" => Status::Created,
        // `pending` is "the customer's turn" (a manual review, or a watchlist hit): the user is done.
        "processing" | "processed" | "pending" => Status::Processing,
        "approved" | "verified" => Status::Verified,
        "declined" | "unverified" => Status::Failed,
        _ => {
            return Err(Error::Provider {
                provider: "passbase",
                detail: "an identity status the gateway does not know".into(),
            });
        }
    };
    Ok(Proposal {
        status,
        provider_status: Some(identity.status.clone()),
        last_error: (status == Status::Failed).then(|| LastError {
            code: "declined".into(),
            message: "Passbase declined the verification".into(),
        }),
        source: Source::ProviderRead,
    })
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
            let p = proposal(&identity(raw)).unwrap();
            assert_eq!(p.status, ours, "{raw}");
            assert_eq!(p.provider_status.as_deref(), Some(raw));
        }
        let declined = proposal(&identity("declined")).unwrap();
        assert_eq!(declined.last_error.unwrap().code, "declined");
        assert!(proposal(&identity("exploded")).is_err());
    }
}
