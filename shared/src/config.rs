//! Typed configuration, read once when a container starts. Bad configuration fails the init, not a
//! request.

use crate::providers::registry::ProviderSettings;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    DynamoDb { table: String },
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsLocation {
    /// Secrets Manager: the gateway's secret (`IDV_SECRET_ID`), and each provider's own secret
    /// where it has one (`IDV_<PROVIDER>_SECRET_ID`; else its part is in the gateway's).
    SecretsManager(crate::secrets::Locations),
    /// A JSON file of the same shape (local server).
    File(PathBuf),
    /// Given in-process (local server, tests).
    Inline,
}

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Most sessions one run looks at (the rest are due on the next run).
    pub max_sessions: usize,
    /// Provider reads in flight at once.
    pub concurrency: usize,
    /// A run starts no new work after this long (the function's timeout is longer).
    pub budget: Duration,
}

/// How the gateway secret is cached (see `secrets::SecretsCache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretsPolicy {
    /// A read younger than this is served without asking Secrets Manager.
    pub ttl: Duration,
    /// One read (the SDK's retries included) gives up after this.
    pub fetch_timeout: Duration,
    /// After a failed read, no other read is sent for this long (the last good value, if still
    /// young enough, is served meanwhile).
    pub retry_after_failure: Duration,
    /// A last good value older than this is no longer served: requests answer 503 until a read
    /// succeeds. This bounds how long a revoked API key or credential stays valid while Secrets
    /// Manager is unreachable.
    pub max_stale: Duration,
}

impl SecretsPolicy {
    /// The defaults of `IDV_SECRETS_*` around a given TTL.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            fetch_timeout: Duration::from_millis(1500),
            retry_after_failure: Duration::from_secs(10),
            max_stale: ttl.max(Duration::from_secs(900)),
        }
    }
}

/// Outbound events' delivery (docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Endpoints may be plain `http` on loopback (the local server: a receiver on the
    /// developer's machine). Never in a deployment: there only public `https` endpoints.
    pub allow_loopback: bool,
    /// One delivery attempt, resolution to last byte read.
    pub timeout: Duration,
}

