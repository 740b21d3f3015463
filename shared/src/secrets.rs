//! The gateway's one secret: API-key digests with their tenants, and provider credentials.
//! Read from Secrets Manager (or a file locally), cached in-process with a TTL so a warm container
//! does not pay for a read per request, and refreshed so a rotation reaches every container.
//!
//! ```json
//! {"fingerprint_key": "<at least 32 random characters>",
//!  "api_keys": [{"tenant": "my-app", "sha256": "<hex sha-256 of the key>"}],
//!  "authento": {"api_key": "..", "api_secret": "..", "jwt_secret": "..",
//!               "webhook_secret": "..", "webhook_secret_previous": null},
//!  "prove": {"client_id": "..", "client_secret": "..", "webhook_secret": "whsec_..",
//!            "webhook_secret_previous": null},
//!  "nevis": {"access_key": ".."},
//!  "passbase": {"api_key": "<secret API key>", "webhook_secret": "<32 characters>"}}
//! ```

use crate::error::Error;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct ApiKeyEntry {
    pub tenant: String,
    /// Lower-case hex SHA-256 of the key: the key itself is never stored.
    pub sha256: String,
}

#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct AuthentoSecrets {
    pub api_key: String,
    pub api_secret: String,
    pub jwt_secret: String,
    pub webhook_secret: String,
    /// Still accepted while the webhook secret is rotated.
    #[serde(default)]
    pub webhook_secret_previous: Option<String>,
}

impl std::fmt::Debug for AuthentoSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthentoSecrets(<redacted>)")
    }
}

impl AuthentoSecrets {
    /// The webhook secrets to accept, current first.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.webhook_secret.as_str()).chain(
            self.webhook_secret_previous
                .as_deref()
                .filter(|s| !s.is_empty()),
        )
    }
}

/// Prove: OAuth2 client credentials and the Identity Manager webhook secret (Prove Portal).
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct ProveSecrets {
    pub client_id: String,
    pub client_secret: String,
    /// The Portal's `whsec_...` string, used as the HS256 key as it is.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Still accepted while the webhook secret is rotated.
    #[serde(default)]
    pub webhook_secret_previous: Option<String>,
}

impl std::fmt::Debug for ProveSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProveSecrets(<redacted>)")
    }
}

impl ProveSecrets {
    /// The webhook secrets to accept, current first.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        self.webhook_secret
            .as_deref()
            .into_iter()
            .chain(self.webhook_secret_previous.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// Nevis Authentication Cloud: the custom integration's access key (sent as a bearer token).
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct NevisSecrets {
    pub access_key: String,
}

impl std::fmt::Debug for NevisSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NevisSecrets(<redacted>)")
    }
}

#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct PassbaseSecrets {
    /// The secret API key (`X-API-KEY`), never the publishable one.
    pub api_key: String,
    /// The webhook encryption secret: 32 characters, used as the AES-256 key.
    pub webhook_secret: String,
    /// Still accepted while the webhook secret is rotated (32 characters too).
    #[serde(default)]
    pub webhook_secret_previous: Option<String>,
}

impl PassbaseSecrets {
    /// The webhook secrets to accept, current first.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.webhook_secret.as_str()).chain(
            self.webhook_secret_previous
                .as_deref()
                .filter(|s| !s.is_empty()),
        )
    }
}

impl std::fmt::Debug for PassbaseSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassbaseSecrets(<redacted>)")
    }
}

#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct SecretDoc {
    /// Keys the fingerprints the gateway keeps of requests (the request an `Idempotency-Key` is
    /// bound to): a keyed MAC reveals nothing about a body full of personal data, where a bare
    /// hash of a phone number and two names could be brute-forced from the table.
    #[serde(default)]
    pub fingerprint_key: String,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyEntry>,
    #[serde(default)]
    pub authento: Option<AuthentoSecrets>,
    #[serde(default)]
    pub prove: Option<ProveSecrets>,
    pub nevis: Option<NevisSecrets>,
    pub passbase: Option<PassbaseSecrets>,
}

