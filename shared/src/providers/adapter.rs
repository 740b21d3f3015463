//! The seam every provider implements. The generic flows (`flows::start`, `flows::refresh`,
//! `flows::webhook`, `flows::link`) drive each provider through it and name none. An adapter
//! never touches the store: it validates its provider's input, talks to its provider, and maps
//! what the provider says onto the session model; the flows store the result, under the state
//! machine, with the refs and deliveries that go with it.
//!
//! A provider is, in order of a session's life:
//! - **start**: `parse_start` (every bad field at once, before anything else), `start_claims`
//!   (refs known from the request), `start` (the provider call; the new session, its refs and
//!   what the app's client needs), and `replayed`/`reused` (the `client` again);
//! - **read**: `subject` (what to ask the provider about a session), `fetch` (the authoritative
//!   read), `judge` (that answer as a proposal for one session), `names` (the session an answer
//!   says it belongs to);
//! - **again** (optional): `resume` and `resumed` (a fresh client step for an open session),
//!   `retry_fields` (what of a start a retry starts again with);
//! - **link** (optional): `parse_link` and `link_claims`, for a provider whose client SDK yields
//!   its id after the session started;
//! - **bind** (optional): `parse_bind`, `awaits_bind` and `bind`, for a provider that asks the
//!   app for its own possession check (Prove Unify);
//! - **webhooks** (optional): a `Dialect`;
//! - **shape**: `view` (its fields on the session object);
//! - **verified data** (optional): `verified_data`, what the provider verified about the person,
//!   read live for the app and never kept.

use crate::error::Error;
use crate::secrets::SecretDoc;
use crate::session::{
    FailureTable, IdentityEvent, Polling, Proposal, Provider, ProviderData, Reauthentication,
    Session, SessionId,
};
use crate::verified::VerifiedRead;
use async_trait::async_trait;
use http::HeaderMap;
use serde_json::{Map, Value};
use std::any::Any;
use time::OffsetDateTime;

/// A value only the adapter that made it looks inside (a parsed start request, a provider's
/// answer): the flows carry it from one call of that adapter to the next.
pub type Opaque = Box<dyn Any + Send + Sync>;

/// An adapter's own value back out of an `Opaque` it made.
pub fn own<T: 'static>(value: &Opaque) -> Result<&T, Error> {
    value
        .downcast_ref::<T>()
        .ok_or_else(|| Error::Internal("an adapter was handed another adapter's value".into()))
}

/// What an adapter may use of the request it serves.
pub struct Cx<'a> {
    pub secrets: &'a SecretDoc,
    pub now: OffsetDateTime,
}

