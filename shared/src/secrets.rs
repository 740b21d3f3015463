//! The gateway's secret document: API-key digests with their tenants, the idempotency fingerprint
//! key, and each provider's credentials under its name. Read from Secrets Manager (or a file
//! locally), cached in-process with a TTL so a warm container does not pay for a read per
//! request, and refreshed so a rotation reaches every container.
//!
//! ```json
//! {"fingerprint_key": "<at least 32 random characters>",
//!  "api_keys": [{"tenant": "my-app", "sha256": "<hex sha-256 of the key>",
//!                "scopes": ["sessions:read", "sessions:write"]}],
//!  "<provider>": {...its credentials: docs/providers/<provider>.md}}
//! ```
//!
//! The document has parts (`Part`): the gateway's own keys (`fingerprint_key`, `api_keys`) and
//! each provider's credentials. In Secrets Manager they are kept either in one secret
//! (`IDV_SECRET_ID`: the single-secret layout), or split: the gateway's keys in that secret and
//! each provider's part in a secret of its own (`IDV_<PROVIDER>_SECRET_ID`, holding
//! `{"<provider>": {...}}`), so that each function reads only the parts it uses
//! (`http::Function::secret_parts`) and its IAM policy grants only those secrets.
//!
//! A provider's part is checked by its registration (`providers::ALL`) when the document is
//! loaded, and read by its adapter as its own typed struct (`SecretDoc::provider`). Credentials
//! are `Secret`s: never shown by `Debug`, never blank.

use crate::clock::{Clock, SystemClock};
use crate::config::SecretsPolicy;
use crate::error::Error;
use crate::http::scopes::Scopes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    pub tenant: String,
    /// Lower-case hex SHA-256 of the key: the key itself is never stored.
    pub sha256: String,
    /// What the key may do; a key written without `scopes` has `Scope::IMPLIED`.
    pub scopes: Scopes,
}

/// An API key entry as written: `scopes` is checked by `SecretDoc::parse`, which names a bad one.
#[derive(Deserialize)]
struct WrittenKey {
    tenant: String,
    sha256: String,
    scopes: Option<Vec<String>>,
}

impl ApiKeyEntry {
    /// A key with the implied scopes.
    pub fn new(tenant: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            sha256: sha256.into(),
            scopes: Scopes::implied(),
        }
    }
}

/// A credential: shown as `<redacted>` by `Debug`, compared in the clear only by the code that
/// uses it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq<&str> for Secret {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// An optional credential: absent, `null` and `""` all read as none (a rotation's previous
/// secret once the rotation is over).
pub fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|v| !v.is_empty())
        .map(Secret))
}

/// `field` (as `<provider>.<field>`) must hold something besides whitespace.
pub fn required(field: &str, value: &Secret) -> Result<(), String> {
    if value.0.trim().is_empty() {
        return Err(format!("{field} must not be empty or blank"));
    }
    Ok(())
}

/// `field` may be absent, never blank.
pub fn optional(field: &str, value: Option<&Secret>) -> Result<(), String> {
    value.map_or(Ok(()), |v| required(field, v))
}

/// A webhook secret and the one still accepted while it rotates, current first.
pub fn rotating<'a>(
    current: Option<&'a Secret>,
    previous: Option<&'a Secret>,
) -> impl Iterator<Item = &'a str> {
    current
        .into_iter()
        .chain(previous)
        .map(Secret::expose)
        .filter(|s| !s.is_empty())
}

/// A part of the secret document: what a function may be given to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The gateway's own keys: `api_keys` (callers' API-key digests) and `fingerprint_key`
    /// (idempotency fingerprints, and the sealing of outbound endpoints' secrets).
    Gateway,
    /// A provider's credentials, under its registered name.
    Provider(&'static str),
}

