//! Authento simulator: an independent implementation of Authento's documented API
//! (signed user-info reads, the hosted verification page opened with a customer-signed JWT,
//! and signed webhooks), plus `/control/*` routes that let tests drive and break it.
//!
//! Facts the public docs do not state are marked `// ASSUMPTION:`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::html_escape;
use super::person::FakePerson;

type HmacSha256 = Hmac<Sha256>;

const HEADER_API_KEY: &str = "x-authento-apikey";
const HEADER_TS: &str = "x-authento-ts";
const HEADER_SIGNATURE: &str = "x-authento-signature";
const HEADER_DIGEST: &str = "x-payload-digest";
const JWT_AUDIENCE: &str = "Authento";
// ASSUMPTION: Authento accepts request timestamps within ±5 minutes of its clock.
const TS_TOLERANCE_MS: u64 = 5 * 60 * 1000;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

// Webhook event names, exact spellings from the docs (the misspelled ADDRRESS_* included):
// INIT, PENDING, REVIEWED, ON_HOLD, INFO_UPDATED, RESET, PERMISSION_GRANTED,
// PERMISSION_UPDATED, ADDRRESS_LINKED, ADDRRESS_UNLINKED. The simulator emits the first
// four it has flows for: INIT, PENDING, REVIEWED and RESET.

/// Settings of one simulated Authento customer account.
#[derive(Clone, Debug)]
pub struct AuthentoSimConfig {
    pub api_key: String,
    pub api_secret: String,
    pub jwt_secret: String,
    pub webhook_secret: String,
    /// When `Some`, the JWT `iss` must equal it.
    pub issuer: Option<String>,
    /// The gateway's `/v1/webhooks/authento`; `None` = never deliver.
    pub webhook_url: Option<String>,
    /// userinfo requests allowed per 1-second window.
    // ASSUMPTION: 0 disables rate limiting (handy for load-free unit tests).
    pub rate_limit_per_sec: u32,
}

/// The simulator; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct AuthentoSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthentoSimConfig,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

impl AuthentoSim {
    pub fn new(config: AuthentoSimConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .expect("reqwest client with default TLS settings");
        let state = SimState {
            webhook_url: config.webhook_url.clone(),
            ..SimState::default()
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
        Router::new()
            .route("/v1/userinfo/basic", get(userinfo_basic))
            .route("/v1/userinfo/full", get(userinfo_full))
            .route("/verify/token", get(verify_page))
            .route("/verify/action", post(verify_action))
            .route("/control/users/{user_id}", post(control_user))
            .route("/control/faults", post(control_faults))
            .route("/control/stats", get(control_stats))
            .with_state(self.clone())
    }

    /// The local server learns its own port only after binding.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state().webhook_url = url;
    }

    /// userinfo requests received, refused ones included.
    pub fn userinfo_requests(&self) -> u64 {
        self.state().userinfo_requests
    }

    /// The person behind a user the simulator knows (by the JWT's `sub`): what `/userinfo/full`
    /// answers in `fullInfo`.
    pub fn person(&self, sub: &str) -> Option<FakePerson> {
        self.state()
            .users
            .contains_key(sub)
            .then(|| FakePerson::of(sub))
    }

    fn config(&self) -> &AuthentoSimConfig {
        &self.inner.config
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored.
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// Domain model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Unverified,
    Processing,
    InfoRequired,
    Verified,
    Rejected,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Unverified => "UNVERIFIED",
            Status::Processing => "PROCESSING",
            Status::InfoRequired => "INFO_REQUIRED",
            Status::Verified => "VERIFIED",
            Status::Rejected => "REJECTED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Track {
    Basic,
    Poa,
}

impl Track {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "BASIC" => Some(Track::Basic),
            "POA" => Some(Track::Poa),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Track::Basic => "BASIC",
            Track::Poa => "POA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum UserType {
    Individual,
    Corporate,
}

impl UserType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "INDIVIDUAL" => Some(UserType::Individual),
            "CORPORATE" => Some(UserType::Corporate),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Open,
    Submit,
    Approve,
    Reject,
    RequestInfo,
    Reset,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Action::Open),
            "submit" => Some(Action::Submit),
            "approve" => Some(Action::Approve),
            "reject" => Some(Action::Reject),
            "request_info" => Some(Action::RequestInfo),
            "reset" => Some(Action::Reset),
            _ => None,
        }
    }

    /// The status the track moves to; `None` leaves it as it is.
    fn target(self) -> Option<Status> {
        match self {
            // ASSUMPTION: opening keeps the track's status; a new track starts UNVERIFIED.
            Action::Open => None,
            Action::Submit => Some(Status::Processing),
            Action::Approve => Some(Status::Verified),
            Action::Reject => Some(Status::Rejected),
            Action::RequestInfo => Some(Status::InfoRequired),
            Action::Reset => Some(Status::Unverified),
        }
    }

    fn event(self) -> &'static str {
        match self {
            Action::Open => "INIT",
            Action::Submit => "PENDING",
            // ASSUMPTION: a request for more information is announced as REVIEWED
            // (the docs' ON_HOLD / INFO_UPDATED semantics are not described).
            Action::Approve | Action::Reject | Action::RequestInfo => "REVIEWED",
            Action::Reset => "RESET",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
struct StatusPair {
    basic: Status,
    poa: Status,
}

#[derive(Clone, Debug)]
struct User {
    /// Authento's own id (a cuid-like string), distinct from the customer's `sub`.
    authento_id: String,
    user_type: UserType,
    basic: Status,
    poa: Status,
    basic_opened: bool,
    poa_opened: bool,
    time_updated_ms: u64,
}

impl User {
    fn new(user_type: UserType, now_ms: u64) -> Self {
        User {
            authento_id: new_authento_id(),
            user_type,
            basic: Status::Unverified,
            poa: Status::Unverified,
            basic_opened: false,
            poa_opened: false,
            time_updated_ms: now_ms,
        }
    }

    fn status(&self) -> StatusPair {
        StatusPair {
            basic: self.basic,
            poa: self.poa,
        }
    }

    fn track_status(&self, track: Track) -> Status {
        match track {
            Track::Basic => self.basic,
            Track::Poa => self.poa,
        }
    }

    fn track_opened(&self, track: Track) -> bool {
        match track {
            Track::Basic => self.basic_opened,
            Track::Poa => self.poa_opened,
        }
    }

    fn opened_mut(&mut self, track: Track) -> &mut bool {
        match track {
            Track::Basic => &mut self.basic_opened,
            Track::Poa => &mut self.poa_opened,
        }
    }

    fn apply(&mut self, track: Track, action: Action, now_ms: u64) {
        *self.opened_mut(track) = true;
        if let Some(status) = action.target() {
            match track {
                Track::Basic => self.basic = status,
                Track::Poa => self.poa = status,
            }
        }
        self.time_updated_ms = now_ms;
    }
}

/// 25 lowercase alphanumerics starting with `c`, like the ids in Authento's examples.
fn new_authento_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("c{tail}")
}