impl Cx<'_> {
    /// A provider's credentials (its part of the secret document), or `provider_not_configured`
    /// when the document has none for it.
    pub fn credentials<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
        &self,
        provider: &'static str,
    ) -> Result<std::sync::Arc<T>, Error> {
        self.secrets
            .provider_shared::<T>(provider)?
            .ok_or(Error::ProviderNotConfigured(provider))
    }

    /// `now` in milliseconds: when a provider read started (an older read never overwrites a
    /// newer one).
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A ref a session takes: a provider-side identity (an Authento user's track, a Prove identity,
/// a Stripe verification session) pointing at the session it belongs to. The adapter builds the
/// key (`<provider>#...`, never another provider's prefix); the flows claim it atomically with
/// the session write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    pub rule: ClaimRule,
    /// The delivery subject (`Inbound::subjects`) whose kept deliveries this ref now names: they
    /// came before any session had it, and are acted on once it is claimed. `None` for a
    /// provider that keeps none, or whose first read of the session is the truth anyway.
    pub kept: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRule {
    /// The key must point nowhere yet; if it does, the request is refused as `Taken` says.
    Free(Taken),
    /// The key points at this session from now on, instead of an older session of the tenant.
    Replace,
    /// One open session per key: an open session of the tenant under it is the answer instead of
    /// a new one; a finished one is replaced.
    Reuse,
}

/// How a `Free` claim on a taken key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// 409 with this message, which says nothing of whose the key is.
    Conflict(&'static str),
    /// The provider answered an id that is already in use: a provider error (502).
    ProviderError(&'static str),
}

/// A started verification, not stored yet.
pub struct Opening {
    /// The new session as the provider's answer left it (status, `provider_ref`, data,
    /// deadline); its first check is the flows' to set.
    pub session: Session,
    /// Refs learnt from the provider's answer (beside `start_claims`).
    pub claims: Vec<Claim>,
    /// What the app's client needs (`client` of the answer).
    pub client: Value,
    /// What a replay of this start must answer again (kept with the `Idempotency-Key`; never a
    /// secret, never personal data).
    pub replay: Option<String>,
    /// When a token in `client` was issued (a replay signs the same one again).
    pub issued_at: Option<i64>,
    /// An authoritative read made while starting, used if deliveries kept for the new refs are
    /// processed right away (no second read).
    pub read: Option<Fetched>,
}

/// A start answered again: by an `Idempotency-Key` replay, with what the first answer kept.
pub struct Again<'a> {
    pub issued_at: Option<i64>,
    pub replay: Option<&'a str>,
}

/// The `client` for an open session a `Reuse` claim found (or a resume asked for), and what a
/// replay of it needs.
pub struct Reused {
    pub client: Value,
    pub issued_at: Option<i64>,
    /// Kept with the `Idempotency-Key` for `replayed` (`Again::replay`).
    pub replay: Option<String>,
}

/// How `POST /v1/sessions/{id}/resume` gives the user of an open session a fresh client step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The provider has no way: why, for the app (409 `not_supported`).
    Unsupported(&'static str),
    /// Made here, without asking the provider (Authento's token, signed now).
    Here,
    /// From an authoritative read of the session, applied to it first (Stripe's fresh `url`).
    AfterRead,
}

/// A provider's answer to an authoritative read.
pub struct Fetched {
    pub answer: Opaque,
    /// When the read started (ms): an older read never overwrites what a newer one stored.
    pub started_ms: i64,
}

/// What a read says of one session.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub proposal: Proposal,
    /// Why, for the history, where the adapter knows better than the proposal.
    pub reason: Option<&'static str>,
    /// The provider's id for the user or flow, learnt from this read.
    pub provider_ref: Option<String>,
    /// The session's provider data after this read (kept only if the read is not stale).
    pub data: Option<ProviderData>,
    /// Refs that point at this session from now on (`Replace`), taken before the write.
    pub claims: Vec<Claim>,
}

impl Judgement {
    pub fn of(proposal: Proposal) -> Self {
        Self {
            proposal,
            reason: None,
            provider_ref: None,
            data: None,
            claims: Vec::new(),
        }
    }
}

#[async_trait]
pub trait Adapter: Send + Sync {
    /// Its registered name (`providers::ALL`).
    fn name(&self) -> &'static str;

    fn provider(&self) -> Provider {
        Provider::named(self.name())
    }

    /// How reconcile schedules its open sessions.
    fn polling(&self) -> Polling;

    /// Every word of the provider's that fails a session (its `status.rs` table), on the one
    /// vocabulary (docs/api.md#failure-codes); a word outside it is `unknown`.
    fn failure_codes(&self) -> FailureTable;

    /// A `POST /v1/sessions` body for this provider (`provider` included), validated: every bad
    /// field at once, no value echoed. Nothing is called or stored before this holds.
    fn parse_start(&self, body: &Map<String, Value>) -> Result<Opaque, Error>;