impl Part {
    /// Every part: the gateway's keys and every registered provider's.
    pub fn all() -> BTreeSet<Part> {
        std::iter::once(Part::Gateway)
            .chain(crate::providers::ALL.iter().map(|r| Part::Provider(r.name)))
            .collect()
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Gateway => f.write_str("gateway"),
            Part::Provider(name) => f.write_str(name),
        }
    }
}

/// The parts of a document read so far, when something asked to know (`SecretDoc::recording`):
/// tests/integration/iam.rs compares what each function reads with what its policy grants.
/// Clones share the record; it plays no part in a document's identity.
#[derive(Clone, Default)]
pub struct Reads(Option<Arc<std::sync::Mutex<BTreeSet<Part>>>>);

impl Reads {
    /// A record to share between documents (`SecretDoc::reads`).
    pub fn recorder() -> Self {
        Reads(Some(Arc::default()))
    }

    fn note(&self, part: Part) {
        if let Some(r) = &self.0 {
            r.lock().unwrap_or_else(|e| e.into_inner()).insert(part);
        }
    }

    /// The parts read since the last `take`.
    pub fn take(&self) -> BTreeSet<Part> {
        self.0.as_ref().map_or_else(BTreeSet::new, |r| {
            std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner()))
        })
    }
}

impl PartialEq for Reads {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The secret document. Read the gateway's keys through `fingerprint_key()` and `api_keys()`
/// and a provider's part through `provider*()`: they note which parts a function reads.
#[derive(Clone, Default, PartialEq)]
pub struct SecretDoc {
    pub fingerprint_key: String,
    pub api_keys: Vec<ApiKeyEntry>,
    /// Each registered provider's part, by provider name, as checked when the document was read.
    pub providers: BTreeMap<String, Value>,
    /// The parts as their adapters read them, parsed once per document.
    pub parsed: ParsedParts,
    /// Which parts were read, if asked (`recording`).
    pub reads: Reads,
}

/// Providers' parts parsed into their adapters' structs, once per document and type: a request
/// then reads its provider's credentials without cloning and deserializing JSON again. Each entry
/// keeps the part it was parsed from and is used only while the part is still that one. Not part
/// of the document's identity (a clone starts empty; any two are equal).
#[derive(Default)]
pub struct ParsedParts(std::sync::Mutex<Vec<Parsed>>);

/// One provider's part as one type: a handful per document, so a scan, with no key to allocate.
struct Parsed {
    name: String,
    ty: TypeId,
    part: Value,
    value: Arc<dyn Any + Send + Sync>,
}

impl Clone for ParsedParts {
    fn clone(&self) -> Self {
        ParsedParts::default()
    }
}

impl PartialEq for ParsedParts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretDoc")
            .field("fingerprint_key", &"<redacted>")
            .field("api_keys", &self.api_keys.len())
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The document as written, before its rules are checked. Keys that name no registered
/// provider are ignored, as before providers were registered.
#[derive(Deserialize)]
struct Written {
    #[serde(default)]
    fingerprint_key: String,
    #[serde(default)]
    api_keys: Vec<WrittenKey>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

impl SecretDoc {
    /// The key of idempotency fingerprints and of sealed endpoint secrets.
    pub fn fingerprint_key(&self) -> &str {
        self.reads.note(Part::Gateway);
        &self.fingerprint_key
    }

    /// The callers' API-key digests.
    pub fn api_keys(&self) -> &[ApiKeyEntry] {
        self.reads.note(Part::Gateway);
        &self.api_keys
    }

    fn note_provider(&self, name: &str) {
        if let Some(r) = crate::providers::registry::registration(name) {
            self.reads.note(Part::Provider(r.name));
        }
    }

    /// This document noting from now on which parts are read, in `reads` (`Reads::recorder`).
    pub fn recording(mut self, reads: &Reads) -> Self {
        self.reads = reads.clone();
        self
    }

