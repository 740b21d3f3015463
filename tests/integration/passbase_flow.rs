//! Passbase end to end (docs/providers/passbase.md): the app links the SDK's identity access key (or
//! waits with our reference), Passbase's encrypted webhooks make the gateway read the identity,
//! and the session follows that read: on DynamoDB Local, against the simulator.

use super::passbase_support::*;
use idv::store::DeliveryState;
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};

/// Nothing the person behind the simulator's identity `key` could be recognised by, wherever in
/// the table.
fn assert_no_personal_data(gw: &Gateway, key: &str, table: &str) {
    let p = gw
        .running
        .passbase
        .person(key)
        .expect("the simulator's identity");
    for personal in [
        p.last_name.as_str(),
        p.email.as_str(),
        &p.date_of_birth_text(),
        p.document_number.as_str(),
        p.street.as_str(),
        "203.0.113.7",
    ] {
        assert!(!table.contains(personal), "the table holds {personal}");
    }
}

#[tokio::test]
async fn completed_then_reviewed_approved_verifies_the_session() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let created = start(&gw, "user-pb1", Some(&key)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["provider"], "passbase");
    assert_eq!(created.body["status"], "created");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let report = act(&gw, &key, &["hold_for_review"], "each").await;
    assert_eq!(report["delivered"], json!([200]));
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(
        s["status"], "processing",
        "pending review is the provider deciding: {s}"
    );
    assert_eq!(s["provider_status"], "pending");

    let report = act(&gw, &key, &["review_approve"], "each").await;
    assert_eq!(report["delivered"], json!([200]));
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "verified", "{s}");
    assert_eq!(s["provider_status"], "approved");
    // Data minimisation: status, score, document type and country; nothing personal.
    assert_eq!(s["score"], 0.71);
    assert_eq!(s["document_type"], "PASSPORT");
    assert_eq!(s["document_country"], "DEU");
    assert_eq!(
        history(&gw, &id).await,
        vec![
            ("created".into(), "created".into(), Some("created".into())),
            ("created".into(), "processing".into(), None),
            ("processing".into(), "verified".into(), None),
        ]
    );
    assert_no_personal_data(&gw, &key, &format!("{:?}", gw.snapshot().await));
    gw.stop().await;
}

#[tokio::test]
async fn a_declined_verification_fails_the_session() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb2", &key).await;
    act(&gw, &key, &["decline"], "each").await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["provider_status"], "declined");
    assert_eq!(s["last_error"]["code"], "rejected");
    assert_eq!(s["last_error"]["provider_code"], "declined");
    gw.stop().await;
}