#[derive(Default)]
struct SimState {
    users: HashMap<String, User>,
    webhook_url: Option<String>,
    userinfo_requests: u64,
    window: Option<(Instant, u32)>,
    faults: Faults,
    last_change_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
struct Faults {
    fail_next: u32,
    fail_status: u16,
    fail_delay_ms: u64,
    delay_next: u32,
    delay_ms: u64,
    /// The injected failures' `Retry-After` header, verbatim (any string, absurd ones included).
    retry_after: Option<String>,
    /// The injected failures' body: this many bytes instead of the usual error JSON.
    body_bytes: Option<usize>,
}

/// What the front checks decided for one userinfo request.
enum Gate {
    Proceed,
    RateLimited,
    Fault {
        status: StatusCode,
        delay: Duration,
        retry_after: Option<String>,
        body_bytes: Option<usize>,
    },
}

impl SimState {
    /// Milliseconds since the epoch, strictly increasing so that `timeUpdated` and webhook
    /// times order every change, even several within one millisecond.
    fn tick(&mut self) -> u64 {
        let next = now_ms().max(self.last_change_ms + 1);
        self.last_change_ms = next;
        next
    }

    /// Counts the request, then applies the rate limit and any injected failure.
    fn admit(&mut self, limit: u32) -> Gate {
        self.userinfo_requests += 1;
        if self.over_rate_limit(limit) {
            return Gate::RateLimited;
        }
        if self.faults.fail_next > 0 {
            self.faults.fail_next -= 1;
            return Gate::Fault {
                status: StatusCode::from_u16(self.faults.fail_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                delay: Duration::from_millis(self.faults.fail_delay_ms),
                retry_after: self.faults.retry_after.clone(),
                body_bytes: self.faults.body_bytes,
            };
        }
        Gate::Proceed
    }

    /// Fixed window that opens at the first request, so a burst is never split by a
    /// wall-clock second boundary.
    fn over_rate_limit(&mut self, limit: u32) -> bool {
        if limit == 0 {
            return false;
        }
        let now = Instant::now();
        let (start, count) = match self.window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => {
                (start, count + 1)
            }
            _ => (now, 1),
        };
        self.window = Some((start, count));
        count > limit
    }

    fn take_success_delay(&mut self) -> Duration {
        if self.faults.delay_next == 0 {
            return Duration::ZERO;
        }
        self.faults.delay_next -= 1;
        Duration::from_millis(self.faults.delay_ms)
    }

    /// Applies `action` to `sub`'s track (creating the user first) and signs the webhook.
    fn apply(
        &mut self,
        sub: &str,
        track: Track,
        action: Action,
        user_type: UserType,
        secret: &str,
    ) -> (StatusPair, SignedWebhook) {
        let now = self.tick();
        let user = self
            .users
            .entry(sub.to_owned())
            .or_insert_with(|| User::new(user_type, now));
        user.apply(track, action, now);
        let status = user.status();
        (
            status,
            SignedWebhook::new(action.event(), sub, status, now, secret),
        )
    }

    /// The page's open: INIT only on the first open of a track, decided under the same lock
    /// as the change so that two concurrent opens cannot both send it.
    fn open_page(&mut self, token: &PageToken, secret: &str) -> Option<SignedWebhook> {
        let opened = self
            .users
            .get(&token.sub)
            .is_some_and(|user| user.track_opened(token.track));
        if opened {
            return None;
        }
        let (_, webhook) = self.apply(
            &token.sub,
            token.track,
            Action::Open,
            token.user_type,
            secret,
        );
        Some(webhook)
    }
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn ms_to_secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// ASSUMPTION (shape): the docs only say the payload carries the event type and the latest
/// verification status; we send `{"event","userIdentifier","status","time"}` in that order.
#[derive(Serialize)]
struct WebhookPayload<'a> {
    event: &'a str,
    #[serde(rename = "userIdentifier")]
    user_identifier: &'a str,
    status: StatusPair,
    time: f64,
}

struct SignedWebhook {
    event: &'static str,
    body: String,
    digest: String,
}

impl SignedWebhook {
    fn new(event: &'static str, sub: &str, status: StatusPair, time_ms: u64, secret: &str) -> Self {
        let payload = WebhookPayload {
            event,
            user_identifier: sub,
            status,
            time: ms_to_secs(time_ms),
        };
        let body = serde_json::to_string(&payload).expect("payload serializes");
        // ASSUMPTION: "sha256 digest ... with the secret" means hex HMAC-SHA256 of the raw body.
        let digest = hmac_hex(secret.as_bytes(), body.as_bytes());
        SignedWebhook {
            event,
            body,
            digest,
        }
    }
}

/// Outcome of one delivery attempt.
#[derive(Clone, Copy, Default)]
struct Delivery {
    /// True when the gateway answered 2xx.
    delivered: bool,
    status: Option<u16>,
}

impl AuthentoSim {
    /// Posts the exact signed bytes once.
    // ASSUMPTION: no retries; the docs do not describe Authento's retry policy.
    async fn deliver(&self, webhook: &SignedWebhook) -> Delivery {
        let Some(url) = self.state().webhook_url.clone() else {
            tracing::debug!(
                event = webhook.event,
                "authento sim: no webhook url, not sent"
            );
            return Delivery::default();
        };
        let sent = self
            .inner
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(HEADER_DIGEST, &webhook.digest)
            .body(webhook.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                tracing::info!(event = webhook.event, %status, "authento sim: webhook sent");
                Delivery {
                    delivered: status.is_success(),
                    status: Some(status.as_u16()),
                }
            }
            Err(error) => {
                tracing::warn!(event = webhook.event, %error, "authento sim: webhook failed");
                Delivery::default()
            }
        }
    }

