//! Least privilege, derived: every function serves what it serves (its routes, its schedule) over a
//! DynamoDB client that records, on the wire, the IAM action and resource each request needs
//! (`TransactWriteItems` needs the action of each of its items, a `Query` the index it names).
//! template.yaml must grant each function what it was seen to need (else AccessDenied in
//! production), and nothing more than that and what `UNSEEN` says, with a reason, a run here
//! does not reach.
//!
//! The secret likewise: each function is given only the parts of the secret the code's registry
//! says it reads (`Function::secret_parts`, as a deployed function is), and the parts it actually
//! reads are recorded; they must be those parts (else a deployed function misses credentials, or
//! holds some it never uses). template.yaml must grant GetSecretValue on exactly the secrets of
//! those parts, in both layouts, and nothing else outside the table.

use super::passbase_support;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use idv::App;
use idv::http::{ApiRequest, Function, handle};
use idv::secrets::{Part, Reads, SecretSource};
use idv::store::DynamoStore;
use idv_tests::{Backend, Gateway, ProveOf, dynamo_client};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use time::Duration;

/// `(action, resource)`: `dynamodb:GetItem` on `table`, `dynamodb:Query` on `index/gsi1`, ...
type Grant = (String, String);

/// Granted actions no run of this test reaches, each with why the function needs it. Keep it
/// short: everything here is a grant the test cannot check.
const UNSEEN: &[(&str, &str, &str, &str)] = &[
    (
        "webhook-authento",
        "dynamodb:DeleteItem",
        "table",
        "a delivery about a redacted identity that matches no session is forgotten \
         (forget_delivery), as webhook-stripe and webhook-passbase are seen doing here",
    ),
    (
        "webhook-prove",
        "dynamodb:DeleteItem",
        "table",
        "a delivery about a redacted identity that matches no session is forgotten \
         (forget_delivery), as webhook-stripe and webhook-passbase are seen doing here",
    ),
    (
        "issue-token",
        "dynamodb:UpdateItem",
        "table",
        "an Idempotency-Key is released (release_idempotency) when the issue fails after taking it",
    ),
    (
        "webhook-passbase",
        "dynamodb:BatchGetItem",
        "table",
        "deliveries kept for an identity are read back (unmatched_deliveries) when a webhook's read \
         links that identity to the session it names, if one was kept before",
    ),
];

/// Parts of the secret a function is given that no run of this test reaches it reading, each with
/// why it needs them.
const UNSEEN_PARTS: &[(&str, Part, &str)] = &[];

/// Records what each DynamoDB request needs in IAM terms.
#[derive(Clone, Default)]
struct Needs(Arc<Mutex<BTreeSet<Grant>>>);

impl Needs {
    fn take(&self) -> BTreeSet<Grant> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The IAM actions one request needs, from its operation (`X-Amz-Target`) and its JSON body.
fn needs_of(op: &str, body: &Value) -> Vec<Grant> {
    let on_table = |action: &str| (format!("dynamodb:{action}"), "table".to_owned());
    match op {
        "Query" | "Scan" => vec![(
            format!("dynamodb:{op}"),
            body["IndexName"]
                .as_str()
                .map_or("table".to_owned(), |i| format!("index/{i}")),
        )],
        // A transaction needs the action of each item it holds.
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|kind| match kind.as_str() {
                "ConditionCheck" => on_table("ConditionCheckItem"),
                other => on_table(&format!("{other}Item")),
            })
            .collect(),
        "TransactGetItems" => vec![on_table("GetItem")],
        other => vec![on_table(other)],
    }
}

impl std::fmt::Debug for Needs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Needs")
    }
}

impl aws_sdk_dynamodb::config::Intercept for Needs {
    fn name(&self) -> &'static str {
        "Needs"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut needs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        needs.extend(needs_of(&op, &body));
        Ok(())
    }
}

/// The gateway, driven function by function over a recorded client.
struct Derive {
    gw: Gateway,
    needs: Needs,
    /// The parts of the secret read since the last `fresh`.
    reads: Reads,
    /// What each function was seen to need.
    seen: BTreeMap<&'static str, BTreeSet<Grant>>,
    /// The parts of the secret each function was seen to read.
    read: BTreeMap<&'static str, BTreeSet<Part>>,
}

/// A key of the gateway's tenant that may read verified data (no key has that scope implied).
const VERIFIED_DATA_KEY: &str = "idv_sk_test_iam_verified_data";
const REDACT_KEY: &str = "idv_sk_test_iam_redact";