#[tokio::test]
async fn a_review_overturning_an_approval_is_applied_and_recorded_in_history() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb3", &key).await;
    act(&gw, &key, &["approve"], "each").await;
    assert_eq!(gw.stored_status(&id).await, "verified");

    act(&gw, &key, &["review_decline"], "each").await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "failed", "{s}");
    let h = history(&gw, &id).await;
    assert_eq!(
        h.last().unwrap(),
        &(
            "verified".into(),
            "failed".into(),
            Some("overturned".into())
        ),
        "{h:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn events_out_of_order_together_or_repeated_never_move_a_session_backwards() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb4", &key).await;
    let report = act(&gw, &key, &["hold_for_review", "review_approve"], "none").await;
    let [completed, reviewed] = <[String; 2]>::try_from(bodies(&report)).unwrap();

    // The review arrives first; the older COMPLETED (claiming `pending`) comes late.
    let r = deliver(&gw, &reviewed).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    let r = deliver(&gw, &completed).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    assert_eq!(gw.stored_status(&id).await, "verified");

    // Repeated: acknowledged as duplicates, nothing written.
    let before = gw.snapshot().await;
    for body in [&reviewed, &completed] {
        let r = deliver(&gw, body).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({"received": true, "duplicate": true}))
        );
    }
    assert_eq!(gw.snapshot().await, before);

    // Two events arriving together, and newest first: the session ends where Passbase is.
    for (user, deliver_how) in [("user-pb4t", "together"), ("user-pb4r", "reversed")] {
        let key = new_identity(&gw, None).await;
        let id = linked_session(&gw, user, &key).await;
        let report = act(
            &gw,
            &key,
            &["hold_for_review", "review_approve"],
            deliver_how,
        )
        .await;
        assert_eq!(report["delivered"], json!([200, 200]), "{deliver_how}");
        assert_eq!(gw.stored_status(&id).await, "verified", "{deliver_how}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_webhook_before_the_key_is_linked_is_kept_then_applied_when_the_app_links_it() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let created = start(&gw, "user-pb5", None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["status"], "created");
    let metadata: Value =
        serde_json::from_str(created.body["client"]["metadata"].as_str().unwrap()).unwrap();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(metadata, json!({"session_ref": id}));

    // The app has not passed our reference to the SDK: nothing ties the identity to us yet.
    let key = new_identity(&gw, None).await;
    let report = act(&gw, &key, &["approve"], "each").await;
    assert_eq!(
        report["delivered"],
        json!([200]),
        "an unmatched delivery is still acknowledged"
    );
    let event = event_id(&gw, &report, 0);
    assert_eq!(
        delivery_state(&gw, &event).await,
        Some(DeliveryState::Unmatched)
    );
    assert_eq!(gw.stored_status(&id).await, "created");

    // The app links the key the SDK gave it: the kept delivery is matched.
    let linked = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    assert_eq!(linked.body["status"], "verified");
    assert_eq!(
        delivery_state(&gw, &event).await,
        Some(DeliveryState::Applied)
    );
    // Linking again is the same answer; another key, or this key on another session, is 409.
    let again = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!((again.status, again.body["id"].clone()), (200, json!(id)));
    let other = new_identity(&gw, None).await;
    let r = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": other}),
        )
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (409, json!("conflict")));
    assert_eq!(start(&gw, "user-pb5b", Some(&key)).await.status, 409);

    // The same with the key given at start: a delivery kept earlier is applied at once.
    let key = new_identity(&gw, None).await;
    let report = act(&gw, &key, &["decline"], "each").await;
    let started = start(&gw, "user-pb5c", Some(&key)).await;
    assert_eq!(started.status, 201);
    assert_eq!(started.body["status"], "failed", "{:?}", started.body);
    assert_eq!(
        delivery_state(&gw, &event_id(&gw, &report, 0)).await,
        Some(DeliveryState::Applied)
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_webhook_whose_identity_shows_our_reference_links_the_session_itself() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let created = start(&gw, "user-pb6", None).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let metadata: Value =
        serde_json::from_str(created.body["client"]["metadata"].as_str().unwrap()).unwrap();
    // The app passed it as the SDK's metaData; Passbase returns it decrypted on the identity.
    let key = new_identity(&gw, Some(metadata)).await;
    act(&gw, &key, &["approve"], "each").await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(s["status"], "verified", "{s}");
    // The link is now the app's too: the key answers this session.
    let r = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("verified"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn reauthentication_is_recorded_on_the_verified_user_and_listed_newest_first() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb7", &key).await;

    // Not verified yet: a biometric login is no reauthentication of a verified identity.
    act(&gw, &key, &["authenticate"], "each").await;
    let list = gw.get("/v1/users/user-pb7/reauthentications").await;
    assert_eq!((list.status, list.body["data"].clone()), (200, json!([])));

    act(&gw, &key, &["approve"], "each").await;
    let first = act(&gw, &key, &["authenticate"], "each").await;
    let second = act(&gw, &key, &["authenticate"], "each").await;
    let list = gw.get("/v1/users/user-pb7/reauthentications").await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{:?}", list.body);
    assert_eq!(data[0]["object"], "reauthentication");
    assert_eq!(data[0]["provider"], "passbase");
    assert_eq!(data[0]["identity_id"], key);
    assert_eq!(data[0]["session_id"], id);
    assert_eq!(data[0]["outcome"], "approved");
    let at = |r: &Value| {
        time::OffsetDateTime::from_unix_timestamp(
            r["webhooks"][0]["event"]["updated"].as_i64().unwrap(),
        )
        .unwrap()
    };
    let at0 = time::OffsetDateTime::parse(
        data[0]["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let at1 = time::OffsetDateTime::parse(
        data[1]["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((at0, at1), (at(&second), at(&first)), "newest first");

    // One more, delivered twice: recorded once.
    let report = act(&gw, &key, &["authenticate"], "none").await;
    let body = &bodies(&report)[0];
    assert_eq!(
        deliver(&gw, body).await.body,
        json!({"received": true, "duplicate": false})
    );
    assert_eq!(
        deliver(&gw, body).await.body,
        json!({"received": true, "duplicate": true})
    );
    let list = gw.get("/v1/users/user-pb7/reauthentications").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        3,
        "{:?}",
        list.body
    );

    // Another app of the gateway sees none of them; bad input is a field error.
    let other = gw
        .send(
            gw.http
                .get(gw.url("/v1/users/user-pb7/reauthentications"))
                .bearer_auth(&gw.other_key),
        )
        .await;
    assert_eq!((other.status, other.body["data"].clone()), (200, json!([])));
    let bad = gw.get("/v1/users/user-pb7/reauthentications?limit=0").await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["field"].clone()),
        (400, json!("limit"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_identity_read_keeps_the_delivery_changes_nothing_and_the_redelivery_applies() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb8", &key).await;
    let report = act(&gw, &key, &["approve"], "none").await;
    let body = &bodies(&report)[0];
    faults(&gw, 3, 503).await; // every attempt of one delivery
    let before_status = gw.stored_status(&id).await;
    // Recorded, so the gateway owns it (and retries it): Passbase hears 200, never a non-200
    // that could get its webhook disabled.
    let r = deliver(&gw, body).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            200,
            json!({"received": true, "duplicate": false, "deferred": true})
        )
    );
    assert_eq!(gw.stored_status(&id).await, before_status);
    assert_eq!(
        delivery_state(&gw, &event_id(&gw, &report, 0)).await,
        Some(DeliveryState::Received)
    );

    let r = deliver(&gw, body).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test]
async fn reading_a_session_refreshes_it_from_the_identity() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb9", &key).await;
    // Passbase decided, its webhook never came: the app's read asks Passbase.
    act(&gw, &key, &["approve"], "none").await;
    let s = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        (s.status, s.body["status"].clone()),
        (200, json!("verified"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_passbase_input_is_a_field_error_and_changes_nothing() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let before = gw.snapshot().await;
    let cases = [
        (
            json!({"provider": "passbase", "user_id": "u-1", "identity_access_key": "not-a-uuid"}),
            "identity_access_key",
        ),
        (
            json!({"provider": "passbase", "user_id": "u-1", "identity_access_key": 42}),
            "identity_access_key",
        ),
        (json!({"provider": "passbase"}), "user_id"),
        (
            json!({"provider": "passbase", "user_id": "u-1", "first_name": "Jessie"}),
            "first_name",
        ),
    ];
    for (body, field) in cases {
        let r = gw.post("/v1/sessions", &body).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], field, "{body}");
    }
    let r = gw
        .post(
            "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/link",
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (400, json!("identity_access_key"))
    );
    let r = gw
        .post(
            "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/link",
            &json!({"identity_access_key": "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = gw
        .post(
            "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/link",
            &json!({"identity_access_key": "b76e244e-26a3-49ef-9c72-3e599bf0b5f2", "user_id": "u-1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (400, json!("user_id"))
    );
    assert_eq!(gw.snapshot().await, before);

    // An Authento session cannot take a Passbase identity.
    let authento = gw.issue_token("user-pb10", "BASIC").await.body["session"]["id"].clone();
    let r = gw
        .post(
            &format!("/v1/sessions/{}/link", authento.as_str().unwrap()),
            &json!({"identity_access_key": "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"}),
        )
        .await;
    assert_eq!(r.status, 409);
    gw.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_answers_the_same_passbase_session() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let body = json!({"provider": "passbase", "user_id": "user-pb11"});
    let send = |b: Value| {
        gw.send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "pb-once")
                .json(&b),
        )
    };
    let first = send(body.clone()).await;
    let second = send(body.clone()).await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.body["id"], second.body["id"]);
    assert_eq!(first.body["client"], second.body["client"]);
    let other = send(json!({"provider": "passbase", "user_id": "user-pb12"})).await;
    assert_eq!(other.status, 409);
    gw.stop().await;
}

#[tokio::test]
async fn a_watchlist_hit_after_approval_sends_the_decision_back_to_review() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pb13", &key).await;
    act(&gw, &key, &["approve"], "each").await;
    assert_eq!(gw.stored_status(&id).await, "verified");
    // WATCHLIST_MONITORING: Passbase sets the identity back to `pending` (the customer decides).
    act(&gw, &key, &["watchlist"], "each").await;
    let s = gw
        .get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body;
    assert_eq!(
        (s["status"].clone(), s["provider_status"].clone()),
        (json!("processing"), json!("pending")),
        "{s}"
    );
    let h = history(&gw, &id).await;
    assert_eq!(
        h.last().unwrap(),
        &(
            "verified".into(),
            "processing".into(),
            Some("overturned".into())
        )
    );
    // A data point update changes nothing about the decision, and is applied once.
    let report = act(&gw, &key, &["update_datapoint"], "each").await;
    assert_eq!(report["delivered"], json!([200]));
    assert_eq!(gw.stored_status(&id).await, "processing");
    gw.stop().await;
}

#[tokio::test]
async fn an_identity_whose_metadata_names_another_session_is_not_linked() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let mine = start(&gw, "user-m10a", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = start(&gw, "user-m10b", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The SDK flow ran for `mine` (its metaData names it); approved, not yet linked.
    let key = new_identity(&gw, Some(json!({"session_ref": mine}))).await;
    act(&gw, &key, &["approve"], "none").await;
    let before = gw.snapshot().await;
    let r = gw
        .post(
            &format!("/v1/sessions/{other}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(r.status, 409, "another user's documents: {:?}", r.body);
    assert_eq!(gw.snapshot().await, before);
    let with_key = start(&gw, "user-m10c", Some(&key)).await;
    assert_eq!(with_key.status, 409, "{:?}", with_key.body);
    // Its own session links it.
    let r = gw
        .post(
            &format!("/v1/sessions/{mine}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("verified"))
    );
    gw.stop().await;
}
