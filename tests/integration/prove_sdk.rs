//! Prove's official server SDK from npm (`@prove-identity/prove-api`, pinned by
//! scripts/install-tools into the node tools) speaks Unify to the Prove simulator:
//! tests/node/prove-unify-sdk.cjs runs unify -> Authenticate() -> unify-status, and the
//! customer-supplied possession flow unify -> unify-status -> unify-bind, with the SDK's own OAuth2
//! client credentials, and one refusal in Prove's error shape. The SDK is pointed at the simulator
//! by its documented options (`serverURL`, `security.tokenURL`).
//!
//! SDK 0.9.6 types Unify's `success` as an object while Prove documents a string: each Unify
//! answer fails the SDK's response validation at `success` and nowhere else, which this test
//! holds (a simulator answer of any other wrong shape fails it), and the rest of each answer is
//! checked against the SDK's own schema.

use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// scripts/install-tools' node tools (`$IDV_CACHE/node-tools`).
fn node_tools() -> String {
    let cache = std::env::var("IDV_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/idv-gateway",
            std::env::var("HOME").expect("HOME")
        )
    });
    format!("{cache}/node-tools")
}

/// Runs a Node script of tests/node with `input` as JSON on stdin; answers what it prints.
fn run_node(script: &str, input: &Value) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node")
        .join(script);
    let mut child = Command::new("node")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node runs (scripts/install-tools): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node {script} (are the node tools installed? scripts/install-tools): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("node printed no JSON ({e}): {:?}", out.stdout))
}

/// The report's call named `name`, with its body, after checking how the SDK took it: parsed, or
/// refused for `success` alone (the SDK's declared object), the rest of the body of the SDK's own
/// shape.
fn call<'a>(report: &'a Value, name: &str) -> &'a Value {
    let c = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no call {name}: {report}"));
    if c["sdk_parsed"] == false {
        let issues = c["issues"].as_array().unwrap();
        assert_eq!(issues.len(), 1, "{name}: {c}");
        assert_eq!(
            (
                &issues[0]["path"][1],
                &issues[0]["expected"],
                &issues[0]["received"]
            ),
            (&json!("success"), &json!("object"), &json!("string")),
            "{name}: only success, a string where SDK 0.9.6 declares an object: {c}"
        );
        assert_eq!(c["documented_shape"], true, "{name}: {c}");
    } else {
        assert_eq!(c["sdk_parsed"], true, "{name}: {c}");
    }
    &c["body"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_server_sdk_from_npm_runs_unify_status_and_bind_against_the_simulator() {
    let gw = Gateway::start(Backend::Memory).await;
    let creds = gw
        .running
        .secrets
        .provider::<idv::providers::prove::Secrets>("prove")
        .unwrap()
        .expect("prove credentials");
    let sandbox = gw.url("/sandbox/prove");
    let input = json!({
        "tools": node_tools(),
        "na": format!("{sandbox}/na"),
        "eu": format!("{sandbox}/eu"),
        "control": format!("{sandbox}/control"),
        "client_id": creds.client_id.expose(),
        "client_secret": creds.client_secret.expose(),
    });
    let report = tokio::task::spawn_blocking(move || run_node("prove-unify-sdk.cjs", &input))
        .await
        .unwrap();
    assert_eq!(report["sdk_version"], "0.9.6", "{report}");

    let start = call(&report, "unify");
    assert_eq!(start["success"], "pending", "{start}");
    assert!(start["authToken"].is_string() && start["correlationId"].is_string());
    let before = call(&report, "unify-status (before Authenticate)");
    assert_eq!(before["success"], "pending", "{before}");
    let after = call(&report, "unify-status (after Authenticate)");
    assert_eq!(
        (&after["success"], &after["phoneNumber"]),
        (&json!("true"), &json!("2001004014")),
        "{after}"
    );
    assert!(after["proveId"].is_string(), "{after}");

    let none = call(&report, "unify (none)");
    assert_eq!(none["success"], "pending");
    let required = call(&report, "unify-status (none)");
    assert_eq!(required["success"], "possession_required", "{required}");
    let bound = call(&report, "unify-bind");
    assert_eq!(bound["success"], "true", "{bound}");
    assert!(bound["proveId"].is_string(), "{bound}");

    // Prove's {code, message} as the SDK's own error type.
    let refused = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unify (no test user)")
        .unwrap();
    assert_eq!(
        (&refused["error"], &refused["code"]),
        (&json!("ErrorT"), &json!(8007)),
        "{refused}"
    );

    // What reached the simulator: one token per SDK client (NA and EU), every call once.
    let p = &gw.running.prove;
    assert_eq!(p.token_requests(), 2);
    assert_eq!(
        (
            p.unify_requests(),
            p.unify_status_requests(),
            p.unify_bind_requests()
        ),
        (3, 3, 1)
    );
    gw.stop().await;
}
