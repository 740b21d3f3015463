//! Redaction through HTTP on DynamoDB Local with the simulators: a user's sessions at several
//! providers erased, checked by a full scan of the table for the values the test collected
//! itself (not the code's list).

use super::passbase_support;
use idv::secrets::{ApiKeyEntry, SecretDoc};
use idv_tests::{Backend, Gateway, TENANT};
use serde_json::{Value, json};

pub(crate) const REDACTOR: &str = "idv_sk_test_redaction_redact";

pub(crate) fn keys() -> Vec<ApiKeyEntry> {
    let doc = json!({"fingerprint_key": "f".repeat(32), "api_keys": [{
        "tenant": TENANT,
        "sha256": idv::http::auth::digest(REDACTOR),
        "scopes": ["redact", "sessions:read", "verified_data:read"],
    }]});
    SecretDoc::parse(&doc.to_string()).unwrap().api_keys
}

/// A full scan of the table: none of `values` in any key or attribute of any item, other than
/// those of the other tenant's session `other_id`.
pub(crate) async fn assert_scan_clean(gw: &Gateway, values: &[String], other_id: &str) {
    for (k, item) in gw.snapshot().await {
        if k.contains(other_id) {
            continue;
        }
        let text = format!("{k} {item:?}");
        for v in values {
            assert!(!text.contains(v.as_str()), "{v} is still in {k}: {text}");
        }
    }
}

/// Every value of the table, as text.
async fn table_text(gw: &Gateway) -> String {
    format!("{:?}", gw.snapshot().await)
}

