//! Nevis IDV simulator: an independent implementation of Nevis Authentication Cloud's documented
//! identity-verification API (`POST`/`GET idverification/sessions`, bearer access key, nine-digit
//! `sessionId`, `startUrl` = `.../idv/welcome.html?tc={sessionId}`, statuses `pending`,
//! `in_progress`, `failed`, `verified`), the welcome page where a tester plays the user, and
//! `/control/*` routes that let tests drive and break it.
//!
//! A session is `pending` until its welcome page is opened (the user consents and starts the
//! capture: `in_progress`). Completing or failing the capture gives the result after
//! `processing_ms` (Nevis "takes up to a few minutes"); until then it still reads `in_progress`.
//! Abandoning changes nothing: Nevis keeps answering the last status, and the gateway's own
//! deadline expires the session. Facts the docs do not state are marked `// ASSUMPTION:`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::html_escape;
use super::person::FakePerson;

// ASSUMPTION: the IDV endpoints live under `/api/v1/` like Nevis's other Authentication Cloud APIs.
const SESSIONS: &str = "/api/v1/idverification/sessions";

/// ASSUMPTION: Nevis documents no IDV error codes; these are the simulator's.
pub const ERROR_CODES: [&str; 5] = [
    "DOCUMENT_NOT_READABLE",
    "DOCUMENT_EXPIRED",
    "DOCUMENT_NOT_SUPPORTED",
    "FACE_MISMATCH",
    "LIVENESS_CHECK_FAILED",
];

#[derive(Clone, Debug)]
pub struct NevisSimConfig {
    /// The custom integration's access key (bearer token).
    pub access_key: String,
    /// Where the simulator is mounted, as callers reach it: the instance URL.
    pub instance_url: String,
    /// How long a finished capture reads `in_progress` before its result shows.
    pub processing_ms: u64,
}

/// The simulator; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct NevisSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: NevisSimConfig,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    sessions: HashMap<String, SimSession>,
    faults: Faults,
    create_requests: u64,
    get_requests: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Faults {
    fail_next: u32,
    fail_status: u16,
    delay_next: u32,
    delay_ms: u64,
}

#[derive(Clone, Debug)]
enum Phase {
    Pending,
    InProgress,
    Finished {
        error_code: Option<String>,
        ready_at: Instant,
    },
}

#[derive(Clone, Debug)]
struct SimSession {
    phase: Phase,
    abandoned: bool,
}

impl SimSession {
    fn status(&self) -> &'static str {
        match &self.phase {
            Phase::Pending => "pending",
            Phase::InProgress => "in_progress",
            Phase::Finished { ready_at, .. } if Instant::now() < *ready_at => "in_progress",
            Phase::Finished {
                error_code: None, ..
            } => "verified",
            Phase::Finished { .. } => "failed",
        }
    }

    /// The GET answer. ASSUMPTION: result data under `result` (its fields are not documented:
    /// `person` with names, `dateOfBirth` and `address`, `document` with `type`, `number`,
    /// `issuingCountry` and `expiryDate`, dates `YYYY-MM-DD`, countries alpha-3), error codes
    /// under `errors`.
    fn body(&self, id: &str) -> Value {
        let status = self.status();
        let mut v = json!({"sessionId": id, "status": status});
        match (&self.phase, status) {
            (_, "verified") => {
                let p = FakePerson::of(id);
                v["result"] = json!({
                    "person": {
                        "firstName": p.first_name,
                        "lastName": p.last_name,
                        "dateOfBirth": p.date_of_birth_text(),
                        "address": {"street": p.street, "postalCode": p.postal_code, "city": p.city, "country": "CHE"},
                    },
                    "document": {
                        "type": "PASSPORT",
                        "number": p.document_number,
                        "issuingCountry": "CHE",
                        "expiryDate": p.document_expiry_text(),
                    },
                });
            }
            (
                Phase::Finished {
                    error_code: Some(code),
                    ..
                },
                "failed",
            ) => {
                v["errors"] = json!([{"code": code, "message": describe(code)}]);
            }
            _ => {}
        }
        v
    }
}

fn describe(code: &str) -> &'static str {
    match code {
        "DOCUMENT_NOT_READABLE" => "The document could not be read.",
        "DOCUMENT_EXPIRED" => "The document has expired.",
        "DOCUMENT_NOT_SUPPORTED" => "The document type is not supported.",
        "FACE_MISMATCH" => "The face does not match the document photo.",
        "LIVENESS_CHECK_FAILED" => "The liveness check failed.",
        _ => "The identity verification failed.",
    }
}