impl Derive {
    async fn start() -> Derive {
        // Keys of the same tenant with the scopes never implied for the default key.
        let doc = serde_json::json!({"fingerprint_key": "f".repeat(32), "api_keys": [{
            "tenant": idv_tests::TENANT,
            "sha256": idv::http::auth::digest(REDACT_KEY),
            "scopes": ["redact"],
        }, {
            "tenant": idv_tests::TENANT,
            "sha256": idv::http::auth::digest(VERIFIED_DATA_KEY),
            "scopes": ["verified_data:read"],
        }]});
        let keys = idv::secrets::SecretDoc::parse(&doc.to_string())
            .expect("a valid secret document")
            .api_keys;
        let gw = Gateway::start_with_keys(Backend::Dynamo, &[], keys).await;
        Derive {
            gw,
            needs: Needs::default(),
            reads: Reads::recorder(),
            seen: BTreeMap::new(),
            read: BTreeMap::new(),
        }
    }

    /// `function` as deployed, `ahead` of now: over the recorded client, given only its parts of
    /// the secret (`Function::secret_parts`), which note what it reads.
    async fn app(&self, ahead: Duration, function: Function) -> Arc<App> {
        let base = dynamo_client().await;
        let conf = base
            .config()
            .to_builder()
            .interceptor(self.needs.clone())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let store = Arc::new(DynamoStore::new(client, self.gw.table.clone().unwrap()));
        let doc = self
            .gw
            .running
            .secrets
            .clone()
            .only(&function.secret_parts())
            .recording(&self.reads);
        let clock = idv::clock::ManualClock::new(time::OffsetDateTime::now_utc() + ahead);
        Arc::new(App::new(
            self.gw.running.app.config.clone(),
            store,
            SecretSource::Static(Arc::new(doc)),
            Arc::new(clock),
        ))
    }

    /// Forgets what was recorded before what comes next.
    fn fresh(&self) {
        self.needs.take();
        self.reads.take();
    }

    fn note(&mut self, function: Function) {
        let needs = self.needs.take();
        self.seen
            .entry(function.binary())
            .or_default()
            .extend(needs);
        self.read
            .entry(function.binary())
            .or_default()
            .extend(self.reads.take());
    }

