//! Redaction: a session's personal and provider-identifying values erased on the app's request,
//! its status, times and failure code kept, with the fact and time of the redaction. Pure: the
//! flow (`flows::redact`) writes what this computes.

use super::model::{HistoryEntry, Session};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What replaces an erased identifier that must stay a string (the session's `user_id`).
pub const REDACTED: &str = "redacted";

/// How far a session's redaction went. `Redacting` is written first, in one conditional write,
/// before anything is erased: every read hides the session's personal data from then on, and a
/// repeat (or reconcile) finishes what a crash left half done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionState {
    Redacting,
    Redacted,
}

/// Whether the provider was asked to delete its own records of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderDeletion {
    /// Not done yet: reconcile asks again, with backoff.
    Pending,
    Done,
    /// The provider's API offers no deletion.
    Unsupported,
    /// Given up after `MAX_DELETION_ATTEMPTS` (or the provider refused for good).
    Failed,
}

impl ProviderDeletion {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderDeletion::Pending => "pending",
            ProviderDeletion::Done => "done",
            ProviderDeletion::Unsupported => "unsupported",
            ProviderDeletion::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "done" => Self::Done,
            "unsupported" => Self::Unsupported,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl RedactionState {
    pub fn as_str(self) -> &'static str {
        match self {
            RedactionState::Redacting => "redacting",
            RedactionState::Redacted => "redacted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "redacting" => Self::Redacting,
            "redacted" => Self::Redacted,
            _ => return None,
        })
    }
}

/// How many times the provider's deletion is tried before the session says `failed`.
pub const MAX_DELETION_ATTEMPTS: u32 = 12;

/// A session's redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub state: RedactionState,
    /// When it was asked for (first).
    pub at: OffsetDateTime,
    pub provider_deletion: ProviderDeletion,
    /// The provider's id the deletion names (Prove's identity id, Stripe's `vs_` id): kept only
    /// while the deletion is pending, erased once it is done or given up.
    pub deletion_ref: Option<String>,
    /// Deletion attempts that failed so far (the backoff grows with them).
    pub deletion_attempts: u32,
}

impl Redaction {
    pub fn is_done(&self) -> bool {
        self.state == RedactionState::Redacted
    }
}

impl Session {
    pub fn is_redacted(&self) -> bool {
        self.redaction.is_some()
    }

    /// The session as a finished redaction leaves it: its id, tenant, provider, status, times,
    /// failure code, retry links (session ids) and redaction kept; every identifier, the
    /// provider's words and data, the error text, the app's metadata and the kept start fields
    /// erased.
    pub fn erased(&self) -> Session {
        let mut s = self.clone();
        s.user_id = REDACTED.to_owned();
        s.provider_status = None;
        s.provider_ref = None;
        if let Some(e) = &mut s.last_error {
            e.provider_code = None;
            e.message = String::new();
        }
        s.data = Default::default();
        s.unclear = None;
        s.metadata.clear();
        // The start fields a retry would start with: none is retried after a redaction, and a
        // `return_url` may name the user.
        s.start_options.clear();
        s.last_checked_at = None;
        s.provider_seen_ms = None;
        s
    }
}

impl HistoryEntry {
    /// The entry with the provider's words erased (`ps`, `pe`; a `why` that quotes the
    /// provider's word keeps only its own part).
    pub fn erased(&self) -> HistoryEntry {
        let mut h = self.clone();
        h.provider_status = None;
        h.provider_event = None;
        if let Some(r) = &mut h.reason
            && let Some((why, _word)) = r.split_once(':')
        {
            *r = why.to_owned();
        }
        h
    }
}

/// The JSON value with every string that is, or holds, one of `values` replaced by
/// `REDACTED` (an outbound event's body). Values shorter than 4 characters are matched whole
/// only, so that a short user id does not erase unrelated strings that happen to contain it.
pub fn erase_values(v: &mut serde_json::Value, values: &[String]) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            let hit = values
                .iter()
                .filter(|x| !x.is_empty())
                .any(|x| s == x || (x.len() >= 4 && s.contains(x.as_str())));
            if hit {
                *s = REDACTED.to_owned();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| erase_values(x, values)),
        Value::Object(m) => m.values_mut().for_each(|x| erase_values(x, values)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_erased_wherever_they_sit_and_short_ones_only_whole() {
        let mut v = json!({"a": "user-42", "b": ["x https://s/vs_123 y", "ab"], "c": {"d": "zab"}});
        erase_values(&mut v, &["user-42".into(), "vs_123".into(), "ab".into()]);
        assert_eq!(
            v,
            json!({"a": REDACTED, "b": [REDACTED, REDACTED], "c": {"d": "zab"}})
        );
    }

    #[test]
    fn states_round_trip() {
        for d in [
            ProviderDeletion::Pending,
            ProviderDeletion::Done,
            ProviderDeletion::Unsupported,
            ProviderDeletion::Failed,
        ] {
            assert_eq!(ProviderDeletion::parse(d.as_str()), Some(d));
        }
        for s in [RedactionState::Redacting, RedactionState::Redacted] {
            assert_eq!(RedactionState::parse(s.as_str()), Some(s));
        }
    }
}
