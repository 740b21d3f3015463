//! Authento's settings (environment) and credentials (its part of the secret document).

use crate::config::{ConfigError, Settings as Env};
use crate::providers::registry::ProviderSettings;
use crate::secrets::{self, Secret, optional, optional_secret, required};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// REST base, e.g. `https://api.authento.io/v1`.
    pub api_url: String,
    /// Hosted verification UI base; the token opens `{verify_url}/verify/token?jwt=`.
    pub verify_url: String,
    /// The JWT `iss`: the domain name registered in the Authento dashboard. Unset: Authento
    /// sessions cannot start (no token can be issued).
    pub issuer: Option<String>,
    /// Authento answers 429 beyond about 5 requests a second. Paced per container: N warm
    /// containers may send N times this much, and a 429 pauses only the container that got it
    /// (for its `Retry-After`, at most `client::MAX_PAUSE`).
    pub max_requests_per_second: u32,
    /// How long an issued token opens the flow.
    pub token_ttl: Duration,
}

pub(super) fn read(env: &Env<'_>) -> Result<ProviderSettings, ConfigError> {
    Ok(Arc::new(Settings {
        api_url: env.url("IDV_AUTHENTO_API_URL", "https://api.authento.io/v1")?,
        verify_url: env.url("IDV_AUTHENTO_VERIFY_URL", "https://app.authento.io")?,
        issuer: env.get("IDV_AUTHENTO_ISSUER").filter(|v| !v.is_empty()),
        max_requests_per_second: env.num("IDV_AUTHENTO_MAX_RPS", 5, 1, 1000)? as u32,
        token_ttl: env.secs("IDV_TOKEN_TTL_SECONDS", 900, 60, 86_400)?,
    }))
}

/// `"authento": {"api_key", "api_secret", "jwt_secret", "webhook_secret",
/// "webhook_secret_previous"?}` in the secret document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub api_key: Secret,
    pub api_secret: Secret,
    pub jwt_secret: Secret,
    pub webhook_secret: Secret,
    /// Still accepted while the webhook secret is rotated.
    #[serde(
        default,
        deserialize_with = "optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_secret_previous: Option<Secret>,
}

impl Secrets {
    /// The webhook secrets to accept, current first.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        secrets::rotating(
            Some(&self.webhook_secret),
            self.webhook_secret_previous.as_ref(),
        )
    }
}

pub(super) fn check_secret(part: &Value) -> Result<(), String> {
    let s: Secrets = secrets::read_part(part)?;
    required("authento.api_key", &s.api_key)?;
    required("authento.api_secret", &s.api_secret)?;
    required("authento.jwt_secret", &s.jwt_secret)?;
    required("authento.webhook_secret", &s.webhook_secret)?;
    optional(
        "authento.webhook_secret_previous",
        s.webhook_secret_previous.as_ref(),
    )
}
