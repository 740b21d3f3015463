//! Prove simulator: both of Prove's possession APIs as Prove documents them
//! (docs/providers/prove.md: OAuth2 `client_credentials` at `/token`; legacy Verified Users'
//! `/v3/verify` and `/v3/verify-status`; Unify's `/v3/unify`, `/v3/unify-status` and
//! `/v3/unify-bind`, in `prove/unify.rs`; Identity Manager's `/v3/identity` and its disenrollment,
//! `DELETE /v3/identity/{proveId}`), per region (`/na/...`, `/eu/...`: each serves its own test
//! users and its own identities), with
//! Prove's sandbox test users, Prove's `{code, message}` error bodies, and `/control/*` routes that
//! stand for the client SDK's `Authenticate()`, inject faults, count calls and send Identity
//! Manager webhooks signed like Prove's.
//!
//! Facts the public docs do not state are marked `// ASSUMPTION:`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod unify;

pub use unify::{UNIFY_USERS, UnifyUser};

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// ASSUMPTION: how long the webhook JWT lives ("short-lived" in Prove's docs).
const WEBHOOK_JWT_SECONDS: u64 = 300;

/// One of Prove's sandbox test users.
#[derive(Debug, Clone, Copy)]
pub struct TestUser {
    /// As Prove writes it: 10 digits in North America, country code and number elsewhere.
    pub phone: &'static str,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub region: Region,
    /// Whether Prove verifies this user's identity.
    pub verifies: bool,
}

/// Prove's documented Verified Users test users, and the failing ones whose numbers Prove does
/// not publish.
pub const TEST_USERS: &[TestUser] = &[
    TestUser {
        phone: "2001004011",
        first_name: "Sheilakathryn",
        last_name: "Butrimovich",
        region: Region::Na,
        verifies: true,
    },
    TestUser {
        phone: "447968900002",
        first_name: "Rozella",
        last_name: "Kimpton",
        region: Region::Eu,
        verifies: true,
    },
    // ASSUMPTION: Prove names Kurt Mathen and Janek Ambrogio as users designed to fail but not
    // their numbers; these are ours.
    TestUser {
        phone: "2001004014",
        first_name: "Kurt",
        last_name: "Mathen",
        region: Region::Na,
        verifies: false,
    },
    TestUser {
        phone: "2001004016",
        first_name: "Janek",
        last_name: "Ambrogio",
        region: Region::Na,
        verifies: false,
    },
    // Ours: an international user designed to fail.
    TestUser {
        phone: "447968900009",
        first_name: "Ilse",
        last_name: "Fehler",
        region: Region::Eu,
        verifies: false,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Na,
    Eu,
}

/// Settings of one simulated Prove customer (Portal project).
#[derive(Clone, Debug)]
pub struct ProveSimConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The Portal's webhook secret (`whsec_...`): the HS256 key of the webhook JWT.
    pub webhook_secret: String,
    /// The gateway's `/v1/webhooks/prove`; `None` = never deliver.
    pub webhook_url: Option<String>,
}

#[derive(Clone)]
pub struct ProveSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProveSimConfig,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Possession {
    Pending,
    Passed,
    Failed,
    /// The Instant Link / OTP window closed without the user.
    TimedOut,
}

