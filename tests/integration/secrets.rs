//! The gateway secret from Secrets Manager (moto on loopback, started by scripts/test): read once
//! per TTL, a rotation reaches the gateway after the TTL, a failed refresh keeps the last good value
//! up to its maximum staleness and is not repeated before its backoff, a hung endpoint is a 503.
//! Split into a secret per provider, each function reads only the secrets of its parts, a copy of
//! a provider's part left in the gateway's secret is ignored, and a provider's secret holding
//! anything but its part is refused; the single secret keeps serving every function.

use idv::http::Function;
use idv::secrets::{Locations, Part, SecretSource, SecretsCache};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn client() -> aws_sdk_secretsmanager::Client {
    let endpoint = std::env::var("IDV_TEST_SECRETSMANAGER_ENDPOINT")
        .expect("IDV_TEST_SECRETSMANAGER_ENDPOINT is not set: run the tests with scripts/test (it starts moto)");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&conf)
}

fn doc(webhook_secret: &str) -> String {
    serde_json::json!({
        "fingerprint_key": "f".repeat(32),
        "api_keys": [{"tenant": "app-a", "sha256": idv::http::auth::digest("key-a")}],
        "authento": {"api_key": "k", "api_secret": "s", "jwt_secret": "j", "webhook_secret": webhook_secret}
    })
    .to_string()
}

#[tokio::test]
async fn the_secret_is_read_once_per_ttl_and_a_rotation_arrives_after_it() {
    let sm = client().await;
    let name = format!("idv-test-{}", idv::ids::random_token());
    sm.create_secret()
        .name(&name)
        .secret_string(doc("first"))
        .send()
        .await
        .unwrap();
    let cache = SecretsCache::new(
        SecretSource::secrets_manager(sm.clone(), &name),
        Duration::from_millis(300),
    );
    let a = cache.get().await.unwrap();
    assert_eq!(authento_of(&a).webhook_secret, "first");
    assert_eq!(
        idv::http::auth::authenticate(&a, Some("Bearer key-a"))
            .unwrap()
            .tenant,
        "app-a"
    );

    sm.put_secret_value()
        .secret_id(&name)
        .secret_string(doc("second"))
        .send()
        .await
        .unwrap();
    let cached = cache.get().await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &cached),
        "within the TTL the cached value is served"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        authento_of(&cache.get().await.unwrap()).webhook_secret,
        "second"
    );

    // Secrets Manager failing (here: the secret is gone) keeps the last good value in service.
    sm.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        authento_of(&cache.get().await.unwrap()).webhook_secret,
        "second"
    );
}

