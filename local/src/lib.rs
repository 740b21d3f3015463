//! The local server: every route of template.yaml on localhost, served by the same
//! `idv::http::handle` as the Lambda functions, with the provider simulators mounted under
//! `/sandbox/{provider}` and the gateway pointed at them, and the demo app at `/`. In-memory store
//! by default; DynamoDB (Local) on request.

mod demo;
pub mod feed;
mod gateway;
pub mod sandbox;

use idv::App;
use idv::clock::SystemClock;
use idv::config::{Config, SecretsLocation};
use idv::providers::{authento, nevis, passbase, prove, stripe};
use idv::secrets::{ApiKeyEntry, Secret, SecretDoc, SecretSource};
use idv::store::{DynamoStore, Inspect, MemoryStore, SchemaError, Store};
use sandbox::authento::{AuthentoSim, AuthentoSimConfig};
use sandbox::nevis::{NevisSim, NevisSimConfig};
use sandbox::passbase::{PassbaseSim, PassbaseSimConfig};
use sandbox::prove::{ProveSim, ProveSimConfig};
use sandbox::stripe::{StripeSim, StripeSimConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum StoreChoice {
    Memory,
    /// A DynamoDB endpoint (DynamoDB Local); the table is created if it does not exist.
    DynamoDb {
        endpoint: String,
        table: String,
    },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// 0 picks a free port.
    pub port: u16,
    pub store: StoreChoice,
    /// `(tenant, key)`; empty means one generated key for tenant `local-app`.
    pub api_keys: Vec<(String, String)>,
    /// Entries added to the secret document as written (digests, scopes), e.g. keys with
    /// narrower scopes.
    pub extra_api_keys: Vec<ApiKeyEntry>,
    /// Settings as the functions read them from their environment (`IDV_REFRESH_AFTER_SECONDS`,
    /// ...), over the process environment.
    pub settings: HashMap<String, String>,
    /// Authento's 429 threshold in the simulator.
    pub authento_rate_limit: u32,
    /// Fixed Authento credentials (sample events sign with known ones); default: random per start.
    pub authento: Option<authento::Secrets>,
    /// Fixed Prove credentials (sample events sign with a known webhook secret); default: random.
    pub prove: Option<prove::Secrets>,
    /// Fixed Passbase credentials (the sample webhook is encrypted with a known secret); default:
    /// random per start.
    pub passbase: Option<passbase::Secrets>,
    /// Fixed Stripe credentials (the sample event is signed with a known secret); default:
    /// random per start.
    pub stripe: Option<stripe::Secrets>,
    /// The gateway secret as a JSON file (the same shape as in Secrets Manager), re-read like the
    /// deployed one. Its API keys and Authento credentials replace the generated ones.
    pub secrets_file: Option<std::path::PathBuf>,
    /// How long a finished Nevis capture reads `in_progress` in the simulator before its result.
    pub nevis_processing_ms: u64,
    /// Runs `reconcile` in the background this often (as EventBridge does every minute);
    /// `None`: never (tests call it themselves).
    pub reconcile_every: Option<std::time::Duration>,
    /// Reads committed changes into outbound events and sweeps due deliveries this often (as the
    /// table's stream and notify's schedule do in AWS); `None`: never (tests call
    /// `Running::pump_events`).
    pub notify_every: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            store: StoreChoice::Memory,
            api_keys: Vec::new(),
            extra_api_keys: Vec::new(),
            settings: HashMap::new(),
            authento_rate_limit: 5,
            authento: None,
            prove: None,
            passbase: None,
            stripe: None,
            secrets_file: None,
            nevis_processing_ms: 0,
            reconcile_every: None,
            notify_every: None,
        }
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub api_keys: Vec<(String, String)>,
    pub app: Arc<App>,
    pub authento: AuthentoSim,
    pub prove: ProveSim,
    pub nevis: NevisSim,
    pub passbase: PassbaseSim,
    /// The Stripe Identity simulator: its `secret_key()` and `webhook_secret()` are generated
    /// per start; its API base is `{base_url}/sandbox/stripe`.
    pub stripe: StripeSim,
    /// The provider credentials the gateway and the simulators share (generated per start).
    pub secrets: SecretDoc,
    /// The gateway's store as tests look at it (its history, its deliveries' states).
    pub inspect: Arc<dyn Inspect>,
    /// Committed changes as the notify code reads them (the table's stream, or the memory log).
    pub feed: Arc<tokio::sync::Mutex<feed::Feed>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    reconcile: Option<tokio::task::JoinHandle<()>>,
    notify: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(r) = self.reconcile.take() {
            r.abort();
        }
        if let Some(n) = self.notify.take() {
            n.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// What notify does in AWS, once: the changes committed since the last pump become events
    /// (their deliveries attempted), then every due delivery is attempted.
    pub async fn pump_events(&self) -> Result<feed::Pumped, String> {
        pump(&self.app, &self.feed).await
    }

    /// Serves until the task ends (Ctrl-C handling is the caller's).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

async fn pump(
    app: &Arc<App>,
    feed: &tokio::sync::Mutex<feed::Feed>,
) -> Result<feed::Pumped, String> {
    let pumped = feed.lock().await.pump(app).await?;
    idv::events::deliver::sweep(app)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pumped)
}

fn random(prefix: &str) -> String {
    format!("{prefix}{}", idv::ids::random_token())
}

fn secret(prefix: &str) -> Secret {
    Secret::new(random(prefix))
}

/// A provider's part of a secret file, if the file has one.
fn from_doc<T: serde::de::DeserializeOwned>(doc: Option<&SecretDoc>, name: &str) -> Option<T> {
    doc.and_then(|d| d.provider::<T>(name).ok().flatten())
}

fn part<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("credentials serialize")
}

