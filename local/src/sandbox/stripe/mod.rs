//! Stripe Identity simulator: an independent implementation of the v1 VerificationSessions API
//! (`/v1/identity/verification_sessions`, form-encoded bodies, `sk_test_` keys, Stripe's error
//! bodies, `Idempotency-Key`), the hosted verification page each session's `url` points at
//! (where a tester plays the user and picks the outcome, as in Stripe's test mode), signed
//! webhook events (`Stripe-Signature`), and `/control/*` routes that let tests drive and break
//! it. It does not use the gateway's Stripe adapter: it is the oracle that adapter is tested
//! against.
//!
//! Mounted under `/sandbox/stripe`, the API base the gateway and the official SDKs are given is
//! `{base}/sandbox/stripe` (they add `/v1/...`). Facts Stripe does not document are marked
//! `// ASSUMPTION:`.

mod api;
mod control;
mod endpoints;
mod events;
pub mod form;
mod page;
mod params;
pub mod session;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

pub use events::EVENT_TYPES;
use events::{Attempt, Event, Secret};
use session::{Expand, Redaction, Report, Session, Status};

/// The API version the simulated account renders events with (the one stripe-python 16.1.0 and
/// stripe-node 23.1.0 pin).
pub const API_VERSION: &str = "2026-10-28.endive";

