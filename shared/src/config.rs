//! Typed configuration, read once when a container starts. Bad configuration fails the init, not a
//! request.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    DynamoDb { table: String },
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsLocation {
    /// Secrets Manager secret id or ARN.
    SecretsManager(String),
    /// A JSON file of the same shape (local server).
    File(PathBuf),
    /// Given in-process (local server, tests).
    Inline,
}

#[derive(Debug, Clone)]
pub struct AuthentoConfig {
    /// REST base, e.g. `https://api.authento.io/v1`.
    pub api_url: String,
    /// Hosted verification UI base; the token opens `{verify_url}/verify/token?jwt=`.
    pub verify_url: String,
    /// The JWT `iss`: the domain name registered in the Authento dashboard.
    pub issuer: Option<String>,
    /// Authento answers 429 beyond about 5 requests a second. Paced per container: N warm
    /// containers may send N times this much, and a 429 pauses only the container that got it
    /// (for its `Retry-After`, at most `providers::authento::MAX_PAUSE`).
    pub max_requests_per_second: u32,
}

/// Prove: one base URL per region, and the flow deadlines Prove documents.
#[derive(Debug, Clone)]
pub struct ProveConfig {
    /// North American numbers (+1) go here, e.g. `https://platform.proveapis.com`.
    pub na_url: String,
    /// Every other number goes here, e.g. `https://platform.eu.proveapis.com`.
    pub eu_url: String,
    /// Instant Link (desktop) possession window: 3 minutes (older Prove docs say 5).
    pub instant_link_window: Duration,
    /// OTP (mobile) possession window: 2 minutes.
    pub otp_window: Duration,
    /// The flow (correlation id, authToken) lives 15 minutes.
    pub session_window: Duration,
}

