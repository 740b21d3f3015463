//! Test harness: the gateway's local server on loopback, backed by DynamoDB Local (started by
//! `scripts/test`, found through `IDV_TEST_DYNAMODB_ENDPOINT`) or the in-memory store, with the
//! provider simulators mounted. Tests talk HTTP to it and look at the table directly.

use aws_sdk_dynamodb::types::AttributeValue;
use idv_local::{Options, Running, StoreChoice};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub use idv_local;

pub const TENANT: &str = "app-a";
pub const OTHER_TENANT: &str = "app-b";

/// DynamoDB Local's endpoint. Integration tests need it: run them through `scripts/test`.
pub fn dynamodb_endpoint() -> String {
    std::env::var("IDV_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("IDV_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test (it starts DynamoDB Local)")
    })
}

pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    idv_local::dynamodb_client(&dynamodb_endpoint()).await
}

/// A table no other test uses.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}-{}", idv::ids::random_token())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Dynamo,
}

pub struct Gateway {
    pub running: Running,
    pub http: reqwest::Client,
    pub key: String,
    pub other_key: String,
    pub base: String,
    pub table: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Gateway {
    pub async fn start(backend: Backend) -> Gateway {
        Self::start_with(backend, &[]).await
    }

    /// `settings` as the functions read them (`IDV_REFRESH_AFTER_SECONDS`, ...).
    pub async fn start_with(backend: Backend, settings: &[(&str, &str)]) -> Gateway {
        let table = (backend == Backend::Dynamo).then(|| unique_table("idv-test"));
        let key = format!("idv_sk_test_{}", idv::ids::random_token());
        let other_key = format!("idv_sk_test_{}", idv::ids::random_token());
        let opts = Options {
            port: 0,
            store: match &table {
                Some(t) => StoreChoice::DynamoDb {
                    endpoint: dynamodb_endpoint(),
                    table: t.clone(),
                },
                None => StoreChoice::Memory,
            },
            api_keys: vec![
                (TENANT.into(), key.clone()),
                (OTHER_TENANT.into(), other_key.clone()),
            ],
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            // The gateway's own pacing is under test, not the simulator's patience.
            authento_rate_limit: 1000,
            authento: None,
            passbase: None,
            secrets_file: None,
        };
        let running = idv_local::start(opts).await.expect("local server starts");
        Gateway {
            base: running.base_url.clone(),
            running,
            http: reqwest::Client::new(),
            key,
            other_key,
            table,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request reaches the local server");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POST a JSON body with the tenant's API key.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.key)
                .json(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(&self.key))
            .await
    }

    pub async fn issue_token(&self, user_id: &str, vt: &str) -> Reply {
        self.post(
            "/v1/tokens",
            &serde_json::json!({"user_id": user_id, "verification_type": vt}),
        )
        .await
    }

    /// The session's stored status, without a provider refresh.
    pub async fn stored_status(&self, id: &str) -> Value {
        self.get(&format!("/v1/sessions/{id}?refresh=false"))
            .await
            .body["status"]
            .clone()
    }

    /// Makes the Authento simulator's next user-info reads fail or lag (`/control/faults`).
    pub async fn authento_faults(&self, faults: Value) {
        let r = self
            .send(
                self.http
                    .post(self.url("/sandbox/authento/control/faults"))
                    .json(&faults),
            )
            .await;
        assert_eq!(r.status, 200, "simulator faults: {:?}", r.body);
    }

    /// Drives the Authento simulator like a tester would (its webhook goes to the gateway unless
    /// `deliver` is false). Returns the simulator's answer, with the webhook body and digest.
    pub async fn authento(&self, user_id: &str, vt: &str, action: &str, deliver: bool) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url(&format!("/sandbox/authento/control/users/{user_id}")))
                    .json(&serde_json::json!({"verification_type": vt, "action": action, "deliver": deliver})),
            )
            .await;
        assert_eq!(r.status, 200, "simulator control: {:?}", r.body);
        r.body
    }

    /// Delivers a webhook body with a digest header, as Authento would.
    pub async fn deliver_authento(&self, body: &str, digest: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/v1/webhooks/authento"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(d) = digest {
            req = req.header("x-payload-digest", d);
        }
        self.send(req).await
    }

    /// Every item of the table, keyed by `pk|sk` (for "the table is unchanged" checks).
    pub async fn snapshot(&self) -> BTreeMap<String, HashMap<String, AttributeValue>> {
        let table = self.table.as_ref().expect("a DynamoDB-backed gateway");
        scan(&dynamo_client().await, table).await
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> BTreeMap<String, HashMap<String, AttributeValue>> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items.unwrap_or_default() {
            let k = |n: &str| {
                item.get(n)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            out.insert(format!("{}|{}", k("pk"), k("sk")), item);
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}
