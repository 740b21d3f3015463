//! Prove's platform API: an OAuth2 `client_credentials` token (`POST /token`), then JSON calls
//! with `Authorization: Bearer`. The token is cached per region until shortly before it expires;
//! the client lives in `App`, so every invocation of a warm container shares it.
//!
//! Both of Prove's possession APIs are here: legacy Verified Users (`/v3/verify`,
//! `/v3/verify-status`) and Unify (`/v3/unify`, `/v3/unify-status`, `/v3/unify-bind`).
//!
//! Retries: the token and the status reads are safe to repeat (jittered backoff on 429, 5xx and
//! transport errors). `/v3/verify`, `/v3/unify`, `/v3/unify-bind` and `/v3/identity` are never
//! sent again once they may have reached Prove: a second start would start a second flow (and
//! text the user again); they
//! are sent again only when the connection was refused, and not sent at all when what is left of
//! the operation's deadline is shorter than a full attempt (`providers::transport`). A 401 on any
//! call means the request was not served: the cached token is dropped and the call is sent once
//! more with a fresh one. One deadline covers an operation and the token it needs.

use super::ProveRegion;
use super::settings::Secrets;
use crate::error::Error;
use crate::providers::transport::{
    self, Answer, Call, Deadline, MAX_WORD, Resend, Step, Transport, capped, provider_error,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PROVIDER: &str = "prove";
/// A token is renewed this long before Prove says it expires (clock skew, slow calls).
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Longest token lifetime believed (Prove's are an hour): an `expires_in` near `u64::MAX`
/// overflows time arithmetic (a panic; the profile aborts).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// Longest `Retry-After` waited out inside one operation.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Prove's error body for 400/401/403/404/500: `{"code": 1003, "message": "step not allowed"}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Prove's code for a step called out of order (e.g. a status read of a flow that is over).
pub const STEP_NOT_ALLOWED: i64 = 1003;
/// Sandbox: the phone number is not one of Prove's test users.
pub const NO_TEST_USER: i64 = 8007;
/// Prove's newer code for a step called out of order (its status-and-error-codes page).
pub const STEP_OUT_OF_ORDER: i64 = 8003;
/// The correlation id is not (or no longer) a flow Prove serves.
pub const INVALID_CORRELATION_ID: i64 = 8008;

/// `POST /v3/verify` (legacy Verified Users). Personal data: never logged, never stored.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub possession_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// Spelled as Prove's JSON spells it (the Go SDK's field is `FinalTargetURL`).
    #[serde(rename = "finalTargetUrl", skip_serializing_if = "Option::is_none")]
    pub final_target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_message: Option<String>,
    #[serde(rename = "allowOTPRetry", skip_serializing_if = "Option::is_none")]
    pub allow_otp_retry: Option<bool>,
    /// Our session id.
    pub client_request_id: String,
    /// Our user id.
    pub client_customer_id: String,
}

impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("possession_type", &self.possession_type)
            .field("client_request_id", &self.client_request_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// For the client SDK's `Authenticate()`; handed to the app once, never stored or logged.
    #[serde(default)]
    pub auth_token: Option<String>,
    pub correlation_id: String,
    pub success: String,
    #[serde(default)]
    pub possession_result: String,
    #[serde(default)]
    pub verify_result: String,
}

impl std::fmt::Debug for VerifyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyResponse")
            .field("correlation_id", &self.correlation_id)
            .field("success", &self.success)
            .field("possession_result", &self.possession_result)
            .field("verify_result", &self.verify_result)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    pub success: String,
    #[serde(default)]
    pub possession_result: String,
    #[serde(default)]
    pub verify_result: String,
    /// ASSUMPTION: present once Prove enrolled the verified identity (legacy SDK field).
    #[serde(default)]
    pub identity_id: Option<String>,
}

/// A `/v3/verify-status` answer.
#[derive(Debug, Clone)]
pub enum StatusRead {
    Status(StatusResponse),
    /// 403 code 1003: Prove no longer serves this flow (its window closed).
    StepNotAllowed,
}

