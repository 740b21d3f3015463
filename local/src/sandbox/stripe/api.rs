//! The v1 API: authentication (`Bearer sk_test_...` or HTTP Basic with the key as user), Stripe's
//! error body (`{"error": {type, code, message, param, doc_url}}`) with a `Request-Id` on every
//! answer, `Idempotency-Key` on POSTs, injected faults, and the VerificationSession endpoints.

use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::form::{self, Node};
use super::session::{Expand, Redaction, Session, Status};
use super::{API_VERSION, Action, IdempotencyEntry, Refusal, StripeSim, new_id, now_secs};

/// Idempotency keys may be pruned once 24 hours old.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
const METADATA_KEYS: usize = 50;
const METADATA_KEY_LEN: usize = 40;
const METADATA_VALUE_LEN: usize = 500;
const DOCUMENT_TYPES: [&str; 3] = ["driving_license", "id_card", "passport"];

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
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            saved: true,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message.into(),
        )
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A parameter-validation failure: not saved, the same key may be retried.
    fn validation(mut self) -> Self {
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

fn unknown(param: &str) -> ApiError {
    ApiError::invalid(format!("Received unknown parameter: {param}"))
        .code("parameter_unknown")
        .param(param)
        .validation()
}

fn invalid_param(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).param(param).validation()
}

fn no_such_session(id: &str) -> ApiError {
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
fn state_error(refusal: Refusal, id: &str) -> ApiError {
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
    fn request(&self) -> Option<(&str, Option<&str>)> {
        Some((&self.request_id, self.idempotency_key.as_deref()))
    }
}

type Params = Vec<(String, Node)>;
type Run<'a> = Box<dyn FnOnce(&StripeSim, &Params, &Call) -> Result<Done, ApiError> + Send + 'a>;

/// A successful answer and the events to deliver after it.
pub struct Done {
    body: Value,
    events: Vec<String>,
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
async fn serve(
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

// ---- parameters ------------------------------------------------------------------------------

fn find<'a>(params: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    params.iter().find(|(k, _)| k == key).map(|(_, n)| n)
}

fn only(params: &[(String, Node)], allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    for (k, _) in params {
        if !allowed.contains(&k.as_str()) {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}[{k}]")
            };
            return Err(unknown(&name));
        }
    }
    Ok(())
}

fn text<'a>(node: &'a Node, param: &str) -> Result<&'a str, ApiError> {
    node.as_value().ok_or_else(|| {
        invalid_param(
            param,
            format!("Invalid {param}: must be a string, not a hash"),
        )
    })
}