    /// Only `parts` of the document (what one function is given); the others are left out, as
    /// if the secret did not have them.
    pub fn only(mut self, parts: &BTreeSet<Part>) -> Self {
        if !parts.contains(&Part::Gateway) {
            self.fingerprint_key = String::new();
            self.api_keys = Vec::new();
        }
        self.providers.retain(|name, _| {
            parts
                .iter()
                .any(|p| matches!(p, Part::Provider(n) if n == name))
        });
        self.parsed = ParsedParts::default();
        self
    }

    /// A provider's credentials as its adapter's struct; `None` when the document has none.
    pub fn provider<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.note_provider(name);
        self.providers
            .get(name)
            .filter(|v| !v.is_null())
            .map(|v| {
                serde_json::from_value(v.clone())
                    .map_err(|_| Error::Internal(format!("the {name} credentials are unreadable")))
            })
            .transpose()
    }

    /// As `provider`, parsed once per document (see `ParsedParts`): what every request uses.
    pub fn provider_shared<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        name: &str,
    ) -> Result<Option<Arc<T>>, Error> {
        self.note_provider(name);
        let Some(part) = self.providers.get(name).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let ty = TypeId::of::<T>();
        let mut cache = self.parsed.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = cache.iter().position(|p| p.ty == ty && p.name == name);
        if let Some(i) = slot
            && cache[i].part == *part
            && let Ok(parsed) = Arc::clone(&cache[i].value).downcast::<T>()
        {
            return Ok(Some(parsed));
        }
        let parsed: Arc<T> = Arc::new(
            serde_json::from_value(part.clone())
                .map_err(|_| Error::Internal(format!("the {name} credentials are unreadable")))?,
        );
        let entry = Parsed {
            name: name.to_owned(),
            ty,
            part: part.clone(),
            value: parsed.clone(),
        };
        match slot {
            Some(i) => cache[i] = entry,
            None => cache.push(entry),
        }
        Ok(Some(parsed))
    }

    /// The document with a provider's part (the local server, tests).
    pub fn with_provider(mut self, name: &str, part: Value) -> Self {
        self.providers.insert(name.to_owned(), part);
        self.parsed = ParsedParts::default();
        self
    }

