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

use crate::clock::{Clock, SystemClock};
use crate::config::SecretsPolicy;
use crate::error::Error;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
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
    /// Parses and checks the document. Every error names a field, never a value (it is logged).
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
        let mut digests = std::collections::HashSet::new();
        for (i, k) in doc.api_keys.iter().enumerate() {
            // Tenants become parts of DynamoDB keys joined with `#`: a closed alphabet keeps
            // one tenant's keys from ever reading as another's.
            if !is_tenant_name(&k.tenant) {
                return Err(format!(
                    "api_keys[{i}].tenant must match [a-z0-9][a-z0-9_-]{{0,62}}"
                ));
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "api key digest of tenant {:?} is not 64 hex chars",
                    k.tenant
                ));
            }
            // One key, one tenant: a digest listed twice would silently belong to the last one.
            if !digests.insert(k.sha256.to_ascii_lowercase()) {
                return Err(format!(
                    "api_keys[{i}] (tenant {:?}) repeats the digest of an earlier entry",
                    k.tenant
                ));
            }
        }
        if let Some(a) = &doc.authento {
            required("authento.api_key", &a.api_key)?;
            required("authento.api_secret", &a.api_secret)?;
            required("authento.jwt_secret", &a.jwt_secret)?;
            // An empty HMAC key is a valid key: anyone could sign webhooks with it.
            required("authento.webhook_secret", &a.webhook_secret)?;
            optional(
                "authento.webhook_secret_previous",
                a.webhook_secret_previous.as_deref(),
            )?;
        }
        if let Some(p) = &doc.prove {
            required("prove.client_id", &p.client_id)?;
            required("prove.client_secret", &p.client_secret)?;
            optional("prove.webhook_secret", p.webhook_secret.as_deref())?;
            optional(
                "prove.webhook_secret_previous",
                p.webhook_secret_previous.as_deref(),
            )?;
        }
        if let Some(n) = &doc.nevis {
            required("nevis.access_key", &n.access_key)?;
        }
        if let Some(p) = &doc.passbase {
            required("passbase.api_key", &p.api_key)?;
            required("passbase.webhook_secret", &p.webhook_secret)?;
            optional(
                "passbase.webhook_secret_previous",
                p.webhook_secret_previous.as_deref(),
            )?;
            if p.webhook_secrets()
                .any(|k| k.len() != crate::webhooks::aes_cbc_body::KEY_LEN)
            {
                return Err(
                    "passbase.webhook_secret (and webhook_secret_previous) must be exactly 32 \
                     characters (the AES-256 key)"
                        .into(),
                );
            }
        }
        Ok(doc)
    }
}

/// `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn is_tenant_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// A credential that must be there: not empty, not only whitespace.
fn required(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty or blank"));
    }
    Ok(())
}

/// An optional credential: absent (`null`, or `""` as before), never whitespace only.
fn optional(field: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if !v.is_empty() => required(field, v),
        _ => Ok(()),
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
    policy: SecretsPolicy,
    clock: Arc<dyn Clock>,
    state: Mutex<CacheState>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    /// The last good document and when it was read.
    good: Option<(Arc<SecretDoc>, OffsetDateTime)>,
    /// When the last read failed, if it failed after the last success.
    failed_at: Option<OffsetDateTime>,
}

impl SecretsCache {
    /// A cache with the default policy around `ttl` (`SecretsPolicy::with_ttl`).
    pub fn new(source: SecretSource, ttl: Duration) -> Self {
        Self::with_policy(source, SecretsPolicy::with_ttl(ttl), Arc::new(SystemClock))
    }