#[tokio::test]
async fn a_redacted_user_leaves_none_of_their_values_in_the_table_and_reads_reveal_nothing() {
    let gw = Gateway::start_with_keys(Backend::Dynamo, &[], keys()).await;
    let user = "user-redact-7f3q";
    let mut ids = Vec::new();
    let mut values = vec![user.to_owned()];
    // Nevis under an Idempotency-Key (its replay value holds Nevis's session id).
    let nevis = gw
        .send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "redact-nevis-1")
                .json(&json!({"provider": "nevis", "user_id": user})),
        )
        .await;
    assert_eq!(nevis.status, 201, "{:?}", nevis.body);
    let stripe = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": user}),
        )
        .await;
    assert_eq!(stripe.status, 201, "{:?}", stripe.body);
    let key = passbase_support::new_identity(&gw, None).await;
    let passbase = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "passbase", "user_id": user, "identity_access_key": key}),
        )
        .await;
    assert_eq!(passbase.status, 201, "{:?}", passbase.body);
    values.push(key);
    for s in [&nevis, &stripe, &passbase] {
        ids.push(s.body["id"].as_str().unwrap().to_owned());
        if let Some(r) = s.body["provider_ref"].as_str() {
            values.push(r.to_owned());
        }
    }
    values.push(idv::session::Subject::of(TENANT, user).as_str().to_owned());
    // Another tenant's session: untouched, and not theirs to redact.
    let other = gw
        .post_as(
            &gw.other_key.clone(),
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": user}),
        )
        .await;
    assert_eq!(other.status, 201);
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    let before = table_text(&gw).await;
    // The subject is stored only by providers that key by it (Authento, Prove): the others
    // must be there, or the scan below would prove nothing.
    for v in &values[..values.len() - 1] {
        assert!(
            before.contains(v.as_str()),
            "the test's value {v} was never stored"
        );
    }

    // Without the scope: 403, nothing changed.
    let refused = gw
        .post(&format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    // Another tenant's session is not found.
    let foreign = gw
        .post_as(
            REDACTOR,
            &format!("/v1/sessions/{other_id}/redact"),
            &json!({}),
        )
        .await;
    assert_eq!(foreign.status, 404, "{:?}", foreign.body);

    let done = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let data = done.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for s in data {
        assert_eq!(s["user_id"], "redacted");
        assert_eq!(s["provider_ref"], Value::Null);
        assert_eq!(s["redaction"]["status"], "redacted");
        let expected = if s["provider"] == "stripe" {
            "done"
        } else {
            "unsupported"
        };
        assert_eq!(s["redaction"]["provider_deletion"], expected, "{s}");
    }

    // Stripe sent `canceled` for the redaction it was asked for (the session was open): a late
    // webhook about an erased identity, acknowledged and forgotten (its tombstone).
    let stripe_id = stripe.body["provider_ref"].as_str().unwrap();
    let events = gw
        .send(gw.http.get(format!(
            "{}/control/events?session={stripe_id}",
            gw.stripe_api_base()
        )))
        .await;
    let late: Vec<&Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "identity.verification_session.canceled")
        .collect();
    assert_eq!(late.len(), 1, "{:?}", events.body);
    assert_eq!(late[0]["attempts"][0]["status"], 200, "{:?}", late[0]);
    // A full scan: none of the user's values anywhere, other than the other tenant's session.
    assert_scan_clean(&gw, &values, &other_id).await;

    // Reads reveal nothing; a repeat answers the same.
    for id in &ids {
        let s = gw.get_as(REDACTOR, &format!("/v1/sessions/{id}")).await;
        assert_eq!(s.status, 200);
        assert_eq!(s.body["user_id"], "redacted");
        let h = gw
            .get_as(REDACTOR, &format!("/v1/sessions/{id}/history"))
            .await;
        for e in h.body["data"].as_array().unwrap() {
            assert_eq!(e["provider_status"], Value::Null, "{e}");
        }
        // Nor can the provider be asked for what it verified.
        let v = gw
            .get_as(REDACTOR, &format!("/v1/sessions/{id}/verified_data"))
            .await;
        assert_eq!(v.status, 409, "{:?}", v.body);
        assert!(
            v.body["detail"].as_str().unwrap().contains("redacted"),
            "{:?}",
            v.body
        );
        let again = gw
            .post_as(REDACTOR, &format!("/v1/sessions/{id}/redact"), &json!({}))
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, s.body);
    }
    // The start's Idempotency-Key cannot answer its client step again (what it was made of is
    // erased): 409, not a replay and not a 500.
    let replay = gw
        .send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "redact-nevis-1")
                .json(&json!({"provider": "nevis", "user_id": user})),
        )
        .await;
    assert_eq!(replay.status, 409, "{:?}", replay.body);
    // Stripe was asked to delete once: not again by the repeats, nor by a reconcile run later.
    idv::flows::reconcile::run(gw.app_at(time::Duration::hours(2))).await;
    assert_eq!(
        gw.running
            .stripe
            .requests("POST /v1/identity/verification_sessions/{session}/redact"),
        1
    );
    let listed = gw
        .get_as(REDACTOR, &format!("/v1/users/{user}/sessions"))
        .await;
    assert_eq!(listed.body["data"], json!([]), "{:?}", listed.body);
    // Nor does the tenant's listing by user_id, under the user's id or `redacted`; without a
    // user it still lists them, as redacted.
    for by in [user, "redacted"] {
        let r = gw
            .get_as(REDACTOR, &format!("/v1/sessions?user_id={by}"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["data"], json!([]), "{by}: {:?}", r.body);
        assert_eq!(r.body["next_cursor"], Value::Null, "{by}");
    }
    let all = gw.get_as(REDACTOR, "/v1/sessions?limit=100").await;
    let mine: Vec<&Value> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| ids.iter().any(|id| s["id"] == id.as_str()))
        .collect();
    assert_eq!(mine.len(), ids.len(), "{:?}", all.body);
    for s in mine {
        assert_eq!(s["user_id"], "redacted", "{s}");
        assert_eq!(s["redaction"]["status"], "redacted", "{s}");
    }
    // Nothing left of the user to redact.
    let gone = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(gone.status, 404);
    // The other tenant's session is as it was.
    let theirs = gw
        .get_as(&gw.other_key.clone(), &format!("/v1/sessions/{other_id}"))
        .await;
    assert_eq!(theirs.body["user_id"], user);
}