    /// Whether a start may name a `return_url` (docs/api.md#return-url), which `parse_start`
    /// then reads and hands the provider: `Err(why)` for a provider whose flow has no
    /// per-session place to send the user back to (the start is refused, naming the field).
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Err("this provider's flow takes no per-session return URL")
    }

    /// Refs a start takes that the request alone determines, resolved before the provider is
    /// called (a `Free` one taken, or a `Reuse` one open, answers without calling it).
    fn start_claims(&self, _tenant: &str, _input: &Opaque) -> Result<Vec<Claim>, Error> {
        Ok(Vec::new())
    }

    /// Starts the verification at the provider.
    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error>;

    /// The `client` of a start answered again for an `Idempotency-Key` replay.
    fn replayed(&self, cx: &Cx<'_>, session: &Session, again: &Again<'_>) -> Result<Value, Error>;

    /// What of a start request the `client` for a reused session follows (Authento's
    /// `user_type` and `lang`), taken before `start` consumes the input; `None`: nothing.
    fn reuse_request(&self, _input: &Opaque) -> Option<String> {
        None
    }

    /// The `client` for an open session a `Reuse` claim found, for the request `reuse_request`
    /// described.
    fn reused(
        &self,
        _cx: &Cx<'_>,
        _session: &Session,
        _request: Option<&str>,
    ) -> Result<Reused, Error> {
        Err(Error::Internal("this provider reuses no session".into()))
    }

    /// How `POST /v1/sessions/{id}/resume` is answered for its open sessions. Default: it
    /// cannot be.
    fn resume(&self) -> Resume {
        Resume::Unsupported(
            "this provider has no way to give the user a new step of an open session: cancel it and retry it",
        )
    }

    /// The `client` of an open session again, fresh where the provider makes a new one
    /// (`Resume::Here`; or `Resume::AfterRead`, with that read, already applied to `session`).
    /// `Conflict` when the provider's state allows no new step now, saying why.
    fn resumed(
        &self,
        _cx: &Cx<'_>,
        _session: &Session,
        _read: Option<&Opaque>,
    ) -> Result<Reused, Error> {
        Err(Error::Internal("this provider resumes no session".into()))
    }

    /// The fields of its start request that a retry (`POST /v1/sessions/{id}/retry`) starts
    /// again with unless the retry's body gives them: settings of the flow, never personal data
    /// (a retry gives that again), kept with the session as validated. Default: none. A
    /// `return_url` is kept besides wherever `takes_return_url` (not named here).
    fn retry_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// What to ask the provider about this session; `None`: nothing yet (it is not linked).
    fn subject(&self, session: &Session) -> Option<String>;

    /// The provider's authoritative state of `subject` (for `session`, when there is one).
    async fn fetch(
        &self,
        cx: &Cx<'_>,
        subject: &str,
        session: Option<&Session>,
    ) -> Result<Opaque, Error>;

    /// What an answer of `fetch` means for one session.
    fn judge(&self, cx: &Cx<'_>, answer: &Opaque, session: &Session) -> Result<Judgement, Error>;

    /// The session an answer says it belongs to (e.g. our reference in the provider's metadata).
    fn names(&self, _answer: &Opaque) -> Option<SessionId> {
        None
    }

    /// The app canceled an open session: tell the provider, for a provider whose flow would go on
    /// otherwise (its page still open to the user). Called before the session is marked
    /// canceled: a failure leaves the session as it was, and the app may retry. Default: the
    /// provider has nothing to be told.
    async fn cancel(&self, _cx: &Cx<'_>, _session: &Session) -> Result<(), Error> {
        Ok(())
    }

    /// `POST /v1/sessions/{id}/link`: the provider-side id the client SDK reported, validated;
    /// `None` when this provider takes no link.
    fn parse_link(&self, _body: &Map<String, Value>) -> Option<Result<String, Error>> {
        None
    }

    /// The refs a link to `subject` takes.
    fn link_claims(&self, _subject: &str) -> Vec<Claim> {
        Vec::new()
    }

    /// `POST /v1/sessions/{id}/bind`: the app's own possession check passed, for what the body
    /// names (Prove Unify's customer-supplied possession: the number), validated; `None` when
    /// this provider takes no bind.
    fn parse_bind(&self, _body: &Map<String, Value>) -> Option<Result<Opaque, Error>> {
        None
    }

    /// Whether the session waits for a bind: its provider asked for the app's own check.
    fn awaits_bind(&self, _session: &Session) -> bool {
        false
    }

    /// Tells the provider the app's check passed (what `parse_bind` made): its answer, of the
    /// kind `fetch` gives, for `judge`.
    async fn bind(
        &self,
        _cx: &Cx<'_>,
        _session: &Session,
        _input: Opaque,
    ) -> Result<Opaque, Error> {
        Err(Error::Internal("this provider takes no bind".into()))
    }

    /// Its webhooks, if it sends any.
    fn webhook(&self) -> Option<&dyn Dialect> {
        None
    }

    /// Its own fields on the session object (`verification_type`, `score`, ...).
    fn view(&self, _session: &Session, _out: &mut Map<String, Value>) {}

    /// Whether its API lets the gateway ask it to delete a redacted user's records
    /// (`delete_data`); `false`: the redacted session says `provider_deletion: unsupported`.
    fn deletes_data(&self) -> bool {
        false
    }

    /// Asks the provider to delete its records named by `reference` (a redaction: Prove's
    /// identity, Stripe's VerificationSession). Done, or an error (retried with backoff).
    async fn delete_data(&self, _cx: &Cx<'_>, _reference: &str) -> Result<(), Error> {
        Err(Error::Internal("this provider deletes nothing".into()))
    }

    /// Whether the session object shows the identity events recorded on the session.
    fn shows_identity_events(&self) -> bool {
        false
    }

    /// What the provider verified about the person of a `verified` session, read from it now and
    /// mapped to the one shape (`GET /v1/sessions/{id}/verified_data`). The answer is handed to
    /// the app and dropped: never stored, never logged, never quoted in an error. Default: the
    /// provider offers none through the gateway (422 `not_supported`).
    async fn verified_data(&self, _cx: &Cx<'_>, _session: &Session) -> Result<VerifiedRead, Error> {
        Err(Error::NotSupported(format!(
            "{} sessions offer no verified data through the gateway",
            self.name()
        )))
    }
}

