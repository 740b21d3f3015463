//! Passbase simulator: Passbase's identities API (`X-API-KEY`) and its encrypted webhooks
//! (`base64(IV ‖ AES-256-CBC(secret, JSON))`, `Content-Type: text/plain`), following
//! Passbase's documentation (docs/providers/passbase.md), plus `/control/*` routes that play the
//! user, Passbase's automation and the customer's dashboard review, and let tests break the API.
//!
//! Facts the public docs do not state are marked `// ASSUMPTION:`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::person::FakePerson;

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of one simulated Passbase project.
#[derive(Clone, Debug)]
pub struct PassbaseSimConfig {
    /// The secret API key the identities API accepts.
    pub api_key: String,
    /// The 32-character webhook encryption secret.
    pub webhook_secret: String,
    /// The gateway's `/v1/webhooks/passbase`; `None` = never deliver.
    pub webhook_url: Option<String>,
}

/// The simulator; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct PassbaseSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: PassbaseSimConfig,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    identities: HashMap<String, SimIdentity>,
    fail_next: u32,
    fail_status: u16,
    identity_reads: u64,
    /// Last `updated` handed out: every event gets a later one.
    last_updated: i64,
}

#[derive(Clone, Debug)]
struct SimIdentity {
    id: String,
    status: &'static str,
    score: f64,
    created: i64,
    updated: i64,
    metadata: Value,
    document_type: String,
    country: String,
}

impl SimIdentity {
    /// The identity as `GET /identities/{id}` answers it (Passbase's identity model), personal data
    /// included: the gateway must be the one that leaves it out.
    ///
    /// The person is the identity's fake one. ASSUMPTION: data point formats (not documented):
    /// dates `YYYY-MM-DD` as in Passbase's fixture, `address` one line, `city` its city.
    fn to_json(&self) -> Value {
        let p = FakePerson::of(&self.id);
        json!({
            "id": self.id,
            "status": self.status,
            "score": self.score,
            "owner": {"email": p.email, "first_name": p.first_name, "last_name": p.last_name},
            "created": self.created,
            "updated": self.updated,
            "metadata": self.metadata,
            "resources": [{
                "type": self.document_type,
                "datapoints": {
                    "first_names": p.first_name,
                    "last_name": p.last_name,
                    "date_of_birth": p.date_of_birth_text(),
                    "document_number": p.document_number,
                    "document_origin_country": self.country,
                    "nationality": self.country,
                    "date_of_expiry": p.document_expiry_text(),
                    "address": p.street,
                    "city": p.city,
                }
            }],
            "watchlist": {"clean": true, "listings": {}, "media": [], "sources": [], "types": []},
            "network": {"ip_address": "203.0.113.7"},
        })
    }
}