#[tokio::test]
async fn a_missing_secret_at_start_is_a_retryable_503_not_a_crash() {
    let cache = SecretsCache::new(
        SecretSource::secrets_manager(client().await, "idv-does-not-exist"),
        Duration::from_secs(60),
    );
    let err = cache.get().await.unwrap_err();
    let resp = idv::http::problem::response(&err);
    assert_eq!(resp.status, 503);
    assert!(resp.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_malformed_secret_is_refused_without_echoing_it() {
    let sm = client().await;
    let name = format!("idv-test-{}", idv::ids::random_token());
    sm.create_secret()
        .name(&name)
        .secret_string(r#"{"fingerprint_key":"ffffffffffffffffffffffffffffffff","api_keys":[{"tenant":"a","sha256":"short-secret-value"}]}"#)
        .send()
        .await
        .unwrap();
    let cache = SecretsCache::new(
        SecretSource::secrets_manager(sm, &name),
        Duration::from_secs(60),
    );
    let err = cache.get().await.unwrap_err();
    assert!(!format!("{err}").contains("short-secret-value"));
}

/// Counts the `GetSecretValue` requests a client sends (an SDK interceptor: retries included).
#[derive(Debug, Clone, Default)]
struct Reads(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Reads {
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_secretsmanager::config::Intercept for Reads {
    fn name(&self) -> &'static str {
        "Reads"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned());
        if operation.as_deref() == Some("GetSecretValue") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

async fn counted_client() -> (aws_sdk_secretsmanager::Client, Reads) {
    let reads = Reads::default();
    let conf = client()
        .await
        .config()
        .to_builder()
        .interceptor(reads.clone())
        .build();
    (aws_sdk_secretsmanager::Client::from_conf(conf), reads)
}

async fn created(sm: &aws_sdk_secretsmanager::Client, webhook_secret: &str) -> String {
    let name = format!("idv-test-{}", idv::ids::random_token());
    sm.create_secret()
        .name(&name)
        .secret_string(doc(webhook_secret))
        .send()
        .await
        .unwrap();
    name
}

async fn delete(sm: &aws_sdk_secretsmanager::Client, name: &str) {
    sm.delete_secret()
        .secret_id(name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn during_an_outage_secrets_manager_is_asked_at_most_once_per_backoff() {
    let (sm, reads) = counted_client().await;
    let name = created(&sm, "first").await;
    // A TTL of zero: every read would refresh, were it not for the backoff after a failure.
    let cache = SecretsCache::new(
        SecretSource::secrets_manager(sm.clone(), &name),
        Duration::ZERO,
    );
    cache.get().await.unwrap();
    assert_eq!(reads.get(), 1);
    delete(&sm, &name).await;
    for _ in 0..5 {
        let doc = cache
            .get()
            .await
            .expect("the last good value, still fresh enough");
        assert_eq!(authento_of(&doc).webhook_secret, "first");
    }
    assert_eq!(
        reads.get(),
        2,
        "one failed refresh, then none until the backoff has passed"
    );
}

/// A TCP listener that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_hung_secrets_manager_is_a_503_not_a_hang() {
    let conf = client()
        .await
        .config()
        .to_builder()
        .endpoint_url(black_hole().await)
        .build();
    let cache = SecretsCache::new(
        SecretSource::secrets_manager(aws_sdk_secretsmanager::Client::from_conf(conf), "idv-hung"),
        Duration::from_secs(60),
    );
    // Not a timing assertion: a guard against hanging the suite (the fetch gives up far earlier).
    let got = tokio::time::timeout(Duration::from_secs(20), cache.get())
        .await
        .expect("the secret read gives up on its own");
    let resp = idv::http::problem::response(&got.unwrap_err());
    assert_eq!(resp.status, 503);
}

#[tokio::test]
async fn past_its_maximum_staleness_the_secret_is_a_503_not_old_credentials() {
    use idv::clock::ManualClock;
    let (sm, reads) = counted_client().await;
    let name = created(&sm, "first").await;
    let settings = [
        ("IDV_STORE", "memory"),
        ("IDV_SECRETS_FILE", "(unused)"),
        ("IDV_SECRETS_TTL_SECONDS", "60"),
        ("IDV_SECRETS_RETRY_SECONDS", "10"),
        ("IDV_SECRETS_MAX_STALE_SECONDS", "300"),
    ];
    let config = idv::config::Config::from_lookup(|k| {
        settings
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    // The app as a function builds it: its settings and its clock decide the cache's rules.
    let app = idv::App::new(
        config,
        Arc::new(idv::store::MemoryStore::new()),
        SecretSource::secrets_manager(sm.clone(), &name),
        Arc::new(clock.clone()),
    );
    let tick = |s: i64| clock.advance(time::Duration::seconds(s));
    app.secrets.get().await.unwrap();
    assert_eq!(reads.get(), 1);

    delete(&sm, &name).await;
    tick(61);
    assert!(app.secrets.get().await.is_ok(), "stale, but within 300 s");
    assert_eq!(reads.get(), 2, "the TTL passed: one refresh, failed");
    assert!(app.secrets.get().await.is_ok());
    assert_eq!(reads.get(), 2, "no second read within the backoff");
    tick(11);
    assert!(app.secrets.get().await.is_ok());
    assert_eq!(reads.get(), 3, "one read per backoff interval");

    tick(300 - 72 + 1);
    let err = app
        .secrets
        .get()
        .await
        .expect_err("older than 300 s: not served");
    let resp = idv::http::problem::response(&err);
    assert_eq!(resp.status, 503);
    assert!(resp.headers.contains_key("retry-after"));
    assert_eq!(reads.get(), 4);

    // Secrets Manager back: the next read after the backoff serves the current secret.
    sm.create_secret()
        .name(&name)
        .secret_string(doc("second"))
        .send()
        .await
        .unwrap();
    assert!(app.secrets.get().await.is_err(), "still backing off");
    tick(10);
    let doc = app.secrets.get().await.unwrap();
    assert_eq!(authento_of(&doc).webhook_secret, "second");
}

/// The Authento credentials of a secret document.
fn authento_of(doc: &idv::secrets::SecretDoc) -> idv::providers::authento::Secrets {
    doc.provider("authento")
        .unwrap()
        .expect("authento credentials")
}

/// The `SecretId` of every `GetSecretValue` a client sends.
#[derive(Debug, Clone, Default)]
struct Asked(Arc<Mutex<Vec<String>>>);

impl Asked {
    fn take(&self) -> Vec<String> {
        let mut ids = std::mem::take(&mut *self.0.lock().unwrap());
        ids.sort();
        ids
    }
}

impl aws_sdk_secretsmanager::config::Intercept for Asked {
    fn name(&self) -> &'static str {
        "Asked"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned());
        if operation.as_deref() == Some("GetSecretValue") {
            let body: serde_json::Value = context
                .request()
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let id = body["SecretId"].as_str().unwrap_or("?").to_owned();
            self.0.lock().unwrap().push(id);
        }
        Ok(())
    }
}

/// Each provider's credentials, as its own secret holds them (`{"<name>": {...}}`).
fn provider_parts(webhook_secret: &str) -> BTreeMap<&'static str, serde_json::Value> {
    use serde_json::json;
    BTreeMap::from([
        (
            "authento",
            json!({"api_key": "k", "api_secret": "s", "jwt_secret": "j", "webhook_secret": webhook_secret}),
        ),
        (
            "prove",
            json!({"client_id": "c", "client_secret": "s", "webhook_secret": webhook_secret}),
        ),
        ("nevis", json!({"access_key": "a"})),
        (
            "passbase",
            json!({"api_key": "k", "webhook_secret": "0123456789abcdef0123456789abcdef"}),
        ),
        (
            "stripe",
            json!({"api_key": "sk_test_x", "webhook_secret": webhook_secret}),
        ),
    ])
}

/// The split layout in moto: the gateway's secret (with a copy of Prove's part left behind, as
/// after a migration) and one secret per provider. Returns their names as the settings give them.
async fn split(sm: &aws_sdk_secretsmanager::Client) -> (String, BTreeMap<&'static str, String>) {
    let gateway = format!("idv-test-{}", idv::ids::random_token());
    let mut leftover = serde_json::from_str::<serde_json::Value>(&doc("unused")).unwrap();
    leftover["authento"] = serde_json::Value::Null;
    leftover["prove"] = provider_parts("a-leftover-copy")["prove"].clone();
    sm.create_secret()
        .name(&gateway)
        .secret_string(leftover.to_string())
        .send()
        .await
        .unwrap();
    let mut own = BTreeMap::new();
    for (name, part) in provider_parts("own") {
        let id = format!("idv-test-{name}-{}", idv::ids::random_token());
        sm.create_secret()
            .name(&id)
            .secret_string(serde_json::json!({ name: part }).to_string())
            .send()
            .await
            .unwrap();
        own.insert(name, id);
    }
    (gateway, own)
}

#[tokio::test]
async fn split_each_function_reads_only_the_secrets_of_the_parts_it_uses() {
    let asked = Asked::default();
    let conf = client()
        .await
        .config()
        .to_builder()
        .interceptor(asked.clone())
        .build();
    let sm = aws_sdk_secretsmanager::Client::from_conf(conf);
    let (gateway, own) = split(&sm).await;
    // The locations as a function's settings give them (template.yaml's Globals).
    let mut settings = vec![
        ("IDV_STORE".to_owned(), "memory".to_owned()),
        ("IDV_SECRET_ID".to_owned(), gateway.clone()),
    ];
    for r in idv::providers::ALL {
        settings.push((r.secret_id_env.to_owned(), own[r.name].clone()));
    }
    let config = idv::config::Config::from_lookup(|k| {
        settings
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let idv::config::SecretsLocation::SecretsManager(locations) = config.secrets else {
        panic!("{:?}", config.secrets)
    };
    asked.take();
    let mut seen = BTreeMap::new();
    for function in Function::all() {
        let parts = function.secret_parts();
        let cache = SecretsCache::new(
            SecretSource::SecretsManager {
                client: sm.clone(),
                locations: locations.clone(),
                parts: Some(parts.clone()),
            },
            Duration::from_secs(60),
        );
        let doc = cache.get().await.unwrap();
        let ids = asked.take();
        let want: BTreeSet<String> = parts.iter().map(|p| locations.of(*p).to_owned()).collect();
        assert_eq!(
            ids,
            want.iter().cloned().collect::<Vec<_>>(),
            "{}: each secret of its parts read once, no other",
            function.binary()
        );
        // What it was given: exactly its parts.
        assert_eq!(
            doc.fingerprint_key.is_empty(),
            !parts.contains(&Part::Gateway),
            "{}",
            function.binary()
        );
        let providers: BTreeSet<&str> = doc.providers.keys().map(String::as_str).collect();
        let want_providers: BTreeSet<&str> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Provider(n) => Some(*n),
                Part::Gateway => None,
            })
            .collect();
        assert_eq!(providers, want_providers, "{}", function.binary());
        // A provider's own secret wins over a copy left in the gateway's.
        if let Some(prove) = doc
            .provider::<idv::providers::prove::Secrets>("prove")
            .unwrap()
        {
            assert_eq!(prove.webhook_secret.unwrap().expose(), "own");
        }
        seen.insert(function.binary(), ids);
    }
    // What the template's policies grant, spelled out for a few.
    let only = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<Vec<_>>();
    assert_eq!(seen["webhook-prove"], only(&[&own["prove"]]));
    assert_eq!(seen["webhook-stripe"], only(&[&own["stripe"]]));
    assert_eq!(seen["notify"], only(&[&gateway]));
    assert_eq!(seen["events-api"], only(&[&gateway]));
    let mut issue = only(&[&gateway, &own["authento"]]);
    issue.sort();
    assert_eq!(seen["issue-token"], issue);
    let mut providers: Vec<String> = own.values().cloned().collect();
    providers.sort();
    assert_eq!(
        seen["reconcile"], providers,
        "reconcile: every provider, no API key"
    );
    for id in own.values().chain([&gateway]) {
        delete(&sm, id).await;
    }
}

#[tokio::test]
async fn the_single_secret_still_serves_every_function() {
    let (sm, reads) = counted_client().await;
    let name = created(&sm, "first").await;
    let config = idv::config::Config::from_lookup(|k| match k {
        "IDV_STORE" => Some("memory".into()),
        "IDV_SECRET_ID" => Some(name.clone()),
        _ => None,
    })
    .unwrap();
    let idv::config::SecretsLocation::SecretsManager(locations) = config.secrets else {
        panic!("{:?}", config.secrets)
    };
    assert_eq!(locations, Locations::single(&name));
    for function in Function::all() {
        let parts = function.secret_parts();
        let before = reads.get();
        let cache = SecretsCache::new(
            SecretSource::SecretsManager {
                client: sm.clone(),
                locations: locations.clone(),
                parts: Some(parts.clone()),
            },
            Duration::from_secs(60),
        );
        let doc = cache.get().await.unwrap();
        assert_eq!(reads.get(), before + 1, "one read of the one secret");
        if parts.contains(&Part::Gateway) {
            assert_eq!(
                idv::http::auth::authenticate(&doc, Some("Bearer key-a"))
                    .unwrap()
                    .tenant,
                "app-a"
            );
        }
        if parts.contains(&Part::Provider("authento")) {
            assert_eq!(authento_of(&doc).webhook_secret, "first");
        } else {
            assert!(doc.providers.is_empty(), "{}", function.binary());
        }
    }
    delete(&sm, &name).await;
}

#[tokio::test]
async fn a_provider_secret_holding_anything_but_its_part_is_refused_without_quoting_it() {
    let sm = client().await;
    let (gateway, mut own) = split(&sm).await;
    let prove = provider_parts("own")["prove"].clone();
    let stripe = provider_parts("own")["stripe"].clone();
    for (holds, says) in [
        (
            serde_json::json!({"prove": prove, "fingerprint_key": "f".repeat(32)}),
            "holds fingerprint_key",
        ),
        (
            serde_json::json!({"prove": prove, "stripe": stripe}),
            "holds stripe",
        ),
        (
            serde_json::json!({"prove": prove, "sk_live_pasted_by_mistake": 1}),
            "holds another key",
        ),
        (
            serde_json::json!({"prove": {"client_id": "c", "client_secret": "  "}}),
            "prove.client_secret",
        ),
    ] {
        sm.put_secret_value()
            .secret_id(&own["prove"])
            .secret_string(holds.to_string())
            .send()
            .await
            .unwrap();
        let cache = SecretsCache::new(
            SecretSource::SecretsManager {
                client: sm.clone(),
                locations: Locations {
                    gateway: gateway.clone(),
                    providers: own.clone(),
                },
                parts: Some(Function::named("webhook-prove").unwrap().secret_parts()),
            },
            Duration::from_secs(60),
        );
        let err = cache.get().await.expect_err(says);
        assert_eq!(idv::http::problem::response(&err).status, 503);
        // The reason is logged, not answered; here it is read directly.
        let text = idv::secrets::parse_provider_secret("prove", &holds.to_string()).unwrap_err();
        assert!(text.contains(says), "{text}");
        for value in ["sk_live_pasted_by_mistake", "sk_test_x", &"f".repeat(32)] {
            assert!(!text.contains(value), "{text}");
        }
    }
    // Not configured: `null`, as the stack creates it.
    sm.put_secret_value()
        .secret_id(&own["prove"])
        .secret_string(r#"{"prove":null}"#)
        .send()
        .await
        .unwrap();
    let cache = SecretsCache::new(
        SecretSource::SecretsManager {
            client: sm.clone(),
            locations: Locations {
                gateway: gateway.clone(),
                providers: own.clone(),
            },
            parts: Some(Function::named("webhook-prove").unwrap().secret_parts()),
        },
        Duration::from_secs(60),
    );
    let doc = cache.get().await.unwrap();
    assert!(
        doc.provider::<idv::providers::prove::Secrets>("prove")
            .unwrap()
            .is_none(),
        "the placeholder is no credentials, not the copy in the gateway's secret"
    );
    own.insert("gateway", gateway);
    for id in own.values() {
        delete(&sm, id).await;
    }
}