    pub fn parse(json: &str) -> Result<Self, String> {
        let invalid = |e: serde_json::Error| {
            format!(
                "secret JSON is invalid at line {} column {} ({:?})",
                e.line(),
                e.column(),
                e.classify()
            )
        };
        let written: Written = serde_json::from_str(json).map_err(invalid)?;
        let api_keys = written
            .api_keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let scopes = match &k.scopes {
                    None => Scopes::implied(),
                    Some(names) => Scopes::parse(names)
                        .map_err(|e| format!("api_keys[{i}] (tenant {:?}): {e}", k.tenant))?,
                };
                Ok(ApiKeyEntry {
                    tenant: k.tenant,
                    sha256: k.sha256,
                    scopes,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let doc = SecretDoc {
            parsed: ParsedParts::default(),
            reads: Reads::default(),
            fingerprint_key: written.fingerprint_key,
            api_keys,
            providers: written
                .rest
                .into_iter()
                .filter(|(k, v)| {
                    crate::providers::registry::registration(k).is_some() && !v.is_null()
                })
                .collect(),
        };
        if doc.fingerprint_key.trim().len() < MIN_FINGERPRINT_KEY {
            return Err(format!(
                "fingerprint_key must be at least {MIN_FINGERPRINT_KEY} characters"
            ));
        }
        let mut digests = std::collections::HashSet::new();
        for (i, k) in doc.api_keys.iter().enumerate() {
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
            if !digests.insert(k.sha256.to_ascii_lowercase()) {
                return Err(format!(
                    "api_keys[{i}] (tenant {:?}) repeats the digest of an earlier entry",
                    k.tenant
                ));
            }
        }
        for (name, part) in &doc.providers {
            if let Some(r) = crate::providers::registry::registration(name) {
                (r.check_secret)(part)?;
            }
        }
        Ok(doc)
    }
}

/// A provider's own secret (the split layout): `{"<name>": {...}}` or `{"<name>": null}` (not
/// configured), nothing else: another provider's part or the gateway's keys there would be
/// readable by every function that reads this provider. The part is checked as in the document.
pub fn parse_provider_secret(name: &str, json: &str) -> Result<Option<Value>, String> {
    let invalid = |e: serde_json::Error| {
        format!(
            "the {name} secret: JSON is invalid at line {} column {} ({:?})",
            e.line(),
            e.column(),
            e.classify()
        )
    };
    let written: BTreeMap<String, Value> = serde_json::from_str(json).map_err(invalid)?;
    if let Some(other) = written.keys().find(|k| *k != name) {
        // A key name is not a credential; quoted only when it is one the gateway knows.
        let shown = if other == "fingerprint_key" || other == "api_keys" {
            other.as_str()
        } else {
            crate::providers::registry::registration(other).map_or("another key", |r| r.name)
        };
        return Err(format!(
            "the {name} secret holds {shown}: it may hold only {{\"{name}\": ...}}"
        ));
    }
    let part = written.get(name).filter(|v| !v.is_null()).cloned();
    if let (Some(p), Some(r)) = (&part, crate::providers::registry::registration(name)) {
        (r.check_secret)(p)?;
    }
    Ok(part)
}

/// A provider's part read as its struct when the document is checked: a shape error is reported
/// like any invalid JSON (position and category, never a value).
pub fn read_part<T: DeserializeOwned>(part: &Value) -> Result<T, String> {
    serde_json::from_value(part.clone()).map_err(|e| {
        format!(
            "secret JSON is invalid at line {} column {} ({:?})",
            e.line(),
            e.column(),
            e.classify()
        )
    })
}

pub fn is_tenant_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// A credential that must be there: not empty, not only whitespace.
pub const MIN_FINGERPRINT_KEY: usize = 32;

/// Where the parts of the document are kept in Secrets Manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// The gateway's secret (`IDV_SECRET_ID`): its keys, and the part of every provider that has
    /// no secret of its own (all of them in the single-secret layout).
    pub gateway: String,
    /// Providers' own secrets (`IDV_<PROVIDER>_SECRET_ID`), by provider name.
    pub providers: BTreeMap<&'static str, String>,
}

impl Locations {
    /// One secret holding every part (the single-secret layout).
    pub fn single(secret_id: impl Into<String>) -> Self {
        Locations {
            gateway: secret_id.into(),
            providers: BTreeMap::new(),
        }
    }

    /// The secret `part` is kept in.
    pub fn of(&self, part: Part) -> &str {
        match part {
            Part::Provider(name) => self.providers.get(name).unwrap_or(&self.gateway),
            Part::Gateway => &self.gateway,
        }
    }
}

pub enum SecretSource {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        locations: Locations,
        /// The parts to read (a function's `secret_parts`); `None`: every part.
        parts: Option<BTreeSet<Part>>,
    },
    File(PathBuf),
    Static(Arc<SecretDoc>),
}

/// One secret's text.
async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| format!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| "secret has no SecretString".to_owned())
}

