//! docs/data-inventory.md cannot drift from the table: every provider taken through each outcome
//! (with webhooks, idempotency keys, a retry, an unmatched delivery, endpoints and events) on DynamoDB
//! Local, then every item of a full scan is matched to one item kind of the inventory by its keys,
//! each of its attributes must be listed for that kind, each listed attribute must have been
//! seen, and each kind carries `ttl` exactly when the inventory says it has one (the retention's,
//! with the value it says).

use aws_sdk_dynamodb::types::AttributeValue;
use idv_tests::receiver::Receiver;
use idv_tests::{Backend, Gateway};
use regex::Regex;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// One item kind as the inventory describes it.
#[derive(Debug)]
struct Kind {
    name: String,
    pk: Regex,
    sk: Regex,
    has_ttl: bool,
    attributes: BTreeSet<String>,
}

/// `SES#<id>` as a regex: literal text, `<...>` any non-empty text.
fn key_pattern(p: &str) -> Regex {
    let mut out = String::from("^");
    for (i, part) in p.split(['<', '>']).enumerate() {
        if i % 2 == 0 {
            out.push_str(&regex::escape(part));
        } else {
            out.push_str(".+");
        }
    }
    out.push('$');
    Regex::new(&out).unwrap()
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The summary table of "## The table" and each kind's attribute table (the section its row
/// links to; tables whose first header is `attribute`).
fn inventory() -> Vec<Kind> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/data-inventory.md"
    ))
    .unwrap();
    let row = Regex::new(
        r"^\| \[([^\]]+)\]\(#([a-z0-9-]+)\)[^|]* \| `([^`]+)` / `([^`]+)` \| [^|]+ \| ([^|]+) \|$",
    )
    .unwrap();
    let mut sections: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    let mut in_attr_table = false;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            current = Some(h.trim().to_lowercase().replace(' ', "-"));
            in_attr_table = false;
        } else if line.starts_with("## ") {
            current = None;
        } else if line.starts_with("| attribute |") {
            in_attr_table = true;
        } else if !line.starts_with('|') {
            in_attr_table = false;
        } else if in_attr_table && !line.starts_with("|---") {
            let first = line.split('|').nth(1).unwrap_or("");
            if let Some(c) = &current {
                sections
                    .entry(c.clone())
                    .or_default()
                    .extend(backticked(first));
            }
        }
    }
    let kinds: Vec<Kind> = doc
        .lines()
        .filter_map(|l| row.captures(l))
        .map(|c| Kind {
            name: c[1].to_owned(),
            pk: key_pattern(&c[3]),
            sk: key_pattern(&c[4]),
            has_ttl: c[5].trim() != "none",
            attributes: sections
                .get(&c[2])
                .cloned()
                .unwrap_or_else(|| panic!("no attribute table under #{}", &c[2])),
        })
        .collect();
    assert!(kinds.len() >= 11, "the summary table parsed to {kinds:?}");
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_attribute_is_in_the_data_inventory_and_every_listed_one_is_stored() {
    let kinds = inventory();
    let gw = Gateway::start_with_keys(
        Backend::Dynamo,
        &[
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
            // Not the default: the setting is what the items carry.
            ("IDV_RETENTION_DAYS", "90"),
        ],
        super::redaction::keys(),
    )
    .await;
    let rx = Receiver::start().await;
    super::outbound_events::endpoint(&gw, &rx.url, json!([])).await;
    let (sessions, _) = super::outbound_events::every_provider_scenario(&gw).await;
    // A read of verified data leaves its access record (who and when, never what).
    let read = gw
        .get_as(
            super::redaction::REDACTOR,
            &format!("/v1/sessions/{}/verified_data", sessions[0]),
        )
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    // A redaction (Stripe's, its deletion done there) leaves its marks on the session.
    let stripe = sessions.last().unwrap();
    let r = gw
        .post_as(
            super::redaction::REDACTOR,
            &format!("/v1/sessions/{stripe}/redact"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["redaction"]["provider_deletion"], "done",
        "{:?}",
        r.body
    );
    // What the scenario does not: a request under an Idempotency-Key, and a delivery that
    // matches no session yet (kept, filed under its identity).
    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "inventory-1")
                .json(&json!({"provider": "nevis", "user_id": "user-i1",
                    "metadata": {"order_id": "ord_1"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/tokens"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "inventory-2")
                .json(&json!({"user_id": "user-i2", "verification_type": "BASIC",
                    "user_type": "INDIVIDUAL", "lang": "en"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // A retry (of a canceled Nevis session): the links both ways (`prev`, `next`).
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-i3"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let canceled = r.body["id"].as_str().unwrap().to_owned();
    let r = gw
        .post(&format!("/v1/sessions/{canceled}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = gw
        .post(&format!("/v1/sessions/{canceled}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sent = gw
        .prove_webhook("00000000-0000-0000-0000-000000000000", "DISCONNECT", true)
        .await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    // A rotation leaves the previous secret on the endpoint for its overlap.
    let eps = gw.get("/v1/endpoints").await;
    let ep = eps.body["data"][0]["id"].as_str().unwrap().to_owned();
    let rotated = gw
        .post(&format!("/v1/endpoints/{ep}/rotate_secret"), &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    super::outbound_events::pump(&gw).await;

    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let snapshot = gw.snapshot().await;
    problems.extend(retention_problems(&snapshot, 90));
    for (key, item) in snapshot {
        let (pk, sk) = key.split_once('|').unwrap();
        let matching: Vec<&Kind> = kinds
            .iter()
            .filter(|k| k.pk.is_match(pk) && k.sk.is_match(sk))
            .collect();
        let [kind] = matching.as_slice() else {
            problems.push(format!(
                "{pk} / {sk}: matches {:?} of the inventory's kinds",
                matching.iter().map(|k| &k.name).collect::<Vec<_>>()
            ));
            continue;
        };
        let mut names: BTreeSet<String> = item.keys().cloned().collect();
        // A session's provider facts are one JSON object: its keys are listed as `pd.<key>`.
        if let Some(pd) = item.get("pd").and_then(|v| v.as_s().ok()) {
            let facts: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(pd).expect("pd is a JSON object");
            names.extend(facts.keys().map(|k| format!("pd.{k}")));
        }
        for attr in &names {
            if !kind.attributes.contains(attr) {
                problems.push(format!("{}: `{attr}` is stored but not listed", kind.name));
            }
        }
        if item.contains_key("ttl") != kind.has_ttl {
            problems.push(format!(
                "{} ({pk}): ttl {} but the inventory says {}",
                kind.name,
                if item.contains_key("ttl") {
                    "present"
                } else {
                    "absent"
                },
                if kind.has_ttl { "it has one" } else { "none" }
            ));
        }
        seen.entry(&kind.name).or_default().extend(names);
    }
    for kind in &kinds {
        let Some(got) = seen.get(kind.name.as_str()) else {
            problems.push(format!("no {} item was stored by the scenario", kind.name));
            continue;
        };
        for attr in kind.attributes.difference(got) {
            if !NOT_EXERCISED.contains(&(kind.name.as_str(), attr.as_str())) {
                problems.push(format!(
                    "{}: `{attr}` is listed but never stored",
                    kind.name
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/data-inventory.md and the table disagree:\n{}",
        problems.join("\n")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retention_sessions_and_their_refs_carry_no_ttl() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_RETENTION_DAYS", "0")]).await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-kept"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let snapshot = gw.snapshot().await;
    let kinds: Vec<&str> = snapshot
        .iter()
        .filter(|(k, _)| k.starts_with("SES#") || k.starts_with("REF#"))
        .map(|(k, item)| {
            assert!(!item.contains_key("ttl"), "{k} has a ttl");
            &k[..3]
        })
        .collect();
    assert!(
        kinds.contains(&"SES") && kinds.contains(&"REF"),
        "{kinds:?}"
    );
    gw.stop().await;
}

/// The retention's `ttl` as docs/data-inventory.md#retention says, on every item it applies to:
/// a session's is its `created_at` + the period; its refs' and identity events' are its own; a
/// reauthentication's is its `at` + the period. Each kind must be there (or this proves nothing).
fn retention_problems(
    snapshot: &BTreeMap<String, std::collections::HashMap<String, AttributeValue>>,
    days: i64,
) -> Vec<String> {
    let num = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i128>().ok())
    };
    let period = i128::from(days) * 86_400;
    let ns = 1_000_000_000;
    let mut sessions = BTreeMap::new();
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, item) in snapshot {
        if let Some(id) = key.strip_suffix("|SES") {
            let created = num(item, "created_at").expect("created_at");
            let want = created.div_euclid(ns) + period;
            sessions.insert(id.to_owned(), num(item, "ttl"));
            *counts.entry("session").or_default() += 1;
            if num(item, "ttl") != Some(want) {
                problems.push(format!(
                    "session {key}: ttl {:?}, want {want}",
                    num(item, "ttl")
                ));
            }
        }
    }
    for (key, item) in snapshot {
        let (pk, sk) = key.split_once('|').unwrap();
        let (kind, want) = if pk.starts_with("REF#") {
            let sid = item["session_id"].as_s().unwrap();
            (
                "ref",
                sessions.get(&format!("SES#{sid}")).copied().flatten(),
            )
        } else if sk.starts_with("IE#") {
            ("identity event", sessions.get(pk).copied().flatten())
        } else if pk.starts_with("RA#") {
            let at = num(item, "at").expect("at");
            ("reauthentication", Some(at.div_euclid(ns) + period))
        } else {
            continue;
        };
        *counts.entry(kind).or_default() += 1;
        if want.is_none() || num(item, "ttl") != want {
            problems.push(format!(
                "{kind} {key}: ttl {:?}, want {want:?}",
                num(item, "ttl")
            ));
        }
    }
    for kind in ["session", "ref", "identity event", "reauthentication"] {
        if !counts.contains_key(kind) {
            problems.push(format!("no {kind} to check the retention of"));
        }
    }
    problems
}

/// Listed attributes the scenario does not reach, each with why (a state it would take a fault
/// or a clock to make; covered by their own tests).
const NOT_EXERCISED: &[(&str, &str)] = &[
    // A provider answer that settled nothing (a 404): provider_faults, reconcile.
    ("session", "unclear"),
    // Only while a delivery is not settled (in flight, or failed and due again): never_lost.
    ("webhook delivery", "gsi2pk"),
    ("webhook delivery", "gsi2sk"),
    // Only while a request holds its key: idempotency.
    ("idempotency record", "lease"),
    ("idempotency record", "owner"),
    // Only once deliveries to it fail, or a 410 disabled it: outbound_events.
    ("webhook endpoint", "disabled_reason"),
    ("webhook endpoint", "failing_since"),
    // Only while a delivery is pending or leased, or after it failed: outbound_events.
    ("outbound delivery", "gsi2pk"),
    ("outbound delivery", "gsi2sk"),
    ("outbound delivery", "lease"),
    ("outbound delivery", "lease_until"),
    ("outbound delivery", "next_at"),
    ("outbound delivery", "reason"),
    // Only while a provider's deletion is pending (it failed and is retried): redaction.
    ("session", "deletion_ref"),
    ("session", "deletion_attempts"),
];