/// What a tester (page) or a test (control route) does as the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Consent given, capture started: `pending` -> `in_progress`.
    Open,
    Complete,
    Fail,
    Abandon,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "complete" => Self::Complete,
            "fail" => Self::Fail,
            "abandon" => Self::Abandon,
            _ => return None,
        })
    }
}

impl NevisSim {
    pub fn new(config: NevisSimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Routes relative to the mount point (mount with `Router::nest`).
    pub fn router(&self) -> Router {
        Router::new()
            .route(SESSIONS, post(create_session))
            .route(&format!("{SESSIONS}/{{session_id}}"), get(get_session))
            .route("/idv/welcome.html", get(welcome_page))
            .route("/idv/action", post(page_action))
            .route("/control/sessions/{session_id}", post(control_session))
            .route("/control/faults", post(control_faults))
            .route("/control/stats", get(control_stats))
            .with_state(self.clone())
    }

    /// `GET idverification/sessions/{id}` requests received, refused ones included.
    pub fn get_requests(&self) -> u64 {
        self.state().get_requests
    }

    pub fn create_requests(&self) -> u64 {
        self.state().create_requests
    }

    /// The person behind a session the simulator knows (by `sessionId`): what a verified
    /// session's `result` holds.
    pub fn person(&self, session_id: &str) -> Option<FakePerson> {
        self.state()
            .sessions
            .contains_key(session_id)
            .then(|| FakePerson::of(session_id))
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies a user action; `Err` names why it is refused.
    fn act(&self, id: &str, action: Action, error_code: Option<&str>) -> Result<Value, String> {
        let processing = Duration::from_millis(self.inner.config.processing_ms);
        let mut state = self.state();
        let session = state.sessions.get_mut(id).ok_or("unknown session")?;
        match (action, &session.phase) {
            (Action::Open, Phase::Pending) => session.phase = Phase::InProgress,
            (Action::Open, _) => {} // reopening the page changes nothing
            (Action::Complete | Action::Fail, Phase::Finished { .. }) => {
                return Err("the capture is already finished".into());
            }
            (Action::Complete, _) => {
                session.phase = Phase::Finished {
                    error_code: None,
                    ready_at: Instant::now() + processing,
                }
            }
            (Action::Fail, _) => {
                let code = error_code.unwrap_or(ERROR_CODES[0]);
                if code.is_empty()
                    || code.len() > 64
                    || !code
                        .bytes()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
                {
                    return Err("error_code must be 1-64 chars of [A-Z0-9_]".into());
                }
                session.phase = Phase::Finished {
                    error_code: Some(code.to_owned()),
                    ready_at: Instant::now() + processing,
                }
            }
            (Action::Abandon, _) => session.abandoned = true,
        }
        Ok(session.body(id))
    }
}

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

/// ASSUMPTION: errors answer `{"error": "..."}` with Nevis ID Cloud's generic statuses
/// (401 missing key, 403 invalid key, 404 unknown session).
fn api_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

/// `None` when the bearer access key is right; else the refusal to answer.
fn refusal(sim: &NevisSim, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Some(api_error(StatusCode::UNAUTHORIZED, "missing access key"));
    };
    let ok: bool = token
        .as_bytes()
        .ct_eq(sim.inner.config.access_key.as_bytes())
        .into();
    (!ok).then(|| api_error(StatusCode::FORBIDDEN, "invalid access key"))
}

/// Injected failures and delays, taken in order by API requests.
async fn injected(sim: &NevisSim) -> Option<Response> {
    let (fail, delay) = {
        let mut state = sim.state();
        let f = &mut state.faults;
        let delay = if f.delay_next > 0 {
            f.delay_next -= 1;
            Duration::from_millis(f.delay_ms)
        } else {
            Duration::ZERO
        };
        let fail = if f.fail_next > 0 {
            f.fail_next -= 1;
            Some(StatusCode::from_u16(f.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        } else {
            None
        };
        (fail, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    fail.map(|status| api_error(status, "injected failure"))
}

async fn create_session(State(sim): State<NevisSim>, headers: HeaderMap) -> Response {
    sim.state().create_requests += 1;
    if let Some(refused) = refusal(&sim, &headers) {
        return refused;
    }
    if let Some(failure) = injected(&sim).await {
        return failure;
    }
    let id = {
        let mut state = sim.state();
        let id = loop {
            let candidate = rand::rng()
                .random_range(100_000_000u32..=999_999_999)
                .to_string();
            if !state.sessions.contains_key(&candidate) {
                break candidate;
            }
        };
        state.sessions.insert(
            id.clone(),
            SimSession {
                phase: Phase::Pending,
                abandoned: false,
            },
        );
        id
    };
    let start_url = format!(
        "{}/idv/welcome.html?tc={id}",
        sim.inner.config.instance_url.trim_end_matches('/')
    );
    // ASSUMPTION: 200 with exactly the two documented fields.
    Json(json!({"sessionId": id, "startUrl": start_url})).into_response()
}

async fn get_session(
    State(sim): State<NevisSim>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    sim.state().get_requests += 1;
    if let Some(refused) = refusal(&sim, &headers) {
        return refused;
    }
    if let Some(failure) = injected(&sim).await {
        return failure;
    }
    let state = sim.state();
    match state.sessions.get(&session_id) {
        Some(s) => Json(s.body(&session_id)).into_response(),
        None => api_error(StatusCode::NOT_FOUND, "session not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// The welcome page (the user's side)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct PageQuery {
    tc: Option<String>,
}

#[derive(Deserialize)]
struct ActionForm {
    tc: Option<String>,
    action: Option<String>,
    error_code: Option<String>,
}

async fn welcome_page(State(sim): State<NevisSim>, Query(q): Query<PageQuery>) -> Response {
    let Some(tc) = q.tc.filter(|t| sim.state().sessions.contains_key(t)) else {
        return page_error(
            StatusCode::NOT_FOUND,
            "unknown identity verification session",
        );
    };
    // Opening the page is the user's consent and the start of the capture.
    let _ = sim.act(&tc, Action::Open, None);
    let (status, abandoned, finished) = {
        let state = sim.state();
        let s = &state.sessions[&tc];
        let finished = matches!(s.phase, Phase::Finished { .. });
        (s.status(), s.abandoned, finished)
    };
    let url = format!(
        "{}/idv/welcome.html?tc={tc}",
        sim.inner.config.instance_url.trim_end_matches('/')
    );
    Html(render_page(&tc, &url, status, abandoned, finished)).into_response()
}

async fn page_action(State(sim): State<NevisSim>, Form(form): Form<ActionForm>) -> Response {
    let (Some(tc), Some(action)) = (form.tc, form.action.as_deref().and_then(Action::parse)) else {
        return page_error(StatusCode::BAD_REQUEST, "unknown session or action");
    };
    if let Err(why) = sim.act(&tc, action, form.error_code.as_deref()) {
        return page_error(StatusCode::CONFLICT, &why);
    }
    let tc: String = url::form_urlencoded::byte_serialize(tc.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("welcome.html?tc={tc}"))],
    )
        .into_response()
}

fn page_error(status: StatusCode, reason: &str) -> Response {
    let body = super::page::document(
        "Nevis",
        "Nevis IDV (sandbox)",
        &format!(
            "<h1>Identity verification unavailable</h1>\
             <p class=\"alert\" role=\"alert\">{}</p>\n",
            html_escape(reason)
        ),
    );
    (status, Html(body)).into_response()
}

/// The page's own URL as a QR code (inline SVG), for a desktop user to continue on a phone, as
/// Nevis's welcome page offers. `None` if the URL does not fit a QR code.
fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    // Drop the XML prolog: the SVG is inline HTML, labelled for assistive technology.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code of this page's address\"",
        1,
    ))
}

fn render_page(tc: &str, url: &str, status: &str, abandoned: bool, finished: bool) -> String {
    let hidden = |action: &'static str| [("tc", tc), ("action", action)];
    let options: String = ERROR_CODES
        .iter()
        .map(|c| format!("<option value=\"{c}\">{c}: {}</option>", describe(c)))
        .collect();
    let select = format!(
        "<label for=\"error_code\">Why the capture fails</label>\
         <select id=\"error_code\" name=\"error_code\">{options}</select> "
    );
    let steps = if !finished && !abandoned {
        format!(
            "<h2>Capture: choose the outcome</h2>\n{}{}{}",
            super::page::step(
                &hidden("complete"),
                "action",
                "",
                "Complete the capture (verified)",
                "The user photographs the document and takes the selfie; Nevis processes them \
                 (in_progress for a few seconds) and verifies the user.",
            ),
            super::page::step(
                &hidden("fail"),
                "action",
                &select,
                "Fail the capture",
                "Nevis processes the capture and rejects it with this error code, which the \
                 gateway keeps as last_error.",
            ),
            super::page::step(
                &hidden("abandon"),
                "action",
                "",
                "Abandon (leave the page)",
                "The user closes the page. Nevis keeps the session in_progress forever; the \
                 gateway's deadline (expires_at) expires it.",
            ),
        )
    } else if finished && status == "in_progress" {
        "<p role=\"status\">Capture finished: Nevis is processing it and decides in a few \
         seconds. You can close this page.</p>\n"
            .to_owned()
    } else {
        "<p role=\"status\">Nothing left to do on this page: you can close it.</p>\n".to_owned()
    };
    let phone = match qr_svg(url) {
        Some(svg) if !finished && !abandoned => format!(
            "<h2>On a computer? Continue on your phone</h2>\n\
             <div class=\"qr\">{svg}</div>\n\
             <p>Nevis shows this code to desktop users: scanning it opens this page on the phone, \
             whose camera takes the document and the selfie. (The sandbox's address is on this \
             machine, so a phone cannot open it: capture here instead.)</p>\n"
        ),
        _ => String::new(),
    };
    let tc = html_escape(tc);
    let main = format!(
        "<h1>Nevis identity verification (sandbox)</h1>\n\
         <dl><dt>Session</dt><dd id=\"session\">{tc}</dd>\
         <dt>Status</dt><dd id=\"status\">{status}</dd>\
         <dt>Abandoned</dt><dd id=\"abandoned\">{abandoned}</dd></dl>\n\
         <p class=\"note\">Nevis's welcome page. Opening it is the user's consent: the session \
         went from pending to in_progress. On a desktop, Nevis shows a QR code here to continue \
         on a phone; the simulator captures in place.</p>\n{phone}{steps}"
    );
    super::page::document(
        "Nevis",
        &format!("Nevis identity verification: {status} (sandbox)"),
        &main,
    )
}

// ---------------------------------------------------------------------------------------------
// Control routes (tests and testers only)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ControlRequest {
    action: String,
    #[serde(default)]
    error_code: Option<String>,
}

fn bad_request(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn control_session(
    State(sim): State<NevisSim>,
    Path(session_id): Path<String>,
    body: Bytes,
) -> Response {
    let request: ControlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("invalid request: {e}")),
    };
    let Some(action) = Action::parse(&request.action) else {
        return bad_request("action must be open, complete, fail or abandon");
    };
    match sim.act(&session_id, action, request.error_code.as_deref()) {
        Ok(v) => Json(v).into_response(),
        Err(why) if why == "unknown session" => api_error(StatusCode::NOT_FOUND, &why),
        Err(why) => bad_request(&why),
    }
}

