//! Everything a handler needs, built once per container (or once per local server) and shared.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, SecretsLocation, StoreKind};
use crate::http::Function;
use crate::providers::Providers;
use crate::providers::transport::Transport;
use crate::secrets::{Part, SecretDoc, SecretSource, SecretsCache};
use crate::store::{DynamoStore, MemoryStore, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub secrets: SecretsCache,
    /// Every provider's adapter, with its client (Prove's OAuth token, Authento's pacer): built
    /// once per container, shared by its invocations.
    pub providers: Providers,
    pub clock: Arc<dyn Clock>,
    /// Sends outbound events (`events::send::Post`): the SSRF-guarded sender, or a test's.
    pub outbound: Arc<dyn crate::events::send::Post>,
}

impl App {
    /// A deployed function: configuration from the environment, real adapters, and of the secret
    /// only the parts `function` reads (`Function::secret_parts`: its IAM policy grants no more).
    pub async fn from_env(function: Function) -> Result<Arc<App>, String> {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        Self::from_config_reading(config, None, Some(function.secret_parts())).await
    }

    /// Builds the adapters that `config` names. `inline_secrets` serves `SecretsLocation::Inline`.
    pub async fn from_config(
        config: Config,
        inline_secrets: Option<SecretDoc>,
    ) -> Result<Arc<App>, String> {
        Self::from_config_reading(config, inline_secrets, None).await
    }

    /// As `from_config`, reading only `parts` of a secret in Secrets Manager (`None`: all).
    pub async fn from_config_reading(
        config: Config,
        inline_secrets: Option<SecretDoc>,
        parts: Option<BTreeSet<Part>>,
    ) -> Result<Arc<App>, String> {
        let needs_aws = matches!(config.store, StoreKind::DynamoDb { .. })
            || matches!(config.secrets, SecretsLocation::SecretsManager(_));
        // Loaded once: region, credentials and endpoint overrides (AWS_ENDPOINT_URL_DYNAMODB, ...).
        let aws = if needs_aws {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        let store: Arc<dyn Store> = match (&config.store, &aws) {
            (StoreKind::DynamoDb { table }, Some(aws)) => Arc::new(
                DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table.clone())
                    .with_retention(config.retention),
            ),
            _ => Arc::new(MemoryStore::new()),
        };
        let source = match (&config.secrets, &aws) {
            (SecretsLocation::SecretsManager(locations), Some(aws)) => {
                SecretSource::SecretsManager {
                    client: secrets_manager(aws, config.secrets_policy.fetch_timeout),
                    locations: locations.clone(),
                    parts,
                }
            }
            (SecretsLocation::File(path), _) => SecretSource::File(path.clone()),
            _ => SecretSource::Static(Arc::new(
                inline_secrets.ok_or("secrets are inline but none were given")?,
            )),
        };
        Ok(Arc::new(Self::new(
            config,
            store,
            source,
            Arc::new(SystemClock),
        )))
    }

    /// A Lambda container's start: logs, typed config and clients once, the secret read begun.
    /// Bad configuration fails the init (logged), not a request.
    pub async fn for_lambda(function: Function) -> Result<Arc<App>, String> {
        crate::logging::init();
        let app = App::from_env(function).await.map_err(|e| {
            tracing::error!(error = %e, "init failed");
            e
        })?;
        app.prefetch_secrets();
        Ok(app)
    }

    /// Starts the secret read in the background (a Lambda container's init): the first request
    /// then finds it cached, or waits on that one fetch, instead of starting it after its event
    /// arrived. Nothing is fetched twice: `SecretsCache::get` holds its lock while fetching.
    pub fn prefetch_secrets(self: &Arc<Self>) {
        let app = Arc::clone(self);
        tokio::spawn(async move {
            // A failure is logged by `get`; the first request tries again and answers 503.
            let _ = app.secrets.get().await;
        });
    }

    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: SecretSource,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let transport = Transport::new(
            provider_http(&config),
            config.provider_timeout,
            config.provider_budget,
        );
        let providers = Providers::new(
            crate::providers::ALL
                .iter()
                .filter_map(|r| Some((r.build)(config.providers.get(r.name)?, &transport)))
                .collect(),
        );
        let secrets = SecretsCache::with_policy(secrets, config.secrets_policy, clock.clone());
        let outbound = Arc::new(crate::outbound::Sender::production(
            config.outbound.policy(),
            config.outbound.timeout,
        ));
        App {
            config,
            store,
            secrets,
            providers,
            clock,
            outbound,
        }
    }
}

/// The one HTTP client of the provider clients. It follows no redirect: a redirect would carry
/// our credentials (`X-API-KEY`, `X-AUTHENTO-APIKEY`, signatures; reqwest strips only
/// `Authorization` and `Cookie` across hosts) to wherever it points, even over http. A 3xx is a
/// provider error (`providers::transport`). Timeouts are set per attempt there.
pub fn provider_http(config: &Config) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.provider_timeout)
        .connect_timeout(config.provider_timeout.min(Duration::from_secs(2)))
        .https_only(!config.allow_http_providers)
        .user_agent(concat!("idv-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS client can be built")
}

/// Secrets Manager with a bound on one read, its retries included (`SecretsCache` also bounds
/// it): a hung endpoint must not hold every request of a container.
fn secrets_manager(
    aws: &aws_config::SdkConfig,
    timeout: Duration,
) -> aws_sdk_secretsmanager::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .build();
    let conf = aws_sdk_secretsmanager::config::Builder::from(aws)
        .timeout_config(timeouts)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}