impl OutboundConfig {
    pub fn policy(&self) -> crate::outbound::Policy {
        if self.allow_loopback {
            crate::outbound::Policy::Local
        } else {
            crate::outbound::Policy::Production
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub secrets: SecretsLocation,
    pub secrets_policy: SecretsPolicy,
    /// A non-terminal session is re-read from its provider when its last check is older than this.
    pub refresh_after: Duration,
    /// One HTTP attempt to a provider, connect to last body byte.
    pub provider_timeout: Duration,
    /// One provider operation, every attempt, backoff, `Retry-After` wait and (Prove) token fetch
    /// included. `deadline::worst_case` adds these up per function against its Lambda timeout.
    pub provider_budget: Duration,
    /// Provider URLs may be `http://` (local simulators); otherwise only `https://` is accepted.
    pub allow_http_providers: bool,
    /// Where the runtime gives no deadline (the local server): how long one request may run
    /// before it is answered 503. `None`: the function's timeout in template.yaml.
    pub request_timeout: Option<Duration>,
    pub dedupe_ttl: Duration,
    pub idempotency_ttl: Duration,
    /// How long a session and everything kept about it (its refs, identity events, the user's
    /// reauthentications) stay in the table after the session was created: the `ttl` they are
    /// written with (docs/data-inventory.md). `None` (`IDV_RETENTION_DAYS=0`): kept until redacted.
    pub retention: Option<Duration>,
    pub reconcile: ReconcileConfig,
    pub outbound: OutboundConfig,
    /// Each provider's own settings, read by its registration (`providers::ALL`).
    pub providers: ProviderSettingsSet,
}

/// The providers' typed settings, by provider name.
#[derive(Clone, Default)]
pub struct ProviderSettingsSet(pub Vec<(&'static str, ProviderSettings)>);

impl ProviderSettingsSet {
    pub fn get(&self, name: &str) -> Option<&ProviderSettings> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
    }
}

impl std::fmt::Debug for ProviderSettingsSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The environment of a deployed function (see template.yaml).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Every number has documented bounds (docs/deploy.md#settings); a value outside them fails the
    /// init with an error naming the variable. Nothing is clamped silently: durations far in the
    /// future would overflow time arithmetic at request time (a panic, and the profile aborts).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Credentials go with every provider request: never in clear text, unless the operator
        // says so (the local server and the tests, for their loopback simulators).
        let allow_http = Settings {
            get: &get,
            allow_http: false,
        }
        .flag("IDV_ALLOW_HTTP_PROVIDERS")?;
        let env = Settings {
            get: &get,
            allow_http,
        };
        let store = match get("IDV_STORE").as_deref().unwrap_or("dynamodb") {
            "memory" => StoreKind::Memory,
            "dynamodb" => StoreKind::DynamoDb {
                table: get("IDV_TABLE_NAME")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ConfigError("IDV_TABLE_NAME is required with IDV_STORE=dynamodb".into())
                    })?,
            },
            other => {
                return Err(ConfigError(format!(
                    "IDV_STORE must be dynamodb or memory, got {other:?}"
                )));
            }
        };
        // A provider's own secret (the split layout); unset or empty: its part is in the
        // gateway's secret, as in the single-secret layout.
        let mut own = std::collections::BTreeMap::new();
        for r in crate::providers::ALL {
            if let Some(id) = get(r.secret_id_env).filter(|v| !v.is_empty()) {
                own.insert(r.name, id);
            }
        }
        let secrets = match (get("IDV_SECRET_ID"), get("IDV_SECRETS_FILE")) {
            (Some(id), _) if !id.is_empty() => {
                SecretsLocation::SecretsManager(crate::secrets::Locations {
                    gateway: id,
                    providers: own,
                })
            }
            (_, Some(f)) if !f.is_empty() => {
                if let Some(name) = own.keys().next() {
                    let env = crate::providers::registry::registration(name)
                        .map_or("", |r| r.secret_id_env);
                    return Err(ConfigError(format!(
                        "{env} names a Secrets Manager secret: it needs IDV_SECRET_ID, not IDV_SECRETS_FILE"
                    )));
                }
                SecretsLocation::File(f.into())
            }
            _ => {
                return Err(ConfigError(
                    "set IDV_SECRET_ID (Secrets Manager) or IDV_SECRETS_FILE".into(),
                ));
            }
        };
        let secrets_ttl = env.secs("IDV_SECRETS_TTL_SECONDS", 300, 0, 3600)?;
        let defaults = SecretsPolicy::with_ttl(secrets_ttl);
        let secrets_policy = SecretsPolicy {
            ttl: secrets_ttl,
            fetch_timeout: env.millis("IDV_SECRETS_TIMEOUT_MS", 1500, 100, 10_000)?,
            retry_after_failure: env.secs("IDV_SECRETS_RETRY_SECONDS", 10, 1, 300)?,
            max_stale: env.secs(
                "IDV_SECRETS_MAX_STALE_SECONDS",
                defaults.max_stale.as_secs(),
                secrets_ttl.as_secs(),
                86_400,
            )?,
        };
        let provider_timeout = env.millis("IDV_PROVIDER_TIMEOUT_MS", 3000, 100, 30_000)?;
        let provider_budget = env.millis(
            "IDV_PROVIDER_BUDGET_MS",
            4000.max(provider_timeout.as_millis() as u64),
            provider_timeout.as_millis() as u64,
            60_000,
        )?;
        let request_timeout = match get("IDV_REQUEST_TIMEOUT_MS") {
            None => None,
            Some(_) => Some(env.millis("IDV_REQUEST_TIMEOUT_MS", 0, 500, 900_000)?),
        };
        let mut providers = ProviderSettingsSet::default();
        for r in crate::providers::ALL {
            providers.0.push((r.name, (r.settings)(&env)?));
        }
        Ok(Config {
            store,
            secrets,
            secrets_policy,
            refresh_after: env.secs("IDV_REFRESH_AFTER_SECONDS", 5, 0, 3600)?,
            provider_timeout,
            provider_budget,
            allow_http_providers: allow_http,
            request_timeout,
            dedupe_ttl: Duration::from_secs(86_400 * env.num("IDV_DEDUPE_TTL_DAYS", 30, 1, 3650)?),
            idempotency_ttl: Duration::from_secs(
                3600 * env.num("IDV_IDEMPOTENCY_TTL_HOURS", 24, 1, 8760)?,
            ),
            retention: retention(&env)?,
            reconcile: ReconcileConfig {
                max_sessions: env.num("IDV_RECONCILE_MAX_SESSIONS", 500, 1, 10_000)? as usize,
                concurrency: env.num("IDV_RECONCILE_CONCURRENCY", 8, 1, 64)? as usize,
                // Lambda's longest timeout is 900 s; the run must end well inside it.
                budget: env.secs("IDV_RECONCILE_BUDGET_SECONDS", 40, 1, 840)?,
            },
            outbound: OutboundConfig {
                allow_loopback: env.flag("IDV_OUTBOUND_ALLOW_LOOPBACK")?,
                timeout: env.millis("IDV_OUTBOUND_TIMEOUT_MS", 10_000, 500, 30_000)?,
            },
            providers,
        })
    }