#[derive(Debug, Clone)]
struct Flow {
    region: Region,
    possession_type: String,
    client_request_id: Option<String>,
    client_customer_id: Option<String>,
    phone: String,
    /// The test user's identity checks out (and the names given match it).
    verifies: bool,
    possession: Possession,
    identity_id: Option<String>,
    /// Started with `/v3/unify`: read with `/v3/unify-status` only.
    unify: bool,
    /// A Unify short-term test user: passes possession without the client SDK.
    short_term: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Fault {
    fail_next: u32,
    status: u16,
    delay_next: u32,
    delay_ms: u64,
    /// `/token` only: the `expires_in` to answer instead of the real lifetime (absurd ones too).
    expires_in: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Endpoint {
    Token,
    Verify,
    VerifyStatus,
    Identity,
    Disenroll,
    Unify,
    UnifyStatus,
    UnifyBind,
}

#[derive(Default)]
struct SimState {
    webhook_url: Option<String>,
    tokens: HashMap<String, Instant>,
    flows: HashMap<String, Flow>,
    /// authToken -> correlation id.
    auth_tokens: HashMap<String, String>,
    /// (phone, clientCustomerId) -> identity id, of the identities enrolled now.
    identities: HashMap<(String, String), String>,
    /// Identity id -> the platform that enrolled it (the only one that knows it).
    identity_regions: HashMap<String, Region>,
    /// Identities disenrolled (`DELETE /v3/identity/{proveId}`): Identity Manager sends nothing
    /// more about them.
    disenrolled: HashSet<String>,
    /// Identity id -> `DELETE /v3/identity/{proveId}` requests naming it, refused ones included.
    disenroll_calls: HashMap<String, u64>,
    calls: HashMap<(Endpoint, Region), u64>,
    faults: HashMap<Endpoint, Fault>,
    /// correlation id -> the desktop flow's `finalTargetUrl`, where its Instant Link leads.
    target_urls: HashMap<String, String>,
}

impl SimState {
    /// The identity of `phone` for `customer`, enrolled at `region` if it is not yet.
    /// ASSUMPTION: enrolling the same number for the same customer again answers the same id
    /// (after a disenrollment, a new one).
    fn enroll(&mut self, region: Region, phone: String, customer: String) -> String {
        let id = self
            .identities
            .entry((phone, customer))
            .or_insert_with(uuid_like)
            .clone();
        self.identity_regions.insert(id.clone(), region);
        id
    }
}

impl ProveSim {
    pub fn new(config: ProveSimConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .expect("reqwest client");
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
            .route("/{region}/token", post(token))
            .route("/{region}/v3/verify", post(verify))
            .route("/{region}/v3/verify-status", post(verify_status))
            .route("/{region}/v3/identity", post(identity))
            .route("/{region}/v3/identity/{identity_id}", delete(disenroll))
            .route("/{region}/v3/unify", post(unify::unify))
            .route("/{region}/v3/unify-status", post(unify::unify_status))
            .route("/{region}/v3/unify-bind", post(unify::unify_bind))
            .route("/control/authenticate", post(control_authenticate))
            .route("/control/faults", post(control_faults))
            .route("/control/stats", get(control_stats))
            .route("/control/webhooks", post(control_webhooks))
            .with_state(self.clone())
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state().webhook_url = url;
    }

    fn calls(&self, endpoint: Endpoint) -> u64 {
        self.state()
            .calls
            .iter()
            .filter(|((e, _), _)| *e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }

    /// `POST /token` requests received, refused ones included.
    pub fn token_requests(&self) -> u64 {
        self.calls(Endpoint::Token)
    }
    pub fn verify_requests(&self) -> u64 {
        self.calls(Endpoint::Verify)
    }
    pub fn status_requests(&self) -> u64 {
        self.calls(Endpoint::VerifyStatus)
    }
    pub fn identity_requests(&self) -> u64 {
        self.calls(Endpoint::Identity)
    }
    /// `DELETE /v3/identity/{proveId}` requests naming `identity_id`, refused ones included.
    pub fn disenroll_requests(&self, identity_id: &str) -> u64 {
        self.state()
            .disenroll_calls
            .get(identity_id)
            .copied()
            .unwrap_or(0)
    }
    /// Whether Identity Manager knows `identity_id` now (enrolled, not disenrolled).
    pub fn is_enrolled(&self, identity_id: &str) -> bool {
        self.state().identities.values().any(|id| id == identity_id)
    }
    pub fn unify_requests(&self) -> u64 {
        self.calls(Endpoint::Unify)
    }
    pub fn unify_status_requests(&self) -> u64 {
        self.calls(Endpoint::UnifyStatus)
    }
    pub fn unify_bind_requests(&self) -> u64 {
        self.calls(Endpoint::UnifyBind)
    }

    /// The webhook JWT Prove would send now: HS256, `iss` = `Prove Identity`, short-lived.
    pub fn webhook_jwt(&self) -> String {
        sign_webhook_jwt(&self.inner.config.webhook_secret, now_s(), "Prove Identity")
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the call and applies an injected fault: `Some(response)` answers instead.
    async fn admit(&self, endpoint: Endpoint, region: Region) -> Option<Response> {
        let (fail, delay) = {
            let mut s = self.state();
            *s.calls.entry((endpoint, region)).or_default() += 1;
            let f = s.faults.entry(endpoint).or_default();
            if f.fail_next > 0 {
                f.fail_next -= 1;
                (Some(f.status), Duration::ZERO)
            } else if f.delay_next > 0 {
                f.delay_next -= 1;
                (None, Duration::from_millis(f.delay_ms))
            } else {
                (None, Duration::ZERO)
            }
        };
        tokio::time::sleep(delay).await;
        fail.map(|status| {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // ASSUMPTION: Prove's 5xx carries its usual body; code 9000 is ours.
            prove_error(status, 9000, "internal error")
        })
    }

    /// `Authorization: Bearer <token>` of a token this simulator issued and that has not expired.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.state()
            .tokens
            .get(token)
            .is_some_and(|exp| Instant::now() < *exp)
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random(prefix: &str) -> String {
    format!("{prefix}{}", idv::ids::random_token())
}

/// ASSUMPTION: each delivery's token carries a unique `jti` (a standard JWT claim; Prove's claims
/// table was truncated in the docs we have). The gateway binds a token with a `jti` to its body,
/// and bounds one without it by age only.
fn sign_webhook_jwt(secret: &str, iat: u64, iss: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": iss, "iat": iat, "exp": iat + WEBHOOK_JWT_SECONDS, "jti": uuid_like()}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing")
}

/// Prove's error body: `{"code": <int>, "message": "..."}`.
fn prove_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn unauthorized() -> Response {
    // ASSUMPTION: code 1002 for a missing or expired bearer token.
    prove_error(StatusCode::UNAUTHORIZED, 1002, "unauthorized")
}

/// The opening every bearer-token endpoint shares: the region served, injected faults, the token,
/// then the JSON body (Prove's 400 / 1001 when it is not one).
async fn bearer_call<T: DeserializeOwned>(
    sim: &ProveSim,
    region: &str,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Region, T), Response> {
    bearer_call_coded(sim, region, endpoint, headers, body, 1001).await
}

/// As `bearer_call`, with the code a body that is no JSON of the expected shape gets (Unify's
/// endpoints answer 8001, "Malformed Request", from Prove's newer code list).
async fn bearer_call_coded<T: DeserializeOwned>(
    sim: &ProveSim,
    region: &str,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    malformed: i64,
) -> Result<(Region, T), Response> {
    let region = region_of(region).ok_or_else(|| StatusCode::NOT_FOUND.into_response())?;
    if let Some(r) = sim.admit(endpoint, region).await {
        return Err(r);
    }
    if !sim.authorized(headers) {
        return Err(unauthorized());
    }
    serde_json::from_slice::<T>(body)
        .map(|b| (region, b))
        .map_err(|_| prove_error(StatusCode::BAD_REQUEST, malformed, "invalid JSON body"))
}

fn region_of(s: &str) -> Option<Region> {
    match s {
        "na" => Some(Region::Na),
        "eu" => Some(Region::Eu),
        _ => None,
    }
}

/// Digits only; "+" is allowed by Prove, and a leading 1 of a North American number is dropped.
fn normalize_phone(p: &str) -> String {
    let digits = p.strip_prefix('+').unwrap_or(p);
    match digits.strip_prefix('1') {
        Some(rest) if rest.len() == 10 => rest.to_owned(),
        _ => digits.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Prove's API
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
}

async fn token(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(region) = region_of(&region) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(r) = sim.admit(Endpoint::Token, region).await {
        return r;
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return prove_error(StatusCode::BAD_REQUEST, 1001, "body must be form-encoded");
    }
    let form: TokenForm = match serde_urlencoded_form(&body) {
        Some(f) => f,
        None => return prove_error(StatusCode::BAD_REQUEST, 1001, "invalid form"),
    };
    let c = &sim.inner.config;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return prove_error(StatusCode::BAD_REQUEST, 1001, "unsupported grant_type");
    }
    if form.client_id.as_deref() != Some(c.client_id.as_str())
        || form.client_secret.as_deref() != Some(c.client_secret.as_str())
    {
        // ASSUMPTION: /token refuses wrong credentials with 401 and Prove's usual body.
        return prove_error(StatusCode::UNAUTHORIZED, 1002, "invalid client credentials");
    }
    let access = random("sim_at_");
    sim.state()
        .tokens
        .insert(access.clone(), Instant::now() + TOKEN_LIFETIME);
    Json(json!({
        "access_token": access,
        "refresh_token": random("sim_rt_"),
        "refresh_expires_in": 3600,
        "token_type": "Bearer",
        "expires_in": injected_expires_in(&sim).unwrap_or(TOKEN_LIFETIME.as_secs()),
    }))
    .into_response()
}

fn serde_urlencoded_form(body: &[u8]) -> Option<TokenForm> {
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    Some(TokenForm {
        client_id: pairs.get("client_id").cloned(),
        client_secret: pairs.get("client_secret").cloned(),
        grant_type: pairs.get("grant_type").cloned(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    first_name: Option<String>,
    last_name: Option<String>,
    phone_number: Option<String>,
    possession_type: Option<String>,
    final_target_url: Option<String>,
    sms_message: Option<String>,
    client_request_id: Option<String>,
    client_customer_id: Option<String>,
}

async fn verify(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) =
        match bearer_call::<VerifyBody>(&sim, &region, Endpoint::Verify, &headers, &body).await {
            Ok(call) => call,
            Err(refused) => return refused,
        };
    for (name, v) in [
        ("firstName", &b.first_name),
        ("lastName", &b.last_name),
        ("phoneNumber", &b.phone_number),
        ("possessionType", &b.possession_type),
    ] {
        if v.as_deref().is_none_or(str::is_empty) {
            return prove_error(
                StatusCode::BAD_REQUEST,
                1001,
                &format!("field '{name}' is missing"),
            );
        }
    }
    let possession = b.possession_type.clone().unwrap_or_default();
    if !matches!(possession.as_str(), "mobile" | "desktop" | "none") {
        return prove_error(
            StatusCode::BAD_REQUEST,
            1001,
            "field 'possessionType' is invalid",
        );
    }
    if possession == "desktop" {
        match b.final_target_url.as_deref() {
            None | Some("") => {
                return prove_error(
                    StatusCode::BAD_REQUEST,
                    1001,
                    "field 'finalTargetUrl' is missing",
                );
            }
            Some(u) if u.len() > 128 => {
                return prove_error(
                    StatusCode::BAD_REQUEST,
                    1001,
                    "field 'finalTargetUrl' is too long",
                );
            }
            // Prove's documented characters: letters, digits and `-._+=/:?`.
            Some(u)
                if !u
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._+=/:?".contains(&c)) =>
            {
                return prove_error(
                    StatusCode::BAD_REQUEST,
                    1001,
                    "field 'finalTargetUrl' is invalid",
                );
            }
            Some(_) => {}
        }
    }
    if b.sms_message
        .as_deref()
        .is_some_and(|m| m.chars().count() > 160)
    {
        return prove_error(
            StatusCode::BAD_REQUEST,
            1001,
            "field 'smsMessage' is too long",
        );
    }
    let phone = normalize_phone(b.phone_number.as_deref().unwrap_or_default());
    // ASSUMPTION: each region's sandbox knows its own test users only.
    let Some(user) = TEST_USERS
        .iter()
        .find(|u| u.phone == phone && u.region == region)
    else {
        return prove_error(
            StatusCode::BAD_REQUEST,
            8007,
            "no test user found matching the phone number",
        );
    };
    // ASSUMPTION: the sandbox verifies a test user only under the test user's own name.
    let same =
        |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    let verifies =
        user.verifies && same(&b.first_name, user.first_name) && same(&b.last_name, user.last_name);
    let correlation_id = uuid_like();
    let mut flow = Flow {
        region,
        possession_type: possession.clone(),
        client_request_id: b.client_request_id.clone(),
        client_customer_id: b.client_customer_id.clone(),
        phone: phone.clone(),
        verifies,
        possession: Possession::Pending,
        identity_id: None,
        unify: false,
        short_term: false,
    };
    let mut s = sim.state();
    if possession == "none" {
        // No possession check: Prove answers at once (sandbox: true / not_applicable / success).
        // ASSUMPTION: without a possession check there is no authToken for the client SDK.
        flow.possession = Possession::Passed;
        s.flows.insert(correlation_id.clone(), flow);
        return Json(json!({
            "success": if verifies { "true" } else { "false" },
            "possessionResult": "not_applicable",
            "verifyResult": if verifies { "success" } else { "failed" },
            "correlationId": correlation_id,
        }))
        .into_response();
    }
    let auth_token = random("sim_auth_");
    s.auth_tokens
        .insert(auth_token.clone(), correlation_id.clone());
    if let Some(url) = b
        .final_target_url
        .clone()
        .filter(|_| possession == "desktop")
    {
        s.target_urls.insert(correlation_id.clone(), url);
    }
    s.flows.insert(correlation_id.clone(), flow);
    Json(json!({
        "success": "pending",
        "authToken": auth_token,
        "possessionResult": "pending",
        "verifyResult": "pending",
        "correlationId": correlation_id,
    }))
    .into_response()
}

/// A UUID-shaped id, as Prove's correlation and identity ids are.
fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    correlation_id: Option<String>,
    client_request_id: Option<String>,
}

async fn verify_status(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) =
        match bearer_call::<StatusBody>(&sim, &region, Endpoint::VerifyStatus, &headers, &body)
            .await
        {
            Ok(call) => call,
            Err(refused) => return refused,
        };
    let Some(correlation_id) = b.correlation_id.filter(|c| !c.is_empty()) else {
        return prove_error(
            StatusCode::BAD_REQUEST,
            1001,
            "field 'correlationId' is missing",
        );
    };
    let mut s = sim.state();
    let Some(flow) = s.flows.get(&correlation_id).cloned() else {
        // ASSUMPTION: an unknown correlation id is 404 with code 1004.
        return prove_error(StatusCode::NOT_FOUND, 1004, "correlation id not found");
    };
    // ASSUMPTION: a Unify flow is unknown to the legacy status step.
    if flow.region != region || flow.unify {
        return prove_error(StatusCode::NOT_FOUND, 1004, "correlation id not found");
    }
    if b.client_request_id.is_some() && b.client_request_id != flow.client_request_id {
        return prove_error(
            StatusCode::BAD_REQUEST,
            1001,
            "clientRequestId does not match the flow",
        );
    }
    let answer = match flow.possession {
        // ASSUMPTION: once the possession window closed, the flow's next step is refused.
        Possession::TimedOut => {
            return prove_error(StatusCode::FORBIDDEN, 1003, "step not allowed");
        }
        // Authenticate() has not run: the sandbox keeps answering pending.
        Possession::Pending => json!({
            "success": "pending", "possessionResult": "pending", "verifyResult": "pending",
        }),
        Possession::Failed => json!({
            "success": "false", "possessionResult": "failed", "verifyResult": "not_applicable",
        }),
        Possession::Passed if flow.verifies => {
            // ASSUMPTION: a verified flow is enrolled with Identity Manager and says so.
            let customer = flow.client_customer_id.clone().unwrap_or_default();
            let id = s.enroll(flow.region, flow.phone.clone(), customer);
            if let Some(f) = s.flows.get_mut(&correlation_id) {
                f.identity_id = Some(id.clone());
            }
            json!({
                "success": "true",
                "possessionResult": if flow.possession_type == "none" { "not_applicable" } else { "success" },
                "verifyResult": "success",
                "identityId": id,
            })
        }
        Possession::Passed => json!({
            "success": "false",
            "possessionResult": if flow.possession_type == "none" { "not_applicable" } else { "success" },
            "verifyResult": "failed",
        }),
    };
    Json(answer).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityBody {
    phone_number: Option<String>,
    client_customer_id: Option<String>,
}

async fn identity(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) =
        match bearer_call::<IdentityBody>(&sim, &region, Endpoint::Identity, &headers, &body).await
        {
            Ok(call) => call,
            Err(refused) => return refused,
        };
    let Some(phone) = b.phone_number.filter(|p| !p.is_empty()) else {
        return prove_error(
            StatusCode::BAD_REQUEST,
            1001,
            "field 'phoneNumber' is missing",
        );
    };
    let phone = normalize_phone(&phone);
    let customer = b.client_customer_id.unwrap_or_default();
    let id = sim.state().enroll(region, phone, customer);
    Json(json!({"identityId": id, "success": true})).into_response()
}

/// `DELETE /v3/identity/{proveId}` (the SDK's `identity.v3DisenrollIdentity`): the identity is
/// forgotten, and Identity Manager sends nothing more about it. No body; the optional
/// `clientRequestId` query parameter is not checked. Counted per identity named.
async fn disenroll(
    State(sim): State<ProveSim>,
    Path((region, identity_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(region) = region_of(&region) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    *sim.state()
        .disenroll_calls
        .entry(identity_id.clone())
        .or_default() += 1;
    if let Some(r) = sim.admit(Endpoint::Disenroll, region).await {
        return r;
    }
    if !sim.authorized(&headers) {
        return unauthorized();
    }
    let mut s = sim.state();
    // ASSUMPTION: a platform knows only the identities it enrolled, and an identity it does not
    // know, or no longer knows (a second disenrollment), is 404 with code 1004 (Prove documents
    // 400, 401, 403 and 500 for this call, and 404 for other Identity Manager reads).
    if s.identity_regions.get(&identity_id) != Some(&region) {
        return prove_error(StatusCode::NOT_FOUND, 1004, "identity not found");
    }
    s.identities.retain(|_, id| *id != identity_id);
    s.identity_regions.remove(&identity_id);
    s.disenrolled.insert(identity_id);
    Json(json!({"success": true})).into_response()
}

// ---------------------------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AuthenticateRequest {
    auth_token: String,
    /// `passed`, `failed` or `timed_out`.
    outcome: String,
}

/// Stands for the client SDK's `Authenticate(authToken)`, of either API: the user passes or
/// fails the possession check (OTP / Instant Link; for Unify's customer-supplied possession,
/// `passed` is a Prove Key already bound that authenticated), or lets its window close.
async fn control_authenticate(State(sim): State<ProveSim>, body: Bytes) -> Response {
    let Ok(r) = serde_json::from_slice::<AuthenticateRequest>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "expected {\"auth_token\": \"...\", \"outcome\": \"passed|failed|timed_out\"}"})),
        )
            .into_response();
    };
    let outcome = match r.outcome.as_str() {
        "passed" => Possession::Passed,
        "failed" => Possession::Failed,
        "timed_out" => Possession::TimedOut,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "outcome is passed, failed or timed_out"})),
            )
                .into_response();
        }
    };
    let mut s = sim.state();
    let Some(correlation_id) = s.auth_tokens.get(&r.auth_token).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown authToken"})),
        )
            .into_response();
    };
    let Some(flow) = s.flows.get_mut(&correlation_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if flow.possession != Possession::Pending {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "this flow's possession check is over"})),
        )
            .into_response();
    }
    flow.possession = outcome;
    // ASSUMPTION: Prove enrolls a flow's identity with Identity Manager once the flow passes,
    // before anyone reads its status: Identity Manager events can name it from then on.
    let enrolls = (outcome == Possession::Passed && flow.verifies).then(|| {
        (
            flow.phone.clone(),
            flow.client_customer_id.clone().unwrap_or_default(),
        )
    });
    let region = flow.region;
    let identity = enrolls.map(|(phone, customer)| s.enroll(region, phone, customer));
    // A desktop flow's Instant Link leads the user to its finalTargetUrl.
    let target = s.target_urls.get(&correlation_id).cloned();
    Json(
        json!({"correlation_id": correlation_id, "outcome": r.outcome, "identity_id": identity,
                "final_target_url": target}),
    )
    .into_response()
}