    /// Applies an action and, unless told otherwise, delivers its webhook.
    async fn act(
        &self,
        sub: &str,
        track: Track,
        action: Action,
        user_type: UserType,
        deliver: bool,
    ) -> (StatusPair, SignedWebhook, Delivery) {
        let secret = &self.config().webhook_secret;
        let (status, webhook) = self.state().apply(sub, track, action, user_type, secret);
        let delivery = if deliver {
            self.deliver(&webhook).await
        } else {
            Delivery::default()
        };
        (status, webhook, delivery)
    }
}

// ---------------------------------------------------------------------------------------------
// API: GET /v1/userinfo/{basic,full}
// ---------------------------------------------------------------------------------------------

fn api_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(json!({"success": false, "error": error}))).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn userinfo_basic(
    State(sim): State<AuthentoSim>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    userinfo(&sim, &uri, &headers, false).await
}

async fn userinfo_full(
    State(sim): State<AuthentoSim>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    userinfo(&sim, &uri, &headers, true).await
}

async fn userinfo(
    sim: &AuthentoSim,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    full: bool,
) -> Response {
    let gate = sim.state().admit(sim.config().rate_limit_per_sec);
    match gate {
        Gate::Proceed => {}
        Gate::RateLimited => return api_error(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        Gate::Fault {
            status,
            delay,
            retry_after,
            body_bytes,
        } => {
            tokio::time::sleep(delay).await;
            return injected_fault(status, retry_after, body_bytes);
        }
    }
    if !signature_is_valid(sim.config(), "GET", uri, headers) {
        // ASSUMPTION: bad key, signature and timestamp all answer the same 401.
        return api_error(StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let Some(sub) = requested_user(uri) else {
        // ASSUMPTION: a request naming no user is a 400.
        return api_error(StatusCode::BAD_REQUEST, "missing id");
    };
    let (user, delay) = {
        let mut state = sim.state();
        let Some(user) = state.users.get(&sub).cloned() else {
            // ASSUMPTION: unknown users answer 404 with this body.
            return api_error(StatusCode::NOT_FOUND, "user not found");
        };
        (user, state.take_success_delay())
    };
    tokio::time::sleep(delay).await;
    Json(json!({"success": true, "result": user_info(&sub, &user, full)})).into_response()
}

/// The user named by `id`, or by `userIdentifier` as in the official example.
fn requested_user(uri: &axum::http::Uri) -> Option<String> {
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(uri.query()?.as_bytes())
        .into_owned()
        .collect();
    pairs
        .get("id")
        .or_else(|| pairs.get("userIdentifier"))
        .filter(|id| !id.is_empty())
        .cloned()
}

/// Checks `X-AUTHENTO-*`: key, fresh timestamp, and HMAC over `TS + METHOD + FULL_URL`.
fn signature_is_valid(
    config: &AuthentoSimConfig,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key), Some(ts), Some(signature), Some(host)) = (
        header(HEADER_API_KEY),
        header(HEADER_TS),
        header(HEADER_SIGNATURE),
        header(header::HOST.as_str()),
    ) else {
        return false;
    };
    if !ct_eq(key, &config.api_key) || !timestamp_is_fresh(ts) {
        return false;
    }
    // The URL exactly as the client requested it: the router is nested under a prefix,
    // hence OriginalUri; the local server speaks plain http.
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let message = format!("{ts}{method}http://{host}{path_and_query}");
    // ASSUMPTION: the signature must be lower-case hex as documented; upper case is refused.
    ct_eq(
        &hmac_hex(config.api_secret.as_bytes(), message.as_bytes()),
        signature,
    )
}

fn timestamp_is_fresh(ts: &str) -> bool {
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    ts.parse::<u64>()
        .is_ok_and(|ts| ts.abs_diff(now_ms()) <= TS_TOLERANCE_MS)
}

/// The `result` object of a userinfo answer for the user `sub`.
fn user_info(sub: &str, user: &User, full: bool) -> Value {
    let mut result = json!({
        "id": user.authento_id,
        "type": user.user_type,
        "status": user.status(),
        // ASSUMPTION: every user has the docs' example personal data, whatever its status.
        "basicInfo": {
            "country": "AUT",
            "nonUS": true,
            "nonEU": false,
            "eighteenPlus": true,
            "pep": null,
        },
        "addresses": [],
        "questionnaires": [],
        "timeUpdated": ms_to_secs(user.time_updated_ms),
    });
    if full {
        // The documented individual shape (A5), with the user's fake person: a selfie and the
        // front of an identity card.
        let p = FakePerson::of(sub);
        result["fullInfo"] = json!({
            "firstName": p.first_name,
            "firstNameEn": p.first_name,
            "middleName": null,
            "middleNameEn": null,
            "lastName": p.last_name,
            "lastNameEn": p.last_name,
            "idDocs": [
                {"docType": "SELFIE", "docSubtype": null, "country": null, "number": null, "validUntil": null},
                {
                    "docType": "ID_CARD",
                    "docSubtype": "FRONT_SIDE",
                    "country": "AUT",
                    "number": p.document_number,
                    // ASSUMPTION: `validUntil` is a `YYYY-MM-DD` date (the docs' example is null).
                    "validUntil": p.document_expiry_text(),
                },
            ],
        });
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Hosted page: GET /verify/token, POST /verify/action
// ---------------------------------------------------------------------------------------------

/// The customer-signed JWT after verification.
struct PageToken {
    sub: String,
    track: Track,
    user_type: UserType,
}

#[derive(Deserialize)]
struct PageClaims {
    sub: String,
    vt: Option<String>,
    ut: Option<String>,
}

/// Verifies the JWT; the error is the reason shown to the user.
fn verify_jwt(config: &AuthentoSimConfig, token: &str) -> Result<PageToken, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[JWT_AUDIENCE]);
    // `exp` is optional in Authento's scheme (our gateway adds it): checked only when present.
    let mut required = vec!["aud", "sub"];
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    // ASSUMPTION: no clock leeway; simulator and gateway share one clock. `iat` is not checked.
    validation.leeway = 0;

    let key = DecodingKey::from_secret(config.jwt_secret.as_bytes());
    let claims = decode::<PageClaims>(token, &key, &validation)
        .map_err(|e| jwt_error_reason(e.kind()))?
        .claims;
    let vt = claims.vt.ok_or("missing claim: vt")?;
    let track = Track::parse(&vt).ok_or("invalid verification type (vt)")?;
    // ASSUMPTION: an unknown `ut` is refused like any other bad claim.
    let user_type = match claims.ut.as_deref() {
        None => UserType::Individual,
        Some(ut) => UserType::parse(ut).ok_or("invalid user type (ut)")?,
    };
    Ok(PageToken {
        sub: claims.sub,
        track,
        user_type,
    })
}

fn jwt_error_reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "invalid signature".into(),
        ErrorKind::InvalidAudience => "invalid audience".into(),
        ErrorKind::InvalidIssuer => "invalid issuer".into(),
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed (HS256 only)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim: {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim: {claim}"),
        _ => "malformed token".into(),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    jwt: Option<String>,
}

#[derive(Deserialize)]
struct ActionForm {
    jwt: Option<String>,
    action: Option<String>,
}

async fn verify_page(State(sim): State<AuthentoSim>, Query(query): Query<PageQuery>) -> Response {
    let token = match page_token(&sim, query.jwt.as_deref()) {
        Ok(token) => token,
        Err(reason) => return error_page(StatusCode::UNAUTHORIZED, &reason),
    };
    let init = sim.state().open_page(&token, &sim.config().webhook_secret);
    if let Some(webhook) = init {
        sim.deliver(&webhook).await;
    }
    let status = sim.state().users[&token.sub].track_status(token.track);
    let jwt = query.jwt.unwrap_or_default();
    Html(render_page(&token, status, &jwt)).into_response()
}

async fn verify_action(State(sim): State<AuthentoSim>, Form(form): Form<ActionForm>) -> Response {
    let token = match page_token(&sim, form.jwt.as_deref()) {
        Ok(token) => token,
        Err(reason) => return error_page(StatusCode::UNAUTHORIZED, &reason),
    };
    let Some(action) = form.action.as_deref().and_then(Action::parse) else {
        return error_page(StatusCode::BAD_REQUEST, "unknown action");
    };
    sim.act(&token.sub, token.track, action, token.user_type, true)
        .await;
    let jwt: String =
        url::form_urlencoded::byte_serialize(form.jwt.unwrap_or_default().as_bytes()).collect();
    // Relative, so it works wherever the router is mounted.
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("token?jwt={jwt}"))],
    )
        .into_response()
}