impl PassbaseSim {
    pub fn new(config: PassbaseSimConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .expect("reqwest client with default TLS settings");
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Routes relative to the mount point (mount with `Router::nest`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/verification/v2/identities", get(identities))
            .route("/verification/v1/identities", get(identities))
            .route("/verification/v2/identities/{id}", get(identity))
            // Older SDKs and integrations use v1 with the same paths.
            .route("/verification/v1/identities/{id}", get(identity))
            .route("/control/identities", post(control_create))
            .route("/control/identities/{id}", post(control_identity))
            .route("/control/faults", post(control_faults))
            .route("/control/stats", get(control_stats))
            .with_state(self.clone())
    }

    /// Identity reads received, refused ones included.
    pub fn identity_reads(&self) -> u64 {
        self.state().identity_reads
    }

    /// The person behind an identity the simulator knows: what its owner and data points hold.
    pub fn person(&self, identity_id: &str) -> Option<FakePerson> {
        let id = identity_id.to_ascii_lowercase();
        self.state()
            .identities
            .contains_key(&id)
            .then(|| FakePerson::of(&id))
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored.
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Passbase's encryption: a random 16-byte IV, AES-256-CBC with the secret's ASCII bytes as
    /// the key, PKCS#7, then base64 of IV ‖ ciphertext.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let mut iv = [0u8; 16];
        rand::rng().fill(&mut iv);
        let enc = cbc::Encryptor::<aes::Aes256>::new_from_slices(
            self.inner.config.webhook_secret.as_bytes(),
            &iv,
        )
        .expect("a 32-byte webhook secret");
        let mut raw = iv.to_vec();
        raw.extend(enc.encrypt_padded_vec::<Pkcs7>(plaintext));
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

// ---- the identities API ---------------------------------------------------------------------

async fn identity(
    State(sim): State<PassbaseSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = sim.state();
    st.identity_reads += 1;
    if st.fail_next > 0 {
        st.fail_next -= 1;
        let status =
            StatusCode::from_u16(st.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error(status, "simulated failure");
    }
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = sim.inner.config.api_key.as_bytes();
    if !bool::from(presented.as_bytes().ct_eq(expected)) {
        // Passbase's documented 401 text; the body schema is not documented.
        return error(StatusCode::UNAUTHORIZED, "your api_key is invalid");
    }
    match st.identities.get(&id.to_ascii_lowercase()) {
        Some(i) => Json(i.to_json()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "identity not found with the given ID",
        ),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /identities?limit=&cursor=`: `{cursor: {next}, data: [Identity]}`, oldest first.
// ASSUMPTION: the cursor is opaque; here it is the id of the last identity of the previous page.
async fn identities(
    State(sim): State<PassbaseSim>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !bool::from(
        presented
            .as_bytes()
            .ct_eq(sim.inner.config.api_key.as_bytes()),
    ) {
        return error(StatusCode::UNAUTHORIZED, "your api_key is invalid");
    }
    let st = sim.state();
    let mut all: Vec<&SimIdentity> = st.identities.values().collect();
    all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let start = match &q.cursor {
        None => 0,
        Some(c) => match all.iter().position(|i| &i.id == c) {
            Some(p) => p + 1,
            None => return error(StatusCode::BAD_REQUEST, "bad input parameter"),
        },
    };
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let page: Vec<&SimIdentity> = all.iter().skip(start).take(limit).copied().collect();
    let next = (start + page.len() < all.len())
        .then(|| page.last().map(|i| i.id.clone()))
        .flatten();
    Json(json!({
        "cursor": {"next": next},
        "data": page.iter().map(|i| i.to_json()).collect::<Vec<_>>(),
    }))
    .into_response()
}

// ---- control --------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// A fixed identity access key (sample events use one); default: a random UUID.
    id: Option<String>,
    /// The SDK's metaData as Passbase returns it, decrypted (e.g. `{"session_ref": "ses_..."}`).
    metadata: Option<Value>,
    document_type: Option<String>,
    country: Option<String>,
}

fn random_uuid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The user finished the SDK flow: the identity exists and Passbase is processing it. Answers
/// the identity access key that the SDK's `onFinish` would hand the app.
async fn control_create(State(sim): State<PassbaseSim>, body: Bytes) -> Response {
    let req: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
        }
    };
    let id = req.id.unwrap_or_else(random_uuid).to_ascii_lowercase();
    let now = now_secs();
    let identity = SimIdentity {
        id: id.clone(),
        status: "processing",
        score: 0.0,
        created: now,
        updated: now,
        metadata: req.metadata.unwrap_or(Value::Null),
        document_type: req.document_type.unwrap_or_else(|| "PASSPORT".into()),
        country: req.country.unwrap_or_else(|| "DEU".into()),
    };
    let view = identity.to_json();
    sim.state().identities.insert(id.clone(), identity);
    (
        StatusCode::CREATED,
        Json(json!({"identity_access_key": id, "identity": view})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    /// One action, or several (their webhooks then go out as `deliver` says).
    action: Option<String>,
    actions: Option<Vec<String>>,
    /// `each` (default: one after another, in order), `together` (all at once), `reversed`
    /// (newest first), or `none` (only returned, for tests to deliver themselves).
    deliver: Option<String>,
}

/// What an action does: the identity's new status (if any) and the event Passbase sends.
fn action(name: &str) -> Option<(Option<&'static str>, &'static str, f64)> {
    Some(match name {
        // Processing done; automated thresholds decided.
        "approve" => (Some("approved"), "VERIFICATION_COMPLETED", 0.93),
        "decline" => (Some("declined"), "VERIFICATION_COMPLETED", 0.12),
        // Processing done; the customer reviews in the dashboard.
        "hold_for_review" => (Some("pending"), "VERIFICATION_COMPLETED", 0.71),
        "review_approve" => (Some("approved"), "VERIFICATION_REVIEWED", -1.0),
        "review_decline" => (Some("declined"), "VERIFICATION_REVIEWED", -1.0),
        // The AML check found a listing: back to the customer (status pending).
        "watchlist" => (Some("pending"), "WATCHLIST_MONITORING", -1.0),
        "update_datapoint" => (None, "DATAPOINT_UPDATED", -1.0),
        // A biometric reauthentication (login) of this identity succeeded.
        "authenticate" => (None, "IDENTITY_AUTHENTICATED", -1.0),
        _ => return None,
    })
}

async fn control_identity(
    State(sim): State<PassbaseSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: ActionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    let names: Vec<String> = match (req.action, req.actions) {
        (Some(a), None) => vec![a],
        (None, Some(list)) if !list.is_empty() => list,
        _ => return error(StatusCode::BAD_REQUEST, "give action or actions"),
    };
    let deliver = req.deliver.unwrap_or_else(|| "each".into());
    if !["each", "together", "reversed", "none"].contains(&deliver.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "deliver: each, together, reversed or none",
        );
    }
    let id = id.to_ascii_lowercase();
    let mut events = Vec::new();
    let view = {
        let mut st = sim.state();
        if !st.identities.contains_key(&id) {
            return error(
                StatusCode::NOT_FOUND,
                "identity not found with the given ID",
            );
        }
        for name in &names {
            let Some((status, event, score)) = action(name) else {
                return error(StatusCode::BAD_REQUEST, &format!("unknown action {name:?}"));
            };
            // ASSUMPTION: `updated` is the event's time in seconds, strictly increasing here so
            // that two events never share a dedupe identity (key + event + updated).
            let updated = now_secs().max(st.last_updated + 1);
            st.last_updated = updated;
            let i = st.identities.get_mut(&id).expect("checked above");
            if let Some(s) = status {
                i.status = s;
            }
            if score >= 0.0 {
                i.score = score;
            }
            i.updated = updated;
            // ASSUMPTION: every event carries the envelope of the documented REVIEWED example;
            // IDENTITY_AUTHENTICATED's `status` is the authentication's result.
            let status_word = if event == "IDENTITY_AUTHENTICATED" {
                "approved"
            } else {
                i.status
            };
            events.push(json!({
                "event": event,
                "key": id,
                "status": status_word,
                "created": i.created,
                "updated": updated,
                "processed": updated,
            }));
        }
        st.identities[&id].to_json()
    };
    let webhooks: Vec<Value> = events
        .iter()
        .map(|e| json!({"event": e, "body": sim.encrypt(e.to_string().as_bytes())}))
        .collect();
    let bodies: Vec<String> = webhooks
        .iter()
        .map(|w| w["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    let delivered = match deliver.as_str() {
        "none" => Vec::new(),
        "together" => {
            let sends = bodies.into_iter().map(|b| {
                let sim = sim.clone();
                tokio::spawn(async move { sim.deliver(b).await })
            });
            let mut out = Vec::new();
            for h in sends.collect::<Vec<_>>() {
                out.push(h.await.unwrap_or(0));
            }
            out
        }
        order => {
            let mut bodies = bodies;
            if order == "reversed" {
                bodies.reverse();
            }
            let mut out = Vec::new();
            for b in bodies {
                out.push(sim.deliver(b).await);
            }
            out
        }
    };
    Json(json!({"identity": view, "webhooks": webhooks, "delivered": delivered})).into_response()
}

impl PassbaseSim {
    /// Posts one encrypted body to the gateway as Passbase does; the gateway's status, 0 if none.
    async fn deliver(&self, body: String) -> u16 {
        let Some(url) = self.inner.config.webhook_url.clone() else {
            return 0;
        };
        match self
            .inner
            .http
            .post(url)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    fail_next: u32,
    status: Option<u16>,
}

/// The next `fail_next` identity reads answer `status` (default 503).
async fn control_faults(State(sim): State<PassbaseSim>, body: Bytes) -> Response {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    let status = req.status.unwrap_or(503);
    if StatusCode::from_u16(status).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid status");
    }
    let mut st = sim.state();
    st.fail_next = req.fail_next;
    st.fail_status = status;
    Json(json!({"fail_next": st.fail_next, "status": status})).into_response()
}

async fn control_stats(State(sim): State<PassbaseSim>) -> Response {
    Json(json!({"identity_reads": sim.identity_reads()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn sim() -> PassbaseSim {
        PassbaseSim::new(PassbaseSimConfig {
            api_key: "sk-test".into(),
            webhook_secret: SECRET.into(),
            webhook_url: None,
        })
    }

    async fn call(sim: &PassbaseSim, req: Request<Body>) -> (StatusCode, Value) {
        let resp = sim.router().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn post(path: &str, body: Value) -> Request<Body> {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn the_identities_api_needs_the_secret_key_and_knows_its_identities() {
        let s = sim();
        let (st, created) = call(&s, post("/control/identities", json!({}))).await;
        assert_eq!(st, StatusCode::CREATED);
        let key = created["identity_access_key"].as_str().unwrap().to_owned();
        let get = |k: &str, api_key: &str| {
            Request::get(format!("/verification/v2/identities/{k}"))
                .header("x-api-key", api_key)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(
            call(&s, get(&key, "wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (st, body) = call(&s, get(&key, "sk-test")).await;
        assert_eq!(
            (st, body["status"].clone()),
            (StatusCode::OK, json!("processing"))
        );
        let missing = "00000000-0000-0000-0000-000000000000";
        assert_eq!(
            call(&s, get(missing, "sk-test")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(s.identity_reads(), 3);
        let list = |cursor: &str| {
            Request::get(format!("/verification/v2/identities?limit=1{cursor}"))
                .header("x-api-key", "sk-test")
                .body(Body::empty())
                .unwrap()
        };
        call(&s, post("/control/identities", json!({}))).await;
        let (st, page) = call(&s, list("")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        let next = page["cursor"]["next"].as_str().unwrap().to_owned();
        let (_, last) = call(&s, list(&format!("&cursor={next}"))).await;
        assert_eq!(last["data"].as_array().unwrap().len(), 1);
        assert!(last["cursor"]["next"].is_null());
        assert_ne!(last["data"][0]["id"], page["data"][0]["id"]);
    }

    #[tokio::test]
    async fn actions_change_the_identity_and_produce_encrypted_events() {
        let s = sim();
        let (_, created) = call(&s, post("/control/identities", json!({}))).await;
        let key = created["identity_access_key"].as_str().unwrap();
        let (st, out) = call(
            &s,
            post(
                &format!("/control/identities/{key}"),
                json!({"actions": ["hold_for_review", "review_approve"], "deliver": "none"}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{out}");
        assert_eq!(out["identity"]["status"], "approved");
        let hooks = out["webhooks"].as_array().unwrap();
        assert_eq!(hooks[0]["event"]["event"], "VERIFICATION_COMPLETED");
        assert_eq!(hooks[1]["event"]["event"], "VERIFICATION_REVIEWED");
        assert!(hooks[1]["event"]["updated"].as_i64() > hooks[0]["event"]["updated"].as_i64());
        // Decrypted the way the gateway does it, the body is the event.
        let plain = idv::webhooks::aes_cbc_body::decrypt(
            SECRET,
            hooks[1]["body"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&plain).unwrap(),
            hooks[1]["event"]
        );
    }
}
