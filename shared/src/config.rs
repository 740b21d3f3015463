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
    /// Authento answers 429 beyond about 5 requests a second.
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

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub secrets: SecretsLocation,
    pub secrets_ttl: Duration,
    pub authento: AuthentoConfig,
    pub prove: ProveConfig,
    pub passbase: PassbaseConfig,
    pub token_ttl: Duration,
    /// A non-terminal session is re-read from its provider when its last check is older than this.
    pub refresh_after: Duration,
    pub provider_timeout: Duration,
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

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let num = |k: &str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{k} must be a whole number, got {v:?}"))),
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
        let url = |k: &str, default: &str| -> Result<String, ConfigError> {
            let v = get(k).unwrap_or_else(|| default.to_owned());
            let parsed = url::Url::parse(&v).map_err(|e| ConfigError(format!("{k}: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(ConfigError(format!("{k} must be an http(s) URL")));
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        Ok(Config {
            store,
            secrets,
            secrets_ttl: Duration::from_secs(num("IDV_SECRETS_TTL_SECONDS", 300)?),
            authento: AuthentoConfig {
                api_url: url("IDV_AUTHENTO_API_URL", "https://api.authento.io/v1")?,
                verify_url: url("IDV_AUTHENTO_VERIFY_URL", "https://app.authento.io")?,
                issuer: get("IDV_AUTHENTO_ISSUER").filter(|v| !v.is_empty()),
                max_requests_per_second: u32::try_from(num("IDV_AUTHENTO_MAX_RPS", 5)?.max(1))
                    .unwrap_or(5),
            },
            prove: ProveConfig {
                na_url: url("IDV_PROVE_NA_URL", "https://platform.proveapis.com")?,
                eu_url: url("IDV_PROVE_EU_URL", "https://platform.eu.proveapis.com")?,
                instant_link_window: Duration::from_secs(num(
                    "IDV_PROVE_INSTANT_LINK_SECONDS",
                    180,
                )?),
                otp_window: Duration::from_secs(num("IDV_PROVE_OTP_SECONDS", 120)?),
                session_window: Duration::from_secs(num("IDV_PROVE_SESSION_SECONDS", 900)?),
            },
            passbase: PassbaseConfig {
                api_url: url(
                    "IDV_PASSBASE_API_URL",
                    "https://api.passbase.com/verification/v2",
                )?,
                allow_plaintext: match get("IDV_PASSBASE_ALLOW_PLAINTEXT").as_deref() {
                    None | Some("" | "false") => false,
                    Some("true") => true,
                    Some(v) => {
                        return Err(ConfigError(format!(
                            "IDV_PASSBASE_ALLOW_PLAINTEXT must be true or false, got {v:?}"
                        )));
                    }
                },
            },
            token_ttl: Duration::from_secs(num("IDV_TOKEN_TTL_SECONDS", 900)?.clamp(60, 86_400)),
            refresh_after: Duration::from_secs(num("IDV_REFRESH_AFTER_SECONDS", 5)?),
            provider_timeout: Duration::from_millis(num("IDV_PROVIDER_TIMEOUT_MS", 5000)?.max(100)),
            dedupe_ttl: Duration::from_secs(86_400 * num("IDV_DEDUPE_TTL_DAYS", 30)?.max(1)),
            idempotency_ttl: Duration::from_secs(
                3600 * num("IDV_IDEMPOTENCY_TTL_HOURS", 24)?.max(1),
            ),
            nevis: NevisConfig {
                api_url: match get("IDV_NEVIS_API_URL").filter(|v| !v.is_empty()) {
                    Some(_) => Some(url("IDV_NEVIS_API_URL", "")?),
                    None => None,
                },
                session_ttl: Duration::from_secs(
                    num("IDV_NEVIS_SESSION_TTL_SECONDS", 3600)?.clamp(60, 7 * 86_400),
                ),
            },
            reconcile: ReconcileConfig {
                max_sessions: usize::try_from(num("IDV_RECONCILE_MAX_SESSIONS", 500)?.max(1))
                    .unwrap_or(500),
                concurrency: usize::try_from(num("IDV_RECONCILE_CONCURRENCY", 8)?.clamp(1, 64))
                    .unwrap_or(8),
                budget: Duration::from_secs(num("IDV_RECONCILE_BUDGET_SECONDS", 40)?.max(1)),
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
}
