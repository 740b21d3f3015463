use super::data::ProviderData;
use super::failure::{FailureCode, FailureTable};
pub use super::provider::Provider;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `ses_` + 26 base32 characters (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub const PREFIX: &'static str = "ses_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, crate::ids::random_token()))
    }

    /// Parses an id from a URL; anything that is not the shape we mint is simply not found.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(Self::PREFIX)?;
        let ok = rest.len() == 26
            && rest.bytes().all(|c| {
                c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c) || c.is_ascii_digit()
            });
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The one status set (docs/api.md#statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Pending,
    Processing,
    Verified,
    Failed,
    Expired,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Verified => "verified",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Status::Created,
            "pending" => Status::Pending,
            "processing" => Status::Processing,
            "verified" => Status::Verified,
            "failed" => Status::Failed,
            "expired" => Status::Expired,
            "canceled" => Status::Canceled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Verified | Status::Failed | Status::Expired | Status::Canceled
        )
    }

    /// Only the provider's authoritative state may move a session out of these.
    pub fn is_decision(self) -> bool {
        matches!(self, Status::Verified | Status::Failed)
    }

    /// Nothing moves a session out of these: they are ours, not the provider's.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Expired | Status::Canceled)
    }

    /// Progress order, used to keep non-authoritative updates from moving backwards.
    pub fn rank(self) -> u8 {
        match self {
            Status::Created => 0,
            Status::Pending => 1,
            Status::Processing => 2,
            _ => 3,
        }
    }
}

/// Why a session failed or expired (docs/api.md#failure-codes): a code of the one vocabulary,
/// the provider's own word for it, and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub code: FailureCode,
    /// The provider's own word, unchanged (`None` when the gateway itself decided, e.g. a
    /// Passbase identity that belongs to another session).
    pub provider_code: Option<String>,
    pub message: String,
}

impl LastError {
    /// A provider's word mapped through its table (`status.rs`).
    pub fn mapped(table: FailureTable, provider_code: &str, message: impl Into<String>) -> Self {
        LastError {
            code: super::failure::lookup(table, provider_code),
            provider_code: Some(provider_code.to_owned()),
            message: message.into(),
        }
    }

    /// Whether a new attempt of the same user may succeed: the code's, never stored on its own.
    pub fn retryable(&self) -> bool {
        self.code.retryable()
    }
}

/// Who asked for a change. Decides what the state machine lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// What a webhook payload claims: never trusted to move a session backwards.
    Webhook,
    /// A read of the provider's API: the authoritative state.
    ProviderRead,
    /// The app (cancel).
    App,
    /// Our own deadline.
    Deadline,
}

/// A session as stored. The wire shape is built in `http::views`.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub tenant: String,
    pub provider: Provider,
    pub user_id: String,
    pub status: Status,
    pub provider_status: Option<String>,
    pub last_error: Option<LastError>,
    /// The provider's own id for the user or flow, once known (never personal data).
    pub provider_ref: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    /// When the provider was last read for this session (the per-session read budget).
    pub last_checked_at: Option<OffsetDateTime>,
    /// Start time (ms) of the provider read whose state the session holds: a read that started
    /// earlier than this one is older and is refused.
    pub provider_seen_ms: Option<i64>,
    /// When scheduled reconciliation should look at this session next (`None`: never). Only open
    /// sessions carry one; the due index holds exactly those.
    pub next_check_at: Option<OffsetDateTime>,
    /// Scheduled checks since the last status change: the backoff grows with it.
    pub check_attempts: u32,
    /// The provider's own facts about the session (never personal data beyond what the data
    /// inventory names), typed by its adapter and opaque here.
    pub data: ProviderData,
    /// The last answer of the provider that settled nothing (a 404, an unknown status word),
    /// as `<why>` or `<why>:<word>`: noted once in the history, and while it stands the session
    /// is re-read with backoff, even a decided one. A clear answer removes it.
    pub unclear: Option<String>,
    /// The app's own labels for the session (docs/api.md#metadata): set once at creation, at
    /// most `input::METADATA_MAX_KEYS` short strings, never personal data by contract.
    pub metadata: Metadata,
    /// The session this one retries (`POST /v1/sessions/{id}/retry`), set at creation.
    pub previous_session_id: Option<SessionId>,
    /// The session that retries this one: set once, in the transaction that creates it, so
    /// neither link exists without the other.
    pub next_session_id: Option<SessionId>,
    /// What of its start request a retry starts again with: the fields its adapter names
    /// (`Adapter::retry_fields`, never personal data), as validated; set at creation.
    pub start_options: StartOptions,
    /// Its redaction, once the app asked for one (`session::redaction`).
    pub redaction: Option<super::redaction::Redaction>,
}

