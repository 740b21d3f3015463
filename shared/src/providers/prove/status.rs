//! Prove's results on our status set (docs/providers/prove.md#statuses). Verified Users: `success`
//! is a string, `"true"`, `"pending"` or `"false"`; `possessionResult`/`verifyResult` say which
//! check is done or failed. Unify: `success` alone, `"true"`, `"false"`, `"pending"` or
//! `"possession_required"`.

use crate::session::{
    FailureCode, FailureTable, LastError, Proposal, Source, Status, UNKNOWN_STATUS,
};

/// Prove reports no failure codes. Verified Users says which check failed, and the gateway names
/// its answers; Unify has one word for a failure, `false`, kept as it is. Both map on the one
/// vocabulary (docs/api.md#failure-codes).
pub const FAILURES: FailureTable = &[
    // Unify's `success: "false"`: "Possession failed" (Prove's unify-server reference).
    (UNIFY_FAILED, FailureCode::PossessionFailed),
    // `success: "false"`, `possessionResult: "failed"`: the OTP or Instant Link failed.
    ("possession_failed", FailureCode::PossessionFailed),
    // `success: "false"`, `verifyResult: "failed"`: the phone's owner does not match.
    ("verification_failed", FailureCode::DataMismatch),
    // `success: "false"` without either: Prove's decision, unexplained.
    ("failed", FailureCode::Rejected),
    // Still waiting on possession after the possession window.
    (POSSESSION_TIMEOUT, FailureCode::Expired),
    // 403 code 1003 after possession: Prove no longer serves the flow.
    (FLOW_EXPIRED, FailureCode::Expired),
];

pub const POSSESSION_TIMEOUT: &str = "possession_timeout";
/// Unify's word for a failed possession check, Prove's raw value.
pub const UNIFY_FAILED: &str = "false";
/// Unify, customer-supplied possession: no bound Prove Key, the app's own check is due, then
/// `/v3/unify-bind`.
pub const POSSESSION_REQUIRED: &str = "possession_required";
pub const FLOW_EXPIRED: &str = "flow_expired";

/// What one of Prove's answers says about a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub success: &'a str,
    pub possession_result: &'a str,
    pub verify_result: &'a str,
}

impl Outcome<'_> {
    /// Still waiting for the client SDK's possession check.
    pub fn awaits_possession(&self) -> bool {
        self.success == "pending" && self.possession_result == "pending"
    }
}

pub fn proposal(o: &Outcome<'_>) -> Proposal {
    let (status, last_error) = match o.success {
        "true" => (Status::Verified, None),
        "false" => (Status::Failed, Some(failure(o))),
        // Possession done (or not asked), the verification still running: Prove decides.
        "pending" if o.possession_result != "pending" => (Status::Processing, None),
        // Waiting on the user.
        "pending" => (Status::Pending, None),
        // A word the gateway does not know claims nothing: noted, and read again later.
        _ => {
            return Proposal {
                status: Status::Created,
                provider_status: Some(o.success.to_owned()),
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(UNKNOWN_STATUS),
            };
        }
    };
    Proposal {
        status,
        provider_status: Some(o.success.to_owned()),
        last_error,
        source: Source::ProviderRead,
        unclear: None,
    }
}

/// Unify's `success` on our status set.
pub fn unify_proposal(success: &str) -> Proposal {
    let (status, last_error) = match success {
        // Possession passed and a Prove Key is bound, or an existing key authenticated.
        "true" => (Status::Verified, None),
        UNIFY_FAILED => (
            Status::Failed,
            Some(LastError::mapped(
                FAILURES,
                UNIFY_FAILED,
                "the user could not prove possession of the phone",
            )),
        ),
        // Waiting on the user's phone, or on the app's own possession check and its bind.
        "pending" | POSSESSION_REQUIRED => (Status::Pending, None),
        _ => {
            return Proposal {
                status: Status::Created,
                provider_status: Some(success.to_owned()),
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(UNKNOWN_STATUS),
            };
        }
    };
    Proposal {
        status,
        provider_status: Some(success.to_owned()),
        last_error,
        source: Source::ProviderRead,
        unclear: None,
    }
}