    pub fn with_policy(source: SecretSource, policy: SecretsPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            source,
            policy,
            clock,
            state: Mutex::new(CacheState::default()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Reads sent to the source so far (successful or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The current secret.
    ///
    /// - Younger than the TTL: served from memory.
    /// - Otherwise one read at a time (callers wait on the lock, at most `fetch_timeout`).
    /// - A failed read is not repeated for `retry_after_failure`: an outage costs one read per
    ///   interval per container, not one per request.
    /// - Meanwhile the last good value is served while it is younger than `max_stale`; past
    ///   that, 503 (a revoked key must not stay valid for as long as the outage lasts).
    pub async fn get(&self) -> Result<Arc<SecretDoc>, Error> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        let age = |at: OffsetDateTime| Duration::try_from(now - at).unwrap_or(Duration::ZERO);
        if let Some((doc, at)) = &state.good
            && age(*at) < self.policy.ttl
        {
            return Ok(doc.clone());
        }
        let backing_off = state
            .failed_at
            .is_some_and(|at| age(at) < self.policy.retry_after_failure);
        if !backing_off {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            let fetched = tokio::time::timeout(self.policy.fetch_timeout, self.source.fetch())
                .await
                .unwrap_or_else(|_| Err("reading the secret timed out".into()));
            match fetched {
                Ok(doc) => {
                    let doc = Arc::new(doc);
                    state.good = Some((doc.clone(), self.clock.now()));
                    state.failed_at = None;
                    return Ok(doc);
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the gateway secret failed");
                    state.failed_at = Some(self.clock.now());
                }
            }
        }
        match &state.good {
            Some((doc, at)) if age(*at) < self.policy.max_stale => Ok(doc.clone()),
            Some(_) => {
                tracing::error!(
                    max_stale_s = self.policy.max_stale.as_secs(),
                    "the last good secret is too old to serve"
                );
                Err(Error::StoreUnavailable("secrets unavailable".into()))
            }
            None => Err(Error::StoreUnavailable("secrets unavailable".into())),
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

    const FPK: &str = "0123456789abcdef0123456789abcdef";

    fn with(provider: &str, value: serde_json::Value) -> String {
        serde_json::json!({"fingerprint_key": FPK, provider: value}).to_string()
    }

    #[test]
    fn empty_or_blank_credentials_are_refused_without_quoting_them() {
        let authento = serde_json::json!({"api_key": "k", "api_secret": "s", "jwt_secret": "j", "webhook_secret": "w"});
        let prove = serde_json::json!({"client_id": "c", "client_secret": "s", "webhook_secret": "whsec_x"});
        let nevis = serde_json::json!({"access_key": "a"});
        let passbase = serde_json::json!({"api_key": "k", "webhook_secret": FPK});
        for (provider, good) in [
            ("authento", &authento),
            ("prove", &prove),
            ("nevis", &nevis),
            ("passbase", &passbase),
        ] {
            assert!(
                SecretDoc::parse(&with(provider, good.clone())).is_ok(),
                "{provider}"
            );
            for field in good.as_object().unwrap().keys() {
                if provider == "passbase" && field == "webhook_secret" {
                    continue; // exactly 32 characters: its own rule
                }
                for blank in ["", " \t\n "] {
                    if provider == "prove" && field == "webhook_secret" && blank.is_empty() {
                        continue; // optional: "" reads as absent
                    }
                    let mut bad = good.clone();
                    bad[field] = blank.into();
                    let e = SecretDoc::parse(&with(provider, bad))
                        .expect_err(&format!("{provider}.{field} = {blank:?} is refused"));
                    assert!(
                        e.contains(&format!("{provider}.{field}")),
                        "names the field: {e}"
                    );
                }
            }
        }
        // A rotation's previous secret may be absent, never blank.
        let mut a = authento.clone();
        a["webhook_secret_previous"] = "   ".into();
        assert!(SecretDoc::parse(&with("authento", a)).is_err());
        let blank_passbase = serde_json::json!({"api_key": "k", "webhook_secret": " ".repeat(32)});
        assert!(SecretDoc::parse(&with("passbase", blank_passbase)).is_err());
    }

    #[test]
    fn tenant_names_must_be_key_safe_and_digests_unique() {
        let d = crate::http::auth::digest;
        let doc = |keys: serde_json::Value| {
            serde_json::json!({"fingerprint_key": FPK, "api_keys": keys}).to_string()
        };
        for ok in ["a", "my-app", "app_2", "0", &"a".repeat(63)] {
            assert!(
                SecretDoc::parse(&doc(serde_json::json!([{"tenant": ok, "sha256": d("k")}])))
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in ["", "App", "my app", "a#b", "-a", "_a", "é", &"a".repeat(64)] {
            let e = SecretDoc::parse(&doc(serde_json::json!([{"tenant": bad, "sha256": d("k")}])))
                .expect_err(&format!("tenant {bad:?} is refused"));
            assert!(e.contains("tenant"), "{e}");
        }
        let twice = doc(
            serde_json::json!([{"tenant": "a", "sha256": d("k")}, {"tenant": "b", "sha256": d("k").to_uppercase()}]),
        );
        let e = SecretDoc::parse(&twice).expect_err("one key digest listed twice");
        assert!(!e.contains(&d("k")), "the digest is not quoted: {e}");
    }
}
