//! Prove's Unify dialect (docs/providers/prove.md#unify): `/v3/unify` starts a possession flow
//! and answers `{"success":"pending","authToken","correlationId"}`; `/v3/unify-status` answers
//! `success` = `pending`, `true`, `false` or `possession_required` (with `proveId`, `phoneNumber`,
//! `deviceId` ... once it passed); `/v3/unify-bind` binds the number after the app's own
//! possession check (customer-supplied possession, `possessionType: none`). Unify's own sandbox
//! test users; errors in Prove's newer codes (8001 malformed, 8003 step out of order, 8007 no
//! test user, 8008 invalid correlation id). The client SDK's `Authenticate()` is
//! `/control/authenticate`, shared with Verified Users.
//!
//! Facts Prove's docs do not state are marked `// ASSUMPTION:`.

use super::{
    Endpoint, Flow, Possession, ProveSim, Region, bearer_call_coded, normalize_phone, prove_error,
    random, uuid_like,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// One of Prove's Unify sandbox test users.
#[derive(Debug, Clone, Copy)]
pub struct UnifyUser {
    /// As the simulator compares it: 10 digits in North America, country code and number
    /// elsewhere (Prove writes its international users with a `+`).
    pub phone: &'static str,
    pub name: &'static str,
    pub region: Region,
    /// Short-term: passes possession without the client SDK, and no Prove Key is placed.
    pub short_term: bool,
}

const fn user(phone: &'static str, name: &'static str, region: Region, short: bool) -> UnifyUser {
    UnifyUser {
        phone,
        name,
        region,
        short_term: short,
    }
}

/// Prove's documented Unify test users. ASSUMPTION: Prove publishes the outcomes of Lorant
/// Nerger (passes the whole flow) and of the short-term users only; the others pass once
/// `Authenticate()` passed, as Lorant does (the simulator has no Mobile Auth: its users are
/// checked like the others).
pub const UNIFY_USERS: &[UnifyUser] = &[
    user("2001004018", "Barbaraanne Canet", Region::Na, true),
    user("2001004014", "Lorant Nerger", Region::Na, false),
    user("2001004015", "Laney Dyball", Region::Na, false),
    user("2001004016", "Inge Galier", Region::Na, false),
    user("2001004017", "Jesse Mashro", Region::Na, false),
    user("2001004041", "Penny Jowers", Region::Na, false),
    user("2001004029", "Janos Martina", Region::Eu, true),
    user("2001004025", "Bertie Fremont", Region::Eu, false),
    user("2001004026", "Bonnie Sidon", Region::Eu, false),
    user("2001004027", "Allissa Zoren", Region::Eu, false),
    user("2001004028", "Wendy Strover", Region::Eu, false),
    user("2001004043", "Amii Porritt", Region::Eu, false),
];

/// A refusal in Prove's `{code, message}` shape, made into a response by the handler.
struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
}

impl Refusal {
    fn response(self) -> Response {
        prove_error(self.status, self.code, &self.message)
    }
}

/// Prove's 400 "Malformed Request" (invalid parameters: the reason in `message`).
fn malformed(message: &str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code: 8001,
        message: message.to_owned(),
    }
}

/// ASSUMPTION: which HTTP status carries 8008 is not documented; 400 here.
fn invalid_correlation_id() -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code: 8008,
        message: "invalid correlation ID".into(),
    }
}

fn out_of_order() -> Response {
    prove_error(StatusCode::FORBIDDEN, 8003, "step called out of order")
}

/// A non-empty string field, else a 400 naming it.
fn required<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(malformed(&format!("field '{name}' is missing"))),
        Some(_) => Err(malformed(&format!("field '{name}' is invalid"))),
    }
}

fn optional<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(&format!("field '{name}' is invalid"))),
    }
}

/// `POST /v3/unify`.
pub(super) async fn unify(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) = match bearer_call_coded::<Map<String, Value>>(
        &sim,
        &region,
        Endpoint::Unify,
        &headers,
        &body,
        8001,
    )
    .await
    {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    start(&sim, region, &b).unwrap_or_else(Refusal::response)
}