/// The verified token, or why it was refused (shown on the 401 page).
fn page_token(sim: &AuthentoSim, jwt: Option<&str>) -> Result<PageToken, String> {
    let jwt = jwt.filter(|jwt| !jwt.is_empty()).ok_or("missing jwt")?;
    verify_jwt(sim.config(), jwt).map_err(|reason| {
        tracing::info!(%reason, "authento sim: page refused a JWT");
        format!("invalid token: {reason}")
    })
}

fn error_page(status: StatusCode, reason: &str) -> Response {
    let body = super::page::document(
        "Authento",
        "Authento (sandbox)",
        &format!(
            "<h1>Verification unavailable</h1><p class=\"alert\" role=\"alert\">{}</p>\n",
            html_escape(reason)
        ),
    );
    (status, Html(body)).into_response()
}

/// The page's choices: the user's own step first, then what Authento's reviewers decide, each
/// with what the real Authento does there.
const PAGE_ACTIONS: [(&str, &str, &str); 5] = [
    (
        "submit",
        "Submit documents",
        "The user uploads the documents; Authento reviews them (PROCESSING, webhook PENDING).",
    ),
    (
        "approve",
        "Approve",
        "Authento's review approves the user (VERIFIED, webhook REVIEWED): the session is verified.",
    ),
    (
        "reject",
        "Reject",
        "Authento's review rejects the user (REJECTED, webhook REVIEWED): the session fails with \
         last_error rejected.",
    ),
    (
        "request_info",
        "Ask for more info",
        "Authento asks the user for more information (INFO_REQUIRED, webhook REVIEWED): the \
         session waits on the user again.",
    ),
    (
        "reset",
        "Reset",
        "Authento resets the verification (UNVERIFIED, webhook RESET): a decision is overturned \
         and the user starts over.",
    ),
];

