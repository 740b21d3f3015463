//! What every v1 API request goes through: authentication (`Bearer sk_test_...` or HTTP Basic
//! with the key as user), Stripe's error body (`{"error": {type, code, message, param, ...}}`)
//! with a `Request-Id` on every answer, `Idempotency-Key` on POSTs, and injected faults.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::form::{self, Node};
use super::{API_VERSION, IdempotencyEntry, Refusal, StripeSim, new_id};

/// Idempotency keys may be pruned once 24 hours old.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

pub const CREATE: &str = "POST /v1/identity/verification_sessions";
pub const LIST: &str = "GET /v1/identity/verification_sessions";
pub const RETRIEVE: &str = "GET /v1/identity/verification_sessions/{session}";
pub const UPDATE: &str = "POST /v1/identity/verification_sessions/{session}";
pub const CANCEL: &str = "POST /v1/identity/verification_sessions/{session}/cancel";
pub const REDACT: &str = "POST /v1/identity/verification_sessions/{session}/redact";

/// One of Stripe's error answers.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
    /// Part of the idempotency record (the endpoint ran); parameter validation is not.
    saved: bool,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            saved: true,
        }
    }

    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message.into(),
        )
    }

    pub(super) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(super) fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A parameter-validation failure: not saved, the same key may be retried.
    pub(super) fn validation(mut self) -> Self {
        self.saved = false;
        self
    }

    fn body(&self, request_id: &str) -> Value {
        let mut error = json!({
            "type": self.kind,
            "message": self.message,
            "request_log_url": format!("https://dashboard.stripe.com/test/logs/{request_id}"),
        });
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        json!({"error": error})
    }
}

pub(super) fn unknown(param: &str) -> ApiError {
    ApiError::invalid(format!("Received unknown parameter: {param}"))
        .code("parameter_unknown")
        .param(param)
        .validation()
}

pub(super) fn invalid_param(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).param(param).validation()
}

pub(super) fn no_such_session(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("No such verification_session: '{id}'"),
    )
    .code("resource_missing")
    .param("id")
}

/// ASSUMPTION: Stripe's code and message for an Identity state conflict are not documented;
/// a 400 `invalid_request_error` without a code.
pub(super) fn state_error(refusal: Refusal, id: &str) -> ApiError {
    match refusal {
        Refusal::NotFound => no_such_session(id),
        Refusal::State(why) | Refusal::Invalid(why) => ApiError::invalid(format!(
            "This VerificationSession cannot be changed: {why}."
        )),
    }
}

/// What a request is, for the answer's headers and the events it causes.
pub struct Call {
    pub request_id: String,
    version: String,
    pub idempotency_key: Option<String>,
}

impl Call {
    pub(super) fn request(&self) -> Option<(&str, Option<&str>)> {
        Some((&self.request_id, self.idempotency_key.as_deref()))
    }
}

pub(super) type Params = Vec<(String, Node)>;
pub(super) type Run<'a> =
    Box<dyn FnOnce(&StripeSim, &Params, &Call) -> Result<Done, ApiError> + Send + 'a>;

/// A successful answer and the events to deliver after it.
pub struct Done {
    pub(super) body: Value,
    pub(super) events: Vec<String>,
}

fn answer(status: StatusCode, body: &Value, call: &Call, replayed: bool) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&call.request_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&call.version) {
        h.insert("stripe-version", v);
    }
    if let Some(key) = call
        .idempotency_key
        .as_deref()
        .and_then(|k| HeaderValue::from_str(k).ok())
    {
        h.insert("idempotency-key", key);
    }
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    // The SDKs obey this before any status rule.
    if status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        h.insert("stripe-should-retry", HeaderValue::from_static("true"));
    }
    response
}

fn fail(error: &ApiError, call: &Call) -> Response {
    answer(error.status, &error.body(&call.request_id), call, false)
}

/// `Some(key)` when `Authorization` carries a key, as `Bearer` or as Basic's user name.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return Some(text.split(':').next().unwrap_or_default().to_owned());
    }
    None
}

fn authenticate(sim: &StripeSim, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |message: String| {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message).validation()
    };
    let Some(key) = presented_key(headers).filter(|k| !k.is_empty()) else {
        return Err(unauthorized(
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY')."
                .into(),
        ));
    };
    if bool::from(key.as_bytes().ct_eq(sim.secret_key().as_bytes())) {
        return Ok(());
    }
    if key.starts_with("pk_") {
        // ASSUMPTION: the status of `secret_key_required` is not documented; 401.
        return Err(unauthorized(
            "This API call cannot be made with a publishable API key. Please use a secret API key."
                .into(),
        )
        .code("secret_key_required"));
    }
    // Only the last four characters of a wrong key are echoed, as Stripe does.
    let shown: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(unauthorized(format!(
        "Invalid API Key provided: {}****{shown}",
        key.split('_').take(2).collect::<Vec<_>>().join("_")
    )))
}