fn start(sim: &ProveSim, region: Region, b: &Map<String, Value>) -> Result<Response, Refusal> {
    let possession = required(b, "possessionType")?;
    if !matches!(possession, "mobile" | "desktop" | "none") {
        return Err(malformed("field 'possessionType' is invalid"));
    }
    let client_request_id = required(b, "clientRequestId")?;
    // ASSUMPTION: without Mobile Auth or a proveId (neither simulated) the number is required.
    let phone = normalize_phone(required(b, "phoneNumber")?);
    // Where a desktop flow's Instant Link leads: Prove's rule, as /v3/verify checks it.
    let target_url = if possession == "desktop" {
        match optional(b, "finalTargetUrl")? {
            None | Some("") => return Err(malformed("field 'finalTargetUrl' is missing")),
            Some(u) if u.len() > 128 => {
                return Err(malformed("field 'finalTargetUrl' is too long"));
            }
            Some(u)
                if !u
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._+=/:?".contains(&c)) =>
            {
                return Err(malformed("field 'finalTargetUrl' is invalid"));
            }
            Some(u) => Some(u.to_owned()),
        }
    } else {
        None
    };
    if optional(b, "smsMessage")?.is_some_and(|m| m.chars().count() > 160) {
        return Err(malformed("field 'smsMessage' is too long"));
    }
    for flag in [
        "allowOTPRetry",
        "checkReputation",
        "rebind",
        "mobileAuthEnabled",
    ] {
        if b.get(flag).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            return Err(malformed(&format!("field '{flag}' is invalid")));
        }
    }
    // ASSUMPTION: each region's sandbox knows its own test users only.
    let Some(user) = UNIFY_USERS
        .iter()
        .find(|u| u.phone == phone && u.region == region)
    else {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: 8007,
            message: "no test user found matching the phone number".into(),
        });
    };
    let correlation_id = uuid_like();
    let auth_token = random("sim_auth_");
    let flow = Flow {
        region,
        possession_type: possession.to_owned(),
        client_request_id: Some(client_request_id.to_owned()),
        client_customer_id: optional(b, "clientCustomerId")?.map(str::to_owned),
        phone,
        // Unify checks possession only: a passed check is a verified customer.
        verifies: true,
        possession: Possession::Pending,
        identity_id: None,
        unify: true,
        short_term: user.short_term,
    };
    let mut s = sim.state();
    // The client SDK runs in every Unify flow (it checks for a Prove Key, or places one), the
    // customer-supplied-possession one too.
    s.auth_tokens
        .insert(auth_token.clone(), correlation_id.clone());
    if let Some(url) = target_url {
        s.target_urls.insert(correlation_id.clone(), url);
    }
    s.flows.insert(correlation_id.clone(), flow);
    Ok(Json(json!({
        "success": "pending",
        "authToken": auth_token,
        "correlationId": correlation_id,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepBody {
    correlation_id: Option<String>,
    client_request_id: Option<String>,
    /// unify-bind's number; unify-status accepts and ignores it (one version of Prove's reference
    /// has it there, for `possessionType: none`).
    phone_number: Option<String>,
}

/// The Unify flow a step names, or Prove's refusal.
fn flow_of(sim: &ProveSim, region: Region, b: &StepBody) -> Result<(String, Flow), Refusal> {
    let Some(correlation_id) = b.correlation_id.clone().filter(|c| !c.is_empty()) else {
        return Err(malformed("field 'correlationId' is missing"));
    };
    let flow = sim.state().flows.get(&correlation_id).cloned();
    // ASSUMPTION: a legacy flow's id, another region's or an unknown one are all 8008.
    let Some(flow) = flow.filter(|f| f.unify && f.region == region) else {
        return Err(invalid_correlation_id());
    };
    if b.client_request_id.is_some() && b.client_request_id != flow.client_request_id {
        return Err(malformed("clientRequestId does not match the flow"));
    }
    Ok((correlation_id, flow))
}

/// What unify-status and unify-bind answer about a flow: `success` and, once it passed, the
/// customer's ids. Optional fields without a value are left out, never `null` (Prove's
/// convention).
fn answer(sim: &ProveSim, correlation_id: &str, flow: &Flow, success: &str) -> Value {
    let mut out = json!({"success": success, "phoneNumber": flow.phone});
    if let Some(r) = &flow.client_request_id {
        out["clientRequestId"] = json!(r);
    }
    if success == "true" {
        // ASSUMPTION: the proveId is the identity Identity Manager's events name (one per number
        // and customer, as the simulator's enrollments).
        let customer = flow.client_customer_id.clone().unwrap_or_default();
        let mut s = sim.state();
        let prove_id = s.enroll(flow.region, flow.phone.clone(), customer);
        if let Some(f) = s.flows.get_mut(correlation_id) {
            f.identity_id = Some(prove_id.clone());
        }
        out["proveId"] = json!(prove_id);
        // A Prove Key is placed on mobile only, and not for short-term users.
        if flow.possession_type != "desktop" && !flow.short_term {
            out["deviceId"] = json!(uuid_like());
        }
        // ASSUMPTION: G describes the keys `authentication` and `risk`; their values other than
        // a pass are NOT FOUND.
        out["evaluation"] = json!({
            "authentication": {"result": "pass"},
            "risk": {"result": "pass"},
        });
    }
    out
}

/// `POST /v3/unify-status`.
pub(super) async fn unify_status(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) = match bearer_call_coded::<StepBody>(
        &sim,
        &region,
        Endpoint::UnifyStatus,
        &headers,
        &body,
        8001,
    )
    .await
    {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let (correlation_id, flow) = match flow_of(&sim, region, &b) {
        Ok(f) => f,
        Err(refused) => return refused.response(),
    };
    let success = match flow.possession {
        // Short-term users pass without the client SDK.
        Possession::Pending if flow.short_term && flow.possession_type != "none" => "true",
        // No Prove Key authenticated: the app's own check is due, then unify-bind.
        Possession::Pending if flow.possession_type == "none" => "possession_required",
        // ASSUMPTION: while the possession check runs Prove says `pending` (its unify-server
        // reference); its sandbox page says `false` when `Authenticate()` never ran, which the
        // simulator answers once the window closed (`timed_out`).
        Possession::Pending => "pending",
        Possession::Passed => "true",
        Possession::Failed | Possession::TimedOut => "false",
    };
    Json(answer(&sim, &correlation_id, &flow, success)).into_response()
}

/// `POST /v3/unify-bind`: only after unify-status said `possession_required`, and only once.
pub(super) async fn unify_bind(
    State(sim): State<ProveSim>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, b) = match bearer_call_coded::<StepBody>(
        &sim,
        &region,
        Endpoint::UnifyBind,
        &headers,
        &body,
        8001,
    )
    .await
    {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let (correlation_id, mut flow) = match flow_of(&sim, region, &b) {
        Ok(f) => f,
        Err(refused) => return refused.response(),
    };
    let Some(phone) = b.phone_number.as_deref().filter(|p| !p.is_empty()) else {
        return malformed("field 'phoneNumber' is missing").response();
    };
    // ASSUMPTION: a bind out of the customer-supplied-possession flow, or a second one, is a step
    // out of order.
    if flow.possession_type != "none" || flow.possession != Possession::Pending {
        return out_of_order();
    }
    // Prove's sandbox: `false` when the number does not match the test user.
    flow.possession = if normalize_phone(phone) == flow.phone {
        Possession::Passed
    } else {
        Possession::Failed
    };
    if let Some(f) = sim.state().flows.get_mut(&correlation_id) {
        f.possession = flow.possession;
    }
    let success = if flow.possession == Possession::Passed {
        "true"
    } else {
        "false"
    };
    Json(answer(&sim, &correlation_id, &flow, success)).into_response()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, sim, token_for};
    use axum::http::StatusCode;
    use serde_json::json;

    #[tokio::test]
    async fn a_mobile_flow_is_pending_until_authenticate_then_names_the_customer() {
        let s = sim();
        let router = s.router();
        let t = token_for(&router, "na").await;
        let start = json!({"possessionType": "mobile", "clientRequestId": "r1",
            "phoneNumber": "+12001004014", "clientCustomerId": "c1"});
        let (st, v) = call(
            &router,
            "/na/v3/unify",
            Some(&t),
            "application/json",
            start.to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["success"], "pending");
        assert!(v["authToken"].is_string() && v["correlationId"].is_string());
        let status =
            json!({"correlationId": v["correlationId"], "clientRequestId": "r1"}).to_string();
        let (_, p) = call(
            &router,
            "/na/v3/unify-status",
            Some(&t),
            "application/json",
            status.clone(),
        )
        .await;
        assert_eq!(p["success"], "pending", "{p}");
        assert!(p.get("proveId").is_none());
        call(
            &router,
            "/control/authenticate",
            None,
            "application/json",
            json!({"auth_token": v["authToken"], "outcome": "passed"}).to_string(),
        )
        .await;
        let (_, done) = call(
            &router,
            "/na/v3/unify-status",
            Some(&t),
            "application/json",
            status,
        )
        .await;
        assert_eq!(done["success"], "true", "{done}");
        assert_eq!(done["phoneNumber"], "2001004014");
        assert!(
            done["proveId"].is_string() && done["deviceId"].is_string(),
            "{done}"
        );
        // The legacy status step does not know a Unify flow.
        let (st, _) = call(
            &router,
            "/na/v3/verify-status",
            Some(&t),
            "application/json",
            json!({"correlationId": v["correlationId"]}).to_string(),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!((s.unify_requests(), s.unify_status_requests()), (1, 2));
    }

    #[tokio::test]
    async fn customer_supplied_possession_binds_once_and_errors_use_the_newer_codes() {
        let router = sim().router();
        let t = token_for(&router, "eu").await;
        let (_, v) = call(
            &router,
            "/eu/v3/unify",
            Some(&t),
            "application/json",
            json!({"possessionType": "none", "clientRequestId": "r2", "phoneNumber": "+2001004025"})
                .to_string(),
        )
        .await;
        let corr = v["correlationId"].clone();
        let (_, p) = call(
            &router,
            "/eu/v3/unify-status",
            Some(&t),
            "application/json",
            json!({"correlationId": corr}).to_string(),
        )
        .await;
        assert_eq!(p["success"], "possession_required", "{p}");
        let bind = json!({"correlationId": corr, "phoneNumber": "+2001004025"}).to_string();
        let (st, b) = call(
            &router,
            "/eu/v3/unify-bind",
            Some(&t),
            "application/json",
            bind.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["success"], "true");
        assert!(b["proveId"].is_string());
        let (st, e) = call(
            &router,
            "/eu/v3/unify-bind",
            Some(&t),
            "application/json",
            bind,
        )
        .await;
        assert_eq!(
            (st, e["code"].clone()),
            (StatusCode::FORBIDDEN, json!(8003))
        );

        for (path, body, status, code) in [
            ("/eu/v3/unify", json!({"clientRequestId": "r"}), 400, 8001),
            (
                "/eu/v3/unify",
                json!({"possessionType": "mobile", "phoneNumber": "+2001004025"}),
                400,
                8001,
            ),
            (
                "/eu/v3/unify",
                json!({"possessionType": "mobile", "clientRequestId": "r", "phoneNumber": "2001004014"}),
                400,
                8007,
            ),
            (
                "/eu/v3/unify-status",
                json!({"correlationId": "nope"}),
                400,
                8008,
            ),
            (
                "/eu/v3/unify-bind",
                json!({"correlationId": corr}),
                400,
                8001,
            ),
        ] {
            let (st, e) = call(
                &router,
                path,
                Some(&t),
                "application/json",
                body.to_string(),
            )
            .await;
            assert_eq!(
                (st.as_u16(), e["code"].clone()),
                (status, json!(code)),
                "{path} {body}: {e}"
            );
            assert!(e["message"].is_string());
        }
    }
}
