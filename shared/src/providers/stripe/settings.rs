//! Stripe's settings (environment) and credentials (its part of the secret document).

use crate::config::{ConfigError, Settings as Env};
use crate::providers::registry::ProviderSettings;
use crate::secrets::{self, Secret, optional, optional_secret, required};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Stripe's API base, e.g. `https://api.stripe.com` (requests go to `{api_url}/v1/...`).
    pub api_url: String,
    /// Our deadline: a verification still open this long after it started is expired.
    pub session_ttl: Duration,
}

pub(super) fn read(env: &Env<'_>) -> Result<ProviderSettings, ConfigError> {
    Ok(Arc::new(Settings {
        api_url: env.url("IDV_STRIPE_API_URL", "https://api.stripe.com")?,
        // ASSUMPTION: Stripe documents no expiry of a session (only of its url, 48 h): a week
        // by default, then it is expired here.
        session_ttl: env.secs(
            "IDV_STRIPE_SESSION_TTL_SECONDS",
            7 * 86_400,
            3600,
            30 * 86_400,
        )?,
    }))
}

/// `"stripe": {"api_key", "webhook_secret", "webhook_secret_previous"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// A secret key (`sk_live_...`, `sk_test_...`) or a restricted key (`rk_...`) allowed to
    /// write Identity verification sessions; never a publishable `pk_` key.
    pub api_key: Secret,
    /// The webhook endpoint's signing secret (`whsec_...`), used as it is (prefix included).
    pub webhook_secret: Secret,
    /// Still accepted while the signing secret is rolled (Stripe signs with both for a while).
    #[serde(
        default,
        deserialize_with = "optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_secret_previous: Option<Secret>,
}

impl Secrets {
    /// The signing secrets to accept, current first.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        secrets::rotating(
            Some(&self.webhook_secret),
            self.webhook_secret_previous.as_ref(),
        )
    }
}

pub(super) fn check_secret(part: &Value) -> Result<(), String> {
    let s: Secrets = secrets::read_part(part)?;
    required("stripe.api_key", &s.api_key)?;
    required("stripe.webhook_secret", &s.webhook_secret)?;
    optional(
        "stripe.webhook_secret_previous",
        s.webhook_secret_previous.as_ref(),
    )?;
    let key = s.api_key.expose();
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        return Err("stripe.api_key must be a secret (sk_) or restricted (rk_) key".into());
    }
    Ok(())
}