    async fn call(
        &mut self,
        ahead: Duration,
        function: Function,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Value {
        let app = self.app(ahead, function).await;
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let req = ApiRequest {
            method,
            path: path.to_owned(),
            query: ApiRequest::parse_query(Some(query)),
            headers: map,
            body: Bytes::from(body.to_owned()),
        };
        self.fresh();
        let resp = handle(&app, function, req).await;
        self.note(function);
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        // A part of the secret it is not given shows as a 401 (no API keys), a
        // provider_not_configured, or a 500 (no fingerprint key).
        assert!(
            resp.status.as_u16() < 500
                && resp.status.as_u16() != 401
                && body["code"] != "provider_not_configured",
            "{} {path}: {} {body}",
            function.binary(),
            resp.status
        );
        body
    }

    /// An app call with the tenant's key (and an `Idempotency-Key` when given).
    async fn api(
        &mut self,
        function: Function,
        method: Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Value {
        let auth = format!("Bearer {}", self.gw.key);
        let mut headers = vec![("authorization", auth.as_str())];
        let text = if body.is_null() {
            String::new()
        } else {
            headers.push(("content-type", "application/json"));
            body.to_string()
        };
        if let Some(k) = key {
            headers.push(("idempotency-key", k));
        }
        self.call(Duration::ZERO, function, method, path, &headers, &text)
            .await
    }

    async fn webhook(
        &mut self,
        function: Function,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        self.call(Duration::ZERO, function, Method::POST, path, headers, body)
            .await;
    }
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .or(body["session"]["id"].as_str())
        .unwrap_or_else(|| panic!("a session id in {body}"))
        .to_owned()
}

/// A redaction's first step alone, as a request killed after it leaves it.
pub(crate) async fn mark_redacting(gw: &Gateway, id: &str) {
    use idv::session::{ProviderDeletion, Redaction, RedactionState};
    let store = &gw.running.app.store;
    let read = store
        .get_session(&idv::session::SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut next = read.value.clone();
    next.redaction = Some(Redaction {
        state: RedactionState::Redacting,
        at: now,
        provider_deletion: ProviderDeletion::Unsupported,
        deletion_ref: None,
        deletion_attempts: 0,
    });
    next.next_check_at = Some(now + Duration::minutes(2));
    store
        .update_session(idv::store::SessionWrite {
            read: &read,
            session: &next,
            history: None,
            at: now,
        })
        .await
        .unwrap();
}

fn prove_start(user: &str, possession: &str) -> Value {
    json!({"provider": "prove", "user_id": user, "phone_number": "+12001004011",
           "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": possession})
}

/// What template.yaml grants each function on the table, by the function's name.
fn granted() -> BTreeMap<String, BTreeSet<Grant>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("template.yaml");
    let t: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let mut out = BTreeMap::new();
    for (_, r) in t["Resources"].as_mapping().expect("Resources") {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary")
            .to_owned();
        let mut grants = BTreeSet::new();
        for policy in r["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<String> = match &st["Action"] {
                    serde_norway::Value::String(a) => vec![a.clone()],
                    serde_norway::Value::Sequence(s) => s
                        .iter()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                let table: Vec<String> = actions
                    .into_iter()
                    .filter(|a| a.starts_with("dynamodb:"))
                    .collect();
                if table.is_empty() {
                    continue;
                }
                let resource = table_resource(&st["Resource"]).unwrap_or_else(|| {
                    panic!(
                        "{name}: a DynamoDB grant on {:?}, not the table",
                        st["Resource"]
                    )
                });
                for a in table {
                    grants.insert((a, resource.clone()));
                }
            }
        }
        out.insert(name, grants);
    }
    out
}

/// `table` for `!GetAtt Table.Arn`, `index/<name>` for `!Sub ${Table.Arn}/index/<name>`; `None`
/// for anything else (the secret).
fn table_resource(v: &serde_norway::Value) -> Option<String> {
    let serde_norway::Value::Tagged(t) = v else {
        return None;
    };
    let s = t.value.as_str()?;
    if t.tag == "GetAtt" {
        return (s == "Table.Arn").then(|| "table".into());
    }
    if t.tag == "Sub" {
        return s
            .strip_prefix("${Table.Arn}/")
            .map(str::to_owned)
            .or_else(|| (s == "${Table.Arn}").then(|| "table".into()));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_grants_each_function_what_it_needs_on_the_table_and_no_more() {
    let mut d = Derive::start().await;
    let token = Function::named("issue-token").unwrap();
    let (wh_authento, wh_prove, wh_passbase) = (
        Function::named("webhook-authento").unwrap(),
        Function::named("webhook-prove").unwrap(),
        Function::named("webhook-passbase").unwrap(),
    );

    // issue-token: a new token, the open session again, under an Idempotency-Key and replayed.
    let t = json!({"user_id": "user-i1", "verification_type": "BASIC"});
    let first = d.api(token, Method::POST, "/v1/tokens", &t, None).await;
    d.api(token, Method::POST, "/v1/tokens", &t, None).await;
    let t2 = json!({"user_id": "user-i2", "verification_type": "BASIC"});
    for _ in 0..2 {
        d.api(token, Method::POST, "/v1/tokens", &t2, Some("iam-token-1"))
            .await;
    }

    // start-session: every provider, under an Idempotency-Key and replayed, a cancel, a retry, a
    // resume, a link.
    for body in [
        json!({"provider": "authento", "user_id": "user-i3", "verification_type": "POA"}),
        json!({"provider": "nevis", "user_id": "user-i3"}),
        json!({"provider": "passbase", "user_id": "user-i3"}),
        prove_start("user-i5", "none"),
    ] {
        d.api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &body,
            None,
        )
        .await;
    }
    // Two Prove flows whose possession check passes, and whose identity has an event before the
    // gateway reads the outcome (kept): one read by the app, one by reconcile.
    let mut mobile = Vec::new();
    for user in ["user-i4", "user-i10"] {
        let s = d
            .api(
                Function::START_SESSION,
                Method::POST,
                "/v1/sessions",
                &prove_start(user, "mobile"),
                None,
            )
            .await;
        let auth =
            d.gw.prove_authenticate(s["client"]["auth_token"].as_str().unwrap(), "passed")
                .await;
        let identity = auth["identity_id"].as_str().expect("enrolled").to_owned();
        mobile.push((id_of(&s), identity));
    }
    let key = passbase_support::new_identity(&d.gw, None).await;
    let with_identity =
        json!({"provider": "passbase", "user_id": "user-i6", "identity_access_key": key});
    d.api(
        Function::START_SESSION,
        Method::POST,
        "/v1/sessions",
        &with_identity,
        None,
    )
    .await;
    let nevis = json!({"provider": "nevis", "user_id": "user-i7"});
    let mut opened = Value::Null;
    for _ in 0..2 {
        opened = d
            .api(
                Function::START_SESSION,
                Method::POST,
                "/v1/sessions",
                &nevis,
                Some("iam-start-1"),
            )
            .await;
    }
    let nevis_id = id_of(&opened);
    d.api(
        Function::START_SESSION,
        Method::POST,
        &format!("/v1/sessions/{nevis_id}/cancel"),
        &json!({}),
        None,
    )
    .await;
    // A retry of the canceled session under a key (the new session, its ref, the key and the
    // link in one transaction), and a resume (a provider read stored, the history written).
    let retried = d
        .api(
            Function::START_SESSION,
            Method::POST,
            &format!("/v1/sessions/{nevis_id}/retry"),
            &json!({}),
            Some("iam-retry-1"),
        )
        .await;
    d.api(
        Function::START_SESSION,
        Method::POST,
        &format!("/v1/sessions/{}/resume", id_of(&retried)),
        &json!({}),
        None,
    )
    .await;
    let unlinked = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-i8"}),
            None,
        )
        .await;
    let link_key = passbase_support::new_identity(&d.gw, None).await;
    d.api(
        Function::START_SESSION,
        Method::POST,
        &format!("/v1/sessions/{}/link", id_of(&unlinked)),
        &json!({"identity_access_key": link_key}),
        None,
    )
    .await;
    // A redaction: the user's sessions erased with what hangs on them.
    let redacted = d
        .call(
            Duration::ZERO,
            Function::START_SESSION,
            Method::POST,
            "/v1/users/user-i8/redact",
            &[
                ("authorization", &format!("Bearer {REDACT_KEY}")),
                ("content-type", "application/json"),
            ],
            "{}",
        )
        .await;
    assert_eq!(redacted["object"], "list", "{redacted}");

    // get-session: a read, a fresh and a stale one, a Prove session with its events, a user's
    // sessions, a user's reauthentications.
    let token_id = id_of(&first);
    let path = format!("/v1/sessions/{token_id}");
    d.api(
        Function::GET_SESSION,
        Method::GET,
        &path,
        &Value::Null,
        None,
    )
    .await;
    d.api(
        Function::GET_SESSION,
        Method::GET,
        &path,
        &Value::Null,
        None,
    )
    .await;
    let auth = format!("Bearer {}", d.gw.key);
    d.call(
        Duration::minutes(5),
        Function::GET_SESSION,
        Method::GET,
        &path,
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    let prove = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &prove_start("user-i9", "none"),
            None,
        )
        .await;
    let prove_id = id_of(&prove);
    d.api(
        Function::GET_SESSION,
        Method::GET,
        &format!("/v1/sessions/{prove_id}"),
        &Value::Null,
        None,
    )
    .await;
    for (_, identity) in &mobile {
        let sim = d.gw.prove_webhook(identity, "PORT", false).await;
        let body = sim["body"].as_str().unwrap().to_owned();
        let auth = sim["authorization"].as_str().unwrap().to_owned();
        let headers = [
            ("content-type", "application/json"),
            ("x-prove-authorization", auth.as_str()),
        ];
        d.webhook(wh_prove, "/v1/webhooks/prove", &headers, &body)
            .await;
    }
    // Read once its stored state is stale (the provider is read again).
    d.call(
        Duration::minutes(5),
        Function::GET_SESSION,
        Method::GET,
        &format!("/v1/sessions/{}", mobile[0].0),
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    for path in [
        "/v1/users/user-i3/sessions",
        "/v1/users/user-i6/reauthentications",
        "/v1/sessions?status=verified",
        "/v1/sessions?user_id=user-i3&provider=prove",
    ] {
        d.api(Function::GET_SESSION, Method::GET, path, &Value::Null, None)
            .await;
    }
    // Verified data: a Passbase session approved, its data read live with a key that has the
    // scope (the read recorded), and the records listed.
    let vd_identity = passbase_support::new_identity(&d.gw, None).await;
    let vd = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-i11", "identity_access_key": vd_identity}),
            None,
        )
        .await;
    passbase_support::act(&d.gw, &vd_identity, &["approve"], "none").await;
    let vd_path = format!("/v1/sessions/{}", id_of(&vd));
    d.api(
        Function::GET_SESSION,
        Method::GET,
        &vd_path,
        &Value::Null,
        None,
    )
    .await;
    let vd_auth = format!("Bearer {VERIFIED_DATA_KEY}");
    let read = d
        .call(
            Duration::ZERO,
            Function::GET_SESSION,
            Method::GET,
            &format!("{vd_path}/verified_data"),
            &[("authorization", vd_auth.as_str())],
            "",
        )
        .await;
    assert_eq!(read["object"], "verified_data", "{read}");
    d.api(
        Function::GET_SESSION,
        Method::GET,
        &format!("{vd_path}/verified_data/accesses"),
        &Value::Null,
        None,
    )
    .await;

    // webhook-authento: a delivery, its duplicate, one about a user with no session (kept).
    for user in ["user-i1", "user-i1", "user-none"] {
        let sim = d.gw.authento(user, "BASIC", "submit", false).await;
        let body = sim["webhook"]["body"].as_str().unwrap().to_owned();
        let digest = sim["webhook"]["digest"].as_str().unwrap().to_owned();
        let headers = [
            ("content-type", "application/json"),
            ("x-payload-digest", digest.as_str()),
        ];
        d.webhook(wh_authento, "/v1/webhooks/authento", &headers, &body)
            .await;
    }

    // webhook-prove: an event on a verified session, its duplicate, one about an identity that
    // no session has yet (kept).
    let sid = idv::session::SessionId::parse(&prove_id).unwrap();
    let identity =
        d.gw.running
            .app
            .store
            .get_session(&sid)
            .await
            .unwrap()
            .unwrap()
            .prove()
            .and_then(|p| p.identity_id)
            .unwrap();
    for identity in [identity.as_str(), identity.as_str(), "identity-nobody"] {
        let sim = d.gw.prove_webhook(identity, "DISCONNECT", false).await;
        let body = sim["body"].as_str().unwrap().to_owned();
        let auth = sim["authorization"].as_str().unwrap().to_owned();
        let headers = [
            ("content-type", "application/json"),
            ("x-prove-authorization", auth.as_str()),
        ];
        d.webhook(wh_prove, "/v1/webhooks/prove", &headers, &body)
            .await;
    }

    // webhook-passbase: a delivery, its duplicate, one about an identity no session has yet, one
    // whose identity names the session waiting for it.
    let orphan = passbase_support::new_identity(&d.gw, None).await;
    let waiting = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": "user-i11"}),
            None,
        )
        .await;
    let metadata: Value =
        serde_json::from_str(waiting["client"]["metadata"].as_str().unwrap()).unwrap();
    let named = passbase_support::new_identity(&d.gw, Some(metadata)).await;
    // `link_key`'s user was redacted above: its webhook is acknowledged and forgotten.
    for identity in [
        key.as_str(),
        orphan.as_str(),
        named.as_str(),
        link_key.as_str(),
    ] {
        let report = passbase_support::act(&d.gw, identity, &["approve"], "none").await;
        for body in passbase_support::bodies(&report) {
            for _ in 0..2 {
                d.webhook(
                    wh_passbase,
                    "/v1/webhooks/passbase",
                    &[("content-type", "text/plain")],
                    &body,
                )
                .await;
            }
        }
    }