#[derive(Deserialize)]
struct FaultsRequest {
    fail_next: Option<u32>,
    status: Option<u16>,
    delay_next: Option<u32>,
    delay_ms: Option<u64>,
}

async fn control_faults(State(sim): State<NevisSim>, body: Bytes) -> Response {
    let request: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("invalid request: {e}")),
    };
    let status = request.status.unwrap_or(500);
    if StatusCode::from_u16(status).is_err() {
        return bad_request("invalid status");
    }
    let mut state = sim.state();
    if let Some(n) = request.fail_next {
        state.faults.fail_next = n;
        state.faults.fail_status = status;
    }
    if let Some(n) = request.delay_next {
        state.faults.delay_next = n;
        state.faults.delay_ms = request.delay_ms.unwrap_or(0);
    }
    Json(state.faults).into_response()
}

async fn control_stats(State(sim): State<NevisSim>) -> Response {
    let state = sim.state();
    Json(json!({
        "create_requests": state.create_requests,
        "get_requests": state.get_requests,
        "sessions": state.sessions.len(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    const KEY: &str = "test-access-key";

    fn sim(processing_ms: u64) -> NevisSim {
        NevisSim::new(NevisSimConfig {
            access_key: KEY.into(),
            instance_url: "http://sim.local/sandbox/nevis".into(),
            processing_ms,
        })
    }

    async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn api(method: &str, path: &str, key: Option<&str>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        b.header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap()
    }

    fn control(id: &str, body: Value) -> Request<Body> {
        Request::builder()
            .method("POST")
            .uri(format!("/control/sessions/{id}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn a_session_goes_pending_in_progress_then_verified() {
        let router = sim(0).router();
        let (status, created) = send(&router, api("POST", SESSIONS, Some(KEY))).await;
        assert_eq!(status, 200);
        let id = created["sessionId"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 9);
        assert_eq!(
            created["startUrl"],
            format!("http://sim.local/sandbox/nevis/idv/welcome.html?tc={id}")
        );
        let read = |router: &Router| {
            let router = router.clone();
            let id = id.clone();
            async move { send(&router, api("GET", &format!("{SESSIONS}/{id}"), Some(KEY))).await }
        };
        assert_eq!(read(&router).await.1["status"], "pending");
        let page = router
            .clone()
            .oneshot(
                Request::builder()
                    .uri(format!("/idv/welcome.html?tc={id}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(read(&router).await.1["status"], "in_progress");
        send(&router, control(&id, json!({"action": "complete"}))).await;
        let (_, done) = read(&router).await;
        assert_eq!(done["status"], "verified");
        assert!(done["result"].is_object());
    }

    #[tokio::test]
    async fn a_failed_capture_reports_its_code_after_processing() {
        let s = sim(60_000);
        let router = s.router();
        let (_, created) = send(&router, api("POST", SESSIONS, Some(KEY))).await;
        let id = created["sessionId"].as_str().unwrap();
        let (_, body) = send(
            &router,
            control(id, json!({"action": "fail", "error_code": "FACE_MISMATCH"})),
        )
        .await;
        // Still processing: the result shows only after processing_ms.
        assert_eq!(body["status"], "in_progress");
        let fast = sim(0);
        let router = fast.router();
        let (_, created) = send(&router, api("POST", SESSIONS, Some(KEY))).await;
        let id = created["sessionId"].as_str().unwrap();
        let (_, body) = send(
            &router,
            control(id, json!({"action": "fail", "error_code": "FACE_MISMATCH"})),
        )
        .await;
        assert_eq!(body["status"], "failed");
        assert_eq!(body["errors"][0]["code"], "FACE_MISMATCH");
    }

    #[tokio::test]
    async fn the_access_key_is_required_and_faults_are_injected() {
        let s = sim(0);
        let router = s.router();
        assert_eq!(send(&router, api("POST", SESSIONS, None)).await.0, 401);
        assert_eq!(
            send(&router, api("POST", SESSIONS, Some("wrong"))).await.0,
            403
        );
        assert_eq!(
            send(
                &router,
                api("GET", &format!("{SESSIONS}/123456789"), Some(KEY))
            )
            .await
            .0,
            404
        );
        let faults = Request::builder()
            .method("POST")
            .uri("/control/faults")
            .body(Body::from(r#"{"fail_next":1,"status":503}"#))
            .unwrap();
        assert_eq!(send(&router, faults).await.0, 200);
        assert_eq!(send(&router, api("POST", SESSIONS, Some(KEY))).await.0, 503);
        assert_eq!(send(&router, api("POST", SESSIONS, Some(KEY))).await.0, 200);
        assert_eq!(s.create_requests(), 4);
        assert_eq!(s.get_requests(), 1);
    }

    #[test]
    fn the_welcome_page_offers_a_qr_code_of_itself_until_the_capture_is_over() {
        let url = "http://127.0.0.1:8080/sandbox/nevis/idv/welcome.html?tc=123456789";
        let open = render_page("123456789", url, "in_progress", false, false);
        assert!(
            open.contains("<svg role=\"img\" aria-label=\"QR code of this page's address\""),
            "{open}"
        );
        assert!(!open.contains("<?xml"), "inline SVG carries no XML prolog");
        // The code encodes the page's own address: decoding is a reader's job, but the same URL
        // gives the same code and another URL another one.
        assert_eq!(qr_svg(url), qr_svg(url));
        assert_ne!(qr_svg(url), qr_svg(&url.replace("123456789", "987654321")));
        for done in [
            render_page("123456789", url, "verified", false, true),
            render_page("123456789", url, "in_progress", true, false),
        ] {
            assert!(!done.contains("<svg"), "{done}");
        }
    }
}