/// An optional string: `""` unsets it.
fn optional_text(node: &Node, param: &str, max: usize) -> Result<Option<String>, ApiError> {
    let v = text(node, param)?;
    if v.chars().count() > max {
        return Err(invalid_param(
            param,
            format!("Invalid {param}: must be at most {max} characters"),
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn boolean(node: &Node, param: &str) -> Result<Option<bool>, ApiError> {
    match text(node, param)? {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        other => Err(invalid_param(param, format!("Invalid boolean: {other}"))),
    }
}

fn expand(params: &[(String, Node)], prefix: &str) -> Result<Expand, ApiError> {
    let Some(node) = find(params, "expand") else {
        return Ok(Expand::default());
    };
    let paths = node
        .as_list()
        .ok_or_else(|| invalid_param("expand", "Invalid array"))?;
    Expand::parse(&paths, prefix)
        .map_err(|p| invalid_param("expand", format!("This property cannot be expanded ({p}).")))
}

fn kind(node: &Node) -> Result<String, ApiError> {
    match text(node, "type")? {
        "" => Err(invalid_param(
            "type",
            "You passed an empty string for 'type'. We assume empty values are an attempt to \
             unset a parameter; however 'type' cannot be unset. You should remove 'type' from \
             your request or supply a non-empty value.",
        )
        .code("parameter_invalid_empty")),
        t @ ("document" | "id_number") => Ok(t.to_owned()),
        _ => Err(invalid_param(
            "type",
            "Invalid type: must be one of document or id_number",
        )),
    }
}

/// `metadata[k]=v` sets, `metadata[k]=` removes, `metadata=` clears.
fn apply_metadata(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.metadata.clear();
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "metadata",
                "Invalid metadata: must be a hash",
            ));
        }
        Node::Group(children) => children,
    };
    for (k, v) in children {
        let param = format!("metadata[{k}]");
        if k.is_empty() {
            return Err(invalid_param(
                "metadata",
                "Invalid metadata: keys must not be empty",
            ));
        }
        if k.chars().count() > METADATA_KEY_LEN {
            return Err(invalid_param(
                &param,
                format!(
                    "Metadata keys can have a maximum length of {METADATA_KEY_LEN} characters."
                ),
            ));
        }
        let Some(v) = v.as_value() else {
            return Err(invalid_param(&param, "Metadata values must be strings."));
        };
        if v.chars().count() > METADATA_VALUE_LEN {
            return Err(invalid_param(
                &param,
                format!(
                    "Metadata values can have a maximum length of {METADATA_VALUE_LEN} characters."
                ),
            ));
        }
        match s.metadata.iter().position(|(key, _)| key == k) {
            Some(i) if v.is_empty() => {
                s.metadata.remove(i);
            }
            Some(i) => s.metadata[i].1 = v.to_owned(),
            None if v.is_empty() => {}
            None => s.metadata.push((k.clone(), v.to_owned())),
        }
    }
    if s.metadata.len() > METADATA_KEYS {
        return Err(invalid_param(
            "metadata",
            format!("Metadata can have at most {METADATA_KEYS} keys."),
        ));
    }
    Ok(())
}

/// `options[document][...]`; `options[document]=` clears.
/// ASSUMPTION: on update, the given fields replace theirs and the others stay.
fn apply_options(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.document_options = None;
            return Ok(());
        }
        Node::Value(_) => return Err(invalid_param("options", "Invalid options: must be a hash")),
        Node::Group(children) => children,
    };
    only(children, &["document"], "options")?;
    let Some(document) = find(children, "document") else {
        return Ok(());
    };
    let fields = match document {
        Node::Value(v) if v.is_empty() => {
            s.document_options = None;
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "options[document]",
                "Invalid options[document]: must be a hash",
            ));
        }
        Node::Group(fields) => fields,
    };
    only(
        fields,
        &[
            "allowed_types",
            "require_id_number",
            "require_live_capture",
            "require_matching_selfie",
        ],
        "options[document]",
    )?;
    let mut d = s.document_options.clone().unwrap_or_default();
    for (k, v) in fields {
        let param = format!("options[document][{k}]");
        match k.as_str() {
            "allowed_types" => {
                let types = v
                    .as_list()
                    .ok_or_else(|| invalid_param(&param, "Invalid array"))?;
                if let Some(bad) = types.iter().find(|t| !DOCUMENT_TYPES.contains(&t.as_str())) {
                    return Err(invalid_param(
                        &param,
                        format!(
                            "Invalid {param}[]: must be one of driving_license, id_card, or passport (got {bad})"
                        ),
                    ));
                }
                d.allowed_types = (!types.is_empty()).then_some(types);
            }
            "require_id_number" => d.require_id_number = boolean(v, &param)?,
            "require_live_capture" => d.require_live_capture = boolean(v, &param)?,
            _ => d.require_matching_selfie = boolean(v, &param)?,
        }
    }
    s.document_options = Some(d);
    Ok(())
}

fn apply_provided_details(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.provided_email = None;
            s.provided_phone = None;
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "provided_details",
                "Invalid provided_details: must be a hash",
            ));
        }
        Node::Group(children) => children,
    };
    only(children, &["email", "phone"], "provided_details")?;
    if let Some(email) = find(children, "email") {
        let email = optional_text(email, "provided_details[email]", 800)?;
        if let Some(e) = &email
            && !e
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.ends_with('.'))
        {
            return Err(invalid_param(
                "provided_details[email]",
                format!("Invalid email address: {e}"),
            )
            .code("email_invalid"));
        }
        s.provided_email = email;
    }
    // ASSUMPTION: Stripe's own checks of these are not documented; an email needs `x@y.z` and a
    // phone at most 40 characters.
    if let Some(phone) = find(children, "phone") {
        s.provided_phone = optional_text(phone, "provided_details[phone]", 40)?;
    }
    Ok(())
}