fn failure(o: &Outcome<'_>) -> LastError {
    let (code, message) = if o.possession_result == "failed" {
        (
            "possession_failed",
            "the user could not prove possession of the phone",
        )
    } else if o.verify_result == "failed" {
        (
            "verification_failed",
            "Prove could not verify the user's identity",
        )
    } else {
        ("failed", "Prove did not verify the user")
    };
    LastError::mapped(FAILURES, code, message)
}

/// A flow Prove no longer lets us read (403 code 1003), or whose possession window closed.
pub fn expired(reason: &str) -> Proposal {
    Proposal {
        status: Status::Expired,
        provider_status: None,
        last_error: Some(LastError::mapped(
            FAILURES,
            reason,
            "the possession check was not completed in time",
        )),
        source: Source::Deadline,
        unclear: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o<'a>(s: &'a str, p: &'a str, v: &'a str) -> Outcome<'a> {
        Outcome {
            success: s,
            possession_result: p,
            verify_result: v,
        }
    }

    #[test]
    fn each_result_maps_as_providers_md_says() {
        assert_eq!(
            proposal(&o("pending", "pending", "pending")).status,
            Status::Pending
        );
        assert_eq!(
            proposal(&o("pending", "success", "pending")).status,
            Status::Processing
        );
        assert_eq!(
            proposal(&o("true", "success", "success")).status,
            Status::Verified
        );
        assert_eq!(
            proposal(&o("true", "not_applicable", "success")).status,
            Status::Verified
        );
        let p = proposal(&o("false", "failed", "not_applicable"));
        assert_eq!(p.status, Status::Failed);
        let e = p.last_error.unwrap();
        assert_eq!(e.code, FailureCode::PossessionFailed);
        assert_eq!(e.provider_code.as_deref(), Some("possession_failed"));
        let v = proposal(&o("false", "success", "failed"));
        let e = v.last_error.clone().unwrap();
        assert_eq!(e.code, FailureCode::DataMismatch);
        assert_eq!(e.provider_code.as_deref(), Some("verification_failed"));
        let e = proposal(&o("false", "success", "success"))
            .last_error
            .unwrap();
        assert_eq!(e.code, FailureCode::Rejected);
        let e = expired(POSSESSION_TIMEOUT).last_error.unwrap();
        assert_eq!(e.code, FailureCode::Expired);
        assert!(e.retryable());
        assert_eq!(v.provider_status.as_deref(), Some("false"));
        assert_eq!(
            proposal(&o("possession_required", "x", "y")).unclear,
            Some(UNKNOWN_STATUS)
        );
    }

    #[test]
    fn each_unify_answer_maps_as_the_unify_reference_says() {
        assert_eq!(unify_proposal("pending").status, Status::Pending);
        let p = unify_proposal("possession_required");
        assert_eq!(
            (p.status, p.provider_status.as_deref()),
            (Status::Pending, Some("possession_required"))
        );
        assert_eq!(unify_proposal("true").status, Status::Verified);
        let f = unify_proposal("false");
        assert_eq!(f.status, Status::Failed);
        let e = f.last_error.unwrap();
        assert_eq!(e.code, FailureCode::PossessionFailed);
        assert_eq!(e.provider_code.as_deref(), Some("false"));
        assert!(e.retryable());
        assert_eq!(unify_proposal("success").unclear, Some(UNKNOWN_STATUS));
    }

    #[test]
    fn only_a_pending_possession_awaits_the_user() {
        assert!(o("pending", "pending", "pending").awaits_possession());
        assert!(!o("pending", "success", "pending").awaits_possession());
        assert!(!o("false", "pending", "failed").awaits_possession());
    }
}