// Secrets never reach a log through Debug.
impl std::fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretDoc")
            .field("fingerprint_key", &"<redacted>")
            .field("api_keys", &self.api_keys.len())
            .field("authento", &self.authento.as_ref().map(|_| "<redacted>"))
            .field("prove", &self.prove.as_ref().map(|_| "<redacted>"))
            .field("nevis", &self.nevis.as_ref().map(|_| "<redacted>"))
            .field("passbase", &self.passbase.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SecretDoc {
    pub fn parse(json: &str) -> Result<Self, String> {
        // serde's message can quote the offending value: only its position may reach a log.
        let doc: SecretDoc = serde_json::from_str(json).map_err(|e| {
            format!(
                "secret JSON is invalid at line {} column {} ({:?})",
                e.line(),
                e.column(),
                e.classify()
            )
        })?;
        if doc.fingerprint_key.trim().len() < MIN_FINGERPRINT_KEY {
            return Err(format!(
                "fingerprint_key must be at least {MIN_FINGERPRINT_KEY} characters"
            ));
        }
        for k in &doc.api_keys {
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "api key digest of tenant {:?} is not 64 hex chars",
                    k.tenant
                ));
            }
        }
        if let Some(p) = &doc.passbase
            && p.webhook_secrets()
                .any(|k| k.len() != crate::webhooks::aes_cbc_body::KEY_LEN)
        {
            return Err(
                "passbase.webhook_secret must be exactly 32 characters (the AES-256 key)".into(),
            );
        }
        Ok(doc)
    }
}

/// Shortest `fingerprint_key` accepted (as many characters as a 256-bit key in hex has bytes).
pub const MIN_FINGERPRINT_KEY: usize = 32;

pub enum SecretSource {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    File(PathBuf),
    Static(Arc<SecretDoc>),
}

impl SecretSource {
    async fn fetch(&self) -> Result<SecretDoc, String> {
        match self {
            SecretSource::SecretsManager { client, secret_id } => {
                let out = client
                    .get_secret_value()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|e| {
                        format!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
                    })?;
                let text = out.secret_string().ok_or("secret has no SecretString")?;
                SecretDoc::parse(text)
            }
            SecretSource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                SecretDoc::parse(&text)
            }
            SecretSource::Static(doc) => Ok((**doc).clone()),
        }
    }
}

pub struct SecretsCache {
    source: SecretSource,
    ttl: Duration,
    cached: Mutex<Option<(Arc<SecretDoc>, Instant)>>,
}

impl SecretsCache {
    pub fn new(source: SecretSource, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The current secret. One fetch at a time; a failed refresh keeps serving the last good value
    /// (a Secrets Manager blip must not take the gateway down), a first fetch that fails is a 503.
    pub async fn get(&self) -> Result<Arc<SecretDoc>, Error> {
        let mut cached = self.cached.lock().await;
        if let Some((doc, at)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(doc.clone());
        }
        match self.source.fetch().await {
            Ok(doc) => {
                let doc = Arc::new(doc);
                *cached = Some((doc.clone(), Instant::now()));
                Ok(doc)
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the gateway secret failed");
                match cached.as_ref() {
                    Some((doc, _)) => Ok(doc.clone()),
                    None => Err(Error::StoreUnavailable("secrets unavailable".into())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_credentials() {
        let doc = SecretDoc::parse(r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","api_keys":[],"authento":{"api_key":"k","api_secret":"very-secret","jwt_secret":"j","webhook_secret":"w"}}"#).unwrap();
        let shown = format!("{doc:?}");
        assert!(!shown.contains("very-secret"));
    }

    #[test]
    fn malformed_digests_are_refused() {
        assert!(SecretDoc::parse(r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","api_keys":[{"tenant":"a","sha256":"abc"}]}"#).is_err());
    }

    #[test]
    fn a_passbase_webhook_secret_must_be_an_aes_256_key() {
        let ok = r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","passbase":{"api_key":"k","webhook_secret":"0123456789abcdef0123456789abcdef"}}"#;
        assert!(SecretDoc::parse(ok).unwrap().passbase.is_some());
        let short = r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","passbase":{"api_key":"k","webhook_secret":"too-short"}}"#;
        let err = SecretDoc::parse(short).unwrap_err();
        assert!(
            !err.contains("too-short"),
            "the value is never quoted: {err}"
        );
    }

    #[test]
    fn a_fingerprint_key_is_required_and_long() {
        assert!(SecretDoc::parse(r#"{"api_keys":[]}"#).is_err());
        let short = SecretDoc::parse(r#"{"fingerprint_key":"short-secret"}"#).unwrap_err();
        assert!(!short.contains("short-secret"), "never quoted: {short}");
        let blank = format!(r#"{{"fingerprint_key":"{}"}}"#, " ".repeat(40));
        assert!(SecretDoc::parse(&blank).is_err());
    }

    #[test]
    fn previous_webhook_secret_is_accepted_during_rotation() {
        let doc = SecretDoc::parse(r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","authento":{"api_key":"k","api_secret":"s","jwt_secret":"j","webhook_secret":"new","webhook_secret_previous":"old"}}"#).unwrap();
        let secrets: Vec<&str> = doc.authento.as_ref().unwrap().webhook_secrets().collect();
        assert_eq!(secrets, vec!["new", "old"]);
    }
}