    /// A provider's typed settings (`None`: no such provider, or another type asked).
    pub fn provider<T: 'static>(&self, name: &str) -> Option<&T> {
        self.providers.get(name)?.downcast_ref::<T>()
    }
}

/// The environment as settings are read from it: every number within documented bounds (a value
/// outside them fails the init, naming the variable; nothing is clamped silently: a duration far
/// in the future would overflow time arithmetic at request time), every provider URL https
/// unless `IDV_ALLOW_HTTP_PROVIDERS` says otherwise.
pub struct Settings<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    allow_http: bool,
}

impl Settings<'_> {
    pub fn get(&self, k: &str) -> Option<String> {
        (self.get)(k)
    }

    pub fn num(&self, k: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(v) = self.get(k) else {
            return Ok(default);
        };
        match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError(format!(
                "{k} must be a whole number from {min} to {max}, got {v:?}"
            ))),
        }
    }

    pub fn secs(&self, k: &str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.num(k, default, min, max).map(Duration::from_secs)
    }

    pub fn millis(
        &self,
        k: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.num(k, default, min, max).map(Duration::from_millis)
    }

    pub fn flag(&self, k: &str) -> Result<bool, ConfigError> {
        match self.get(k).as_deref() {
            None | Some("" | "false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ConfigError(format!("{k} must be true or false, got {v:?}"))),
        }
    }

    /// A provider base URL, without a trailing `/`.
    pub fn url(&self, k: &str, default: &str) -> Result<String, ConfigError> {
        let v = self.get(k).unwrap_or_else(|| default.to_owned());
        let parsed = url::Url::parse(&v).map_err(|e| ConfigError(format!("{k}: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(ConfigError(format!(
                    "{k} must be an https URL (set IDV_ALLOW_HTTP_PROVIDERS=true for a local simulator)"
                )));
            }
            _ => return Err(ConfigError(format!("{k} must be an https URL"))),
        }
        Ok(v.trim_end_matches('/').to_owned())
    }

    /// An optional provider base URL: unset or empty is `None`.
    pub fn optional_url(&self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.get(k).filter(|v| !v.is_empty()) {
            Some(_) => self.url(k, "").map(Some),
            None => Ok(None),
        }
    }
}

/// `IDV_RETENTION_DAYS`: 365 unless set; `0` keeps sessions until they are redacted. At least
/// `MIN_RETENTION_DAYS`: every session is decided or expired long before (the longest a
/// provider's flow may stay open is Stripe's, at most 30 days), so the table's TTL never takes
/// an open one.
fn retention(env: &Settings<'_>) -> Result<Option<Duration>, ConfigError> {
    const K: &str = "IDV_RETENTION_DAYS";
    match env.num(K, DEFAULT_RETENTION_DAYS, 0, 3650)? {
        0 => Ok(None),
        d if d < MIN_RETENTION_DAYS => Err(ConfigError(format!(
            "{K} must be 0 (keep until redacted) or from {MIN_RETENTION_DAYS} to 3650, got {d}"
        ))),
        d => Ok(Some(Duration::from_secs(86_400 * d))),
    }
}