/// The fields create and update share.
fn apply_fields(s: &mut Session, params: &[(String, Node)]) -> Result<(), ApiError> {
    if let Some(node) = find(params, "type") {
        s.kind = kind(node)?;
    }
    if let Some(node) = find(params, "metadata") {
        apply_metadata(s, node)?;
    }
    if let Some(node) = find(params, "options") {
        apply_options(s, node)?;
    }
    if let Some(node) = find(params, "provided_details") {
        apply_provided_details(s, node)?;
    }
    Ok(())
}

// ---- endpoints -------------------------------------------------------------------------------

fn run_create(sim: &StripeSim, params: &Params, call: &Call) -> Result<Done, ApiError> {
    only(
        params,
        &[
            "type",
            "client_reference_id",
            "metadata",
            "options",
            "provided_details",
            "return_url",
            "related_customer",
            "verification_flow",
            "expand",
        ],
        "",
    )?;
    let expand = expand(params, "")?;
    if let Some(flow) = find(params, "verification_flow") {
        // ASSUMPTION: the simulated account has no Dashboard-configured verification flows.
        let flow = text(flow, "verification_flow")?;
        return Err(invalid_param(
            "verification_flow",
            format!("No such verification flow: '{flow}'"),
        )
        .code("resource_missing"));
    }
    if find(params, "type").is_none() {
        return Err(
            invalid_param("type", "Missing required param: type.").code("parameter_missing")
        );
    }
    let id = new_id("vs_");
    let mut session = Session {
        id: id.clone(),
        seq: 0,
        kind: String::new(),
        status: Status::RequiresInput,
        created: now_secs(),
        client_reference_id: None,
        client_secret: String::new(),
        page_token: String::new(),
        metadata: Vec::new(),
        document_options: None,
        provided_email: None,
        provided_phone: None,
        related_customer: None,
        return_url: None,
        last_error: None,
        last_report: None,
        redaction: None,
    };
    apply_fields(&mut session, params)?;
    if let Some(node) = find(params, "client_reference_id") {
        session.client_reference_id = optional_text(node, "client_reference_id", 5000)?;
    }
    if let Some(node) = find(params, "related_customer") {
        session.related_customer = optional_text(node, "related_customer", 5000)?;
    }
    if let Some(node) = find(params, "return_url") {
        let value = optional_text(node, "return_url", 5000)?;
        if let Some(u) = &value
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(invalid_param("return_url", "Not a valid URL").code("url_invalid"));
        }
        session.return_url = value;
    }
    let mut st = sim.state();
    st.seq += 1;
    session.seq = st.seq;
    st.sessions.insert(id.clone(), session);
    super::renew_credentials(&mut st, &id);
    let event = sim.emit(
        &mut st,
        &id,
        "identity.verification_session.created",
        call.request(),
    );
    let body = sim.render(&st.sessions[&id], expand);
    Ok(Done {
        body,
        events: vec![event],
    })
}

pub async fn create(
    State(sim): State<StripeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &sim,
        CREATE,
        Method::POST,
        &uri,
        &headers,
        &body,
        Box::new(run_create),
    )
    .await
}

pub async fn retrieve(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let run: Run = Box::new(move |sim, params, _call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let st = sim.state();
        let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
        Ok(Done {
            body: sim.render(s, expand),
            events: Vec::new(),
        })
    });
    serve(
        &sim,
        RETRIEVE,
        Method::GET,
        &uri,
        &headers,
        query.as_bytes(),
        run,
    )
    .await
}