/// The document of `parts` from the secrets that hold them, each secret read once, all at once.
/// The gateway's secret is read only when a part is kept there; it is checked whole, as the one
/// secret always was. A provider with a secret of its own is read from there only (a copy of its
/// part left in the gateway's secret after a migration is ignored, and said so).
async fn fetch_parts(
    client: &aws_sdk_secretsmanager::Client,
    locations: &Locations,
    parts: &BTreeSet<Part>,
) -> Result<SecretDoc, String> {
    let read_gateway = parts.iter().any(|p| locations.of(*p) == locations.gateway);
    let mut reads = tokio::task::JoinSet::new();
    for part in parts {
        if let Part::Provider(name) = *part
            && let Some(id) = locations.providers.get(name)
        {
            let (client, id) = (client.clone(), id.clone());
            reads.spawn(async move { (Some(name), secret_string(&client, &id).await) });
        }
    }
    if read_gateway {
        let (client, id) = (client.clone(), locations.gateway.clone());
        reads.spawn(async move { (None, secret_string(&client, &id).await) });
    }
    let mut doc = SecretDoc::default();
    let mut own = Vec::new();
    while let Some(done) = reads.join_next().await {
        let (provider, text) = done.map_err(|e| format!("reading a secret stopped: {e}"))?;
        match provider {
            None => doc = SecretDoc::parse(&text?)?,
            Some(name) => {
                let text = text.map_err(|e| format!("the {name} secret: {e}"))?;
                own.push((name, parse_provider_secret(name, &text)?));
            }
        }
    }
    let copies: Vec<&str> = locations
        .providers
        .keys()
        .copied()
        .filter(|n| doc.providers.contains_key(*n))
        .collect();
    if !copies.is_empty() {
        tracing::warn!(
            providers = ?copies,
            "the gateway secret still holds parts of providers that have secrets of their own: those are used; remove the copies"
        );
    }
    doc.providers
        .retain(|name, _| !locations.providers.contains_key(name.as_str()));
    for (name, part) in own {
        if let Some(part) = part {
            doc.providers.insert(name.to_owned(), part);
        }
    }
    Ok(doc.only(parts))
}

impl SecretSource {
    /// One secret holding every part (the single-secret layout), read whole.
    pub fn secrets_manager(client: aws_sdk_secretsmanager::Client, secret_id: &str) -> Self {
        SecretSource::SecretsManager {
            client,
            locations: Locations::single(secret_id),
            parts: None,
        }
    }

