//! The gateway secret from Secrets Manager (moto on loopback, started by scripts/test): read once
//! per TTL, a rotation reaches the gateway after the TTL, a failed refresh keeps the last good value.

use idv::secrets::{SecretSource, SecretsCache};
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
    assert_eq!(a.authento.as_ref().unwrap().webhook_secret, "first");
    assert_eq!(
        idv::http::auth::authenticate(&a, Some("Bearer key-a")).unwrap(),
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
        cache
            .get()
            .await
            .unwrap()
            .authento
            .as_ref()
            .unwrap()
            .webhook_secret,
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
        cache
            .get()
            .await
            .unwrap()
            .authento
            .as_ref()
            .unwrap()
            .webhook_secret,
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
