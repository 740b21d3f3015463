//! The gateway secret from Secrets Manager (moto on loopback, started by scripts/test): read once
//! per TTL, a rotation reaches the gateway after the TTL, a failed refresh keeps the last good value
//! up to its maximum staleness and is not repeated before its backoff, a hung endpoint is a 503.

use idv::secrets::{SecretSource, SecretsCache};
use std::sync::Arc;
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
        SecretSource::SecretsManager {
            client: sm.clone(),
            secret_id: name.clone(),
        },
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
        SecretSource::SecretsManager {
            client: client().await,
            secret_id: "idv-does-not-exist".into(),
        },
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
        SecretSource::SecretsManager {
            client: sm,
            secret_id: name,
        },
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
        SecretSource::SecretsManager {
            client: sm.clone(),
            secret_id: name.clone(),
        },
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
        SecretSource::SecretsManager {
            client: aws_sdk_secretsmanager::Client::from_conf(conf),
            secret_id: "idv-hung".into(),
        },
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
        SecretSource::SecretsManager {
            client: sm.clone(),
            secret_id: name.clone(),
        },
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