/// An injected delay, then an injected failure, in the order the faults were set.
async fn injected(sim: &StripeSim) -> Option<ApiError> {
    let (fail, delay) = {
        let mut st = sim.state();
        let f = &mut st.faults;
        let delay = if f.delay_next > 0 {
            f.delay_next -= 1;
            Duration::from_millis(f.delay_ms)
        } else {
            Duration::ZERO
        };
        let fail = (f.fail_next > 0).then(|| {
            f.fail_next -= 1;
            StatusCode::from_u16(f.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        (fail, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // ASSUMPTION: an injected failure stands for one before the endpoint runs (at the edge),
    // so it is not saved under the idempotency key and a retry runs the request.
    fail.map(|status| {
        let e = match status.as_u16() {
            429 => ApiError::new(
                status,
                "invalid_request_error",
                "Too many requests hit the API too quickly.",
            )
            .code("rate_limit"),
            409 => ApiError::new(
                status,
                "invalid_request_error",
                "This object cannot be accessed right now because another API request or \
                 Stripe process is currently accessing it.",
            )
            .code("lock_timeout"),
            _ => ApiError::new(
                status,
                "api_error",
                "An unexpected error occurred (injected by the simulator).",
            ),
        };
        e.validation()
    })
}

/// The pipeline every API request goes through: count, authenticate, parse, idempotency (POST),
/// faults, run, record.
pub(super) async fn serve(
    sim: &StripeSim,
    endpoint: &'static str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    raw: &[u8],
    run: Run<'_>,
) -> Response {
    *sim.state().requests.entry(endpoint.to_owned()).or_default() += 1;
    let version = headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(API_VERSION)
        .to_owned();
    let idempotency_key = (method == Method::POST)
        .then(|| {
            headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .flatten();
    let call = Call {
        request_id: new_id("req_")[..18].to_owned(),
        version,
        idempotency_key,
    };
    if let Err(e) = authenticate(sim, headers) {
        return fail(&e, &call);
    }
    let params = match form::parse(raw) {
        Ok(p) => p,
        Err(e) => return fail(&invalid_param(&e.param, e.message), &call),
    };

    // Idempotency: a key is claimed before the endpoint runs, so a concurrent request with the
    // same key sees it in use.
    let fingerprint =
        json!({"method": method.as_str(), "path": uri.path(), "params": form::canonical(&params)});
    if let Some(key) = &call.idempotency_key {
        // ASSUMPTION: a longer key is refused like a bad parameter (its error is not documented).
        if key.len() > 255 {
            return fail(
                &invalid_param(
                    "Idempotency-Key",
                    "Idempotency keys can be at most 255 characters long.",
                ),
                &call,
            );
        }
        let mut st = sim.state();
        st.idempotency
            .retain(|_, e| e.created.elapsed() < IDEMPOTENCY_TTL);
        match st.idempotency.get(key) {
            Some(e) if e.fingerprint != fingerprint => {
                let error = ApiError::invalid(format!(
                    "Keys for idempotent requests can only be used with the same parameters \
                     they were first used with. Try using a key other than '{key}' if you meant \
                     to execute a different request."
                ))
                .param("Idempotency-Key");
                let error = ApiError {
                    kind: "idempotency_error",
                    ..error
                };
                drop(st);
                return fail(&error, &call);
            }
            Some(IdempotencyEntry {
                answer: Some((status, body)),
                ..
            }) => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
                let body = body.clone();
                drop(st);
                return answer(status, &body, &call, true);
            }
            Some(_) => {
                drop(st);
                // ASSUMPTION: the type of `idempotency_key_in_use` is not documented.
                let error = ApiError::new(
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    "There is currently another in-progress request using this Idempotency Key \
                     (that probably means you submitted twice, and the other request is still \
                     going through). Please try again later.",
                )
                .code("idempotency_key_in_use");
                return fail(&error, &call);
            }
            None => {
                st.idempotency.insert(
                    key.clone(),
                    IdempotencyEntry {
                        fingerprint,
                        created: Instant::now(),
                        answer: None,
                    },
                );
            }
        }
    }
    let release = |sim: &StripeSim| {
        if let Some(key) = &call.idempotency_key {
            let mut st = sim.state();
            if st.idempotency.get(key).is_some_and(|e| e.answer.is_none()) {
                st.idempotency.remove(key);
            }
        }
    };
    if let Some(e) = injected(sim).await {
        release(sim);
        return fail(&e, &call);
    }
    let (status, body, events) = match run(sim, &params, &call) {
        Ok(done) => (StatusCode::OK, done.body, done.events),
        Err(e) if !e.saved => {
            release(sim);
            return fail(&e, &call);
        }
        Err(e) => (e.status, e.body(&call.request_id), Vec::new()),
    };
    if let Some(key) = &call.idempotency_key
        && let Some(entry) = sim.state().idempotency.get_mut(key)
    {
        entry.answer = Some((status.as_u16(), body.clone()));
    }
    sim.deliver_later(events, Duration::ZERO);
    answer(status, &body, &call, false)
}

/// Stripe's answer to a path or method it does not serve.
pub async fn unrecognized_url(method: Method, uri: Uri) -> Response {
    let call = Call {
        request_id: new_id("req_")[..18].to_owned(),
        version: API_VERSION.to_owned(),
        idempotency_key: None,
    };
    let error = ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we \
             can help at https://support.stripe.com/.",
            uri.path()
        ),
    );
    fail(&error, &call)
}