fn render_page(token: &PageToken, status: Status, jwt: &str) -> String {
    let forms: String = PAGE_ACTIONS
        .iter()
        .map(|(action, label, note)| {
            super::page::step(
                &[("jwt", jwt), ("action", action)],
                "action",
                "",
                label,
                note,
            )
        })
        .collect();
    let main = format!(
        "<h1>Authento verification (sandbox)</h1>\n\
         <dl><dt>User</dt><dd id=\"user\">{user}</dd>\
         <dt>Verification type</dt><dd id=\"vt\">{vt}</dd>\
         <dt>Status</dt><dd id=\"status\">{status}</dd></dl>\n\
         <p class=\"note\">Authento's hosted page, opened with the gateway's token. Here you play \
         both the user and Authento's reviewers. Authento documents no expiry: a verification \
         nobody finishes stays open.</p>\n\
         <h2>Choose what happens</h2>\n{forms}",
        user = html_escape(&token.sub),
        vt = html_escape(token.track.as_str()),
        status = html_escape(status.as_str()),
    );
    super::page::document(
        "Authento",
        &format!("Authento verification: {} (sandbox)", status.as_str()),
        &main,
    )
}

// ---------------------------------------------------------------------------------------------
// Control routes (tests and testers only)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ControlRequest {
    verification_type: String,
    action: String,
    #[serde(default = "default_true")]
    deliver: bool,
}

fn default_true() -> bool {
    true
}

fn bad_request(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn control_user(
    State(sim): State<AuthentoSim>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    // Parsed by hand so that every malformed request is a 400, not axum's 415/422.
    let request: ControlRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("invalid request: {error}")),
    };
    let Some(track) = Track::parse(&request.verification_type) else {
        return bad_request("unknown verification_type");
    };
    let Some(action) = Action::parse(&request.action) else {
        return bad_request("unknown action");
    };
    // ASSUMPTION: users created by a control call are INDIVIDUAL.
    let (status, webhook, delivery) = sim
        .act(
            &user_id,
            track,
            action,
            UserType::Individual,
            request.deliver,
        )
        .await;
    Json(json!({
        "user_id": user_id,
        "status": status,
        "webhook": {
            "body": webhook.body,
            "digest": webhook.digest,
            "delivered": delivery.delivered,
            "status": delivery.status,
        },
    }))
    .into_response()
}

#[derive(Deserialize)]
struct FaultsRequest {
    fail_next: Option<u32>,
    status: Option<u16>,
    delay_ms: Option<u64>,
    delay_next: Option<u32>,
    retry_after: Option<String>,
    body_bytes: Option<usize>,
}

/// An injected answer: Authento's error body (a 2xx status: a well-formed "no such user" answer),
/// after `body_bytes` of leading whitespace when given (a huge answer that still parses), with
/// `retry_after` as the `Retry-After` header, verbatim.
fn injected_fault(
    status: StatusCode,
    retry_after: Option<String>,
    body_bytes: Option<usize>,
) -> Response {
    let mut response = match body_bytes {
        None => api_error(status, "injected fault"),
        Some(n) => {
            let usual = if status.is_success() {
                json!({"success": true, "result": null})
            } else {
                json!({"success": false, "error": "injected fault"})
            };
            let mut body = vec![b' '; n];
            body.extend_from_slice(usual.to_string().as_bytes());
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    };
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

async fn control_faults(State(sim): State<AuthentoSim>, body: Bytes) -> Response {
    let request: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("invalid request: {error}")),
    };
    let fail_status = request.status.unwrap_or(500);
    if StatusCode::from_u16(fail_status).is_err() {
        return bad_request("invalid status");
    }
    let delay_ms = request.delay_ms.unwrap_or(0);
    let mut state = sim.state();
    if let Some(n) = request.fail_next {
        state.faults.fail_next = n;
        state.faults.fail_status = fail_status;
        state.faults.fail_delay_ms = delay_ms;
        state.faults.retry_after = request.retry_after;
        state.faults.body_bytes = request.body_bytes;
    }
    if let Some(n) = request.delay_next {
        state.faults.delay_next = n;
        state.faults.delay_ms = delay_ms;
    }
    Json(state.faults.clone()).into_response()
}

