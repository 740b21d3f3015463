//! What outbound events are made of: the event as stored (its body exactly as sent), the
//! endpoints a tenant registers, and one delivery of an event to one endpoint with its attempts.

use crate::session::{SessionId, Status};
use time::OffsetDateTime;

/// Every event type (docs/events.md#types). A type always has the same `data` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SessionCreated,
    SessionPending,
    SessionProcessing,
    SessionVerified,
    SessionFailed,
    SessionExpired,
    SessionCanceled,
    /// A session left a decision (verified or failed): overturned by a review or a reset at the
    /// provider. Its new status is in the session.
    SessionDecisionOverturned,
    /// Prove's Identity Manager reported a change to the verified phone number.
    SessionReverificationRecommended,
    /// A verified user proved again that they are that person (Passbase).
    UserReauthenticated,
    /// The app had the session's personal data erased: the session as redaction left it.
    SessionRedacted,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::SessionCreated,
        EventType::SessionPending,
        EventType::SessionProcessing,
        EventType::SessionVerified,
        EventType::SessionFailed,
        EventType::SessionExpired,
        EventType::SessionCanceled,
        EventType::SessionDecisionOverturned,
        EventType::SessionReverificationRecommended,
        EventType::UserReauthenticated,
        EventType::SessionRedacted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session.created",
            EventType::SessionPending => "session.pending",
            EventType::SessionProcessing => "session.processing",
            EventType::SessionVerified => "session.verified",
            EventType::SessionFailed => "session.failed",
            EventType::SessionExpired => "session.expired",
            EventType::SessionCanceled => "session.canceled",
            EventType::SessionDecisionOverturned => "session.decision_overturned",
            EventType::SessionReverificationRecommended => "session.reverification_recommended",
            EventType::UserReauthenticated => "user.reauthenticated",
            EventType::SessionRedacted => "session.redacted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event of a session reaching `status`.
    pub fn of_status(status: Status) -> Self {
        match status {
            Status::Created => EventType::SessionCreated,
            Status::Pending => EventType::SessionPending,
            Status::Processing => EventType::SessionProcessing,
            Status::Verified => EventType::SessionVerified,
            Status::Failed => EventType::SessionFailed,
            Status::Expired => EventType::SessionExpired,
            Status::Canceled => EventType::SessionCanceled,
        }
    }
}

/// One event, as stored and as sent: `body` is the exact JSON every delivery of it sends (a
/// resend sends the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_` + 26 characters: the change's time (sortable) and a digest of the change.
    pub id: String,
    pub tenant: String,
    pub event_type: EventType,
    pub session_id: Option<SessionId>,
    /// When the change happened (not when the event was stored or sent).
    pub created_at: OffsetDateTime,
    pub body: String,
}

/// Where a tenant wants events sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `ep_` + 26 random characters.
    pub id: String,
    pub tenant: String,
    pub url: String,
    /// The types it wants; empty: every type.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why it is disabled: `disabled_by_app`, `gone` (it answered 410), `failing` (for days).
    pub disabled_reason: Option<String>,
    /// The signing secret, sealed (`seal`): the table never holds it in the clear.
    pub secret: String,
    /// The secret before the last rotation, sealed, and until when it still signs beside the
    /// new one.
    pub previous_secret: Option<(String, OffsetDateTime)>,
    /// Since when every attempt to it has failed (`None`: its last attempt succeeded).
    pub failing_since: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Optimistic concurrency, as sessions.
    pub version: u64,
}

impl Endpoint {
    /// Whether an event of `t` goes to this endpoint.
    pub fn wants(&self, t: EventType) -> bool {
        self.enabled && (self.event_types.is_empty() || self.event_types.contains(&t))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// Not delivered yet: due at `next_at` (or leased by an attempt in flight).
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// The schedule ran out, the endpoint answered 410 or is disabled or gone.
    Failed,
}

impl OutboundState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundState::Pending => "pending",
            OutboundState::Delivered => "delivered",
            OutboundState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One attempt to deliver, as the API shows it: never a response body, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub at: OffsetDateTime,
    /// The HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, in a few words (`timeout`, `connect`, `refused: private address`, ...).
    pub error: Option<String>,
}

/// The most attempts a delivery keeps (the schedule's eight, and resends'); the oldest go first.
pub const MAX_ATTEMPTS_KEPT: usize = 20;

/// Which delivery: an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboundKey {
    pub tenant: String,
    pub event_id: String,
    pub endpoint_id: String,
}

/// An event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundDelivery {
    pub key: OutboundKey,
    pub state: OutboundState,
    /// Every attempt kept, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// Attempts since it was created or last resent: where it stands in the schedule.
    pub round: u32,
    /// When it is due (pending only).
    pub next_at: Option<OffsetDateTime>,
    /// Why it failed for good, when it did.
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
}

impl OutboundDelivery {
    /// A delivery due now.
    pub fn new(key: OutboundKey, now: OffsetDateTime) -> Self {
        OutboundDelivery {
            key,
            state: OutboundState::Pending,
            attempts: Vec::new(),
            round: 0,
            next_at: Some(now),
            reason: None,
            created_at: now,
        }
    }
}

/// How long events and their deliveries are kept (DynamoDB's TTL removes them after).
pub const EVENT_RETENTION: time::Duration = time::Duration::days(30);