    async fn fetch(&self) -> Result<SecretDoc, String> {
        match self {
            SecretSource::SecretsManager {
                client,
                locations,
                parts,
            } => match parts {
                Some(parts) => fetch_parts(client, locations, parts).await,
                None => fetch_parts(client, locations, &Part::all()).await,
            },
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
    fn a_providers_part_is_parsed_once_and_again_when_it_changes() {
        let part = |secret: &str| serde_json::json!({"api_key": "k", "api_secret": "s", "jwt_secret": "j", "webhook_secret": secret});
        let doc = SecretDoc::default().with_provider("authento", part("w1"));
        let a = doc
            .provider_shared::<crate::providers::authento::Secrets>("authento")
            .unwrap()
            .unwrap();
        let b = doc
            .provider_shared::<crate::providers::authento::Secrets>("authento")
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second read is the first parse");
        assert_eq!(
            *a,
            doc.provider::<crate::providers::authento::Secrets>("authento")
                .unwrap()
                .unwrap()
        );
        let mut changed = doc.clone();
        changed.providers.insert("authento".into(), part("w2"));
        let c = changed
            .provider_shared::<crate::providers::authento::Secrets>("authento")
            .unwrap()
            .unwrap();
        assert_eq!(c.webhook_secret.expose(), "w2");
        // A part changed in place is parsed again, not answered from the cache.
        let mut same = doc;
        same.providers.insert("authento".into(), part("w3"));
        let d = same
            .provider_shared::<crate::providers::authento::Secrets>("authento")
            .unwrap()
            .unwrap();
        assert_eq!(d.webhook_secret.expose(), "w3");
        assert!(
            same.provider_shared::<crate::providers::authento::Secrets>("nevis")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn every_provider_names_its_own_secret_setting() {
        for r in crate::providers::ALL {
            assert_eq!(
                r.secret_id_env,
                format!("IDV_{}_SECRET_ID", r.name.to_ascii_uppercase())
            );
        }
    }

    /// What each function reads, spelled out (derived in `Function::secret_parts`).
    #[test]
    fn each_function_reads_the_parts_it_serves() {
        use crate::http::Function;
        let providers: Vec<Part> = crate::providers::ALL
            .iter()
            .map(|r| Part::Provider(r.name))
            .collect();
        let with_gateway = |more: &[Part]| -> BTreeSet<Part> {
            std::iter::once(Part::Gateway)
                .chain(more.iter().copied())
                .collect()
        };
        let want: BTreeMap<&str, BTreeSet<Part>> = BTreeMap::from([
            ("issue-token", with_gateway(&[Part::Provider("authento")])),
            ("start-session", with_gateway(&providers)),
            ("get-session", with_gateway(&providers)),
            ("events-api", with_gateway(&[])),
            ("notify", with_gateway(&[])),
            ("reconcile", providers.iter().copied().collect()),
            (
                "webhook-authento",
                BTreeSet::from([Part::Provider("authento")]),
            ),
            ("webhook-prove", BTreeSet::from([Part::Provider("prove")])),
            (
                "webhook-passbase",
                BTreeSet::from([Part::Provider("passbase")]),
            ),
            ("webhook-stripe", BTreeSet::from([Part::Provider("stripe")])),
        ]);
        let got: BTreeMap<&str, BTreeSet<Part>> = Function::all()
            .into_iter()
            .map(|f| (f.binary(), f.secret_parts()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_document_cut_to_some_parts_has_only_those_and_notes_what_is_read() {
        let doc = SecretDoc::parse(r#"{"fingerprint_key":"0123456789abcdef0123456789abcdef","api_keys":[],"authento":{"api_key":"k","api_secret":"s","jwt_secret":"j","webhook_secret":"w"},"nevis":{"access_key":"a"}}"#).unwrap();
        let reads = Reads::recorder();
        let cut = doc
            .clone()
            .only(&BTreeSet::from([Part::Provider("nevis")]))
            .recording(&reads);
        assert!(cut.fingerprint_key.is_empty() && cut.api_keys.is_empty());
        assert_eq!(cut.providers.keys().collect::<Vec<_>>(), ["nevis"]);
        assert!(
            cut.provider::<crate::providers::authento::Secrets>("authento")
                .unwrap()
                .is_none()
        );
        let _ = cut.fingerprint_key();
        assert_eq!(
            reads.take(),
            BTreeSet::from([Part::Gateway, Part::Provider("authento")]),
            "a read of a part it does not have is noted too"
        );
        assert!(reads.take().is_empty(), "taken");
        let _ = doc.api_keys();
        assert!(
            reads.take().is_empty(),
            "a document not recording notes nothing"
        );
    }

    #[test]
    fn a_providers_own_secret_holds_its_part_or_null_and_nothing_else() {
        let part = r#"{"access_key":"a"}"#;
        assert_eq!(
            parse_provider_secret("nevis", &format!(r#"{{"nevis":{part}}}"#)).unwrap(),
            Some(serde_json::from_str(part).unwrap())
        );
        assert_eq!(
            parse_provider_secret("nevis", r#"{"nevis":null}"#).unwrap(),
            None
        );
        assert_eq!(parse_provider_secret("nevis", "{}").unwrap(), None);
        for (doc, says) in [
            (
                r#"{"nevis":{"access_key":"a"},"api_keys":[]}"#,
                "holds api_keys",
            ),
            (
                r#"{"nevis":{"access_key":"a"},"prove":null}"#,
                "holds prove",
            ),
            (
                r#"{"nevis":{"access_key":"a"},"zzz-secret-value":1}"#,
                "holds another key",
            ),
            (r#"{"nevis":{"access_key":"  "}}"#, "nevis.access_key"),
            (
                r#"{"nevis":"zzz-secret-value""#,
                "the nevis secret: JSON is invalid",
            ),
        ] {
            let e = parse_provider_secret("nevis", doc).expect_err(doc);
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("zzz-secret-value"), "{e}");
        }
    }

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
        assert!(
            SecretDoc::parse(ok)
                .unwrap()
                .providers
                .contains_key("passbase")
        );
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
        let authento = doc
            .provider::<crate::providers::authento::Secrets>("authento")
            .unwrap()
            .unwrap();
        let secrets: Vec<&str> = authento.webhook_secrets().collect();
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