/// `POST /v3/unify`. Personal data: never logged, never stored. Unify takes no names: it checks
/// possession of the number (and binds a Prove Key), not who holds it.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyRequest {
    pub possession_type: String,
    /// Our session id (required by Unify).
    pub client_request_id: String,
    pub phone_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(rename = "finalTargetUrl", skip_serializing_if = "Option::is_none")]
    pub final_target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_message: Option<String>,
    #[serde(rename = "allowOTPRetry", skip_serializing_if = "Option::is_none")]
    pub allow_otp_retry: Option<bool>,
    /// Our user's subject.
    pub client_customer_id: String,
}

impl std::fmt::Debug for UnifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnifyRequest")
            .field("possession_type", &self.possession_type)
            .field("client_request_id", &self.client_request_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyResponse {
    /// For the client SDK's `Authenticate()`; handed to the app once, never stored or logged.
    #[serde(default)]
    pub auth_token: Option<String>,
    pub correlation_id: String,
    /// `"pending"` at the start.
    #[serde(deserialize_with = "word")]
    pub success: String,
}

impl std::fmt::Debug for UnifyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnifyResponse")
            .field("correlation_id", &self.correlation_id)
            .field("success", &self.success)
            .finish_non_exhaustive()
    }
}

/// `/v3/unify-status` and `/v3/unify-bind` (the same shape). The phone number Prove echoes is
/// not read: nothing here keeps it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyStatus {
    /// `true`, `false`, `pending` or `possession_required`.
    #[serde(deserialize_with = "word")]
    pub success: String,
    /// Prove's id of the customer who passed; Identity Manager's events name it.
    #[serde(default)]
    pub prove_id: Option<String>,
}

/// A `/v3/unify-status` or `/v3/unify-bind` answer.
#[derive(Debug, Clone)]
pub enum UnifyRead {
    Status(UnifyStatus),
    /// Prove no longer serves this flow's step (past its 15 minutes, or over).
    StepNotAllowed,
}