pub const DEFAULT_RETENTION_DAYS: u64 = 365;
pub const MIN_RETENTION_DAYS: u64 = 60;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn lambda_defaults_need_a_table_and_a_secret() {
        assert!(cfg(&[]).is_err());
        assert!(cfg(&[("IDV_TABLE_NAME", "t")]).is_err());
        let c = cfg(&[("IDV_TABLE_NAME", "t"), ("IDV_SECRET_ID", "arn:x")]).unwrap();
        assert_eq!(c.store, StoreKind::DynamoDb { table: "t".into() });
        assert_eq!(
            c.secrets,
            SecretsLocation::SecretsManager(crate::secrets::Locations::single("arn:x")),
            "one secret holds every part unless a provider names its own"
        );
        use crate::providers::{authento, prove};
        let a = c.provider::<authento::Settings>(authento::NAME).unwrap();
        let p = c.provider::<prove::Settings>(prove::NAME).unwrap();
        assert_eq!(a.token_ttl, Duration::from_secs(900));
        assert_eq!(a.api_url, "https://api.authento.io/v1");
        assert_eq!(p.na_url, "https://platform.proveapis.com");
        assert_eq!(p.eu_url, "https://platform.eu.proveapis.com");
        assert_eq!(p.otp_window, Duration::from_secs(120));
    }

    #[test]
    fn a_provider_with_a_secret_of_its_own_is_read_from_there() {
        use crate::secrets::Part;
        let c = cfg(&[
            ("IDV_TABLE_NAME", "t"),
            ("IDV_SECRET_ID", "arn:gateway"),
            ("IDV_PROVE_SECRET_ID", "arn:prove"),
            ("IDV_STRIPE_SECRET_ID", ""),
        ])
        .unwrap();
        let SecretsLocation::SecretsManager(at) = &c.secrets else {
            panic!("{:?}", c.secrets)
        };
        assert_eq!(at.of(Part::Provider("prove")), "arn:prove");
        assert_eq!(
            at.of(Part::Provider("stripe")),
            "arn:gateway",
            "empty: unset"
        );
        assert_eq!(at.of(Part::Provider("authento")), "arn:gateway");
        assert_eq!(at.of(Part::Gateway), "arn:gateway");
        // A provider's secret is a Secrets Manager one: not with a local file.
        let e = cfg(&[
            ("IDV_STORE", "memory"),
            ("IDV_SECRETS_FILE", "f"),
            ("IDV_NEVIS_SECRET_ID", "arn:nevis"),
        ])
        .unwrap_err();
        assert!(e.0.contains("IDV_NEVIS_SECRET_ID"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_at_start() {
        assert!(cfg(&[("IDV_STORE", "redis"), ("IDV_SECRETS_FILE", "f")]).is_err());
        assert!(
            cfg(&[
                ("IDV_STORE", "memory"),
                ("IDV_SECRETS_FILE", "f"),
                ("IDV_TOKEN_TTL_SECONDS", "soon")
            ])
            .is_err()
        );
        assert!(
            cfg(&[
                ("IDV_STORE", "memory"),
                ("IDV_SECRETS_FILE", "f"),
                ("IDV_AUTHENTO_API_URL", "ftp://x")
            ])
            .is_err()
        );
    }

    fn local(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = vec![("IDV_STORE", "memory"), ("IDV_SECRETS_FILE", "f")];
        pairs.extend_from_slice(extra);
        cfg(&pairs)
    }

    #[test]
    fn out_of_range_durations_are_refused_at_start_and_named() {
        let max = "18446744073709551615";
        for (k, v) in [
            ("IDV_DEDUPE_TTL_DAYS", max),
            ("IDV_DEDUPE_TTL_DAYS", "0"),
            ("IDV_DEDUPE_TTL_DAYS", "100000"),
            ("IDV_IDEMPOTENCY_TTL_HOURS", max),
            ("IDV_IDEMPOTENCY_TTL_HOURS", "0"),
            ("IDV_PROVE_INSTANT_LINK_SECONDS", max),
            ("IDV_PROVE_OTP_SECONDS", max),
            ("IDV_PROVE_SESSION_SECONDS", "0"),
            ("IDV_PROVE_SESSION_SECONDS", max),
            ("IDV_SECRETS_TTL_SECONDS", max),
            ("IDV_REFRESH_AFTER_SECONDS", max),
            ("IDV_PROVIDER_TIMEOUT_MS", max),
            ("IDV_PROVIDER_TIMEOUT_MS", "0"),
            ("IDV_RECONCILE_BUDGET_SECONDS", max),
            ("IDV_TOKEN_TTL_SECONDS", "1"),
        ] {
            let e = local(&[(k, v)]).expect_err(&format!("{k}={v} is refused"));
            assert!(e.0.contains(k), "the error names {k}: {e}");
        }
        // In range: accepted as given.
        let c = local(&[
            ("IDV_DEDUPE_TTL_DAYS", "365"),
            ("IDV_IDEMPOTENCY_TTL_HOURS", "168"),
        ])
        .unwrap();
        assert_eq!(c.dedupe_ttl, Duration::from_secs(365 * 86_400));
        assert_eq!(c.idempotency_ttl, Duration::from_secs(168 * 3600));
    }

    #[test]
    fn retention_is_a_year_unless_set_and_never_shorter_than_any_open_session() {
        assert_eq!(
            local(&[]).unwrap().retention,
            Some(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(
            local(&[("IDV_RETENTION_DAYS", "0")]).unwrap().retention,
            None
        );
        assert_eq!(
            local(&[("IDV_RETENTION_DAYS", "60")]).unwrap().retention,
            Some(Duration::from_secs(60 * 86_400))
        );
        for v in ["1", "59", "3651", "-1", "a year"] {
            let e = local(&[("IDV_RETENTION_DAYS", v)]).expect_err(v);
            assert!(e.0.contains("IDV_RETENTION_DAYS"), "{e}");
        }
        // Twice the longest a provider's flow may stay open (Stripe's setting, at most 30 days),
        // so TTL never takes an open session, a late reconcile included.
        let longest = 30 * 86_400;
        let at_most = longest.to_string();
        let over = (longest + 1).to_string();
        let set = |v: &str| {
            Config::from_lookup(|k| match k {
                "IDV_STORE" => Some("memory".into()),
                "IDV_SECRETS_FILE" => Some("f".into()),
                "IDV_STRIPE_SESSION_TTL_SECONDS" => Some(v.to_owned()),
                _ => None,
            })
        };
        assert!(set(&at_most).is_ok());
        assert!(set(&over).is_err());
        assert!(MIN_RETENTION_DAYS * 86_400 >= 2 * longest);
    }

    #[test]
    fn provider_urls_must_be_https_unless_the_operator_allows_http() {
        for k in [
            "IDV_AUTHENTO_API_URL",
            "IDV_PROVE_NA_URL",
            "IDV_PROVE_EU_URL",
            "IDV_NEVIS_API_URL",
            "IDV_PASSBASE_API_URL",
        ] {
            let e = local(&[(k, "http://127.0.0.1:9/x")]).expect_err(k);
            assert!(e.0.contains(k), "{e}");
            assert!(
                local(&[
                    (k, "http://127.0.0.1:9/x"),
                    ("IDV_ALLOW_HTTP_PROVIDERS", "true")
                ])
                .is_ok(),
                "{k} with IDV_ALLOW_HTTP_PROVIDERS=true"
            );
        }
        assert!(local(&[("IDV_ALLOW_HTTP_PROVIDERS", "yes")]).is_err());
    }
}
