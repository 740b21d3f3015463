//! Test harness: the gateway's local server on loopback, backed by DynamoDB Local (started by
//! `scripts/test`, found through `IDV_TEST_DYNAMODB_ENDPOINT`) or the in-memory store, with the
//! provider simulators mounted. Tests talk HTTP to it and look at the table directly.

use aws_sdk_dynamodb::types::AttributeValue;
use idv::App;
use idv::clock::ManualClock;
use idv::secrets::SecretSource;
use idv::store::{Inspect, Store};
use idv_local::{Options, Running, StoreChoice};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub use idv_local;

pub mod capacity;
pub mod faulty;
pub mod logs;
pub mod receiver;

pub const TENANT: &str = "app-a";
pub const OTHER_TENANT: &str = "app-b";

/// DynamoDB Local's endpoint. Integration tests need it: run them through `scripts/test`.
pub fn dynamodb_endpoint() -> String {
    std::env::var("IDV_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("IDV_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test (it starts DynamoDB Local)")
    })
}

pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    idv_local::dynamodb_client(&dynamodb_endpoint()).await
}

/// A table no other test uses.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}-{}", idv::ids::random_token())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Dynamo,
}

pub struct Gateway {
    pub running: Running,
    pub http: reqwest::Client,
    pub key: String,
    pub other_key: String,
    pub base: String,
    pub table: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Gateway {
    pub async fn start(backend: Backend) -> Gateway {
        Self::start_with(backend, &[]).await
    }

    /// `settings` as the functions read them (`IDV_REFRESH_AFTER_SECONDS`, ...).
    pub async fn start_with(backend: Backend, settings: &[(&str, &str)]) -> Gateway {
        Self::start_with_keys(backend, settings, Vec::new()).await
    }

    /// As `start_with`, with more API keys beside the two generated ones (e.g. narrower scopes).
    pub async fn start_with_keys(
        backend: Backend,
        settings: &[(&str, &str)],
        extra_api_keys: Vec<idv::secrets::ApiKeyEntry>,
    ) -> Gateway {
        let table = (backend == Backend::Dynamo).then(|| unique_table("idv-test"));
        let key = format!("idv_sk_test_{}", idv::ids::random_token());
        let other_key = format!("idv_sk_test_{}", idv::ids::random_token());
        let opts = Options {
            port: 0,
            store: match &table {
                Some(t) => StoreChoice::DynamoDb {
                    endpoint: dynamodb_endpoint(),
                    table: t.clone(),
                },
                None => StoreChoice::Memory,
            },
            api_keys: vec![
                (TENANT.into(), key.clone()),
                (OTHER_TENANT.into(), other_key.clone()),
            ],
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extra_api_keys,
            // The gateway's own pacing is under test, not the simulator's patience.
            authento_rate_limit: 1000,
            // Credentials generated per start, no secret file, no background reconcile.
            ..Options::default()
        };
        let running = idv_local::start(opts).await.expect("local server starts");
        Gateway {
            base: running.base_url.clone(),
            running,
            http: reqwest::Client::new(),
            key,
            other_key,
            table,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request reaches the local server");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POST a JSON body with the tenant's API key.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.key)
                .json(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(&self.key))
            .await
    }

    pub async fn issue_token(&self, user_id: &str, vt: &str) -> Reply {
        self.post(
            "/v1/tokens",
            &serde_json::json!({"user_id": user_id, "verification_type": vt}),
        )
        .await
    }

    /// The session's stored status, without a provider refresh.
    pub async fn stored_status(&self, id: &str) -> Value {
        self.get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body["status"]
            .clone()
    }

    /// Makes the Authento simulator's next user-info reads fail or lag (`/control/faults`).
    pub async fn authento_faults(&self, faults: Value) {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/authento/control/faults"))
                    .json(&faults),
            )
            .await;
        assert_eq!(r.status, 200, "simulator faults: {:?}", r.body);
    }

    /// Drives the Authento simulator like a tester would (its webhook goes to the gateway unless
    /// `deliver` is false) for this gateway's tenant's user. Returns the simulator's answer, with
    /// the webhook body and digest.
    pub async fn authento(&self, user_id: &str, vt: &str, action: &str, deliver: bool) -> Value {
        self.authento_subject(&authento_subject(TENANT, user_id), vt, action, deliver)
            .await
    }

    /// As `authento`, for the user Authento knows as `subject` (the JWT's `sub`).
    pub async fn authento_subject(
        &self,
        subject: &str,
        vt: &str,
        action: &str,
        deliver: bool,
    ) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url(&format!("/sandbox/authento/control/users/{subject}")))
                    .json(&serde_json::json!({"verification_type": vt, "action": action, "deliver": deliver})),
            )
            .await;
        assert_eq!(r.status, 200, "simulator control: {:?}", r.body);
        r.body
    }

    /// POST a JSON body with another API key (e.g. `other_key`: the other tenant's).
    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(self.url(path)).bearer_auth(key).json(body))
            .await
    }

    /// GET with another API key.
    pub async fn get_as(&self, key: &str, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(key))
            .await
    }

    /// Delivers a webhook body with a digest header, as Authento would.
    pub async fn deliver_authento(&self, body: &str, digest: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/v1/webhooks/authento"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(d) = digest {
            req = req.header("x-payload-digest", d);
        }
        self.send(req).await
    }

    /// `POST /v1/sessions` for Prove with the test user who passes, `possession_type` as given,
    /// and `extra` fields merged over it.
    pub async fn start_prove(&self, user_id: &str, possession: &str, extra: Value) -> Reply {
        let mut body = serde_json::json!({
            "provider": "prove", "user_id": user_id, "phone_number": "+12001004011",
            "first_name": "Sheilakathryn", "last_name": "Butrimovich",
            "possession_type": possession,
        });
        if possession == "desktop" {
            body["final_target_url"] = "https://www.example.com/landing-page".into();
        }
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/v1/sessions", &body).await
    }

    /// Stands for the client SDK's `Authenticate()`: `passed`, `failed` or `timed_out`.
    /// Answers the simulator's report, with the enrolled `identity_id` of a flow that passes.
    pub async fn prove_authenticate(&self, auth_token: &str, outcome: &str) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/prove/control/authenticate"))
                    .json(&serde_json::json!({"auth_token": auth_token, "outcome": outcome})),
            )
            .await;
        assert_eq!(r.status, 200, "simulator authenticate: {:?}", r.body);
        r.body
    }

    /// Makes the Prove simulator's next calls of one endpoint fail or lag (`/control/faults`).
    pub async fn prove_faults(&self, faults: Value) {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/prove/control/faults"))
                    .json(&faults),
            )
            .await;
        assert_eq!(r.status, 200, "simulator faults: {:?}", r.body);
    }

    /// Has the Prove simulator send (or, with `deliver` false, only sign) an Identity Manager
    /// event about `identity_id`. Returns `{body, authorization, delivered}`.
    pub async fn prove_webhook(&self, identity_id: &str, event_type: &str, deliver: bool) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/prove/control/webhooks"))
                    .json(&serde_json::json!({"identity_id": identity_id, "event_type": event_type, "deliver": deliver})),
            )
            .await;
        assert_eq!(r.status, 200, "simulator webhook: {:?}", r.body);
        r.body
    }

    /// Has the Prove simulator send an Identity Manager event described by `request` (its
    /// `/control/webhooks` body: `identity_id`, `event_type`, `deliver`, `documented_only`...).
    pub async fn prove_webhook_with(&self, request: Value) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/prove/control/webhooks"))
                    .json(&request),
            )
            .await;
        assert_eq!(r.status, 200, "simulator webhook: {:?}", r.body);
        r.body
    }

    /// Delivers a body to `/v1/webhooks/prove` with an `X-Prove-Authorization` header, if any.
    pub async fn deliver_prove(&self, body: &str, authorization: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/v1/webhooks/prove"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(a) = authorization {
            req = req.header("x-prove-authorization", a);
        }
        self.send(req).await
    }

    /// Drives the Nevis simulator as the user would (`open`, `complete`, `fail`, `abandon`).
    pub async fn nevis(
        &self,
        nevis_session_id: &str,
        action: &str,
        error_code: Option<&str>,
    ) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url(&format!(
                        "/sandbox/nevis/control/sessions/{nevis_session_id}"
                    )))
                    .json(&serde_json::json!({"action": action, "error_code": error_code})),
            )
            .await;
        assert_eq!(r.status, 200, "nevis simulator control: {:?}", r.body);
        r.body
    }

    /// Makes the Nevis simulator's next API requests fail or lag (`/control/faults`).
    pub async fn nevis_faults(&self, faults: Value) {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/nevis/control/faults"))
                    .json(&faults),
            )
            .await;
        assert_eq!(r.status, 200, "nevis simulator faults: {:?}", r.body);
    }

    /// The Stripe simulator's API base, as the gateway and the official SDKs are given it
    /// (they add `/v1/...`).
    pub fn stripe_api_base(&self) -> String {
        self.url("/sandbox/stripe")
    }

    /// POSTs a JSON body to a Stripe simulator control route (`/sessions/{id}`, `/faults`,
    /// `/settings`, `/webhook_secret/roll`, `/events/{id}/resend`); answers its 200 body.
    pub async fn stripe_control(&self, path: &str, body: Value) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url(&format!("/sandbox/stripe/control{path}")))
                    .json(&body),
            )
            .await;
        assert_eq!(
            r.status, 200,
            "stripe simulator control {path}: {:?}",
            r.body
        );
        r.body
    }

    /// The gateway's store as tests look at it: histories, deliveries' states, shards.
    pub fn inspect(&self) -> &dyn Inspect {
        &*self.running.inspect
    }

    /// The gateway as a function running `ahead` of now would see it: same configuration, store
    /// and secret, a clock of its own (for `reconcile`, whose work depends on what is due).
    pub fn app_at(&self, ahead: time::Duration) -> Arc<App> {
        self.app_with(self.running.app.store.clone(), ahead)
    }

    /// As `app_at`, over another store (e.g. one whose DynamoDB calls are counted).
    pub fn app_with(&self, store: Arc<dyn Store>, ahead: time::Duration) -> Arc<App> {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc() + ahead);
        Arc::new(App::new(
            self.running.app.config.clone(),
            store,
            SecretSource::Static(Arc::new(self.running.secrets.clone())),
            Arc::new(clock),
        ))
    }

    /// As `app_at(ZERO)`, sending outbound events through `post` (a test's sender).
    pub fn app_sending_with(&self, post: Arc<dyn idv::events::send::Post>) -> Arc<App> {
        let mut app = App::new(
            self.running.app.config.clone(),
            self.running.app.store.clone(),
            SecretSource::Static(Arc::new(self.running.secrets.clone())),
            Arc::new(idv::clock::SystemClock),
        );
        app.outbound = post;
        Arc::new(app)
    }

    /// Every item of the table, keyed by `pk|sk` (for "the table is unchanged" checks).
    pub async fn snapshot(&self) -> BTreeMap<String, HashMap<String, AttributeValue>> {
        let table = self.table.as_ref().expect("a DynamoDB-backed gateway");
        scan(&dynamo_client().await, table).await
    }

    /// The state of the delivery recorded for an Authento body (its event id is the body's
    /// hash), if any.
    pub async fn authento_delivery_states(&self, body: &str) -> Vec<String> {
        use sha2::{Digest, Sha256};
        let key = format!(
            "WH#authento#{}|WH",
            hex::encode(Sha256::digest(body.as_bytes()))
        );
        self.snapshot()
            .await
            .into_iter()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, item)| item.get("state").and_then(|v| v.as_s().ok()).cloned())
            .collect()
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// The `sub` an Authento JWT carries: the user as Authento knows it.
pub fn jwt_sub(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    claims["sub"].as_str().expect("a sub claim").to_owned()
}