/// Prove's `success` is a string in its schema (Go SDK), a JSON boolean in one of its examples:
/// either is read, as the same word.
fn word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(serde::de::Error::custom("success is a string")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrollResponse {
    /// The doc example's name; the current SDK calls it `proveId`.
    #[serde(alias = "proveId")]
    identity_id: Option<String>,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct CachedToken {
    client_id: String,
    token: String,
    renew_at: Instant,
}

pub struct ProveClient {
    transport: Transport,
    na_url: String,
    eu_url: String,
    /// One token per region. A tokio mutex held across the fetch: concurrent callers of a cold
    /// container wait for one token request instead of each sending their own.
    tokens: tokio::sync::Mutex<HashMap<ProveRegion, CachedToken>>,
}

impl ProveClient {
    pub fn new(transport: Transport, na_url: &str, eu_url: &str) -> Self {
        Self {
            transport,
            na_url: na_url.trim_end_matches('/').to_owned(),
            eu_url: eu_url.trim_end_matches('/').to_owned(),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn base(&self, region: ProveRegion) -> &str {
        match region {
            ProveRegion::Na => &self.na_url,
            ProveRegion::Eu => &self.eu_url,
        }
    }

    /// Starts a flow. Never sent twice (see the module docs).
    pub async fn verify(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        req: &VerifyRequest,
    ) -> Result<VerifyResponse, Error> {
        let answer = self
            .call(creds, region, "/v3/verify", req, Resend::IfNotSent)
            .await?;
        if !answer.status.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let mut r: VerifyResponse = parse(&answer.body, "verify")?;
        transport::bounded_id(PROVIDER, "correlationId", &r.correlation_id)?;
        r.success = capped(r.success, MAX_WORD);
        r.possession_result = capped(r.possession_result, MAX_WORD);
        r.verify_result = capped(r.verify_result, MAX_WORD);
        Ok(r)
    }

    /// The flow's current result. A read: retried when that is safe.
    pub async fn verify_status(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        correlation_id: &str,
        client_request_id: &str,
    ) -> Result<StatusRead, Error> {
        let body = serde_json::json!({
            "correlationId": correlation_id,
            "clientRequestId": client_request_id,
        });
        let answer = self
            .call(creds, region, "/v3/verify-status", &body, Resend::Safe)
            .await?;
        if answer.status == StatusCode::FORBIDDEN
            && error_body(&answer.body).code == Some(STEP_NOT_ALLOWED)
        {
            return Ok(StatusRead::StepNotAllowed);
        }
        if !answer.status.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let mut r: StatusResponse = parse(&answer.body, "verify-status")?;
        if let Some(id) = &r.identity_id {
            transport::bounded_id(PROVIDER, "identityId", id)?;
        }
        r.success = capped(r.success, MAX_WORD);
        r.possession_result = capped(r.possession_result, MAX_WORD);
        r.verify_result = capped(r.verify_result, MAX_WORD);
        Ok(StatusRead::Status(r))
    }

    /// Starts a Unify flow. Never sent twice (see the module docs).
    pub async fn unify(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        req: &UnifyRequest,
    ) -> Result<UnifyResponse, Error> {
        let answer = self
            .call(creds, region, "/v3/unify", req, Resend::IfNotSent)
            .await?;
        if !answer.status.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let mut r: UnifyResponse = parse(&answer.body, "unify")?;
        transport::bounded_id(PROVIDER, "correlationId", &r.correlation_id)?;
        r.success = capped(r.success, MAX_WORD);
        Ok(r)
    }

    /// A Unify flow's possession result. A read: retried when that is safe.
    pub async fn unify_status(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        correlation_id: &str,
        client_request_id: &str,
    ) -> Result<UnifyRead, Error> {
        let body = serde_json::json!({
            "correlationId": correlation_id,
            "clientRequestId": client_request_id,
        });
        let answer = self
            .call(creds, region, "/v3/unify-status", &body, Resend::Safe)
            .await?;
        unify_read(answer, "unify-status")
    }

    /// Binds the number to the Prove Key after the app's own possession check passed (the
    /// customer-supplied-possession flow only). A write: never sent twice.
    pub async fn unify_bind(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        correlation_id: &str,
        phone_number: &str,
        client_request_id: &str,
    ) -> Result<UnifyRead, Error> {
        let body = serde_json::json!({
            "correlationId": correlation_id,
            "phoneNumber": phone_number,
            "clientRequestId": client_request_id,
        });
        let answer = self
            .call(creds, region, "/v3/unify-bind", &body, Resend::IfNotSent)
            .await?;
        unify_read(answer, "unify-bind")
    }

    /// Enrolls a verified identity with Identity Manager; its id keys the identity's webhooks.
    pub async fn enroll_identity(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        phone_number: &str,
        client_customer_id: &str,
    ) -> Result<String, Error> {
        let body = serde_json::json!({
            "phoneNumber": phone_number,
            "clientCustomerId": client_customer_id,
        });
        let answer = self
            .call(creds, region, "/v3/identity", &body, Resend::IfNotSent)
            .await?;
        if !answer.status.is_success() {
            return Err(api_error(answer.status, &answer.body));
        }
        let r: EnrollResponse = parse(&answer.body, "identity")?;
        match (r.success, r.identity_id) {
            (Some(false), _) | (_, None) => Err(provider_error(
                PROVIDER,
                "identity enrollment answered without an identity id",
            )),
            (_, Some(id)) => {
                transport::bounded_id(PROVIDER, "identityId", &id)?;
                Ok(id)
            }
        }
    }

    /// One authenticated JSON call; its answer (statuses other than 429/5xx are the caller's).
    async fn call<T: Serialize + Sync + ?Sized>(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        path: &str,
        body: &T,
        resend: Resend,
    ) -> Result<Answer, Error> {
        let url = &format!("{}{path}", self.base(region));
        let deadline = self.transport.deadline();
        let call = Call {
            provider: PROVIDER,
            resend,
            max_wait: MAX_WAIT,
        };
        // A 401 means the request was not served: the token is dropped and fetched again once.
        let (renew, renewed) = (&AtomicBool::new(false), &AtomicBool::new(false));
        self.transport
            .run(
                call,
                deadline,
                move || async move {
                    if renew.swap(false, Ordering::SeqCst) {
                        self.forget_token(region).await;
                    }
                    let token = self.token(creds, region, deadline).await?;
                    Ok(self
                        .transport
                        .http()
                        .post(url)
                        .bearer_auth(&token)
                        .header("Accept", "application/json")
                        .json(body))
                },
                |answer| {
                    (answer.status == StatusCode::UNAUTHORIZED
                        && !renewed.swap(true, Ordering::SeqCst))
                    .then(|| {
                        renew.store(true, Ordering::SeqCst);
                        Step::Again {
                            wait: Some(Duration::ZERO),
                            or_else: provider_error(PROVIDER, format!("{path} answered 401")),
                        }
                    })
                },
            )
            .await
    }

    /// The region's bearer token, fetched when missing, about to expire, or of other credentials.
    async fn token(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        deadline: Deadline,
    ) -> Result<String, Error> {
        let lock = tokio::time::timeout(deadline.remaining(), self.tokens.lock()).await;
        let Ok(mut tokens) = lock else {
            return Err(transport::unavailable(
                PROVIDER,
                "waited too long for a token",
                Duration::from_secs(2),
            ));
        };
        if let Some(t) = tokens.get(&region)
            && t.client_id == creds.client_id.expose()
            && Instant::now() < t.renew_at
        {
            return Ok(t.token.clone());
        }
        let fetched = self.fetch_token(creds, region, deadline).await?;
        let token = fetched.access_token.clone();
        let lifetime =
            Duration::from_secs(fetched.expires_in.unwrap_or(3600)).min(MAX_TOKEN_LIFETIME);
        let now = Instant::now();
        tokens.insert(
            region,
            CachedToken {
                client_id: creds.client_id.expose().to_owned(),
                token: fetched.access_token,
                renew_at: now
                    .checked_add(lifetime.saturating_sub(TOKEN_MARGIN))
                    .unwrap_or(now),
            },
        );
        Ok(token)
    }

    async fn forget_token(&self, region: ProveRegion) {
        self.tokens.lock().await.remove(&region);
    }

    async fn fetch_token(
        &self,
        creds: &Secrets,
        region: ProveRegion,
        deadline: Deadline,
    ) -> Result<TokenResponse, Error> {
        let url = &format!("{}/token", self.base(region));
        let form = &[
            ("client_id", creds.client_id.expose()),
            ("client_secret", creds.client_secret.expose()),
            ("grant_type", "client_credentials"),
        ];
        let call = Call {
            provider: PROVIDER,
            resend: Resend::Safe,
            max_wait: MAX_WAIT,
        };
        let answer = self
            .transport
            .run(
                call,
                deadline,
                move || async move { Ok(self.transport.http().post(url).form(form)) },
                |_| None,
            )
            .await?;
        if !answer.status.is_success() {
            // Wrong client credentials: an operator must act. The body is not echoed.
            return Err(provider_error(
                PROVIDER,
                format!("/token answered {}", answer.status),
            ));
        }
        parse(&answer.body, "token")
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|_| provider_error(PROVIDER, format!("unreadable {what} answer")))
}

/// A unify-status or unify-bind answer. ASSUMPTION: Prove refuses the step of a flow that is
/// over or past its 15 minutes with 403 and code 1003 (its sandbox's) or 8003 ("step called out
/// of order"), or with 8008 ("invalid correlation ID": we send only ids Prove gave us); which
/// status carries 8008 is not documented.
fn unify_read(answer: Answer, what: &str) -> Result<UnifyRead, Error> {
    let code = error_body(&answer.body).code;
    let step_refused = answer.status == StatusCode::FORBIDDEN
        && matches!(code, Some(STEP_NOT_ALLOWED | STEP_OUT_OF_ORDER));
    if !answer.status.is_success() && (step_refused || code == Some(INVALID_CORRELATION_ID)) {
        return Ok(UnifyRead::StepNotAllowed);
    }
    if !answer.status.is_success() {
        return Err(api_error(answer.status, &answer.body));
    }
    let mut r: UnifyStatus = parse(&answer.body, what)?;
    if let Some(id) = &r.prove_id {
        transport::bounded_id(PROVIDER, "proveId", id)?;
    }
    r.success = capped(r.success, MAX_WORD);
    Ok(UnifyRead::Status(r))
}

fn error_body(bytes: &[u8]) -> ApiError {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// Prove's `{code, message}` on our error codes: a sandbox number that is no test user is the
/// caller's mistake (400 on `phone_number`); anything else Prove refuses is a 502 for us.
fn api_error(status: StatusCode, bytes: &[u8]) -> Error {
    let e = error_body(bytes);
    if status == StatusCode::BAD_REQUEST && e.code == Some(NO_TEST_USER) {
        return Error::invalid(
            "phone_number",
            "unknown_test_user",
            "Prove's sandbox has no test user with this phone number",
        );
    }
    // Status and code only: Prove's `message` may quote the request (names, a phone number),
    // and this detail is logged.
    provider_error(
        PROVIDER,
        format!(
            "answered {status} code {}",
            e.code.map_or("-".to_owned(), |c| c.to_string())
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_request_uses_proves_field_names() {
        let r = VerifyRequest {
            first_name: "A".into(),
            last_name: "B".into(),
            phone_number: "2001004011".into(),
            possession_type: "desktop".into(),
            email_address: None,
            final_target_url: Some("https://example.com/x".into()),
            sms_message: None,
            allow_otp_retry: Some(true),
            client_request_id: "ses_x".into(),
            client_customer_id: "user-42".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["finalTargetUrl"], "https://example.com/x");
        assert_eq!(v["allowOTPRetry"], true);
        assert_eq!(v["clientRequestId"], "ses_x");
        assert_eq!(v["clientCustomerId"], "user-42");
        assert!(v.get("emailAddress").is_none());
        assert!(!format!("{r:?}").contains("2001004011"));
    }

    #[test]
    fn the_unify_request_uses_proves_field_names_and_its_answers_read_either_success() {
        let r = UnifyRequest {
            possession_type: "mobile".into(),
            client_request_id: "ses_x".into(),
            phone_number: "2001004014".into(),
            email_address: None,
            final_target_url: None,
            sms_message: None,
            allow_otp_retry: Some(true),
            client_customer_id: "sub".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["possessionType"], "mobile");
        assert_eq!(v["clientRequestId"], "ses_x");
        assert_eq!(v["allowOTPRetry"], true);
        assert!(v.get("firstName").is_none() && v.get("finalTargetUrl").is_none());
        assert!(!format!("{r:?}").contains("2001004014"));
        let s: UnifyStatus =
            serde_json::from_str(r#"{"success":true,"proveId":"p1","phoneNumber":"2001004011"}"#)
                .unwrap();
        assert_eq!(
            (s.success.as_str(), s.prove_id.as_deref()),
            ("true", Some("p1"))
        );
        let s: UnifyStatus = serde_json::from_str(r#"{"success":"possession_required"}"#).unwrap();
        assert_eq!(s.success, "possession_required");
        assert!(serde_json::from_str::<UnifyStatus>(r#"{"success":{}}"#).is_err());
        let u: UnifyResponse = serde_json::from_str(
            r#"{"success":"pending","authToken":"eyJsecret","correlationId":"c1"}"#,
        )
        .unwrap();
        assert!(!format!("{u:?}").contains("eyJsecret"));
    }

    #[test]
    fn the_auth_token_never_shows_in_debug() {
        let r: VerifyResponse = serde_json::from_str(
            r#"{"success":"pending","authToken":"eyJsecret","possessionResult":"pending","verifyResult":"pending","correlationId":"c1"}"#,
        )
        .unwrap();
        assert!(!format!("{r:?}").contains("eyJsecret"));
    }

    #[test]
    fn proves_errors_map_to_ours() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":8007,"message":"no test user found matching the phone number"}"#,
        );
        assert!(matches!(e, Error::InvalidRequest(ref f) if f[0].field == "phone_number"));
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":1001,"message":"field 'flowType' is missing"}"#,
        );
        assert!(matches!(e, Error::Provider { ref detail, .. } if detail.contains("1001")));
        let e = api_error(StatusCode::NOT_FOUND, b"not json");
        assert!(matches!(e, Error::Provider { .. }));
    }

    #[test]
    fn proves_error_text_never_reaches_our_detail() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":1001,"message":"phoneNumber +12001004011 of Sheilakathryn is invalid"}"#,
        );
        let Error::Provider { detail, .. } = e else {
            panic!("a provider error: {e:?}");
        };
        assert!(
            detail.contains("400") && detail.contains("1001"),
            "{detail}"
        );
        assert!(
            !detail.contains("12001004011") && !detail.contains("Sheilakathryn"),
            "only status and code: {detail}"
        );
    }
}
