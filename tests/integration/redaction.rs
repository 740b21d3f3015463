//! Redaction through HTTP on DynamoDB Local with the simulators: a user's sessions at several
//! providers erased, checked by a full scan of the table for the values the test collected
//! itself (not the code's list).

use super::passbase_support;
use idv::secrets::{ApiKeyEntry, SecretDoc};
use idv::session::SessionId;
use idv_tests::faulty::FaultyStore;
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
/// the items of (or naming) the other tenant's session `other_id`, if any.
pub(crate) async fn assert_scan_clean(gw: &Gateway, values: &[String], other_id: Option<&str>) {
    for (k, item) in gw.snapshot().await {
        let text = format!("{k} {item:?}");
        if other_id.is_some_and(|o| text.contains(o)) {
            continue;
        }
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
    assert_scan_clean(&gw, &values, Some(&other_id)).await;

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

/// The Prove simulator's calls per endpoint and platform (`disenroll:eu`, ...).
async fn prove_calls(gw: &Gateway) -> Value {
    let stats = gw
        .send(gw.http.get(gw.url("/sandbox/prove/control/stats")))
        .await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    stats.body["by_endpoint_and_region"].clone()
}

/// Asks the Prove simulator for a new Identity Manager event about `identity`: its status.
async fn prove_event_status(gw: &Gateway, identity: &str) -> u16 {
    gw.send(
        gw.http
            .post(gw.url("/sandbox/prove/control/webhooks"))
            .json(&json!({"identity_id": identity, "event_type": "PORT", "deliver": false})),
    )
    .await
    .status
}

/// Prove: a redacted session's Identity Manager identity is disenrolled once, at the platform
/// that enrolled it, and Identity Manager sends nothing more about it; a disenrollment Prove
/// fails is tried again by reconcile. A Prove session that never got an identity left nothing
/// Prove's API deletes (the flow itself it keeps under its own retention): `unsupported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prove_identity_is_disenrolled_once_and_a_session_without_one_says_unsupported() {
    let gw = Gateway::start_with_keys(Backend::Dynamo, &[], keys()).await;
    let user = "user-redact-prove";
    // Verified at once in the EU (Verified Users without a possession check): enrolled there.
    let eu = gw
        .start_prove(
            user,
            "none",
            json!({"phone_number": "+447968900002", "first_name": "Rozella", "last_name": "Kimpton"}),
        )
        .await;
    assert_eq!(eu.body["status"], "verified", "{:?}", eu.body);
    let eu_id = eu.body["id"].as_str().unwrap().to_owned();
    let identity = super::prove_webhooks::identity_of(&gw, &eu_id).await;
    // Waiting on the user's phone: no identity.
    let waiting = gw.start_prove(user, "mobile", json!({})).await;
    assert_eq!(waiting.body["status"], "pending", "{:?}", waiting.body);
    let waiting_id = waiting.body["id"].as_str().unwrap().to_owned();
    assert!(gw.running.prove.is_enrolled(&identity));
    assert_eq!(prove_event_status(&gw, &identity).await, 200);

    let done = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let deletion = |id: &str| {
        done.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["redaction"]["provider_deletion"].clone())
    };
    assert_eq!(deletion(&eu_id), Some(json!("done")), "{:?}", done.body);
    assert_eq!(
        deletion(&waiting_id),
        Some(json!("unsupported")),
        "{:?}",
        done.body
    );
    // Once, at the EU platform; the identity is gone there and sends no events.
    assert_eq!(gw.running.prove.disenroll_requests(&identity), 1);
    let calls = prove_calls(&gw).await;
    assert_eq!(calls["disenroll:eu"], 1, "{calls}");
    assert_eq!(calls.get("disenroll:na"), None, "{calls}");
    assert!(!gw.running.prove.is_enrolled(&identity));
    assert_eq!(prove_event_status(&gw, &identity).await, 409);
    // Not again: not by a repeat, nor by reconcile later.
    let again = gw
        .post_as(
            REDACTOR,
            &format!("/v1/sessions/{eu_id}/redact"),
            &json!({}),
        )
        .await;
    assert_eq!(again.body["redaction"]["provider_deletion"], "done");
    // Answered as a read shows it: a Prove session's identity events, none left.
    let read = gw.get_as(REDACTOR, &format!("/v1/sessions/{eu_id}")).await;
    assert_eq!(again.body["identity_events"], json!([]), "{:?}", again.body);
    assert_eq!(again.body, read.body);
    idv::flows::reconcile::run(gw.app_at(time::Duration::hours(2))).await;
    assert_eq!(gw.running.prove.disenroll_requests(&identity), 1);
    let values = vec![user.to_owned(), identity.clone()];
    assert_scan_clean(&gw, &values, None).await;

    // Prove fails the disenrollment (every attempt of the request): pending, then reconcile's
    // retry after the backoff does it.
    let other = "user-redact-prove-2";
    let na = gw.start_prove(other, "none", json!({})).await;
    assert_eq!(na.body["status"], "verified", "{:?}", na.body);
    let na_id = na.body["id"].as_str().unwrap().to_owned();
    let na_identity = super::prove_webhooks::identity_of(&gw, &na_id).await;
    gw.prove_faults(json!({"endpoint": "disenroll", "fail_next": 10, "status": 503}))
        .await;
    let r = gw
        .post_as(
            REDACTOR,
            &format!("/v1/sessions/{na_id}/redact"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["redaction"]["status"], "redacted");
    assert_eq!(r.body["redaction"]["provider_deletion"], "pending");
    let tried = gw.running.prove.disenroll_requests(&na_identity);
    assert!(tried >= 1, "asked, and failed");
    assert!(gw.running.prove.is_enrolled(&na_identity));
    // Kept (with its platform) only while the deletion is pending.
    let text = format!("{:?}", gw.snapshot().await);
    assert!(text.contains(&format!("na:{na_identity}")), "{text}");
    gw.prove_faults(json!({"endpoint": "disenroll", "fail_next": 0}))
        .await;
    idv::flows::reconcile::run(gw.app_at(time::Duration::minutes(5))).await;
    assert_eq!(gw.running.prove.disenroll_requests(&na_identity), tried + 1);
    assert!(!gw.running.prove.is_enrolled(&na_identity));
    let after = gw.get_as(REDACTOR, &format!("/v1/sessions/{na_id}")).await;
    assert_eq!(after.body["redaction"]["provider_deletion"], "done");
    assert_scan_clean(&gw, &[other.to_owned(), na_identity], None).await;
    gw.stop().await;
}

/// `POST /v1/sessions` (or `/v1/tokens`) under an `Idempotency-Key`: the created session.
async fn start_keyed(gw: &Gateway, path: &str, key: &str, body: Value) -> Value {
    let r = gw
        .send(
            gw.http
                .post(gw.url(path))
                .bearer_auth(&gw.key)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{path} {body}: {:?}", r.body);
    r.body
}

/// None of `values` in `text` (what a read answered).
fn reveals_none(what: &str, text: &str, values: &[String]) {
    for v in values {
        assert!(!text.contains(v.as_str()), "{what} reveals {v}: {text}");
    }
}

/// The must-show of redaction: one user with a session at each of the five providers, erased by
/// one `POST /v1/users/{user_id}/redact`. A full scan of DynamoDB Local finds none of the values
/// the test collected itself (user id, subject, every provider's ids, Prove's identity and
/// masked number, the replayable start URLs) in any item, outbound events included; Stripe and
/// Prove were asked to delete exactly once (not again by a repeat or by reconcile); a later
/// webhook from each provider that sends them is acknowledged and changes nothing; every read
/// reveals nothing.
///
/// The `Idempotency-Key`s themselves stay: random by the API's rules, they are no personal data
/// (docs/data-inventory.md#redaction, "What stays"); what their records could replay is erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_at_all_five_providers_is_erased_everywhere_and_late_webhooks_change_nothing() {
    // The user's redaction takes each session in turn in one request: well over a hundred
    // DynamoDB calls, which DynamoDB Local on a loaded test machine serves in seconds. This test
    // is about what is erased, not about time (a request cut at its deadline is finished by
    // reconcile: a_redaction_cut_between_its_steps...): it gets a minute.
    let gw = Gateway::start_with_keys(
        Backend::Dynamo,
        &[("IDV_REQUEST_TIMEOUT_MS", "60000")],
        keys(),
    )
    .await;
    let rx = idv_tests::receiver::Receiver::start().await;
    super::outbound_events::endpoint(&gw, &rx.url, json!([])).await;
    let user = "user-redact-all-five-9k";
    let subject = idv::session::Subject::of(TENANT, user).as_str().to_owned();
    let id_of = |s: &Value| s["id"].as_str().unwrap().to_owned();

    // Authento: verified (its token's `sub` is the subject; its user id the provider ref).
    let authento = start_keyed(
        &gw,
        "/v1/tokens",
        "all5-authento",
        json!({"user_id": user, "verification_type": "BASIC"}),
    )
    .await;
    let token = authento["token"].as_str().unwrap().to_owned();
    assert_eq!(idv_tests::jwt_sub(&token), subject);
    let authento = id_of(&authento["session"]);
    gw.authento(user, "BASIC", "open", true).await;
    gw.authento(user, "BASIC", "approve", true).await;

    // Prove: verified at once, its identity enrolled; Identity Manager reports a port.
    let prove = start_keyed(
        &gw,
        "/v1/sessions",
        "all5-prove",
        json!({"provider": "prove", "user_id": user, "phone_number": "+12001004011",
               "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "none"}),
    )
    .await;
    assert_eq!(prove["status"], "verified", "{prove}");
    let prove = id_of(&prove);
    let identity = super::prove_webhooks::identity_of(&gw, &prove).await;
    let sent = gw.prove_webhook(&identity, "PORT", true).await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    // One Prove sends before the disenrollment, delivered only after it.
    let late_prove = gw.prove_webhook(&identity, "DISCONNECT", false).await;

    // Nevis: started (its replay value, the start URL, holds Nevis's session id).
    let nevis = start_keyed(
        &gw,
        "/v1/sessions",
        "all5-nevis",
        json!({"provider": "nevis", "user_id": user}),
    )
    .await;
    let nevis_url = nevis["client"]["start_url"].as_str().unwrap().to_owned();
    let nevis = id_of(&nevis);

    // Passbase: verified, then a reauthentication.
    let key = passbase_support::new_identity(&gw, None).await;
    let passbase = start_keyed(
        &gw,
        "/v1/sessions",
        "all5-passbase",
        json!({"provider": "passbase", "user_id": user, "identity_access_key": key}),
    )
    .await;
    let passbase = id_of(&passbase);
    passbase_support::act(&gw, &key, &["approve"], "each").await;
    passbase_support::act(&gw, &key, &["authenticate"], "each").await;

    // Stripe: verified (its replay value is the hosted page's URL).
    let stripe = start_keyed(
        &gw,
        "/v1/sessions",
        "all5-stripe",
        json!({"provider": "stripe", "user_id": user}),
    )
    .await;
    let stripe_url = stripe["client"]["url"].as_str().unwrap().to_owned();
    let stripe = id_of(&stripe);

    let ids = [&authento, &prove, &nevis, &passbase, &stripe];
    let mut values = vec![
        user.to_owned(),
        subject.clone(),
        identity.clone(),
        "+1*******011".to_owned(),
        key.clone(),
        nevis_url,
        stripe_url,
    ];
    let mut refs = Vec::new();
    for id in ids {
        let r = gw
            .send(
                gw.http
                    .get(gw.url(&format!("/v1/sessions/{id}")))
                    .bearer_auth(&gw.key),
            )
            .await;
        let r = r.body["provider_ref"].as_str().map(str::to_owned);
        refs.push(
            r.clone()
                .unwrap_or_else(|| panic!("{id} has a provider ref")),
        );
    }
    let vs = refs[4].clone();
    gw.stripe_control(&format!("/sessions/{vs}"), json!({"action": "verify"}))
        .await;
    for (id, status) in ids
        .iter()
        .zip(["verified", "verified", "created", "verified", "verified"])
    {
        let s = gw.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(s.body["status"], status, "{:?}", s.body);
    }
    values.extend(refs);
    // The JWT is never stored; checked anyway.
    values.push(token);
    // The other tenant's session of the same user id: untouched.
    let other = gw
        .post_as(
            &gw.other_key.clone(),
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": user}),
        )
        .await;
    let other_id = id_of(&other.body);
    // Every change so far becomes an outbound event (their bodies hold the user's values).
    super::outbound_events::pump(&gw).await;
    let before = table_text(&gw).await;
    for v in &values[..values.len() - 1] {
        assert!(
            before.contains(v.as_str()),
            "the test's value {v} was never stored"
        );
    }
    assert!(before.contains("EVT#"), "outbound events were stored");

    let done = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let data = done.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 5, "{:?}", done.body);
    for s in data {
        assert_eq!(s["user_id"], "redacted");
        assert_eq!(s["redaction"]["status"], "redacted");
        let expected = match s["provider"].as_str().unwrap() {
            "stripe" | "prove" => "done",
            _ => "unsupported",
        };
        assert_eq!(s["redaction"]["provider_deletion"], expected, "{s}");
        reveals_none("the redaction's answer", &s.to_string(), &values);
    }
    super::outbound_events::pump(&gw).await;
    assert_scan_clean(&gw, &values, Some(&other_id)).await;

    // Asked once: not again by a repeat (of each session, and of the user: nothing left), nor by
    // reconcile later.
    let asked = |gw: &Gateway| {
        (
            gw.running
                .stripe
                .requests("POST /v1/identity/verification_sessions/{session}/redact"),
            gw.running.prove.disenroll_requests(&identity),
        )
    };
    assert_eq!(asked(&gw), (1, 1));
    for id in ids {
        let again = gw
            .post_as(REDACTOR, &format!("/v1/sessions/{id}/redact"), &json!({}))
            .await;
        assert_eq!(again.status, 200, "{:?}", again.body);
    }
    let gone = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    idv::flows::reconcile::run(gw.app_at(time::Duration::hours(2))).await;
    assert_eq!(asked(&gw), (1, 1));
    assert!(!gw.running.prove.is_enrolled(&identity));

    // Late webhooks, one per provider that sends them: each acknowledged, none changes a thing
    // (reconcile's own changes, the other tenant's session expired, announced first).
    super::outbound_events::pump(&gw).await;
    let settled = gw.snapshot().await;
    let sim = gw.authento(user, "BASIC", "reset", false).await;
    let r = gw
        .deliver_authento(
            sim["webhook"]["body"].as_str().unwrap(),
            sim["webhook"]["digest"].as_str(),
        )
        .await;
    assert_eq!(r.status, 200, "authento: {:?}", r.body);
    let r = gw
        .deliver_prove(
            late_prove["body"].as_str().unwrap(),
            late_prove["authorization"].as_str(),
        )
        .await;
    assert_eq!(r.status, 200, "prove: {:?}", r.body);
    assert_eq!(prove_event_status(&gw, &identity).await, 409, "disenrolled");
    let report = passbase_support::act(&gw, &key, &["authenticate"], "none").await;
    for body in passbase_support::bodies(&report) {
        let r = passbase_support::deliver(&gw, &body).await;
        assert_eq!(r.status, 200, "passbase: {:?}", r.body);
    }
    let finished = gw
        .stripe_control(
            &format!("/sessions/{vs}"),
            json!({"action": "finish_redaction"}),
        )
        .await;
    assert_eq!(finished["events"][0]["delivered"], 200, "{finished}");
    let events = gw
        .send(gw.http.get(format!(
            "{}/control/events?session={vs}",
            gw.stripe_api_base()
        )))
        .await;
    let verified = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "identity.verification_session.verified")
        .unwrap_or_else(|| panic!("{:?}", events.body))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resent = gw
        .stripe_control(&format!("/events/{verified}/resend"), json!({}))
        .await;
    assert_eq!(resent["delivered"], 200, "{resent}");
    super::outbound_events::pump(&gw).await;
    let after = gw.snapshot().await;
    for (k, item) in &after {
        match settled.get(k) {
            Some(was) => assert_eq!(was, item, "{k} changed"),
            // A webhook token's binding to its body (hashes only) is the one new item.
            None => assert!(k.starts_with("TOK#prove#"), "{k} is new: {item:?}"),
        }
    }
    assert_eq!(
        settled.keys().filter(|k| !after.contains_key(*k)).count(),
        0,
        "nothing was deleted either"
    );
    assert_scan_clean(&gw, &values, Some(&other_id)).await;
    assert_eq!(asked(&gw), (1, 1));

    // Every read reveals nothing.
    for id in ids {
        let s = gw.get_as(REDACTOR, &format!("/v1/sessions/{id}")).await;
        assert_eq!(s.status, 200);
        assert_eq!(s.body["user_id"], "redacted");
        reveals_none("the session", &s.body.to_string(), &values);
        let h = gw
            .get_as(REDACTOR, &format!("/v1/sessions/{id}/history"))
            .await;
        assert_eq!(h.status, 200);
        reveals_none("its history", &h.body.to_string(), &values);
        let v = gw
            .get_as(REDACTOR, &format!("/v1/sessions/{id}/verified_data"))
            .await;
        assert_eq!(v.status, 409, "{:?}", v.body);
        reveals_none("its verified data", &v.body.to_string(), &values);
    }
    let listed = gw
        .get_as(REDACTOR, &format!("/v1/users/{user}/sessions"))
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["data"], json!([]), "{:?}", listed.body);
    // The other tenant's session is as it was.
    let theirs = gw
        .get_as(&gw.other_key.clone(), &format!("/v1/sessions/{other_id}"))
        .await;
    assert_eq!(theirs.body["user_id"], user);
    gw.stop().await;
}