#[derive(Debug, Clone)]
pub struct NevisConfig {
    /// The instance URL, e.g. `https://{instance}.mauth.nevis.cloud`; `None`: Nevis is not served.
    pub api_url: Option<String>,
    /// Our deadline: a Nevis session still open this long after it started is expired
    /// (Nevis documents no expiry of its own).
    pub session_ttl: Duration,
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

#[derive(Debug, Clone)]
pub struct PassbaseConfig {
    /// REST base, e.g. `https://api.passbase.com/verification/v2` (v1 differs only in the prefix).
    pub api_url: String,
    /// Accept unencrypted JSON webhooks (Passbase's encryption switched off). Off by default:
    /// without encryption nothing proves a delivery came from Passbase.
    pub allow_plaintext: bool,
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

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub secrets: SecretsLocation,
    pub secrets_policy: SecretsPolicy,
    pub authento: AuthentoConfig,
    pub prove: ProveConfig,
    pub passbase: PassbaseConfig,
    pub token_ttl: Duration,
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
    pub nevis: NevisConfig,
    pub reconcile: ReconcileConfig,
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
        let num = |k: &str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            let v = match get(k) {
                None => return Ok(default),
                Some(v) => v,
            };
            match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError(format!(
                    "{k} must be a whole number from {min} to {max}, got {v:?}"
                ))),
            }
        };
        let secs = |k: &str, default: u64, min: u64, max: u64| {
            num(k, default, min, max).map(Duration::from_secs)
        };
        let millis = |k: &str, default: u64, min: u64, max: u64| {
            num(k, default, min, max).map(Duration::from_millis)
        };
        let flag = |k: &str| -> Result<bool, ConfigError> {
            match get(k).as_deref() {
                None | Some("" | "false") => Ok(false),
                Some("true") => Ok(true),
                Some(v) => Err(ConfigError(format!("{k} must be true or false, got {v:?}"))),
            }
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
        let secrets = match (get("IDV_SECRET_ID"), get("IDV_SECRETS_FILE")) {
            (Some(id), _) if !id.is_empty() => SecretsLocation::SecretsManager(id),
            (_, Some(f)) if !f.is_empty() => SecretsLocation::File(f.into()),
            _ => {
                return Err(ConfigError(
                    "set IDV_SECRET_ID (Secrets Manager) or IDV_SECRETS_FILE".into(),
                ));
            }
        };
        // Credentials go with every provider request: never in clear text, unless the operator
        // says so (the local server and the tests, for their loopback simulators).
        let allow_http_providers = flag("IDV_ALLOW_HTTP_PROVIDERS")?;
        let url = |k: &str, default: &str| -> Result<String, ConfigError> {
            let v = get(k).unwrap_or_else(|| default.to_owned());
            let parsed = url::Url::parse(&v).map_err(|e| ConfigError(format!("{k}: {e}")))?;
            match parsed.scheme() {
                "https" => {}
                "http" if allow_http_providers => {}
                "http" => {
                    return Err(ConfigError(format!(
                        "{k} must be an https URL (set IDV_ALLOW_HTTP_PROVIDERS=true for a local simulator)"
                    )));
                }
                _ => return Err(ConfigError(format!("{k} must be an https URL"))),
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        let secrets_ttl = secs("IDV_SECRETS_TTL_SECONDS", 300, 0, 3600)?;
        let defaults = SecretsPolicy::with_ttl(secrets_ttl);
        let secrets_policy = SecretsPolicy {
            ttl: secrets_ttl,
            fetch_timeout: millis("IDV_SECRETS_TIMEOUT_MS", 1500, 100, 10_000)?,
            retry_after_failure: secs("IDV_SECRETS_RETRY_SECONDS", 10, 1, 300)?,
            max_stale: secs(
                "IDV_SECRETS_MAX_STALE_SECONDS",
                defaults.max_stale.as_secs(),
                secrets_ttl.as_secs(),
                86_400,
            )?,
        };
        let provider_timeout = millis("IDV_PROVIDER_TIMEOUT_MS", 3000, 100, 30_000)?;
        let provider_budget = millis(
            "IDV_PROVIDER_BUDGET_MS",
            4000.max(provider_timeout.as_millis() as u64),
            provider_timeout.as_millis() as u64,
            60_000,
        )?;
        let request_timeout = match get("IDV_REQUEST_TIMEOUT_MS") {
            None => None,
            Some(_) => Some(millis("IDV_REQUEST_TIMEOUT_MS", 0, 500, 900_000)?),
        };
        Ok(Config {
            store,
            secrets,
            secrets_policy,
            authento: AuthentoConfig {
                api_url: url("IDV_AUTHENTO_API_URL", "https://api.authento.io/v1")?,
                verify_url: url("IDV_AUTHENTO_VERIFY_URL", "https://app.authento.io")?,
                issuer: get("IDV_AUTHENTO_ISSUER").filter(|v| !v.is_empty()),
                max_requests_per_second: num("IDV_AUTHENTO_MAX_RPS", 5, 1, 1000)? as u32,
            },
            prove: ProveConfig {
                na_url: url("IDV_PROVE_NA_URL", "https://platform.proveapis.com")?,
                eu_url: url("IDV_PROVE_EU_URL", "https://platform.eu.proveapis.com")?,
                instant_link_window: secs("IDV_PROVE_INSTANT_LINK_SECONDS", 180, 0, 3600)?,
                otp_window: secs("IDV_PROVE_OTP_SECONDS", 120, 0, 3600)?,
                session_window: secs("IDV_PROVE_SESSION_SECONDS", 900, 1, 86_400)?,
            },
            passbase: PassbaseConfig {
                api_url: url(
                    "IDV_PASSBASE_API_URL",
                    "https://api.passbase.com/verification/v2",
                )?,
                allow_plaintext: flag("IDV_PASSBASE_ALLOW_PLAINTEXT")?,
            },
            token_ttl: secs("IDV_TOKEN_TTL_SECONDS", 900, 60, 86_400)?,
            refresh_after: secs("IDV_REFRESH_AFTER_SECONDS", 5, 0, 3600)?,
            provider_timeout,
            provider_budget,
            allow_http_providers,
            request_timeout,
            dedupe_ttl: Duration::from_secs(86_400 * num("IDV_DEDUPE_TTL_DAYS", 30, 1, 3650)?),
            idempotency_ttl: Duration::from_secs(
                3600 * num("IDV_IDEMPOTENCY_TTL_HOURS", 24, 1, 8760)?,
            ),
            nevis: NevisConfig {
                api_url: match get("IDV_NEVIS_API_URL").filter(|v| !v.is_empty()) {
                    Some(_) => Some(url("IDV_NEVIS_API_URL", "")?),
                    None => None,
                },
                session_ttl: secs("IDV_NEVIS_SESSION_TTL_SECONDS", 3600, 60, 7 * 86_400)?,
            },
            reconcile: ReconcileConfig {
                max_sessions: num("IDV_RECONCILE_MAX_SESSIONS", 500, 1, 10_000)? as usize,
                concurrency: num("IDV_RECONCILE_CONCURRENCY", 8, 1, 64)? as usize,
                // Lambda's longest timeout is 900 s; the run must end well inside it.
                budget: secs("IDV_RECONCILE_BUDGET_SECONDS", 40, 1, 840)?,
            },
        })
    }
}

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
        assert_eq!(c.token_ttl, Duration::from_secs(900));
        assert_eq!(c.authento.api_url, "https://api.authento.io/v1");
        assert_eq!(c.prove.na_url, "https://platform.proveapis.com");
        assert_eq!(c.prove.eu_url, "https://platform.eu.proveapis.com");
        assert_eq!(c.prove.otp_window, Duration::from_secs(120));
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