async fn control_stats(State(sim): State<AuthentoSim>) -> Response {
    Json(json!({"userinfo_requests": sim.userinfo_requests()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use tower::ServiceExt;

    const HOST: &str = "127.0.0.1:8080";
    const API_KEY: &str = "test-api-key";
    const API_SECRET: &str = "test-api-secret";
    const JWT_SECRET: &str = "test-jwt-secret";
    const WEBHOOK_SECRET: &str = "test-webhook-secret";

    fn config(rate_limit_per_sec: u32) -> AuthentoSimConfig {
        AuthentoSimConfig {
            api_key: API_KEY.into(),
            api_secret: API_SECRET.into(),
            jwt_secret: JWT_SECRET.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            issuer: Some("shop.example".into()),
            webhook_url: None,
            rate_limit_per_sec,
        }
    }

    fn sim() -> AuthentoSim {
        AuthentoSim::new(config(0))
    }

    /// Written out here rather than calling the module's helper, so the test checks it.
    fn test_hmac(key: &str, msg: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(msg.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn signed_get_with(
        path_and_query: &str,
        ts: u64,
        api_key: &str,
        secret: &str,
    ) -> Request<Body> {
        let ts = ts.to_string();
        let signature = test_hmac(
            secret,
            &format!("{ts}GET{}", format_args!("http://{HOST}{path_and_query}")),
        );
        Request::get(path_and_query)
            .header("host", HOST)
            .header("X-AUTHENTO-APIKEY", api_key)
            .header("X-AUTHENTO-TS", ts)
            .header("X-AUTHENTO-SIGNATURE", signature)
            .body(Body::empty())
            .unwrap()
    }

    fn signed_get(path_and_query: &str) -> Request<Body> {
        signed_get_with(path_and_query, now_ms(), API_KEY, API_SECRET)
    }

    fn json_post(path: &str, body: Value) -> Request<Body> {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap()
        }
    }

    async fn send(router: &Router, request: Request<Body>) -> Answer {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn control(router: &Router, user: &str, vt: &str, action: &str, deliver: bool) -> Answer {
        let body = json!({"verification_type": vt, "action": action, "deliver": deliver});
        send(router, json_post(&format!("/control/users/{user}"), body)).await
    }

    fn jwt(claims: Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn claims(sub: &str, vt: &str) -> Value {
        let now = now_ms() / 1000;
        json!({"iss": "shop.example", "sub": sub, "aud": "Authento", "iat": now,
               "exp": now + 600, "vt": vt, "ut": "INDIVIDUAL", "lang": "en"})
    }

    fn page(token: &str) -> Request<Body> {
        Request::get(format!("/verify/token?jwt={token}"))
            .body(Body::empty())
            .unwrap()
    }

    #[derive(Clone, Debug)]
    struct Received {
        digest: Option<String>,
        content_type: Option<String>,
        body: String,
    }

    /// A tiny gateway stand-in on 127.0.0.1:0 that records every webhook.
    async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
                log.lock().unwrap().push(Received {
                    digest: header("x-payload-digest"),
                    content_type: header("content-type"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                });
                StatusCode::OK
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, received)
    }

    fn received(log: &Arc<Mutex<Vec<Received>>>) -> Vec<Received> {
        log.lock().unwrap().clone()
    }

    // --- userinfo -----------------------------------------------------------------------

    #[tokio::test]
    async fn signed_userinfo_basic_succeeds() {
        let router = sim().router();
        control(&router, "user-42", "BASIC", "approve", false).await;
        let answer = send(&router, signed_get("/v1/userinfo/basic?id=user-42")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let body = answer.json();
        assert_eq!(body["success"], true);
        let result = &body["result"];
        let id = result["id"].as_str().unwrap();
        assert_eq!(id.len(), 25);
        assert!(id.starts_with('c'));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(result["type"], "INDIVIDUAL");
        assert_eq!(
            result["status"],
            json!({"basic": "VERIFIED", "poa": "UNVERIFIED"})
        );
        assert_eq!(result["basicInfo"]["country"], "AUT");
        assert_eq!(result["basicInfo"]["pep"], Value::Null);
        assert_eq!(result["addresses"], json!([]));
        assert_eq!(result["questionnaires"], json!([]));
        assert!(result["timeUpdated"].is_f64());
        assert!(result.get("fullInfo").is_none());
    }

    #[tokio::test]
    async fn full_userinfo_adds_full_info() {
        let router = sim().router();
        control(&router, "user-42", "BASIC", "open", false).await;
        let answer = send(&router, signed_get("/v1/userinfo/full?id=user-42")).await;
        assert_eq!(answer.status, StatusCode::OK);
        let full = &answer.json()["result"]["fullInfo"];
        let person = FakePerson::of("user-42");
        assert_eq!(full["firstName"], "Jane");
        assert_eq!(full["lastName"], person.last_name.as_str());
        assert_eq!(full["idDocs"][1]["docType"], "ID_CARD");
        assert_eq!(full["idDocs"][1]["country"], "AUT");
        assert_eq!(full["idDocs"][1]["number"], person.document_number.as_str());
        // The basic read shows none of it.
        let basic = send(&router, signed_get("/v1/userinfo/basic?id=user-42")).await;
        assert!(basic.json()["result"].get("fullInfo").is_none());
    }

    #[tokio::test]
    async fn user_identifier_parameter_also_works() {
        let router = sim().router();
        control(&router, "user+42", "POA", "submit", false).await;
        // The signature covers the query exactly as sent, percent-encoding included.
        let answer = send(
            &router,
            signed_get("/v1/userinfo/basic?userIdentifier=user%2B42"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.json()["result"]["status"]["poa"], "PROCESSING");
    }

    #[tokio::test]
    async fn works_when_nested_under_a_prefix() {
        let sim = sim();
        let router = Router::new().nest("/sandbox/authento", sim.router());
        control(&sim.router(), "user-42", "BASIC", "open", false).await;
        let answer = send(
            &router,
            signed_get("/sandbox/authento/v1/userinfo/basic?id=user-42"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        // Signing the path without the prefix must fail: the client requested the prefix.
        let mut request = signed_get("/v1/userinfo/basic?id=user-42");
        *request.uri_mut() = "/sandbox/authento/v1/userinfo/basic?id=user-42"
            .parse()
            .unwrap();
        assert_eq!(
            send(&router, request).await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn bad_credentials_are_refused() {
        let router = sim().router();
        control(&router, "user-42", "BASIC", "open", false).await;
        let path = "/v1/userinfo/basic?id=user-42";
        let now = now_ms();
        let cases = [
            (
                "wrong secret",
                signed_get_with(path, now, API_KEY, "other-secret"),
            ),
            (
                "wrong api key",
                signed_get_with(path, now, "other-key", API_SECRET),
            ),
            (
                "stale timestamp",
                signed_get_with(path, now - 6 * 60 * 1000, API_KEY, API_SECRET),
            ),
            (
                "future timestamp",
                signed_get_with(path, now + 6 * 60 * 1000, API_KEY, API_SECRET),
            ),
            (
                "no headers",
                Request::get(path)
                    .header("host", HOST)
                    .body(Body::empty())
                    .unwrap(),
            ),
        ];
        for (case, request) in cases {
            let answer = send(&router, request).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{case}");
            assert_eq!(
                answer.json(),
                json!({"success": false, "error": "invalid signature"}),
                "{case}"
            );
        }
        // A signature over another query is refused too.
        let mut request = signed_get("/v1/userinfo/basic?id=user-43");
        *request.uri_mut() = path.parse().unwrap();
        assert_eq!(
            send(&router, request).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Within the tolerance is fine.
        let answer = send(
            &router,
            signed_get_with(path, now - 4 * 60 * 1000, API_KEY, API_SECRET),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_user_is_404() {
        let router = sim().router();
        let answer = send(&router, signed_get("/v1/userinfo/basic?id=nobody")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer.json(),
            json!({"success": false, "error": "user not found"})
        );
    }

    #[tokio::test]
    async fn sixth_request_in_a_second_is_rate_limited() {
        let sim = AuthentoSim::new(config(5));
        let router = sim.router();
        for _ in 0..5 {
            let answer = send(&router, signed_get("/v1/userinfo/basic?id=nobody")).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND);
        }
        let answer = send(&router, signed_get("/v1/userinfo/basic?id=nobody")).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");
        assert_eq!(
            answer.json(),
            json!({"success": false, "error": "rate limited"})
        );
        assert_eq!(sim.userinfo_requests(), 6);
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let answer = send(&router, signed_get("/v1/userinfo/basic?id=nobody")).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "a new window admits again"
        );
    }

    #[tokio::test]
    async fn faults_fail_the_next_requests_then_recover() {
        let sim = sim();
        let router = sim.router();
        control(&router, "user-42", "BASIC", "open", false).await;
        let path = "/v1/userinfo/basic?id=user-42";
        let set = send(
            &router,
            json_post("/control/faults", json!({"fail_next": 2, "status": 503})),
        )
        .await;
        assert_eq!(set.status, StatusCode::OK);
        for _ in 0..2 {
            let answer = send(&router, signed_get(path)).await;
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                answer.json(),
                json!({"success": false, "error": "injected fault"})
            );
        }
        assert_eq!(send(&router, signed_get(path)).await.status, StatusCode::OK);

        send(
            &router,
            json_post("/control/faults", json!({"fail_next": 1, "status": 429})),
        )
        .await;
        let answer = send(&router, signed_get(path)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");

        send(
            &router,
            json_post("/control/faults", json!({"delay_next": 1, "delay_ms": 200})),
        )
        .await;
        let started = Instant::now();
        assert_eq!(send(&router, signed_get(path)).await.status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(send(&router, signed_get(path)).await.status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_millis(200));

        let stats = send(
            &router,
            Request::get("/control/stats").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(stats.json(), json!({"userinfo_requests": 6}));
        assert_eq!(sim.userinfo_requests(), 6);
    }

    // --- hosted page ----------------------------------------------------------------------

    #[tokio::test]
    async fn bad_jwts_get_a_401_page() {
        let router = sim().router();
        let mut wrong_aud = claims("user-42", "BASIC");
        wrong_aud["aud"] = json!("Someone");
        let mut wrong_iss = claims("user-42", "BASIC");
        wrong_iss["iss"] = json!("evil.example");
        let mut expired = claims("user-42", "BASIC");
        expired["exp"] = json!(now_ms() / 1000 - 10);
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims("user-42", "BASIC"),
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap();
        let mut no_vt = claims("user-42", "BASIC");
        no_vt.as_object_mut().unwrap().remove("vt");
        let cases = [
            (
                jwt(claims("user-42", "BASIC"), "wrong-secret"),
                "invalid signature",
            ),
            (jwt(wrong_aud, JWT_SECRET), "invalid audience"),
            (jwt(wrong_iss, JWT_SECRET), "invalid issuer"),
            (jwt(expired, JWT_SECRET), "token expired"),
            (jwt(no_vt, JWT_SECRET), "missing claim: vt"),
            (
                jwt(claims("user-42", "KYB"), JWT_SECRET),
                "invalid verification type",
            ),
            ("not-a-jwt".to_owned(), "malformed token"),
            (hs512, "algorithm not allowed"),
        ];
        for (token, reason) in cases {
            let answer = send(&router, page(&token)).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{reason}");
            assert!(answer.body.contains(reason), "{reason}: {}", answer.body);
        }
        let missing = send(
            &router,
            Request::get("/verify/token").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn jwt_without_exp_is_accepted() {
        let router = sim().router();
        let mut no_exp = claims("user-42", "POA");
        no_exp.as_object_mut().unwrap().remove("exp");
        let answer = send(&router, page(&jwt(no_exp, JWT_SECRET))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }

    #[tokio::test]
    async fn valid_jwt_page_creates_user_and_sends_init_once() {
        let (url, log) = webhook_receiver().await;
        let sim = sim();
        sim.set_webhook_url(Some(url));
        let router = sim.router();
        let mut c = claims("<user&42>", "BASIC");
        c["ut"] = json!("CORPORATE");
        let token = jwt(c, JWT_SECRET);

        let answer = send(&router, page(&token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(
            answer.body.contains("&lt;user&amp;42&gt;"),
            "escaped user id"
        );
        assert!(!answer.body.contains("<user&42>"));
        assert!(answer.body.contains("UNVERIFIED"));
        assert!(
            answer
                .body
                .contains(&format!("name=\"jwt\" value=\"{token}\""))
        );
        for label in [
            "Submit documents",
            "Approve",
            "Reject",
            "Ask for more info",
            "Reset",
        ] {
            assert!(answer.body.contains(label), "{label}");
        }
        send(&router, page(&token)).await;

        let user = send(&router, signed_get("/v1/userinfo/basic?id=%3Cuser%2642%3E")).await;
        assert_eq!(user.status, StatusCode::OK, "{}", user.body);
        assert_eq!(user.json()["result"]["type"], "CORPORATE");
        let hooks = received(&log);
        assert_eq!(hooks.len(), 1, "INIT only on the first open");
        assert!(
            hooks[0]
                .body
                .starts_with(r#"{"event":"INIT","userIdentifier":"<user&42>","#)
        );
    }

    #[tokio::test]
    async fn page_action_applies_and_redirects() {
        let (url, log) = webhook_receiver().await;
        let sim = sim();
        sim.set_webhook_url(Some(url));
        let router = sim.router();
        let token = jwt(claims("user-42", "POA"), JWT_SECRET);
        let form = format!("jwt={token}&action=submit");
        let request = Request::post("/verify/action")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let answer = send(&router, request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(
            answer.headers[header::LOCATION],
            format!("token?jwt={token}").as_str()
        );

        let page = send(&router, page(&token)).await;
        assert!(page.body.contains("PROCESSING"), "{}", page.body);
        let events: Vec<Value> = received(&log)
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        // The action created the user; opening the page afterwards is the first open of POA.
        assert_eq!(events[0]["event"], "PENDING");
        assert_eq!(events[0]["status"]["poa"], "PROCESSING");

        let bad = Request::post("/verify/action")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("jwt={token}&action=explode")))
            .unwrap();
        assert_eq!(send(&router, bad).await.status, StatusCode::BAD_REQUEST);
        let forged = Request::post("/verify/action")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("jwt=forged&action=approve"))
            .unwrap();
        assert_eq!(send(&router, forged).await.status, StatusCode::UNAUTHORIZED);
    }

    // --- control and webhooks --------------------------------------------------------------

    #[tokio::test]
    async fn control_approve_delivers_a_signed_webhook() {
        let (url, log) = webhook_receiver().await;
        let sim = sim();
        sim.set_webhook_url(Some(url));
        let router = sim.router();

        let answer = control(&router, "user-42", "BASIC", "approve", true).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let reply = answer.json();
        assert_eq!(reply["user_id"], "user-42");
        assert_eq!(
            reply["status"],
            json!({"basic": "VERIFIED", "poa": "UNVERIFIED"})
        );
        let webhook = &reply["webhook"];
        assert_eq!(webhook["delivered"], true);
        assert_eq!(webhook["status"], 200);

        let body = webhook["body"].as_str().unwrap();
        let time = serde_json::from_str::<Value>(body).unwrap()["time"]
            .as_f64()
            .unwrap();
        let expected = format!(
            r#"{{"event":"REVIEWED","userIdentifier":"user-42","status":{{"basic":"VERIFIED","poa":"UNVERIFIED"}},"time":{}}}"#,
            serde_json::to_string(&time).unwrap()
        );
        assert_eq!(body, expected);
        assert_eq!(webhook["digest"], test_hmac(WEBHOOK_SECRET, body));

        let hooks = received(&log);
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].body, body, "the exact bytes");
        assert_eq!(
            hooks[0].digest.as_deref(),
            Some(test_hmac(WEBHOOK_SECRET, body).as_str())
        );
        assert_eq!(hooks[0].content_type.as_deref(), Some("application/json"));

        // timeUpdated is the webhook's time.
        let user = send(&router, signed_get("/v1/userinfo/basic?id=user-42")).await;
        assert_eq!(user.json()["result"]["timeUpdated"].as_f64(), Some(time));
    }

    #[tokio::test]
    async fn deliver_false_signs_but_does_not_send() {
        let (url, log) = webhook_receiver().await;
        let sim = sim();
        sim.set_webhook_url(Some(url));
        let router = sim.router();
        let reply = control(&router, "user-42", "POA", "reject", false)
            .await
            .json();
        assert_eq!(reply["status"]["poa"], "REJECTED");
        assert_eq!(reply["webhook"]["delivered"], false);
        assert_eq!(reply["webhook"]["status"], Value::Null);
        let body = reply["webhook"]["body"].as_str().unwrap();
        assert_eq!(reply["webhook"]["digest"], test_hmac(WEBHOOK_SECRET, body));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(received(&log).is_empty());
    }

    #[tokio::test]
    async fn no_webhook_url_means_not_delivered() {
        let router = sim().router();
        let reply = control(&router, "user-42", "BASIC", "submit", true)
            .await
            .json();
        assert_eq!(reply["webhook"]["delivered"], false);
        assert_eq!(reply["webhook"]["status"], Value::Null);
    }

    #[tokio::test]
    async fn every_action_maps_to_its_status_and_event() {
        let router = sim().router();
        let cases = [
            ("open", "UNVERIFIED", "INIT"),
            ("submit", "PROCESSING", "PENDING"),
            ("request_info", "INFO_REQUIRED", "REVIEWED"),
            ("reject", "REJECTED", "REVIEWED"),
            ("approve", "VERIFIED", "REVIEWED"),
            ("reset", "UNVERIFIED", "RESET"),
        ];
        let mut last_time = 0.0;
        for (action, status, event) in cases {
            let reply = control(&router, "user-42", "POA", action, false)
                .await
                .json();
            assert_eq!(reply["status"]["poa"], status, "{action}");
            assert_eq!(reply["status"]["basic"], "UNVERIFIED", "{action}");
            let body: Value =
                serde_json::from_str(reply["webhook"]["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["event"], event, "{action}");
            let time = body["time"].as_f64().unwrap();
            assert!(time > last_time, "strictly increasing times");
            last_time = time;
        }
    }

    #[tokio::test]
    async fn control_rejects_unknown_action_or_type() {
        let router = sim().router();
        assert_eq!(
            control(&router, "u", "BASIC", "explode", true).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            control(&router, "u", "KYB", "approve", true).await.status,
            StatusCode::BAD_REQUEST
        );
        let garbage = Request::post("/control/users/u")
            .body(Body::from("nope"))
            .unwrap();
        assert_eq!(send(&router, garbage).await.status, StatusCode::BAD_REQUEST);
    }
}
