//! Time limits: a request still running near its function's deadline is answered 503
//! problem+json with `Retry-After` before it (API Gateway's own 503 is neither), and the
//! configured budgets add up below every function's `Timeout` in template.yaml.

use idv::config::Config;
use idv::deadline::{function_timeout, provider_operations, worst_case};
use idv::http::Function;
use idv_local::{Options, StoreChoice};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TCP proxy to DynamoDB Local that can be made to hang: from then on it forwards nothing,
/// on open connections and new ones alike (a DynamoDB that stopped answering).
async fn hangable_proxy(target: &str) -> (String, Arc<AtomicBool>) {
    let target = target.trim_start_matches("http://").to_owned();
    let hang = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = hang.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(&target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            tokio::spawn(pipe(cr, uw, h.clone()));
            tokio::spawn(pipe(ur, cw, h.clone()));
        }
    });
    (format!("http://{addr}"), hang)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hang: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if hang.load(Ordering::SeqCst) {
            // Hold the bytes and the connection: nothing more goes through.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_request_still_running_at_its_deadline_is_answered_503_before_it() {
    let (endpoint, hang) = hangable_proxy(&idv_tests::dynamodb_endpoint()).await;
    let key = format!("idv_sk_test_{}", idv::ids::random_token());
    let running = idv_local::start(Options {
        store: StoreChoice::DynamoDb {
            endpoint,
            table: idv_tests::unique_table("idv-deadline"),
        },
        api_keys: vec![("app-a".into(), key.clone())],
        settings: [("IDV_REQUEST_TIMEOUT_MS".to_owned(), "2000".to_owned())].into(),
        ..Options::default()
    })
    .await
    .expect("local server starts");
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/v1/tokens", running.base_url))
        .bearer_auth(&key)
        .json(&serde_json::json!({"user_id": "user-hang", "verification_type": "BASIC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    let id = body["session"]["id"].as_str().unwrap().to_owned();

    hang.store(true, Ordering::SeqCst);
    let get = http
        .get(format!(
            "{}/v1/sessions/{id}?refresh=false",
            running.base_url
        ))
        .bearer_auth(&key)
        .send();
    // Not a timing assertion: a guard that turns a hang into a failure instead of a stuck suite.
    let resp = tokio::time::timeout(Duration::from_secs(30), get)
        .await
        .expect("answered, not left hanging")
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(resp.headers().contains_key("retry-after"));
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "store_unavailable", "{problem}");
    hang.store(false, Ordering::SeqCst);
    running.stop().await;
}

/// A `!Ref` to a parameter reads as its default; other tags (`!If`, `!GetAtt`, resources) as a
/// placeholder: the settings under test are plain values or parameter defaults.
fn resolve(v: &serde_norway::Value, params: &serde_norway::Mapping) -> Option<String> {
    use serde_norway::Value as Y;
    match v {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        Y::Bool(b) => Some(b.to_string()),
        Y::Tagged(t) if t.tag == "!Ref" => {
            let name = t.value.as_str()?;
            match params.get(name) {
                Some(p) => p.get("Default").and_then(|d| resolve(d, params)),
                None => Some(format!("placeholder-{name}")),
            }
        }
        Y::Tagged(_) => Some("placeholder".into()),
        _ => None,
    }
}

/// The function a template resource builds, as the registry names it (every function of
/// `functions/` is one).
fn binary_function(binary: &str) -> Function {
    Function::named(binary)
        .unwrap_or_else(|| panic!("template.yaml builds {binary}, which no Function names"))
}

#[test]
fn every_functions_worst_case_stays_below_its_template_timeout() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("template.yaml");
    let t: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let params = t["Parameters"].as_mapping().expect("Parameters").clone();
    let globals = &t["Globals"]["Function"];
    let global_timeout = globals["Timeout"].as_u64().expect("a global Timeout");
    let mut seen = BTreeMap::new();
    for (_, r) in t["Resources"].as_mapping().expect("Resources") {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = binary_function(
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("Binary"),
        );
        let timeout = Duration::from_secs(
            r["Properties"]["Timeout"]
                .as_u64()
                .unwrap_or(global_timeout),
        );
        // The function's environment as deployed: the globals, then its own.
        let mut env = BTreeMap::new();
        for vars in [
            &globals["Environment"]["Variables"],
            &r["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(m) = vars.as_mapping() {
                for (k, v) in m {
                    if let (Some(k), Some(v)) = (k.as_str(), resolve(v, &params)) {
                        env.insert(k.to_owned(), v);
                    }
                }
            }
        }
        let config = Config::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{}: template settings refused: {e}", function.binary()));
        let worst = worst_case(&config, function);
        assert!(
            worst < timeout,
            "{}: worst case {worst:?} (secret {:?} + {} x provider {:?} + reserves) is not below its Timeout {timeout:?}",
            function.binary(),
            config.secrets_policy.fetch_timeout,
            provider_operations(function),
            config.provider_budget,
        );
        assert_eq!(
            function_timeout(function),
            timeout,
            "{}: the local server's deadline is the template's Timeout",
            function.binary()
        );
        println!(
            "{}: worst case {worst:?} < Timeout {timeout:?}",
            function.binary()
        );
        seen.insert(function.binary(), worst);
    }
    assert_eq!(
        seen.len(),
        Function::all().len(),
        "every function is checked: {seen:?}"
    );
}