pub async fn update(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, _call| {
        only(
            params,
            &["type", "metadata", "options", "provided_details", "expand"],
            "",
        )?;
        let expand = expand(params, "")?;
        let mut st = sim.state();
        let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
        if s.status != Status::RequiresInput || s.redaction.is_some() {
            return Err(ApiError::invalid(format!(
                "This VerificationSession cannot be updated: its status is {}{}; only a \
                 session in requires_input can be updated.",
                s.status.as_str(),
                if s.redaction.is_some() {
                    " and it is redacted"
                } else {
                    ""
                }
            )));
        }
        let mut updated = s.clone();
        apply_fields(&mut updated, params)?;
        let body = sim.render(&updated, expand);
        st.sessions.insert(id.clone(), updated);
        // ASSUMPTION: updates emit no event (no `identity.verification_session.updated` exists).
        Ok(Done {
            body,
            events: Vec::new(),
        })
    });
    serve(&sim, UPDATE, Method::POST, &uri, &headers, &body, run).await
}

pub async fn cancel(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let (_, events) = sim
            .act(&id, &Action::Cancel, call.request())
            .map_err(|r| state_error(r, &id))?;
        let st = sim.state();
        Ok(Done {
            body: sim.render(&st.sessions[&id], expand),
            events,
        })
    });
    serve(&sim, CANCEL, Method::POST, &uri, &headers, &body, run).await
}

/// Redaction is allowed in `requires_input` (which it cancels) and `verified` (ASSUMPTION: so a
/// session canceled otherwise cannot be redacted, as the documented rule reads); it then stays
/// `processing` until Stripe finishes it (Stripe: up to 4 days; ASSUMPTION: here only when a test
/// says so, `/control/sessions/{id}` `finish_redaction`).
pub async fn redact(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let (status, redaction) = {
            let st = sim.state();
            let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
            (s.status, s.redaction)
        };
        let mut events = Vec::new();
        // ASSUMPTION: redacting again answers the session unchanged.
        if redaction.is_none() {
            if !matches!(status, Status::RequiresInput | Status::Verified) {
                return Err(ApiError::invalid(format!(
                    "This VerificationSession cannot be redacted: its status is {}; only a \
                     session in requires_input or verified can be redacted.",
                    status.as_str()
                )));
            }
            let set = |value| {
                if let Some(s) = sim.state().sessions.get_mut(&id) {
                    s.redaction = value;
                }
            };
            set(Some(Redaction::Processing));
            // Redacting an open session cancels it; the `canceled` event shows the redaction.
            if status == Status::RequiresInput {
                match sim.act(&id, &Action::Cancel, call.request()) {
                    Ok((_, canceled)) => events = canceled,
                    Err(r) => {
                        set(None);
                        return Err(state_error(r, &id));
                    }
                }
            }
        }
        let st = sim.state();
        Ok(Done {
            body: sim.render(&st.sessions[&id], expand),
            events,
        })
    });
    serve(&sim, REDACT, Method::POST, &uri, &headers, &body, run).await
}

fn integer(node: &Node, param: &str) -> Result<i64, ApiError> {
    text(node, param)?.parse().map_err(|_| {
        invalid_param(
            param,
            format!("Invalid integer: {}", node.as_value().unwrap_or("")),
        )
        .code("parameter_invalid_integer")
    })
}

/// `created=N` or `created[gt|gte|lt|lte]=N`: the bounds as `(min, max)`, inclusive.
fn created_range(node: &Node) -> Result<(i64, i64), ApiError> {
    match node {
        Node::Value(_) => {
            let n = integer(node, "created")?;
            Ok((n, n))
        }
        Node::Group(children) => {
            only(children, &["gt", "gte", "lt", "lte"], "created")?;
            let (mut min, mut max) = (i64::MIN, i64::MAX);
            for (k, v) in children {
                let n = integer(v, &format!("created[{k}]"))?;
                match k.as_str() {
                    "gt" => min = min.max(n.saturating_add(1)),
                    "gte" => min = min.max(n),
                    "lt" => max = max.min(n.saturating_sub(1)),
                    _ => max = max.min(n),
                }
            }
            Ok((min, max))
        }
    }
}

