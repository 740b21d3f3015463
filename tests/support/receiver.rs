//! An app's webhook receiver on 127.0.0.1 for the outbound-events tests: keeps every request's
//! headers and raw body (one request per connection, HTTP/1.1) and answers the status a test
//! sets. And the independent check of what it received: the `standardwebhooks` package from
//! PyPI (pinned in scripts/requirements-tools.txt), run in the tools venv.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers.get("webhook-id").map_or("", String::as_str)
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub struct Receiver {
    pub url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 204 until told otherwise.
    pub async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(204));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (keep, answer) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, keep.clone(), answer.clone()));
            }
        });
        Receiver {
            url,
            status,
            got,
            task,
        }
    }

    /// The status every request is answered with from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    keep: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: BTreeMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    keep.lock().unwrap().push(Received { headers, body });
    let code = status.load(Ordering::SeqCst);
    let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = conn.write_all(reply.as_bytes()).await;
}

/// The tools venv's Python (scripts/install-tools installs `standardwebhooks` there).
pub fn python() -> String {
    let cache = std::env::var("IDV_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/idv-gateway",
            std::env::var("HOME").expect("HOME")
        )
    });
    format!("{cache}/venv/bin/python")
}

/// Runs `script` with `input` as JSON on stdin; answers what it prints as JSON.
pub fn run_python(script: &str, input: &Value) -> Value {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs (scripts/install-tools): {e}", python()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("python printed no JSON ({e}): {:?}", out.stdout))
}

/// Every case (`secret`, `headers`, `body`) through `Webhook(secret).verify(body, headers)`
/// (±5 min of now): `{"ok": true, "type": ...}` or the package's refusal.
pub const VERIFY: &str = r#"
import json, sys
from standardwebhooks import Webhook, WebhookVerificationError
out = []
for case in json.load(sys.stdin):
    try:
        payload = Webhook(case["secret"]).verify(case["body"].encode("utf-8"), case["headers"])
        out.append({"ok": True, "type": payload["type"]})
    except WebhookVerificationError as e:
        out.append({"ok": False, "error": str(e)})
print(json.dumps(out))
"#;

/// Whether `standardwebhooks` verifies each request with `secret`.
pub fn verify_all(secret: &str, got: &[Received]) -> Vec<Value> {
    let cases: Vec<Value> = got
        .iter()
        .map(|r| serde_json::json!({"secret": secret, "headers": r.headers, "body": r.body}))
        .collect();
    match run_python(VERIFY, &Value::Array(cases)) {
        Value::Array(v) => v,
        other => panic!("verify printed {other}"),
    }
}