/// A provider's webhooks: authenticity on the raw request, the events in it, and what an event
/// means. Recording, deduplication, matching, retries and settling are the flows'.
pub trait Dialect: Send + Sync {
    /// Whether the request is the provider's, checked on its exact bytes (constant time) before
    /// anything is parsed. `InvalidSignature` otherwise, whatever the reason.
    fn authenticate(
        &self,
        cx: &Cx<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Authentic, Error>;

    /// The events of an authentic body, or why the gateway cannot use it (it is kept and
    /// answered 2xx: the provider would not retry a 4xx any better).
    fn events(&self, authentic: &Authentic) -> Result<Vec<Inbound>, &'static str>;

    /// What acting on an event means.
    fn action(&self) -> Action;

    /// The ref keys that name the sessions a subject of its events concerns.
    fn refs(&self, subject: &str) -> Vec<String>;

    /// The provider's name for a recorded event (for the session's history), if it names one.
    fn event_name(&self, _event: &Event<'_>) -> Option<String> {
        None
    }

    /// `Action::Reread`: what to read for a recorded event.
    fn subject(&self, _event: &Event<'_>) -> Result<String, Error> {
        Err(Error::Internal(
            "this provider reads nothing for its events".into(),
        ))
    }

    /// `Action::Reread`, once the read is applied: a reauthentication the event reports.
    fn reauthentication(&self, _event: &Event<'_>, _session: &Session) -> Option<Reauthentication> {
        None
    }

    /// `Action::Record`: the identity event to record on the session, and the session's provider
    /// data after it (`None`: unchanged).
    fn record(&self, _event: &Event<'_>, _session: &Session) -> Result<Recording, Error> {
        Err(Error::Internal("this provider records no events".into()))
    }
}

/// An authentic request.
pub struct Authentic {
    /// The body the events are read from (Passbase's, decrypted).
    pub body: Vec<u8>,
    /// A token that may sign one body only (Prove): the flows bind it to this body.
    pub token: Option<TokenUse>,
}

/// A signed token presented with a delivery: its id (never the token) and when it expires.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub id: String,
    pub expires: OffsetDateTime,
}

/// One event of a delivery, in the form it is recorded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The provider's event id; or, when it has none, an id derived from the content
    /// (`content_id`): such a delivery is a duplicate only while the sessions it concerns stand
    /// where it left them.
    pub event_id: String,
    pub content_id: bool,
    /// Whom it is about, in the provider's terms (a user, an identity, a customer), in order of
    /// preference: `Dialect::refs` turns each into the ref keys that name its sessions, and it
    /// is kept under them until one does.
    pub subjects: Vec<String>,
    /// What acting on it later needs, in a minimal form (never personal data).
    pub payload: String,
    /// The event's name, for the log.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The event says "read again": the authoritative read is applied to each session its
    /// subjects name. `without_session`: read even when none does (the answer may name one).
    Reread { without_session: bool },
    /// The event itself is the news: recorded on the first session its subjects name.
    Record,
}

/// A recorded event, as the flows hand it back.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub id: &'a str,
    pub payload: &'a str,
    pub received_at: OffsetDateTime,
}

/// An identity event to record, and the session's data after it.
#[derive(Debug, Clone)]
pub struct Recording {
    pub event: IdentityEvent,
    pub data: Option<ProviderData>,
}