fn run_list(sim: &StripeSim, params: &Params) -> Result<Done, ApiError> {
    only(
        params,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "status",
            "client_reference_id",
            "related_customer",
            "created",
            "expand",
        ],
        "",
    )?;
    let expand = expand(params, "data.")?;
    let limit = match find(params, "limit") {
        None => 10,
        Some(node) => {
            let n = integer(node, "limit")?;
            if !(1..=100).contains(&n) {
                return Err(invalid_param(
                    "limit",
                    format!(
                        "This value must be greater than or equal to 1 and less than or equal to 100 (it currently is {n})."
                    ),
                ));
            }
            n as usize
        }
    };
    let status = match find(params, "status") {
        None => None,
        Some(node) => {
            let s = text(node, "status")?;
            Some(Status::parse(s).ok_or_else(|| {
                invalid_param(
                    "status",
                    "Invalid status: must be one of canceled, processing, requires_input, or verified",
                )
            })?)
        }
    };
    let reference = find(params, "client_reference_id")
        .map(|n| text(n, "client_reference_id").map(str::to_owned))
        .transpose()?;
    let customer = find(params, "related_customer")
        .map(|n| text(n, "related_customer").map(str::to_owned))
        .transpose()?;
    let (min, max) = match find(params, "created") {
        Some(node) => created_range(node)?,
        None => (i64::MIN, i64::MAX),
    };
    let after = find(params, "starting_after")
        .map(|n| text(n, "starting_after").map(str::to_owned))
        .transpose()?;
    let before = find(params, "ending_before")
        .map(|n| text(n, "ending_before").map(str::to_owned))
        .transpose()?;
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
        .code("parameters_exclusive")
        .param("ending_before")
        .validation());
    }
    let st = sim.state();
    let mut all: Vec<&Session> = st
        .sessions
        .values()
        .filter(|s| status.is_none_or(|w| s.status == w))
        .filter(|s| {
            reference
                .as_deref()
                .is_none_or(|r| s.client_reference_id.as_deref() == Some(r))
        })
        .filter(|s| {
            customer
                .as_deref()
                .is_none_or(|c| s.related_customer.as_deref() == Some(c))
        })
        .filter(|s| (min..=max).contains(&s.created))
        .collect();
    // Newest first.
    all.sort_by_key(|s| std::cmp::Reverse(s.seq));
    // ASSUMPTION: a cursor naming no session is a 400 `resource_missing`.
    let position = |cursor: &str, param: &'static str| -> Result<u64, ApiError> {
        st.sessions.get(cursor).map(|s| s.seq).ok_or_else(|| {
            invalid_param(param, format!("No such verification_session: '{cursor}'"))
                .code("resource_missing")
        })
    };
    let (page, has_more): (Vec<&Session>, bool) = match (&after, &before) {
        (Some(cursor), _) => {
            let seq = position(cursor, "starting_after")?;
            let rest: Vec<&Session> = all.into_iter().filter(|s| s.seq < seq).collect();
            let more = rest.len() > limit;
            (rest.into_iter().take(limit).collect(), more)
        }
        (_, Some(cursor)) => {
            let seq = position(cursor, "ending_before")?;
            let newer: Vec<&Session> = all.into_iter().filter(|s| s.seq > seq).collect();
            let more = newer.len() > limit;
            let skip = newer.len().saturating_sub(limit);
            (newer.into_iter().skip(skip).collect(), more)
        }
        _ => {
            let more = all.len() > limit;
            (all.into_iter().take(limit).collect(), more)
        }
    };
    let data: Vec<Value> = page.iter().map(|s| sim.render(s, expand)).collect();
    Ok(Done {
        body: json!({
            "object": "list",
            "url": "/v1/identity/verification_sessions",
            "has_more": has_more,
            "data": data,
        }),
        events: Vec::new(),
    })
}

pub async fn list(
    State(sim): State<StripeSim>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    serve(
        &sim,
        LIST,
        Method::GET,
        &uri,
        &headers,
        query.as_bytes(),
        Box::new(|sim, params, _| run_list(sim, params)),
    )
    .await
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