    // webhook-stripe: a verification session's events, each twice (a duplicate), and each about a
    // verification session no session has (kept).
    let wh_stripe = Function::named("webhook-stripe").unwrap();
    let stripe = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-i12"}),
            None,
        )
        .await;
    let vs =
        d.gw.running
            .app
            .store
            .get_session(&idv::session::SessionId::parse(&id_of(&stripe)).unwrap())
            .await
            .unwrap()
            .unwrap()
            .value
            .provider_ref
            .unwrap();
    let acted =
        d.gw.stripe_control(
            &format!("/sessions/{vs}"),
            json!({"action": "verify", "deliver": false}),
        )
        .await;
    let secret = d.gw.running.stripe.webhook_secret();
    let events: Vec<String> = acted["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap().to_owned())
        .collect();
    // Then the user is redacted, and the same events come again, late: about an erased
    // identity, acknowledged and forgotten (its tombstone).
    for round in 0..2 {
        if round == 1 {
            d.call(
                Duration::ZERO,
                Function::START_SESSION,
                Method::POST,
                "/v1/users/user-i12/redact",
                &[
                    ("authorization", &format!("Bearer {REDACT_KEY}")),
                    ("content-type", "application/json"),
                ],
                "{}",
            )
            .await;
        }
        for body in &events {
            let body = body.as_str();
            let unknown = body.replace(&vs, "vs_0000000000000000000000unknown");
            // And an authentic body of a shape it cannot use (kept as an outline).
            let other =
                r#"{"id":"evt_1","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
            let bodies = if round == 0 {
                vec![body, body, unknown.as_str(), other]
            } else {
                vec![body]
            };
            for body in bodies {
                let t = time::OffsetDateTime::now_utc().unix_timestamp();
                let signed = format!("{t}.{body}");
                let signature = format!(
                    "t={t},v1={}",
                    idv::webhooks::hmac_digest::sign_hex(&secret, signed.as_bytes())
                );
                let headers = [
                    ("content-type", "application/json"),
                    ("stripe-signature", signature.as_str()),
                ];
                let answer = d
                    .call(
                        Duration::ZERO,
                        wh_stripe,
                        Method::POST,
                        "/v1/webhooks/stripe",
                        &headers,
                        body,
                    )
                    .await;
                assert_eq!(answer["received"], true, "{answer}");
            }
        }
    }

    // get-session: an open session of each provider not read above, once its stored state is
    // stale (its provider is read again). The Stripe one is still open for reconcile, whose read
    // of it is due when its webhook is overdue (10 minutes).
    let auth = format!("Bearer {}", d.gw.key);
    let identity = passbase_support::new_identity(&d.gw, None).await;
    for start in [
        json!({"provider": "nevis", "user_id": "user-i13"}),
        // With its identity: a Passbase session without one has nothing to read.
        json!({"provider": "passbase", "user_id": "user-i13", "identity_access_key": identity}),
        json!({"provider": "stripe", "user_id": "user-i13"}),
    ] {
        let open = d
            .api(
                Function::START_SESSION,
                Method::POST,
                "/v1/sessions",
                &start,
                None,
            )
            .await;
        d.call(
            Duration::minutes(5),
            Function::GET_SESSION,
            Method::GET,
            &format!("/v1/sessions/{}", id_of(&open)),
            &[("authorization", auth.as_str())],
            "",
        )
        .await;
    }

    // A redaction killed after its first step (the session marked `redacting` and filed due):
    // reconcile finishes it.
    let half = d
        .api(
            Function::START_SESSION,
            Method::POST,
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-i14"}),
            None,
        )
        .await;
    mark_redacting(&d.gw, &id_of(&half)).await;

    // reconcile: a run within the Prove flow's deadline (it reads the flow, which links its
    // identity and acts on the event kept for it), then an hour later (sessions expired).
    for ahead in [Duration::minutes(10), Duration::hours(1)] {
        let later = d.app(ahead, Function::RECONCILE).await;
        d.fresh();
        let run = idv::flows::reconcile::run(later).await;
        assert!(run.due > 0, "{run:?}");
        d.note(Function::RECONCILE);
    }
    let finished =
        d.gw.running
            .app
            .store
            .get_session(&idv::session::SessionId::parse(&id_of(&half)).unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        finished.redaction.as_ref().map(|r| r.state),
        Some(idv::session::RedactionState::Redacted),
        "reconcile finished the redaction"
    );

    // Outbound events. events-api: endpoints registered (a receiver on loopback), listed, read,
    // changed, rotated; notify: every change committed so far read from the table's stream into
    // events and sent; then, with the receiver down, one more change (its delivery fails and is
    // due again), the events API, resends, a delete, and the sweep an hour later.
    let ev = Function::EVENTS_API;
    let rx = idv_tests::receiver::Receiver::start().await;
    let all = json!({"url": rx.url});
    let ep = d.api(ev, Method::POST, "/v1/endpoints", &all, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed_only = json!({"url": rx.url, "event_types": ["session.failed"]});
    let other = d
        .api(ev, Method::POST, "/v1/endpoints", &failed_only, None)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.api(ev, Method::GET, "/v1/endpoints", &Value::Null, None)
        .await;
    let one = format!("/v1/endpoints/{ep}");
    d.api(ev, Method::GET, &one, &Value::Null, None).await;
    d.api(
        ev,
        Method::PATCH,
        &one,
        &json!({"description": "iam"}),
        None,
    )
    .await;
    d.api(
        ev,
        Method::POST,
        &format!("{one}/rotate_secret"),
        &json!({}),
        None,
    )
    .await;
    let now = d.app(Duration::ZERO, Function::NOTIFY).await;
    d.fresh();
    let pumped = d.gw.running.feed.lock().await.pump(&now).await.unwrap();
    assert!(pumped.records > 0, "{pumped:?}");
    d.note(Function::NOTIFY);
    rx.answer(503);
    d.api(
        Function::START_SESSION,
        Method::POST,
        "/v1/sessions",
        &json!({"provider": "nevis", "user_id": "user-i9"}),
        None,
    )
    .await;
    d.fresh();
    d.gw.running.feed.lock().await.pump(&now).await.unwrap();
    d.note(Function::NOTIFY);
    let events = d
        .api(ev, Method::GET, "/v1/events?limit=5", &Value::Null, None)
        .await;
    let event = events["data"][0]["id"].as_str().unwrap().to_owned();
    d.api(
        ev,
        Method::GET,
        "/v1/events?type=session.created",
        &Value::Null,
        None,
    )
    .await;
    let path = format!("/v1/events/{event}");
    d.api(ev, Method::GET, &path, &Value::Null, None).await;
    d.api(
        ev,
        Method::POST,
        &format!("{path}/resend"),
        &json!({}),
        None,
    )
    .await;
    let to_other = json!({"endpoint_id": other});
    d.api(ev, Method::POST, &format!("{path}/resend"), &to_other, None)
        .await;
    d.api(
        ev,
        Method::DELETE,
        &format!("/v1/endpoints/{other}"),
        &Value::Null,
        None,
    )
    .await;
    let later = d.app(Duration::hours(1), Function::NOTIFY).await;
    d.fresh();
    let swept = idv::events::deliver::sweep(&later).await.unwrap();
    assert!(swept.retrying + swept.failed > 0, "{swept:?}");
    d.note(Function::NOTIFY);

    let mut problems = Vec::new();
    // The secret: each function read exactly the parts it is given (as deployed).
    for function in Function::all() {
        let given = function.secret_parts();
        let read = d.read.get(function.binary()).cloned().unwrap_or_default();
        let f = function.binary();
        for part in read.difference(&given) {
            problems.push(format!(
                "{f} reads the {part} part of the secret, which it is not given (Function::secret_parts)"
            ));
        }
        for part in given.difference(&read) {
            let reasoned = UNSEEN_PARTS
                .iter()
                .any(|(uf, up, _)| *uf == f && *up == *part);
            if !reasoned {
                problems.push(format!(
                    "{f} is given the {part} part of the secret, never read"
                ));
            }
        }
    }
    for (f, part, _) in UNSEEN_PARTS {
        let given = Function::named(f).is_some_and(|func| func.secret_parts().contains(part));
        if !given {
            problems.push(format!(
                "UNSEEN_PARTS names {f} {part}, which it is not given"
            ));
        }
    }
    let granted = granted();
    for (function, grants) in &granted {
        let seen = d.seen.get(function.as_str()).cloned().unwrap_or_default();
        for need in seen.difference(grants) {
            problems.push(format!("{function} needs {need:?}, not granted"));
        }
        for grant in grants.difference(&seen) {
            let reasoned = UNSEEN
                .iter()
                .any(|(f, a, r, _)| f == function && *a == grant.0 && *r == grant.1);
            if !reasoned {
                problems.push(format!("{function} is granted {grant:?}, never needed"));
            }
        }
    }
    for (f, a, r, _) in UNSEEN {
        let granted_here = granted
            .get(*f)
            .is_some_and(|g| g.contains(&(a.to_string(), r.to_string())));
        if !granted_here {
            problems.push(format!("UNSEEN names {f} {a} on {r}, which is not granted"));
        }
    }
    for function in d.seen.keys() {
        assert!(
            granted.contains_key(*function),
            "{function} is not in template.yaml"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    d.gw.stop().await;
}

fn yaml(text: &str) -> serde_norway::Value {
    serde_norway::from_str(text).unwrap()
}

/// A provider's own secret in template.yaml: `<Provider>Secret`.
fn provider_secret(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    format!("{first}{}Secret", chars.as_str())
}

/// The template's resource holding a part of the secret in the split layout.
fn secret_of(part: Part) -> serde_norway::Value {
    match part {
        Part::Gateway => yaml("!If [CreateSecret, !Ref Secret, !Ref ExistingSecretArn]"),
        Part::Provider(name) => yaml(&format!("!Ref {}", provider_secret(name))),
    }
}

/// A resource as the template writes it: `!Ref ProveSecret`, `!If [CreateSecret, ...]`.
fn show(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::Tagged(t) => format!("{} {}", t.tag, show(&t.value)),
        serde_norway::Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
        serde_norway::Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Resources compared as a set (YAML values have no order).
fn as_set(v: &serde_norway::Value) -> BTreeSet<String> {
    match v {
        serde_norway::Value::Sequence(items) => items.iter().map(show).collect(),
        one => BTreeSet::from([show(one)]),
    }
}

/// Everything a function's policies grant outside the table: `secretsmanager:GetSecretValue` on
/// the secrets of the parts it reads (`Function::secret_parts`, derived from the registry and the
/// routes; the drive above shows it reads exactly those), as
/// `!If [SplitSecrets, <those secrets>, <the one secret>]`, and nothing else but the
/// customer-managed key's use policy when there is one. A line added by hand (another secret,
/// another action, a wildcard) or one removed (a secret it reads) fails here. And every provider
/// has its secret, and every function is told where it is.
#[test]
fn template_grants_each_function_the_secrets_it_reads_and_nothing_else_outside_the_table() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("template.yaml");
    let t: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let gateway = secret_of(Part::Gateway);
    let kms_use = yaml("!If [UseKmsKey, !Ref KmsUsePolicy, !Ref AWS::NoValue]");
    let mut problems = Vec::new();
    let mut functions = 0;
    for (_, r) in t["Resources"].as_mapping().expect("Resources") {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        functions += 1;
        let name = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary");
        let Some(function) = Function::named(name) else {
            problems.push(format!(
                "{name}: not a function of the code (http::Function)"
            ));
            continue;
        };
        let want: BTreeSet<String> = function
            .secret_parts()
            .into_iter()
            .map(|p| show(&secret_of(p)))
            .collect();
        let mut reads_secrets = 0;
        for policy in r["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            if policy.get("Statement").is_none() {
                if *policy != kms_use {
                    problems.push(format!(
                        "{name}: a policy other than an inline one: {policy:?}"
                    ));
                }
                continue;
            }
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<&str> = match &st["Action"] {
                    serde_norway::Value::String(a) => vec![a.as_str()],
                    serde_norway::Value::Sequence(s) => {
                        s.iter().filter_map(serde_norway::Value::as_str).collect()
                    }
                    other => {
                        problems.push(format!("{name}: an Action of {other:?}"));
                        continue;
                    }
                };
                if st.get("NotAction").is_some() || st.get("NotResource").is_some() {
                    problems.push(format!("{name}: a NotAction or NotResource statement"));
                }
                if st["Effect"].as_str() != Some("Allow") {
                    problems.push(format!("{name}: a statement that is not Allow"));
                }
                if actions.iter().all(|a| a.starts_with("dynamodb:")) {
                    continue; // the table: the test above
                }
                if actions != ["secretsmanager:GetSecretValue"] {
                    problems.push(format!(
                        "{name}: {actions:?} on {:?} (only the table and GetSecretValue on its secrets)",
                        st["Resource"]
                    ));
                    continue;
                }
                reads_secrets += 1;
                // `!If [SplitSecrets, <split>, <single>]`
                let branches = match &st["Resource"] {
                    serde_norway::Value::Tagged(tag) if tag.tag == "If" => {
                        tag.value.as_sequence().cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                let [cond, split, single] = branches.as_slice() else {
                    problems.push(format!(
                        "{name}: GetSecretValue on {:?}, not !If [SplitSecrets, <its secrets>, <the one secret>]",
                        st["Resource"]
                    ));
                    continue;
                };
                if cond.as_str() != Some("SplitSecrets") || *single != gateway {
                    problems.push(format!(
                        "{name}: single secret: GetSecretValue on {single:?} if {cond:?}, not the one secret"
                    ));
                }
                let got = as_set(split);
                for extra in got.difference(&want) {
                    problems.push(format!(
                        "{name}: split secrets: granted {extra}, which it does not read"
                    ));
                }
                for missing in want.difference(&got) {
                    problems.push(format!(
                        "{name}: split secrets: reads {missing}, not granted"
                    ));
                }
            }
        }
        if reads_secrets != 1 {
            problems.push(format!(
                "{name}: {reads_secrets} statements granting GetSecretValue, not 1"
            ));
        }
    }
    // Every provider has its secret, a placeholder under the key option, and every function is
    // told where it is (where it is not set, the part is read from the one secret).
    let resources = &t["Resources"];
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let key = yaml(
        "!If [UseKmsKey, !If [CreateKmsKey, !GetAtt Key.Arn, !Ref KmsKey], !Ref AWS::NoValue]",
    );
    for r in idv::providers::ALL {
        let id = provider_secret(r.name);
        let s = &resources[id.as_str()];
        let placeholder = format!(r#"{{"{}":null}}"#, r.name);
        if s["Type"].as_str() != Some("AWS::SecretsManager::Secret")
            || s["Properties"]["SecretString"].as_str() != Some(placeholder.as_str())
            || s["Properties"]["KmsKeyId"] != key
            || s["DeletionPolicy"].as_str() != Some("Retain")
        {
            problems.push(format!(
                "{id}: not a retained secret with the placeholder {placeholder} under the key option"
            ));
        }
        let want = yaml(&format!("!If [SplitSecrets, !Ref {id}, !Ref AWS::NoValue]"));
        if env[r.secret_id_env] != want {
            problems.push(format!("Globals: {} is not {want:?}", r.secret_id_env));
        }
    }
    let secrets = resources
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::SecretsManager::Secret"))
        .count();
    if secrets != idv::providers::ALL.len() + 1 {
        problems.push(format!(
            "{secrets} secrets in template.yaml: the gateway's and one per provider"
        ));
    }
    assert!(
        functions == Function::all().len(),
        "{functions} functions in template.yaml, {} in the code",
        Function::all().len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
