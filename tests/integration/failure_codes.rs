//! The one failure vocabulary (docs/api.md#failure-codes): every provider's mapping lands on the
//! closed list, every code its simulator can report is mapped, the list in the docs and in
//! openapi.yaml is the list in code, and one failed session per provider shows `code`,
//! `provider_code` and `retryable` through HTTP, on DynamoDB Local, against the simulators.

use super::passbase_support;
use idv::session::FailureCode;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every provider's table, through the adapter seam of a running gateway.
async fn tables() -> BTreeMap<&'static str, Vec<(&'static str, FailureCode)>> {
    let gw = Gateway::start(Backend::Memory).await;
    let tables = gw
        .running
        .app
        .providers
        .iter()
        .map(|a| (a.name(), a.failure_codes().to_vec()))
        .collect();
    gw.stop().await;
    tables
}

#[tokio::test]
async fn every_providers_words_map_onto_the_list_and_every_simulated_code_is_mapped() {
    let tables = tables().await;
    assert_eq!(
        tables.keys().copied().collect::<BTreeSet<_>>(),
        idv::providers::registry::names().into_iter().collect(),
        "every provider states its mapping"
    );
    for (provider, table) in &tables {
        assert!(!table.is_empty(), "{provider} maps no word");
        let mut seen = BTreeSet::new();
        for (raw, code) in table {
            assert!(seen.insert(*raw), "{provider} maps {raw} twice");
            // `unknown` is for words outside a table: a word a table names has a meaning.
            assert_ne!(
                *code,
                FailureCode::Unknown,
                "{provider} maps {raw} to unknown"
            );
            assert!(FailureCode::ALL.contains(code));
        }
    }
    let mapped = |provider: &str, raw: &str| {
        tables[provider]
            .iter()
            .find(|(r, _)| *r == raw)
            .map(|(_, c)| *c)
    };
    // What each simulator can report as a reason: Nevis's error codes, Stripe's `last_error`
    // codes, the status words that fail an Authento or Passbase session.
    for raw in idv_local::sandbox::nevis::ERROR_CODES {
        assert!(mapped("nevis", raw).is_some(), "nevis {raw} is not mapped");
    }
    for (raw, _) in idv_local::sandbox::stripe::session::ERROR_CODES {
        assert!(
            mapped("stripe", raw).is_some(),
            "stripe {raw} is not mapped"
        );
    }
    assert_eq!(mapped("stripe", "canceled"), Some(FailureCode::Canceled));
    assert_eq!(mapped("authento", "REJECTED"), Some(FailureCode::Rejected));
    assert_eq!(mapped("passbase", "declined"), Some(FailureCode::Rejected));
    assert_eq!(
        mapped("passbase", "unverified"),
        Some(FailureCode::Rejected)
    );
    for raw in [
        "possession_failed",
        "verification_failed",
        "failed",
        "possession_timeout",
        "flow_expired",
    ] {
        assert!(mapped("prove", raw).is_some(), "prove {raw} is not mapped");
    }
    // Prove Unify: its one failing word, kept as Prove says it.
    assert_eq!(
        mapped("prove", "false"),
        Some(FailureCode::PossessionFailed)
    );
}

/// The rows of docs/api.md's failure-code table: code, retryable, the whole row.
fn documented() -> Vec<(String, bool, String)> {
    let api = repo_file("docs/api.md");
    let section = api
        .split("\n## Failure codes\n")
        .nth(1)
        .expect("docs/api.md has a Failure codes section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let retryable = match cells[2] {
                "yes" => true,
                "no" => false,
                other => panic!("retryable must be yes or no, not {other:?}: {l}"),
            };
            (
                cells[1].trim_matches('`').to_owned(),
                retryable,
                l.to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_docs_and_openapi_list_exactly_the_codes_in_code_each_providers_words_in_their_row() {
    let rows = documented();
    let in_code: Vec<(String, bool)> = FailureCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.retryable()))
        .collect();
    let in_docs: Vec<(String, bool)> = rows.iter().map(|(c, r, _)| (c.clone(), *r)).collect();
    assert_eq!(in_docs, in_code, "docs/api.md#failure-codes");

    for (provider, table) in tables().await {
        for (raw, code) in table {
            let row = &rows.iter().find(|(c, _, _)| c == code.as_str()).unwrap().2;
            assert!(
                row.contains(&format!("`{raw}`")),
                "docs/api.md does not list {provider}'s {raw} under {code}"
            );
        }
    }

    let spec: Value = serde_norway::from_str(&repo_file("openapi.yaml")).unwrap();
    let listed: Vec<&str> =
        spec["components"]["schemas"]["LastError"]["properties"]["code"]["enum"]
            .as_array()
            .expect("LastError.code has an enum")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    let codes: Vec<&str> = FailureCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes, "openapi.yaml LastError.code");
}