pub async fn start(opts: Options) -> Result<Running, String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|e| format!("binding 127.0.0.1:{}: {e}", opts.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base_url = format!("http://{addr}");

    let from_file = match &opts.secrets_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(SecretDoc::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let api_keys = if opts.api_keys.is_empty() && from_file.is_none() {
        vec![("local-app".to_owned(), random("idv_sk_local_"))]
    } else {
        opts.api_keys.clone()
    };
    let file = from_file.as_ref();
    let authento = opts
        .authento
        .clone()
        .or_else(|| from_doc(file, authento::NAME))
        .unwrap_or_else(|| authento::Secrets {
            api_key: secret("ak_"),
            api_secret: secret("as_"),
            jwt_secret: secret("jwt_"),
            webhook_secret: secret("whsec_"),
            webhook_secret_previous: None,
        });
    let prove = opts
        .prove
        .clone()
        .or_else(|| from_doc(file, prove::NAME))
        .unwrap_or_else(|| prove::Secrets {
            client_id: secret("prove_cid_"),
            client_secret: secret("prove_cs_"),
            webhook_secret: Some(secret("whsec_")),
            webhook_secret_previous: None,
        });
    let nevis_secrets = from_doc(file, nevis::NAME).unwrap_or_else(|| nevis::Secrets {
        access_key: secret("nevis_ak_"),
    });
    let passbase = opts
        .passbase
        .clone()
        .or_else(|| from_doc(file, passbase::NAME))
        .unwrap_or_else(|| passbase::Secrets {
            api_key: secret("pb_sk_"),
            // Passbase's webhook secret is 32 characters (the AES-256 key).
            webhook_secret: Secret::new(hex::encode(rand::random::<[u8; 16]>())),
            webhook_secret_previous: None,
        });
    let stripe = opts
        .stripe
        .clone()
        .or_else(|| from_doc(file, stripe::NAME))
        .unwrap_or_else(|| stripe::Secrets {
            api_key: secret("sk_test_"),
            webhook_secret: secret("whsec_"),
            webhook_secret_previous: None,
        });
    let mut secrets = SecretDoc {
        parsed: Default::default(),
        reads: Default::default(),
        fingerprint_key: from_file
            .as_ref()
            .map(|d| d.fingerprint_key.clone())
            .unwrap_or_else(|| random("fpk_")),
        api_keys: api_keys
            .iter()
            .map(|(tenant, key)| ApiKeyEntry::new(tenant.clone(), idv::http::auth::digest(key)))
            .collect(),
        providers: Default::default(),
    }
    .with_provider(authento::NAME, part(&authento))
    .with_provider(prove::NAME, part(&prove))
    .with_provider(nevis::NAME, part(&nevis_secrets))
    .with_provider(passbase::NAME, part(&passbase))
    .with_provider(stripe::NAME, part(&stripe));
    if let Some(doc) = &from_file {
        secrets.api_keys.extend(doc.api_keys.iter().cloned());
    }
    secrets.api_keys.extend(opts.extra_api_keys.iter().cloned());

    // The gateway's settings: the caller's, then the environment, then sandbox defaults.
    let sandbox = format!("{base_url}/sandbox/authento");
    let defaults: HashMap<&str, String> = HashMap::from([
        ("IDV_STORE", "memory".to_owned()),
        ("IDV_SECRETS_FILE", "(inline)".to_owned()),
        // The simulators are served over plain http on loopback.
        ("IDV_ALLOW_HTTP_PROVIDERS", "true".to_owned()),
        // A developer's event receiver runs on their machine (plain http, loopback only).
        ("IDV_OUTBOUND_ALLOW_LOOPBACK", "true".to_owned()),
        ("IDV_AUTHENTO_API_URL", format!("{sandbox}/v1")),
        ("IDV_AUTHENTO_VERIFY_URL", sandbox.clone()),
        ("IDV_AUTHENTO_ISSUER", "localhost".to_owned()),
        // Both Prove regions are served by the one simulator, each under its own prefix.
        ("IDV_PROVE_NA_URL", format!("{base_url}/sandbox/prove/na")),
        ("IDV_PROVE_EU_URL", format!("{base_url}/sandbox/prove/eu")),
        // The demo app, scripts/demo-prove and the tests written for it walk through Verified
        // Users with its test users; a deployment defaults to Unify (docs/providers/prove.md).
        // The simulator serves both: IDV_PROVE_FLOW=unify starts Unify flows here too.
        ("IDV_PROVE_FLOW", "verified_users".to_owned()),
        ("IDV_NEVIS_API_URL", format!("{base_url}/sandbox/nevis")),
        (
            "IDV_PASSBASE_API_URL",
            format!("{base_url}/sandbox/passbase/verification/v2"),
        ),
        ("IDV_STRIPE_API_URL", format!("{base_url}/sandbox/stripe")),
    ]);
    let lookup = |k: &str| {
        opts.settings
            .get(k)
            .cloned()
            .or_else(|| {
                std::env::var(k)
                    .ok()
                    .filter(|_| k != "IDV_STORE" && k != "IDV_SECRET_ID")
            })
            .or_else(|| defaults.get(k).cloned())
    };
    let mut config = Config::from_lookup(lookup).map_err(|e| e.to_string())?;
    config.secrets = SecretsLocation::Inline;

    let (store, inspect, feed): (Arc<dyn Store>, Arc<dyn Inspect>, feed::Feed) = match &opts.store {
        StoreChoice::Memory => {
            let store = Arc::new(MemoryStore::new());
            let feed = feed::Feed::Memory {
                store: store.clone(),
                seen: 0,
            };
            (store.clone(), store, feed)
        }
        StoreChoice::DynamoDb { endpoint, table } => {
            let client = dynamodb_client(endpoint).await;
            let stream_arn = ensure_table(&client, table).await?;
            config.store = idv::config::StoreKind::DynamoDb {
                table: table.clone(),
            };
            let feed = feed::Feed::Dynamo {
                client: streams_client(endpoint).await,
                stream_arn,
                shards: Default::default(),
            };
            let store =
                Arc::new(DynamoStore::new(client, table.clone()).with_retention(config.retention));
            (store.clone(), store, feed)
        }
    };
    let feed = Arc::new(tokio::sync::Mutex::new(feed));
    let app = Arc::new(App::new(
        config.clone(),
        store,
        match &opts.secrets_file {
            Some(path) => SecretSource::File(path.clone()),
            None => SecretSource::Static(Arc::new(secrets.clone())),
        },
        Arc::new(SystemClock),
    ));

    let sim = AuthentoSim::new(AuthentoSimConfig {
        api_key: authento.api_key.expose().to_owned(),
        api_secret: authento.api_secret.expose().to_owned(),
        jwt_secret: authento.jwt_secret.expose().to_owned(),
        webhook_secret: authento.webhook_secret.expose().to_owned(),
        issuer: config
            .provider::<authento::Settings>(authento::NAME)
            .and_then(|s| s.issuer.clone()),
        webhook_url: Some(format!("{base_url}/v1/webhooks/authento")),
        rate_limit_per_sec: opts.authento_rate_limit,
    });

    let prove_sim = ProveSim::new(ProveSimConfig {
        client_id: prove.client_id.expose().to_owned(),
        client_secret: prove.client_secret.expose().to_owned(),
        webhook_secret: prove
            .webhook_secret
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default(),
        webhook_url: Some(format!("{base_url}/v1/webhooks/prove")),
    });
    let nevis = NevisSim::new(NevisSimConfig {
        access_key: nevis_secrets.access_key.expose().to_owned(),
        instance_url: format!("{base_url}/sandbox/nevis"),
        processing_ms: opts.nevis_processing_ms,
    });
    let passbase_sim = PassbaseSim::new(PassbaseSimConfig {
        api_key: passbase.api_key.expose().to_owned(),
        webhook_secret: passbase.webhook_secret.expose().to_owned(),
        webhook_url: Some(format!("{base_url}/v1/webhooks/passbase")),
    });

    let stripe_sim = StripeSim::new(StripeSimConfig {
        secret_key: stripe.api_key.expose().to_owned(),
        webhook_secret: stripe.webhook_secret.expose().to_owned(),
        webhook_url: Some(format!("{base_url}/v1/webhooks/stripe")),
        base_url: format!("{base_url}/sandbox/stripe"),
        processing_ms: 0,
    });

    let gateway = gateway::router(app.clone());
    // The demo page gets the key only when idv-local made it up or was given it on the command
    // line (keys from a secrets file exist only as digests here), and only when asked for by a
    // loopback name (demo::router); otherwise the page asks for one.
    let demo_key = api_keys.first().map(|(_, key)| key.as_str());
    let router = axum::Router::new()
        .merge(demo::router(demo_key, gateway.clone()))
        .nest("/sandbox/authento", sim.router())
        .nest("/sandbox/prove", prove_sim.router())
        .nest("/sandbox/nevis", nevis.router())
        .nest("/sandbox/passbase", passbase_sim.router())
        .nest("/sandbox/stripe", stripe_sim.router())
        .merge(gateway);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "local server stopped");
        }
    });
    // What EventBridge does in AWS: reconcile on a schedule, so Nevis sessions finish unpolled.
    let reconcile = opts.reconcile_every.map(|every| {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                idv::flows::reconcile::run(app.clone()).await;
            }
        })
    });
    // What the table's stream and notify's schedule do in AWS.
    let notify = opts.notify_every.map(|every| {
        let (app, feed) = (app.clone(), feed.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = pump(&app, &feed).await {
                    tracing::warn!(error = %e, "notify pump failed; retried next tick");
                }
            }
        })
    });
    Ok(Running {
        addr,
        base_url,
        api_keys,
        app,
        authento: sim,
        prove: prove_sim,
        nevis,
        passbase: passbase_sim,
        stripe: stripe_sim,
        secrets,
        inspect,
        feed,
        shutdown: Some(tx),
        task,
        reconcile,
        notify,
    })
}

/// A client for DynamoDB Local: the endpoint given, dummy credentials unless real ones are set.
pub async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&local_aws(endpoint).await)
}

async fn local_aws(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ));
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "idv-local",
        ));
    }
    loader.load().await
}

/// A DynamoDB Streams client for the same endpoint (DynamoDB Local serves both).
pub async fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&local_aws(endpoint).await)
}

/// Creates the table if it does not exist (a table of an earlier start gets its stream
/// switched on); answers its stream's ARN.
async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, String> {
    match idv::store::create_table(client, table).await {
        Ok(()) | Err(SchemaError::Exists) => {}
        Err(e) => return Err(format!("table {table}: {e}")),
    }
    idv::store::ensure_stream(client, table)
        .await
        .map_err(|e| format!("table {table}: {e}"))
}