/// `POST /v1/sessions/{id}/redact` through the start-session function of `app` (a gateway over
/// another store, e.g. one that fails).
async fn redact_through(app: &idv::App, id: &str) -> idv::http::ApiResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {REDACTOR}")
            .parse()
            .expect("a header value"),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    let req = idv::http::ApiRequest {
        method: http::Method::POST,
        path: format!("/v1/sessions/{id}/redact"),
        query: Vec::new(),
        headers,
        body: bytes::Bytes::from_static(b"{}"),
    };
    idv::http::handle(app, idv::http::Function::START_SESSION, req).await
}

/// Where a redaction dies: its writes of the session that succeed first (the mark; the mark and
/// the erasure of what hangs on it), before the next one fails.
const CUTS: [(&str, u32); 2] = [("after the mark", 1), ("after the erasure", 2)];

/// A redaction cut between its steps (the table fails: the request ends with a retryable
/// problem+json 503) is finished by a repeat of the request, and on its own by reconcile: the
/// scan is clean, and the provider that deletes (Prove, Stripe) was asked exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_cut_between_its_steps_is_finished_by_a_repeat_or_by_reconcile_deleting_once() {
    let gw = Gateway::start_with_keys(Backend::Dynamo, &[], keys()).await;
    let mut case = 0;
    let mut cases = Vec::new();
    let mut all_values = Vec::new();
    for provider in ["prove", "stripe"] {
        for (cut, ok_writes) in CUTS {
            for by_reconcile in [false, true] {
                case += 1;
                let what = format!(
                    "{provider}, cut {cut}, finished by {}",
                    if by_reconcile {
                        "reconcile"
                    } else {
                        "a repeat"
                    }
                );
                let user = format!("user-cut-{case}-{provider}");
                let started = if provider == "prove" {
                    gw.start_prove(&user, "none", json!({})).await
                } else {
                    gw.post(
                        "/v1/sessions",
                        &json!({"provider": "stripe", "user_id": user}),
                    )
                    .await
                };
                assert_eq!(started.status, 201, "{what}: {:?}", started.body);
                let id = started.body["id"].as_str().unwrap().to_owned();
                let mut values = vec![
                    user.clone(),
                    started.body["provider_ref"].as_str().unwrap().to_owned(),
                ];
                let asked: Box<dyn Fn() -> u64> = if provider == "prove" {
                    let identity = super::prove_webhooks::identity_of(&gw, &id).await;
                    values.push(identity.clone());
                    values.push(idv::session::Subject::of(TENANT, &user).as_str().to_owned());
                    let sim = gw.running.prove.clone();
                    Box::new(move || sim.disenroll_requests(&identity))
                } else {
                    let sim = gw.running.stripe.clone();
                    let before =
                        sim.requests("POST /v1/identity/verification_sessions/{session}/redact");
                    Box::new(move || {
                        sim.requests("POST /v1/identity/verification_sessions/{session}/redact")
                            - before
                    })
                };

                // The request dies: a retryable problem, the session hidden and left to finish.
                let faulty = FaultyStore::new(gw.running.app.store.clone());
                faulty.fail_writes_of_after(&SessionId::parse(&id).unwrap(), ok_writes, 1);
                let r = redact_through(&gw.app_with(faulty, time::Duration::ZERO), &id).await;
                assert_eq!(r.status, 503, "{what}");
                assert_eq!(
                    r.headers["content-type"], "application/problem+json",
                    "{what}"
                );
                assert_eq!(r.headers["retry-after"], "1", "{what}");
                let problem: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(problem["code"], "store_unavailable", "{what}: {problem}");
                let half = gw.get_as(REDACTOR, &format!("/v1/sessions/{id}")).await;
                assert_eq!(
                    half.body["redaction"]["status"], "redacting",
                    "{what}: {:?}",
                    half.body
                );
                reveals_none(&what, &half.body.to_string(), &values);
                assert_eq!(
                    asked(),
                    0,
                    "{what}: the provider is asked only once the erased session is stored"
                );

                if by_reconcile {
                    idv::flows::reconcile::run(gw.app_at(time::Duration::minutes(5))).await;
                } else {
                    // The user's redaction repeated: it finds the session its failure left
                    // marked (a listing by user shows none being redacted), and finishes it.
                    let again = gw
                        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
                        .await;
                    assert_eq!(again.status, 200, "{what}: {:?}", again.body);
                    let [s] = again.body["data"].as_array().unwrap().as_slice() else {
                        panic!("{what}: {:?}", again.body);
                    };
                    assert_eq!(s["id"], id.as_str(), "{what}");
                    assert_eq!(s["redaction"]["status"], "redacted", "{what}");
                    assert_eq!(s["redaction"]["provider_deletion"], "done", "{what}");
                }
                let done = gw.get_as(REDACTOR, &format!("/v1/sessions/{id}")).await;
                assert_eq!(done.body["redaction"]["status"], "redacted", "{what}");
                assert_eq!(
                    done.body["redaction"]["provider_deletion"], "done",
                    "{what}"
                );
                assert_eq!(asked(), 1, "{what}");
                // And not again by a repeat (nor by reconcile: below, for every case at once).
                let again = gw
                    .post_as(REDACTOR, &format!("/v1/sessions/{id}/redact"), &json!({}))
                    .await;
                assert_eq!(again.status, 200, "{what}: {:?}", again.body);
                assert_eq!(again.body["redaction"], done.body["redaction"], "{what}");
                assert_eq!(asked(), 1, "{what}");
                if provider == "prove" {
                    cases.push((what, asked));
                }
                all_values.extend(values);
            }
        }
    }
    idv::flows::reconcile::run(gw.app_at(time::Duration::hours(3))).await;
    for (what, asked) in &cases {
        assert_eq!(asked(), 1, "{what}, then reconcile");
    }
    // Stripe's simulator counts per endpoint: one redact for each of its four cases.
    assert_eq!(
        gw.running
            .stripe
            .requests("POST /v1/identity/verification_sessions/{session}/redact"),
        4
    );
    assert_scan_clean(&gw, &all_values, None).await;

    // The one window where a provider is asked twice: the request dies between Prove's answer
    // and its record. The erased session is stored (a repeat answers it, its deletion pending);
    // reconcile asks again, and Prove's 404 for the identity it no longer holds reads as done.
    let user = "user-cut-answer-unrecorded";
    let started = gw.start_prove(user, "none", json!({})).await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    let identity = super::prove_webhooks::identity_of(&gw, &id).await;
    let faulty = FaultyStore::new(gw.running.app.store.clone());
    faulty.fail_writes_of_after(&SessionId::parse(&id).unwrap(), 3, 1);
    let r = redact_through(&gw.app_with(faulty, time::Duration::ZERO), &id).await;
    assert_eq!(r.status, 503);
    assert_eq!(gw.running.prove.disenroll_requests(&identity), 1);
    assert!(!gw.running.prove.is_enrolled(&identity));
    let again = gw
        .post_as(REDACTOR, &format!("/v1/sessions/{id}/redact"), &json!({}))
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["redaction"]["status"], "redacted");
    assert_eq!(again.body["redaction"]["provider_deletion"], "pending");
    idv::flows::reconcile::run(gw.app_at(time::Duration::minutes(5))).await;
    let done = gw.get_as(REDACTOR, &format!("/v1/sessions/{id}")).await;
    assert_eq!(done.body["redaction"]["provider_deletion"], "done");
    assert_eq!(gw.running.prove.disenroll_requests(&identity), 2);
    assert_scan_clean(&gw, &[user.to_owned(), identity], None).await;
    gw.stop().await;
}
