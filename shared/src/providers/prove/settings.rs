//! Prove's settings (environment) and credentials (its part of the secret document).

use super::ProveFlow;
use crate::config::{ConfigError, Settings as Env};
use crate::providers::registry::ProviderSettings;
use crate::secrets::{self, Secret, optional, optional_secret, required};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One base URL per region, and the flow deadlines Prove documents.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API new sessions start with (`IDV_PROVE_FLOW`): a Prove account has one or the other.
    pub flow: ProveFlow,
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

pub(super) fn read(env: &Env<'_>) -> Result<ProviderSettings, ConfigError> {
    Ok(Arc::new(Settings {
        flow: flow(env)?,
        na_url: env.url("IDV_PROVE_NA_URL", "https://platform.proveapis.com")?,
        eu_url: env.url("IDV_PROVE_EU_URL", "https://platform.eu.proveapis.com")?,
        instant_link_window: env.secs("IDV_PROVE_INSTANT_LINK_SECONDS", 180, 0, 3600)?,
        otp_window: env.secs("IDV_PROVE_OTP_SECONDS", 120, 0, 3600)?,
        session_window: env.secs("IDV_PROVE_SESSION_SECONDS", 900, 1, 86_400)?,
    }))
}

/// `IDV_PROVE_FLOW`: `unify` (the default: since October 2025 new Prove accounts get only Unify)
/// or `verified_users` (accounts that still have the legacy API).
fn flow(env: &Env<'_>) -> Result<ProveFlow, ConfigError> {
    match env.get("IDV_PROVE_FLOW").as_deref() {
        None | Some("") => Ok(ProveFlow::Unify),
        Some(v) => ProveFlow::parse(v).ok_or_else(|| {
            ConfigError(format!(
                "IDV_PROVE_FLOW must be unify or verified_users, got {v:?}"
            ))
        }),
    }
}

/// `"prove": {"client_id", "client_secret", "webhook_secret"?, "webhook_secret_previous"?}`:
/// OAuth2 client credentials and the Identity Manager webhook secret (Prove Portal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub client_id: Secret,
    pub client_secret: Secret,
    /// The Portal's `whsec_...` string, used as the HS256 key as it is.
    #[serde(
        default,
        deserialize_with = "optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_secret: Option<Secret>,
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
            self.webhook_secret.as_ref(),
            self.webhook_secret_previous.as_ref(),
        )
    }
}

pub(super) fn check_secret(part: &Value) -> Result<(), String> {
    let s: Secrets = secrets::read_part(part)?;
    required("prove.client_id", &s.client_id)?;
    required("prove.client_secret", &s.client_secret)?;
    optional("prove.webhook_secret", s.webhook_secret.as_ref())?;
    optional(
        "prove.webhook_secret_previous",
        s.webhook_secret_previous.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn flow_of(value: Option<&str>) -> Result<ProveFlow, String> {
        let config = Config::from_lookup(|k| match k {
            "IDV_STORE" => Some("memory".into()),
            "IDV_SECRETS_FILE" => Some("f".into()),
            "IDV_PROVE_FLOW" => value.map(str::to_owned),
            _ => None,
        })
        .map_err(|e| e.0)?;
        Ok(config
            .provider::<Settings>(super::super::NAME)
            .expect("prove settings")
            .flow)
    }

    #[test]
    fn the_flow_is_unify_unless_told_and_a_wrong_one_fails_the_init() {
        assert_eq!(flow_of(None), Ok(ProveFlow::Unify));
        assert_eq!(flow_of(Some("")), Ok(ProveFlow::Unify));
        assert_eq!(flow_of(Some("unify")), Ok(ProveFlow::Unify));
        assert_eq!(
            flow_of(Some("verified_users")),
            Ok(ProveFlow::VerifiedUsers)
        );
        let e = flow_of(Some("Unify")).unwrap_err();
        assert!(e.contains("IDV_PROVE_FLOW"), "{e}");
    }
}