#[derive(Deserialize)]
struct FaultsRequest {
    endpoint: Endpoint,
    fail_next: Option<u32>,
    status: Option<u16>,
    delay_next: Option<u32>,
    delay_ms: Option<u64>,
    expires_in: Option<u64>,
}

fn injected_expires_in(sim: &ProveSim) -> Option<u64> {
    sim.state().faults.get(&Endpoint::Token)?.expires_in
}

/// `{"endpoint": "verify-status", "fail_next": 3, "status": 500}`,
/// `{"endpoint": "token", "expires_in": 18446744073709551615}` or
/// `{"endpoint": "verify-status", "delay_next": 1, "delay_ms": 3000}`.
async fn control_faults(State(sim): State<ProveSim>, body: Bytes) -> Response {
    let r: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid request: {e}")})),
            )
                .into_response();
        }
    };
    let mut s = sim.state();
    let f = s.faults.entry(r.endpoint).or_default();
    if let Some(n) = r.fail_next {
        f.fail_next = n;
        f.status = r.status.unwrap_or(500);
    }
    if let Some(n) = r.delay_next {
        f.delay_next = n;
        f.delay_ms = r.delay_ms.unwrap_or(0);
    }
    if r.expires_in.is_some() {
        f.expires_in = r.expires_in;
    }
    Json(*f).into_response()
}

