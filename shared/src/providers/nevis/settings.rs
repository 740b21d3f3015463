//! Nevis's settings (environment) and credentials (its part of the secret document).

use crate::config::{ConfigError, Settings as Env};
use crate::providers::registry::ProviderSettings;
use crate::secrets::{self, Secret, required};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The instance URL, e.g. `https://{instance}.mauth.nevis.cloud`; `None`: Nevis is not served.
    pub api_url: Option<String>,
    /// Our deadline: a Nevis session still open this long after it started is expired (Nevis
    /// documents no expiry of its own).
    pub session_ttl: Duration,
}

pub(super) fn read(env: &Env<'_>) -> Result<ProviderSettings, ConfigError> {
    Ok(Arc::new(Settings {
        api_url: env.optional_url("IDV_NEVIS_API_URL")?,
        session_ttl: env.secs("IDV_NEVIS_SESSION_TTL_SECONDS", 3600, 60, 7 * 86_400)?,
    }))
}

/// `"nevis": {"access_key"}`: the custom integration's access key (sent as a bearer token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub access_key: Secret,
}

pub(super) fn check_secret(part: &Value) -> Result<(), String> {
    let s: Secrets = secrets::read_part(part)?;
    required("nevis.access_key", &s.access_key)
}