/// A session's `metadata`: key to value, ordered so that every view shows it the same way.
pub type Metadata = std::collections::BTreeMap<String, String>;

/// A session's kept start fields (`Session::start_options`), as the start request gave them.
pub type StartOptions = serde_json::Map<String, serde_json::Value>;

/// The most history entries a session keeps: its first (creation) and the latest others. The
/// history lives in the session item, and DynamoDB bills a write by the item's size.
pub const MAX_HISTORY: usize = 32;

/// One Identity Manager event recorded on a verified Prove session (a separate item: they can
/// accumulate beyond what one session item may hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityEvent {
    pub session_id: SessionId,
    /// Prove's event id (the dedupe key).
    pub event_id: String,
    /// `PHONE_NUMBER_CHANGE`, `DISCONNECT`, `PORT`, ... kept as Prove spells it, unknown ones too.
    pub event_type: String,
    /// When Prove says it happened, if it said so in RFC 3339.
    pub occurred_at: Option<OffsetDateTime>,
    pub received_at: OffsetDateTime,
}

impl Session {
    pub fn new(tenant: &str, provider: Provider, user_id: &str, now: OffsetDateTime) -> Self {
        Session {
            id: SessionId::generate(),
            tenant: tenant.to_owned(),
            provider,
            user_id: user_id.to_owned(),
            status: Status::Created,
            provider_status: None,
            last_error: None,
            provider_ref: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
            last_checked_at: None,
            provider_seen_ms: None,
            next_check_at: None,
            check_attempts: 0,
            data: ProviderData::default(),
            unclear: None,
            metadata: Metadata::new(),
            previous_session_id: None,
            next_session_id: None,
            start_options: StartOptions::new(),
            redaction: None,
        }
    }
}

/// One line of a session's append-only history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub session_id: SessionId,
    /// The session version this change produced: unique per session, orders the history.
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub from: Status,
    pub to: Status,
    pub provider_status: Option<String>,
    pub source: Source,
    /// Why, in a word or two: `overturned`, `rejected`, `deadline`, `canceled_by_app`...
    pub reason: Option<String>,
    /// The provider's name for the webhook event that caused it (`REVIEWED`,
    /// `identity.verification_session.verified`, ...), when a webhook did and named one.
    #[serde(default)]
    pub provider_event: Option<String>,
}

impl HistoryEntry {
    /// The first entry of every session (its first version): it was created, by the app.
    pub fn created(session: &Session) -> Self {
        HistoryEntry {
            session_id: session.id.clone(),
            version: 1,
            at: session.created_at,
            from: Status::Created,
            to: Status::Created,
            provider_status: None,
            source: Source::App,
            reason: Some("created".into()),
            provider_event: None,
        }
    }
}

/// docs/api.md: 1-128 chars of `[A-Za-z0-9._:@-]`.
pub fn is_valid_user_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:@-".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_reject_other_shapes() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert!(SessionId::parse("ses_short").is_none());
        assert!(SessionId::parse("xyz_aaaaaaaaaaaaaaaaaaaaaaaaaa").is_none());
        assert!(SessionId::parse("ses_AAAAAAAAAAAAAAAAAAAAAAAAAA").is_none());
    }

    #[test]
    fn user_ids_follow_the_contract() {
        assert!(is_valid_user_id("user-42"));
        assert!(is_valid_user_id("a.b_c:d@e-f"));
        assert!(!is_valid_user_id(""));
        assert!(!is_valid_user_id("has space"));
        assert!(!is_valid_user_id(&"x".repeat(129)));
        assert!(!is_valid_user_id("ünïcode"));
    }
}