async fn control_stats(State(sim): State<ProveSim>) -> Response {
    let s = sim.state();
    let mut by_region = serde_json::Map::new();
    for ((endpoint, region), n) in &s.calls {
        let key = format!(
            "{}:{}",
            serde_json::to_value(endpoint)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            serde_json::to_value(region)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        );
        by_region.insert(key, json!(n));
    }
    drop(s);
    Json(json!({
        "token_requests": sim.token_requests(),
        "verify_requests": sim.verify_requests(),
        "verify_status_requests": sim.status_requests(),
        "identity_requests": sim.identity_requests(),
        "disenroll_requests": sim.calls(Endpoint::Disenroll),
        "unify_requests": sim.unify_requests(),
        "unify_status_requests": sim.unify_status_requests(),
        "unify_bind_requests": sim.unify_bind_requests(),
        "by_endpoint_and_region": by_region,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct WebhookRequest {
    identity_id: String,
    event_type: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default = "yes")]
    deliver: bool,
    /// Send only the fields Prove documents (event id, type, description, time, client
    /// customer id): no identity id.
    #[serde(default)]
    documented_only: bool,
}

fn yes() -> bool {
    true
}

/// Sends one Identity Manager event about `identity_id` to the gateway as Prove would: a JSON
/// array body and `X-Prove-Authorization: Bearer <HS256 JWT>`. With `"deliver": false` it only
/// answers what it would send.
async fn control_webhooks(State(sim): State<ProveSim>, body: Bytes) -> Response {
    let r: WebhookRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid request: {e}")})),
            )
                .into_response();
        }
    };
    let customer = {
        let s = sim.state();
        if s.disenrolled.contains(&r.identity_id) {
            // Disenrolled: Identity Manager no longer watches the number.
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "this identity was disenrolled: Identity Manager sends nothing about it"})),
            )
                .into_response();
        }
        s.identities
            .iter()
            .find(|(_, id)| **id == r.identity_id)
            .map(|((_, c), _)| c.clone())
    };
    let now = now_s();
    let timestamp = time::OffsetDateTime::from_unix_timestamp(now as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    // ASSUMPTION: the key names of Prove's event objects (its field table was not found).
    let mut event = json!({
        "eventId": r.event_id.unwrap_or_else(uuid_like),
        "eventType": r.event_type,
        "description": format!("{} reported for an enrolled identity", r.event_type),
        "eventTimestamp": timestamp,
        "identityId": r.identity_id,
        "clientCustomerId": customer,
    });
    if r.documented_only
        && let Some(e) = event.as_object_mut()
    {
        e.remove("identityId");
    }
    let body = serde_json::to_string(&json!([event])).expect("JSON");
    let authorization = format!("Bearer {}", sim.webhook_jwt());
    let url = sim.state().webhook_url.clone();
    let mut delivered = json!(null);
    if r.deliver
        && let Some(url) = url
    {
        let sent = sim
            .inner
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Prove-Authorization", &authorization)
            .header("X-Correlation-ID", uuid_like())
            .body(body.clone())
            .send()
            .await;
        delivered = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                json!({"status": status, "body": answer})
            }
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    Json(json!({
        "body": body,
        "authorization": authorization,
        "delivered": delivered,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    pub(super) fn sim() -> ProveSim {
        ProveSim::new(ProveSimConfig {
            client_id: "cid".into(),
            client_secret: "csecret".into(),
            webhook_secret: "whsec_test".into(),
            webhook_url: None,
        })
    }

    pub(super) async fn call(
        router: &Router,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(b) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(super) async fn token_for(router: &Router, region: &str) -> String {
        let (s, b) = call(
            router,
            &format!("/{region}/token"),
            None,
            "application/x-www-form-urlencoded",
            "client_id=cid&client_secret=csecret&grant_type=client_credentials".into(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["access_token"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn wrong_client_credentials_get_no_token_and_calls_need_one() {
        let router = sim().router();
        let (s, _) = call(
            &router,
            "/na/token",
            None,
            "application/x-www-form-urlencoded",
            "client_id=cid&client_secret=nope&grant_type=client_credentials".into(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, b) = call(
            &router,
            "/na/v3/verify",
            Some("forged"),
            "application/json",
            "{}".into(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(b["code"].is_i64() && b["message"].is_string(), "{b}");
    }

    #[tokio::test]
    async fn the_mobile_flow_passes_after_authenticate_and_a_timed_out_one_is_refused() {
        let s = sim();
        let router = s.router();
        let t = token_for(&router, "na").await;
        let start = json!({"firstName": "Sheilakathryn", "lastName": "Butrimovich",
            "phoneNumber": "2001004011", "possessionType": "mobile", "clientRequestId": "r1",
            "clientCustomerId": "c1"});
        let (st, v) = call(
            &router,
            "/na/v3/verify",
            Some(&t),
            "application/json",
            start.to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["success"], "pending");
        let corr = v["correlationId"].as_str().unwrap().to_owned();
        let status_body = json!({"correlationId": corr, "clientRequestId": "r1"}).to_string();
        let (_, p) = call(
            &router,
            "/na/v3/verify-status",
            Some(&t),
            "application/json",
            status_body.clone(),
        )
        .await;
        assert_eq!(p["success"], "pending");
        let (st, _) = call(
            &router,
            "/control/authenticate",
            None,
            "application/json",
            json!({"auth_token": v["authToken"], "outcome": "passed"}).to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (_, done) = call(
            &router,
            "/na/v3/verify-status",
            Some(&t),
            "application/json",
            status_body,
        )
        .await;
        assert_eq!(done["success"], "true", "{done}");
        assert!(done["identityId"].is_string());

        let (_, v2) = call(
            &router,
            "/na/v3/verify",
            Some(&t),
            "application/json",
            start.to_string(),
        )
        .await;
        call(
            &router,
            "/control/authenticate",
            None,
            "application/json",
            json!({"auth_token": v2["authToken"], "outcome": "timed_out"}).to_string(),
        )
        .await;
        let (st, e) = call(
            &router,
            "/na/v3/verify-status",
            Some(&t),
            "application/json",
            json!({"correlationId": v2["correlationId"]}).to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert_eq!(e, json!({"code": 1003, "message": "step not allowed"}));
        assert_eq!(s.verify_requests(), 2);
    }

    #[tokio::test]
    async fn unknown_numbers_and_the_wrong_region_are_not_test_users() {
        let router = sim().router();
        let t = token_for(&router, "eu").await;
        let body = |phone: &str| {
            json!({"firstName": "A", "lastName": "B", "phoneNumber": phone,
            "possessionType": "none"})
            .to_string()
        };
        let (st, e) = call(
            &router,
            "/eu/v3/verify",
            Some(&t),
            "application/json",
            body("2001004011"),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["code"], 8007);
        let (st, ok) = call(
            &router,
            "/eu/v3/verify",
            Some(&t),
            "application/json",
            body("447968900002"),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        // Not the test user's name: the identity does not check out.
        assert_eq!(ok["success"], "false", "{ok}");
        assert_eq!(ok["verifyResult"], "failed");
    }

    /// A `DELETE` with an optional bearer token: status and JSON body.
    async fn delete(router: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::delete(path);
        if let Some(b) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_disenrolled_identity_is_gone_from_its_platform_and_sends_no_more_events() {
        let s = sim();
        let router = s.router();
        let t = token_for(&router, "na").await;
        let (st, e) = call(
            &router,
            "/na/v3/identity",
            Some(&t),
            "application/json",
            json!({"phoneNumber": "2001004011", "clientCustomerId": "c1"}).to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{e}");
        let id = e["identityId"].as_str().unwrap().to_owned();
        let path = format!("/na/v3/identity/{id}?clientRequestId=r1");
        // Without a token: refused, still enrolled.
        assert_eq!(
            delete(&router, &path, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        // Another platform does not know it.
        let eu = token_for(&router, "eu").await;
        let (st, e) = delete(&router, &format!("/eu/v3/identity/{id}"), Some(&eu)).await;
        assert_eq!((st, &e["code"]), (StatusCode::NOT_FOUND, &json!(1004)));
        assert!(s.is_enrolled(&id));
        let (st, ok) = delete(&router, &path, Some(&t)).await;
        assert_eq!((st, ok), (StatusCode::OK, json!({"success": true})));
        assert!(!s.is_enrolled(&id));
        // Again, or an identity never enrolled: not found.
        let (st, e) = delete(&router, &path, Some(&t)).await;
        assert_eq!((st, &e["code"]), (StatusCode::NOT_FOUND, &json!(1004)));
        let (st, _) = delete(&router, "/na/v3/identity/no-such-identity", Some(&t)).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!(s.disenroll_requests(&id), 4);
        assert_eq!(s.disenroll_requests("no-such-identity"), 1);
        // No event about it any more.
        let (st, e) = call(
            &router,
            "/control/webhooks",
            None,
            "application/json",
            json!({"identity_id": id, "event_type": "PORT", "deliver": false}).to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT, "{e}");
        // Enrolled again: a new identity.
        let (_, again) = call(
            &router,
            "/na/v3/identity",
            Some(&t),
            "application/json",
            json!({"phoneNumber": "2001004011", "clientCustomerId": "c1"}).to_string(),
        )
        .await;
        assert_ne!(again["identityId"], json!(id));
    }
}