/// ASSUMPTION: Stripe's delivery timeout is not published.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of one simulated Stripe account (test mode).
#[derive(Clone, Debug)]
pub struct StripeSimConfig {
    /// The secret API key (`sk_test_...`) the API accepts.
    pub secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_...`).
    pub webhook_secret: String,
    /// The webhook endpoint (the gateway's `/v1/webhooks/stripe`); `None` = deliver nothing.
    pub webhook_url: Option<String>,
    /// Where the simulator is mounted, as callers reach it: sessions' `url`s start with it.
    pub base_url: String,
    /// How long a session submitted on its page stays `processing` before its outcome.
    pub processing_ms: u64,
}

/// The simulator; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct StripeSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: StripeSimConfig,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Faults {
    fail_next: u32,
    fail_status: u16,
    delay_next: u32,
    delay_ms: u64,
}

/// A POST's idempotency record: its parameters and, once it has run, its answer.
struct IdempotencyEntry {
    fingerprint: Value,
    created: Instant,
    answer: Option<(u16, Value)>,
}

struct SimState {
    sessions: HashMap<String, Session>,
    /// Page token -> session id (stale tokens stay, to say the link was used).
    pages: HashMap<String, String>,
    seq: u64,
    events: Vec<Event>,
    idempotency: HashMap<String, IdempotencyEntry>,
    faults: Faults,
    requests: BTreeMap<String, u64>,
    webhook_url: Option<String>,
    enabled_events: Vec<String>,
    /// Current secret first, then rolled-away ones that still sign for a while.
    secrets: Vec<Secret>,
    processing_ms: u64,
}

/// Why an action on a session is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// The session's state does not allow it; the message says why.
    State(String),
    Invalid(String),
}

/// What a tester (page) or a test (control route) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The user submits: `requires_input` -> `processing`.
    Submit,
    /// Every check passes (submitting first if needed): -> `verified`.
    Verify,
    /// A check fails (or, for session-level codes, the user stops): -> `requires_input`.
    Fail {
        code: String,
        reason: Option<String>,
    },
    /// The user leaves without submitting.
    Abandon,
    /// The integrator cancels (same as the API).
    Cancel,
    /// Stripe finishes a redaction: placeholders replace the data.
    FinishRedaction,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Stripe-style id: prefix and 24 alphanumerics (e.g. `vs_1Pgc76B7WZ01zgkWBdQi8PTU`).
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

impl StripeSim {
    pub fn new(config: StripeSimConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            // Stripe counts a redirect as a failed delivery.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client with default TLS settings");
        let state = SimState {
            sessions: HashMap::new(),
            pages: HashMap::new(),
            seq: 0,
            events: Vec::new(),
            idempotency: HashMap::new(),
            faults: Faults::default(),
            requests: BTreeMap::new(),
            webhook_url: config.webhook_url.clone(),
            enabled_events: events::default_enabled_events(),
            secrets: vec![Secret {
                value: config.webhook_secret.clone(),
                expires: None,
            }],
            processing_ms: config.processing_ms,
        };
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                state: Mutex::new(state),
            }),
        }
    }

    /// Routes relative to the mount point (mount with `Router::nest`).
    pub fn router(&self) -> Router {
        use api::unrecognized_url;
        use endpoints::*;
        const SESSIONS: &str = "/v1/identity/verification_sessions";
        Router::new()
            .route(SESSIONS, post(create).get(list).fallback(unrecognized_url))
            .route(
                &format!("{SESSIONS}/{{session}}"),
                get(retrieve).post(update).fallback(unrecognized_url),
            )
            .route(
                &format!("{SESSIONS}/{{session}}/cancel"),
                post(cancel).fallback(unrecognized_url),
            )
            .route(
                &format!("{SESSIONS}/{{session}}/redact"),
                post(redact).fallback(unrecognized_url),
            )
            .route("/verify/{token}", get(page::show).post(page::act))
            .route("/control/sessions/{session}", post(control::session))
            .route("/control/events", get(control::list_events))
            .route("/control/events/{event}/resend", post(control::resend))
            .route("/control/faults", post(control::faults))
            .route("/control/settings", post(control::settings))
            .route("/control/webhook_secret/roll", post(control::roll_secret))
            .route("/control/stats", get(control::stats))
            .fallback(unrecognized_url)
            .with_state(self.clone())
    }

    /// The secret API key the simulated account accepts.
    pub fn secret_key(&self) -> &str {
        &self.inner.config.secret_key
    }

    /// The webhook signing secret in use now (after a roll, the new one).
    pub fn webhook_secret(&self) -> String {
        self.state().secrets[0].value.clone()
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state().webhook_url = url;
    }

    /// API requests received at one endpoint (e.g. `GET /v1/identity/verification_sessions/{session}`),
    /// refused ones included.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.state().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// The person behind a verification session the simulator knows: what its verified outputs
    /// and report hold once it is verified.
    pub fn person(&self, session_id: &str) -> Option<crate::sandbox::person::FakePerson> {
        self.state()
            .sessions
            .contains_key(session_id)
            .then(|| crate::sandbox::person::FakePerson::of(session_id))
    }

    /// `Stripe-Signature` for `body` at `timestamp`, with every secret active now.
    pub fn sign(&self, body: &str, timestamp: i64) -> String {
        let secrets = events::active(&self.state().secrets, SystemTime::now());
        events::signature_header(&secrets, timestamp, body)
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored.
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn base(&self) -> &str {
        self.inner.config.base_url.trim_end_matches('/')
    }

    /// The session as the API renders it, unexpanded.
    fn render(&self, s: &Session, expand: Expand) -> Value {
        s.to_json(self.base(), expand)
    }

    /// Records an event about `session` as it is now; delivery is the caller's.
    fn emit(
        &self,
        st: &mut SimState,
        session_id: &str,
        event_type: &str,
        request: Option<(&str, Option<&str>)>,
    ) -> String {
        let object = self.render(&st.sessions[session_id], Expand::default());
        let id = new_id("evt_");
        let pending = u32::from(
            st.webhook_url.is_some() && events::is_enabled(&st.enabled_events, event_type),
        );
        let body = events::event_body(
            &id,
            event_type,
            now_secs(),
            API_VERSION,
            object,
            request,
            pending,
        );
        st.events.push(Event {
            id: id.clone(),
            event_type: event_type.to_owned(),
            session_id: session_id.to_owned(),
            body,
            attempts: Vec::new(),
        });
        id
    }

    /// Applies an action; answers the session's new state and the events it caused (each
    /// showing the session as it was right after its own change).
    /// `request` is the API request that caused it (`Request-Id`, `Idempotency-Key`), if any.
    pub fn act(
        &self,
        id: &str,
        action: &Action,
        request: Option<(&str, Option<&str>)>,
    ) -> Result<(Value, Vec<String>), Refusal> {
        if let Action::Fail { code, .. } = action
            && code == "abandoned"
        {
            return self.act(id, &Action::Abandon, request);
        }
        let mut guard = self.state();
        let st = &mut *guard;
        let session = st.sessions.get(id).ok_or(Refusal::NotFound)?;
        let status = session.status;
        let redaction = session.redaction;
        let redacting = redaction.is_some();
        let open = status == Status::RequiresInput && !redacting;
        let mut emitted = Vec::new();
        let refuse = |what: &str| {
            Err(Refusal::State(format!(
                "cannot {what} a VerificationSession in status {}{}",
                status.as_str(),
                if redacting { " (being redacted)" } else { "" }
            )))
        };
        let mut emit = |st: &mut SimState, kind: &str| {
            let kind = format!("identity.verification_session.{kind}");
            emitted.push(self.emit(st, id, &kind, request));
        };
        match action {
            Action::Submit => {
                if !open {
                    return refuse("submit");
                }
                submit(st, id);
                emit(st, "processing");
            }
            Action::Verify => {
                match status {
                    _ if open => {
                        submit(st, id);
                        emit(st, "processing");
                    }
                    Status::Processing => {}
                    _ => return refuse("verify"),
                }
                let s = st.sessions.get_mut(id).expect("checked");
                s.status = Status::Verified;
                s.last_error = None;
                s.last_report = Some(Report {
                    id: new_id("vr_"),
                    created: now_secs(),
                    error_code: None,
                });
                emit(st, "verified");
            }
            Action::Fail { code, reason } => {
                if code.is_empty()
                    || code.len() > 64
                    || !code
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                {
                    return Err(Refusal::Invalid(
                        "error_code must be 1-64 characters of [a-z0-9_]".into(),
                    ));
                }
                let session_level = session::is_session_level(code);
                match status {
                    // The user stops before submitting (consent declined, no camera...).
                    _ if open && session_level => {}
                    _ if open => {
                        submit(st, id);
                        emit(st, "processing");
                    }
                    // A check can fail only while processing.
                    Status::Processing if !session_level => {}
                    _ => return refuse("fail"),
                }
                let s = st.sessions.get_mut(id).expect("checked");
                s.status = Status::RequiresInput;
                let reason = reason.clone().unwrap_or_else(|| session::reason(code));
                s.last_error = Some((code.clone(), reason));
                if !session_level {
                    s.last_report = Some(Report {
                        id: new_id("vr_"),
                        created: now_secs(),
                        error_code: Some(code.clone()),
                    });
                }
                // A new attempt gets a fresh client_secret and url (the old ones were used).
                renew_credentials(st, id);
                // ASSUMPTION: session-level codes (the user stopped before submitting) emit
                // `requires_input` like a failed check.
                emit(st, "requires_input");
            }
            // ASSUMPTION: leaving changes no status, keeps the url and emits nothing (whether
            // Stripe emits anything is not documented); `last_error` says `abandoned`.
            Action::Abandon => {
                if !open {
                    return refuse("abandon");
                }
                let s = st.sessions.get_mut(id).expect("checked");
                s.last_error = Some(("abandoned".into(), session::reason("abandoned")));
            }
            Action::Cancel => {
                if status != Status::RequiresInput {
                    return refuse("cancel");
                }
                st.sessions.get_mut(id).expect("checked").status = Status::Canceled;
                emit(st, "canceled");
            }
            Action::FinishRedaction => {
                if redaction != Some(Redaction::Processing) {
                    return Err(Refusal::State(
                        "the VerificationSession has no redaction in progress".into(),
                    ));
                }
                st.sessions.get_mut(id).expect("checked").redaction = Some(Redaction::Redacted);
                emit(st, "redacted");
            }
        }
        let view = self.render(&st.sessions[id], Expand::default());
        Ok((view, emitted))
    }

    /// Delivers events one after another to the webhook endpoint (those it is subscribed to,
    /// unless `force`). Per event: the endpoint's status (0: no answer) and the signature sent,
    /// or `None` when it was not sent.
    async fn deliver(
        &self,
        ids: &[String],
        force: bool,
        timestamp: Option<i64>,
    ) -> Vec<Option<(u16, String)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let target = {
                let st = self.state();
                st.events.iter().find(|e| &e.id == id).and_then(|e| {
                    let wanted = force || events::is_enabled(&st.enabled_events, &e.event_type);
                    let url = st.webhook_url.clone().filter(|_| wanted)?;
                    Some((
                        url,
                        e.body.clone(),
                        events::active(&st.secrets, SystemTime::now()),
                    ))
                })
            };
            let Some((url, body, secrets)) = target else {
                out.push(None);
                continue;
            };
            // Every attempt is signed anew, with its own timestamp.
            let t = timestamp.unwrap_or_else(now_secs);
            let signature = events::signature_header(&secrets, t, &body);
            let sent = self
                .inner
                .http
                .post(&url)
                .header("content-type", "application/json; charset=utf-8")
                // ASSUMPTION: the user agent third-party captures show.
                .header(
                    "user-agent",
                    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                )
                .header("stripe-signature", &signature)
                .body(body)
                .send()
                .await;
            let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
            if let Some(e) = self.state().events.iter_mut().find(|e| &e.id == id) {
                e.attempts.push(Attempt {
                    at: now_secs(),
                    status,
                });
            }
            out.push(Some((status, signature)));
        }
        out
    }

    /// Delivers in the background, in order, as Stripe does after the user's or Stripe's own
    /// changes.
    // ASSUMPTION: no automatic retry of failed deliveries (Stripe retries over hours); tests
    // resend with `/control/events/{id}/resend`.
    fn deliver_later(&self, ids: Vec<String>, delay: Duration) {
        if ids.is_empty() {
            return;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim.deliver(&ids, false, None).await;
        });
    }

    /// A signed copy of an event as it would be delivered now (or at `timestamp`).
    fn signed(&self, id: &str, timestamp: Option<i64>) -> Option<Value> {
        let st = self.state();
        let e = st.events.iter().find(|e| e.id == id)?;
        let t = timestamp.unwrap_or_else(now_secs);
        let secrets = events::active(&st.secrets, SystemTime::now());
        Some(json!({
            "id": e.id,
            "type": e.event_type,
            "body": e.body,
            "stripe_signature": events::signature_header(&secrets, t, &e.body),
        }))
    }
}

fn submit(st: &mut SimState, id: &str) {
    let s = st.sessions.get_mut(id).expect("checked");
    s.status = Status::Processing;
    // ASSUMPTION: a new submission clears the previous attempt's error.
    s.last_error = None;
}

/// A fresh `client_secret` and page token for a session back in `requires_input`: the
/// previous attempt's links are spent.
fn renew_credentials(st: &mut SimState, id: &str) {
    st.sessions
        .get_mut(id)
        .expect("checked")
        .live_tokens
        .clear();
    fresh_page(st, id);
}

/// One more `client_secret` and page token for the user's current attempt.
// ASSUMPTION: Stripe documents that a retrieve gives "a fresh URL" and that each is single-use;
// whether a retrieve spends the links handed out before is not documented. Here they stay good
// until the user makes an attempt through any of them (a gateway's own reads must not spend the
// link its app already handed to the user).
fn fresh_page(st: &mut SimState, id: &str) {
    let token = new_id("vp_");
    let s = st.sessions.get_mut(id).expect("checked");
    s.page_token = token.clone();
    s.live_tokens.push(token.clone());
    // ASSUMPTION: test-mode secrets read like the documented live ones, `_secret_test_`.
    s.client_secret = format!("{id}_secret_test_{}", &new_id("")[..24]);
    st.pages.insert(token, id.to_owned());
}