// ------------------------------------------------------------------------------------------
// One failed session per provider, through HTTP
// ------------------------------------------------------------------------------------------

fn assert_last_error(s: &Value, code: &str, provider_code: Value, retryable: bool) {
    let e = &s["last_error"];
    assert_eq!(
        (&e["code"], &e["provider_code"], &e["retryable"]),
        (&json!(code), &provider_code, &json!(retryable)),
        "{s}"
    );
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{s}");
}

async fn gateway() -> Gateway {
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_of_each_provider_says_why_in_the_one_vocabulary() {
    let gw = gateway().await;

    // Authento: a review rejects the user.
    let r = gw.issue_token("user-fa", "BASIC").await;
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    gw.authento("user-fa", "BASIC", "open", true).await;
    gw.authento("user-fa", "BASIC", "reject", true).await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_last_error(&s, "rejected", json!("REJECTED"), false);

    // Prove: the possession check fails.
    let r = gw.start_prove("user-fp", "mobile", json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_last_error(&s, "possession_failed", json!("possession_failed"), true);

    // Nevis: the capture fails with a liveness error.
    let (id, tc, _) = super::nevis_flow::start(&gw, "user-fn").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "fail", Some("LIVENESS_CHECK_FAILED")).await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_last_error(&s, "liveness_failed", json!("LIVENESS_CHECK_FAILED"), true);

    // Passbase: declined.
    let key = passbase_support::new_identity(&gw, None).await;
    let id = passbase_support::linked_session(&gw, "user-fpb", &key).await;
    passbase_support::act(&gw, &key, &["decline"], "each").await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_last_error(&s, "rejected", json!("declined"), false);

    // Stripe: a failed check is the user's turn again (`pending`), with the reason; an age
    // Stripe does not accept is not worth another attempt.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-fs"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let vs = r.body["provider_ref"].as_str().unwrap().to_owned();
    gw.stripe_control(
        &format!("/sessions/{vs}"),
        json!({"action": "fail", "error_code": "under_supported_age"}),
    )
    .await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "pending", "{s}");
    assert_last_error(&s, "under_age", json!("under_supported_age"), false);

    // The item keeps both words: the code and the provider's.
    let item = gw
        .snapshot()
        .await
        .into_iter()
        .find(|(_, item)| {
            item.get("error_code")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("under_supported_age")
        })
        .map(|(_, item)| item)
        .expect("the Stripe session's item");
    assert_eq!(item["failure_code"].as_s().unwrap(), "under_age");
    gw.stop().await;
}

/// Prove Unify (`IDV_PROVE_FLOW=unify`): a failed possession check, through HTTP on DynamoDB
/// Local, is `possession_failed` with Prove's own word (`success: "false"`) as `provider_code`.
#[tokio::test]
async fn a_failed_prove_unify_session_says_possession_failed_with_proves_word() {
    let gw = Gateway::start_with(
        Backend::Dynamo,
        &[
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
            ("IDV_PROVE_FLOW", "unify"),
        ],
    )
    .await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "prove", "user_id": "user-fu", "phone_number": "+12001004014",
                    "possession_type": "mobile"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await.body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_last_error(&s, "possession_failed", json!("false"), true);
    gw.stop().await;
}
