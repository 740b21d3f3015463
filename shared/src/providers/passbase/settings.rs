//! Passbase's settings (environment) and credentials (its part of the secret document).

use crate::config::{ConfigError, Settings as Env};
use crate::providers::registry::ProviderSettings;
use crate::secrets::{self, Secret, optional, optional_secret, required};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Settings {
    /// REST base, e.g. `https://api.passbase.com/verification/v2` (v1 differs only in the prefix).
    pub api_url: String,
    /// Accept unencrypted JSON webhooks (Passbase's encryption switched off). Off by default:
    /// without encryption nothing proves a delivery came from Passbase.
    pub allow_plaintext: bool,
}

pub(super) fn read(env: &Env<'_>) -> Result<ProviderSettings, ConfigError> {
    Ok(Arc::new(Settings {
        api_url: env.url(
            "IDV_PASSBASE_API_URL",
            "https://api.passbase.com/verification/v2",
        )?,
        allow_plaintext: env.flag("IDV_PASSBASE_ALLOW_PLAINTEXT")?,
    }))
}

/// `"passbase": {"api_key", "webhook_secret", "webhook_secret_previous"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// The secret API key (`X-API-KEY`), never the publishable one.
    pub api_key: Secret,
    /// The webhook encryption secret: 32 characters, used as the AES-256 key.
    pub webhook_secret: Secret,
    /// Still accepted while the webhook secret is rotated (32 characters too).
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
    required("passbase.api_key", &s.api_key)?;
    required("passbase.webhook_secret", &s.webhook_secret)?;
    optional(
        "passbase.webhook_secret_previous",
        s.webhook_secret_previous.as_ref(),
    )?;
    if s.webhook_secrets()
        .any(|k| k.len() != crate::webhooks::aes_cbc_body::KEY_LEN)
    {
        return Err(
            "passbase.webhook_secret (and webhook_secret_previous) must be exactly 32 \
             characters (the AES-256 key)"
                .into(),
        );
    }
    Ok(())
}