/// The user a tenant's `user_id` is at Authento: its subject (`idv::session::Subject`).
pub fn authento_subject(tenant: &str, user_id: &str) -> String {
    idv::session::Subject::of(tenant, user_id).to_string()
}

pub async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> BTreeMap<String, HashMap<String, AttributeValue>> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items.unwrap_or_default() {
            let k = |n: &str| {
                item.get(n)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            out.insert(format!("{}|{}", k("pk"), k("sk")), item);
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

/// Counts the DynamoDB operations a client sends, by operation name (`Query`, `PutItem`, ...):
/// an SDK interceptor, so it sees every request on the wire, retries included, whatever code
/// path sent it.
#[derive(Debug, Clone, Default)]
pub struct DynamoCalls(Arc<Mutex<BTreeMap<String, u64>>>);

impl DynamoCalls {
    /// A DynamoDB Local client whose every operation is counted here.
    pub async fn client() -> (aws_sdk_dynamodb::Client, DynamoCalls) {
        let calls = DynamoCalls::default();
        let base = dynamo_client().await;
        let conf = base
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .build();
        (aws_sdk_dynamodb::Client::from_conf(conf), calls)
    }

    /// Counts so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, operation: &str) -> u64 {
        self.counts().get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl aws_sdk_dynamodb::config::Intercept for DynamoCalls {
    fn name(&self) -> &'static str {
        "DynamoCalls"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.<Op>`.
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
        Ok(())
    }
}

/// A Prove session's own data, as tests read it off a stored session.
pub trait ProveOf {
    fn prove(&self) -> Option<idv::providers::prove::ProveData>;
}

impl ProveOf for idv::session::Session {
    fn prove(&self) -> Option<idv::providers::prove::ProveData> {
        (self.provider == idv::providers::prove::NAME)
            .then(|| self.data.read().ok())
            .flatten()
    }
}

/// An Authento webhook delivery straight into the flows (a function's view of it).
pub async fn ingest_authento(
    app: &App,
    body: &[u8],
    digest: Option<&str>,
) -> Result<idv::flows::deliveries::Ack, idv::Error> {
    let mut headers = http::HeaderMap::new();
    if let Some(d) = digest {
        headers.insert(
            idv::providers::authento::webhook::DIGEST_HEADER,
            d.parse().expect("a header value"),
        );
    }
    let adapter = app.providers.by_name("authento").expect("authento");
    idv::flows::webhook::ingest(app, adapter, &headers, body).await
}

/// A start straight into the flows: `body` as `POST /v1/sessions` takes it.
pub async fn start_session(
    app: &App,
    tenant: &str,
    mut body: serde_json::Map<String, Value>,
    key: Option<&idv::flows::idempotency::IdempotencyKey>,
) -> Result<idv::flows::start::Started, idv::Error> {
    let name = body
        .remove("provider")
        .and_then(|p| p.as_str().map(str::to_owned))
        .expect("a provider");
    let adapter = idv::flows::start::adapter_named(app, &name)?;
    let input = idv::flows::start::parse(adapter, &body)?;
    idv::flows::start::start(app, adapter, tenant, input, key).await
}
