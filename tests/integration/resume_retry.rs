//! `POST /v1/sessions/{id}/resume` and `POST /v1/sessions/{id}/retry` (docs/api.md#resume,
//! docs/api.md#retry), through HTTP on DynamoDB Local against the provider simulators: each
//! provider resumes as it can (a new Authento token, Nevis's start URL again, a fresh Stripe page)
//! or says why not (Prove, Passbase); a session that failed, expired or was canceled is retried
//! once, as it was started, linked both ways; another tenant's session is not found; bad input
//! changes nothing; an `Idempotency-Key` replays; the retry is announced by its own
//! `session.created` event.

use idv::App;
use idv::providers::prove::ProveFlow;
use idv::secrets::SecretSource;
use idv::session::SessionId;
use idv_tests::receiver::Receiver;
use idv_tests::{Backend, Gateway, ProveOf, Reply, TENANT};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

fn id_of(body: &Value) -> String {
    body.get("session").unwrap_or(body)["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a session id in {body}"))
        .to_owned()
}

async fn resume(gw: &Gateway, id: &str) -> Reply {
    gw.post(&format!("/v1/sessions/{id}/resume"), &json!({}))
        .await
}

async fn retry(gw: &Gateway, id: &str, body: Value) -> Reply {
    gw.post(&format!("/v1/sessions/{id}/retry"), &body).await
}

async fn post_with_key(gw: &Gateway, path: &str, key: &str, body: &Value) -> Reply {
    gw.send(
        gw.http
            .post(gw.url(path))
            .bearer_auth(&gw.key)
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

/// The session as stored, without a provider read.
async fn stored(gw: &Gateway, id: &str) -> Value {
    gw.get(&format!("/v1/sessions/{id}?refresh=false"))
        .await
        .body
}

/// Waits (bounded) until the stored session says `status` (a provider's events arrive in the
/// background).
async fn until_stored(gw: &Gateway, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let s = stored(gw, id).await;
        if s["status"] == status {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "session {id} never became {status}: {}",
        stored(gw, id).await
    );
}

/// The session's history, newest first, as (status, source, reason).
async fn changes(gw: &Gateway, id: &str) -> Vec<(String, String, String)> {
    let h = gw.get(&format!("/v1/sessions/{id}/history")).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let word = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    h.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (word(&e["status"]), word(&e["source"]), word(&e["reason"])))
        .collect()
}

fn change(status: &str, source: &str, reason: &str) -> (String, String, String) {
    (status.into(), source.into(), reason.into())
}

/// A JWT's claims, unverified (the simulator's page verifies it).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A provider page the user opens: answers its status.
async fn opens(gw: &Gateway, url: &str) -> u16 {
    gw.send(gw.http.get(url)).await.status
}

/// The tester acts on Stripe's hosted page: the page sends the user back (303).
async fn on_stripe_page(url: &str, action: &str) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    http.post(url)
        .form(&[("action", action)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The Stripe verification session behind a session of ours, as the simulator holds it.
async fn at_stripe(gw: &Gateway, vs: &str) -> Value {
    let r = gw
        .send(
            gw.http
                .get(format!(
                    "{}/v1/identity/verification_sessions/{vs}",
                    gw.stripe_api_base()
                ))
                .bearer_auth(gw.running.stripe.secret_key()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Waits (bounded) until the simulator has delivered each event of the Stripe verification
/// session `vs` (but its creation, which it does not send) and had it answered, so that no
/// webhook is still being applied when the test goes on.
async fn stripe_delivered(gw: &Gateway, vs: &str) {
    let url = format!("{}/control/events?session={vs}", gw.stripe_api_base());
    for _ in 0..200 {
        let events = gw.send(gw.http.get(&url)).await.body;
        let pending = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "identity.verification_session.created")
            .any(|e| e["attempts"].as_array().is_none_or(|a| a.is_empty()));
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Stripe's events about {vs} were never delivered");
}

async fn provider_session(gw: &Gateway, id: &str) -> idv::session::Session {
    gw.running
        .app
        .store
        .get_session(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the session")
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_resumes_an_open_session_as_it_can_and_nothing_else_is_resumed() {
    let gw = Gateway::start(Backend::Dynamo).await;

    // Authento: a new token, for the session's track and page language; the user can open it.
    let t = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "user-rs1", "verification_type": "POA", "lang": "de"}),
        )
        .await;
    assert_eq!(t.status, 201, "{:?}", t.body);
    let a = id_of(&t.body);
    let r = resume(&gw, &a).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (id_of(&r.body), &r.body["status"]),
        (a.clone(), &json!("created"))
    );
    let token = r.body["client"]["token"].as_str().expect("a token");
    let (was, now) = (claims(t.body["token"].as_str().unwrap()), claims(token));
    assert_eq!(
        (&now["sub"], &now["vt"], &now["lang"]),
        (&was["sub"], &json!("POA"), &json!("de"))
    );
    assert!(now["exp"].as_i64() >= was["exp"].as_i64(), "{now} {was}");
    assert_eq!(
        changes(&gw, &a).await[0],
        change("created", "app", "resumed")
    );
    assert_eq!(
        opens(&gw, r.body["client"]["verify_url"].as_str().unwrap()).await,
        200
    );

    // Nevis: the start URL again while Nevis says the session is not over.
    let (n, tc, start_url) = super::nevis_flow::start(&gw, "user-rs2").await;
    gw.nevis(&tc, "open", None).await;
    let r = resume(&gw, &n).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["client"]["start_url"], start_url.as_str());
    assert_eq!(r.body["status"], "pending", "the read was stored first");
    assert_eq!(opens(&gw, &start_url).await, 200);
    // Once Nevis decided, the read that says so is stored and the resume refused.
    gw.nevis(&tc, "complete", None).await;
    let r = resume(&gw, &n).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["code"], "conflict");
    assert_eq!(stored(&gw, &n).await["status"], "verified");

    // Stripe: a fresh page from Stripe each time, working; the same one for a replay.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-rs3"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = id_of(&r.body);
    let first = r.body["client"]["url"].as_str().unwrap().to_owned();
    let path = format!("/v1/sessions/{s}/resume");
    let once = post_with_key(&gw, &path, "resume-rs3", &json!({})).await;
    assert_eq!(once.status, 200, "{:?}", once.body);
    let fresh = once.body["client"]["url"].as_str().unwrap().to_owned();
    assert_ne!(fresh, first, "Stripe hands out a fresh url");
    let twice = post_with_key(&gw, &path, "resume-rs3", &json!({})).await;
    assert_eq!(
        (twice.status, &twice.body["client"]),
        (200, &once.body["client"])
    );
    let resumed = |c: &Vec<(String, String, String)>| c.iter().filter(|e| e.2 == "resumed").count();
    assert_eq!(
        resumed(&changes(&gw, &s).await),
        1,
        "a replay records nothing"
    );
    // A check fails: Stripe asks the user again, and the next resume's page is the way on.
    let vs = r.body["provider_ref"].as_str().unwrap().to_owned();
    gw.stripe_control(
        &format!("/sessions/{vs}"),
        json!({"action": "fail", "error_code": "document_expired"}),
    )
    .await;
    for _ in 0..200 {
        if !stored(&gw, &s).await["last_error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = resume(&gw, &s).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["last_error"]["code"], "document_expired",
        "{:?}",
        r.body
    );
    let again = r.body["client"]["url"].as_str().unwrap().to_owned();
    assert_ne!(again, fresh);
    // The user submits through it: Stripe is processing, no step to resume.
    assert_eq!(on_stripe_page(&again, "submit").await, 303);
    let r = resume(&gw, &s).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("checking"),
        "{:?}",
        r.body
    );
    assert_eq!(stored(&gw, &s).await["status"], "processing");

    // Prove and Passbase have no such step: 409 not_supported saying why, nothing written.
    let p = gw.start_prove("user-rs4", "mobile", json!({})).await;
    assert_eq!(p.status, 201, "{:?}", p.body);
    let p = id_of(&p.body);
    let pb = super::passbase_support::start(&gw, "user-rs5", None).await;
    let pb = id_of(&pb.body);
    for (id, why) in [(&p, "authToken"), (&pb, "client SDK")] {
        let before = changes(&gw, id).await;
        let r = resume(&gw, id).await;
        assert_eq!(
            (r.status, &r.body["code"]),
            (409, &json!("not_supported")),
            "{:?}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(why),
            "{:?}",
            r.body
        );
        assert_eq!(changes(&gw, id).await, before);
    }

    // A session that is over: 409 (retry it instead).
    let (c, _, _) = super::nevis_flow::start(&gw, "user-rs6").await;
    let r = gw
        .post(&format!("/v1/sessions/{c}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = resume(&gw, &c).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("canceled"),
        "{:?}",
        r.body
    );

    // Another tenant's session is none of theirs; a body with fields is refused; both change
    // nothing.
    let before = gw.snapshot().await;
    let r = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{a}/resume"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = gw
        .post(&format!("/v1/sessions/{a}/resume"), &json!({"lang": "fr"}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(
        (&r.body["errors"][0]["field"], &r.body["errors"][0]["code"]),
        (&json!("lang"), &json!("unknown_field"))
    );
    let r = resume(&gw, "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(gw.snapshot().await, before, "nothing written");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_canceled_session_is_retried_once_as_it_was_started_and_linked_both_ways() {
    // Reads refresh at once: Prove's failure is read right after the possession check.
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;

    // Authento, rejected: the retry is the same track and page language, with the metadata.
    let t = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "user-rt1", "verification_type": "POA", "lang": "de",
                    "metadata": {"order": "A-1"}}),
        )
        .await;
    let a = id_of(&t.body);
    gw.authento("user-rt1", "POA", "reject", true).await;
    let failed = until_stored(&gw, &a, "failed").await;
    assert_eq!(failed["last_error"]["retryable"], false, "{failed}");
    // Not retryable is advice: the app may retry all the same.
    let r = retry(&gw, &a, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let a2 = id_of(&r.body);
    assert_ne!(a2, a);
    assert_eq!(
        (
            &r.body["provider"],
            &r.body["user_id"],
            &r.body["verification_type"]
        ),
        (&json!("authento"), &json!("user-rt1"), &json!("POA"))
    );
    assert_eq!(r.body["previous_session_id"], a.as_str());
    assert_eq!(r.body["next_session_id"], Value::Null);
    assert_eq!(r.body["metadata"], json!({"order": "A-1"}));
    let token = claims(r.body["client"]["token"].as_str().unwrap());
    assert_eq!(
        (&token["vt"], &token["lang"]),
        (&json!("POA"), &json!("de"))
    );
    let old = stored(&gw, &a).await;
    assert_eq!(
        (&old["status"], &old["next_session_id"]),
        (&json!("failed"), &json!(a2))
    );
    assert_eq!(
        changes(&gw, &a).await[0],
        change("failed", "app", "retried")
    );
    // Once only: the second retry names the first; the open retry is not retried.
    let r = retry(&gw, &a, json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains(&a2),
        "{:?}",
        r.body
    );
    let r = retry(&gw, &a2, json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);

    // Nevis, failed: a new Nevis session and start URL.
    let (n, tc, start_url) = super::nevis_flow::start(&gw, "user-rt2").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "fail", Some("FACE_MISMATCH")).await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{n}")).await.body["status"],
        "failed"
    );
    let r = retry(&gw, &n, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_ne!(r.body["client"]["start_url"], start_url.as_str());
    assert_eq!(
        opens(&gw, r.body["client"]["start_url"].as_str().unwrap()).await,
        200
    );
    assert_eq!(
        stored(&gw, &n).await["next_session_id"],
        id_of(&r.body).as_str()
    );

    // Stripe, canceled: a new verification session with the same options; new metadata.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-rt3",
                    "return_url": "https://app.example/back",
                    "document_options": {"allowed_types": ["passport"], "require_matching_selfie": true},
                    "metadata": {"attempt": "1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = id_of(&r.body);
    let vs = r.body["provider_ref"].as_str().unwrap().to_owned();
    let c = gw
        .post(&format!("/v1/sessions/{s}/cancel"), &json!({}))
        .await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    let r = retry(&gw, &s, json!({"metadata": {"attempt": "2"}})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s2 = id_of(&r.body);
    assert_eq!(r.body["metadata"], json!({"attempt": "2"}));
    let vs2 = r.body["provider_ref"].as_str().unwrap().to_owned();
    assert_ne!(vs2, vs);
    let (was, now) = (at_stripe(&gw, &vs).await, at_stripe(&gw, &vs2).await);
    assert_eq!(now["options"], was["options"], "{now}");
    assert_eq!(now["metadata"]["session_ref"], s2.as_str());
    assert_eq!(
        opens(&gw, r.body["client"]["url"].as_str().unwrap()).await,
        200
    );

    // Prove, failed: the number and names were never kept, so the retry gives them again; the
    // flow's settings were kept.
    let p = gw.start_prove("user-rt4", "mobile", json!({})).await;
    let pid = id_of(&p.body);
    gw.prove_authenticate(p.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{pid}")).await.body["status"],
        "failed"
    );
    let before = gw.snapshot().await;
    let r = retry(&gw, &pid, json!({})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let mut fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["first_name", "last_name", "phone_number"]);
    assert_eq!(
        gw.snapshot().await,
        before,
        "a refused retry writes nothing"
    );
    let r = retry(
        &gw,
        &pid,
        json!({"phone_number": "+12001004011", "first_name": "Sheilakathryn",
               "last_name": "Butrimovich"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.body["client"]["auth_token"].is_string(), "{:?}", r.body);
    let prove = provider_session(&gw, &id_of(&r.body))
        .await
        .prove()
        .unwrap();
    assert_eq!(prove.possession, idv::providers::prove::Possession::Mobile);

    // Passbase, canceled: a new session waiting for a new identity.
    let pb = super::passbase_support::start(&gw, "user-rt5", None).await;
    let pb = id_of(&pb.body);
    gw.post(&format!("/v1/sessions/{pb}/cancel"), &json!({}))
        .await;
    let r = retry(&gw, &pb, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let metadata = r.body["client"]["metadata"].as_str().unwrap();
    assert!(metadata.contains(&id_of(&r.body)), "{metadata}");

    // A verified session has nothing to retry.
    let v = super::stripe_flow::verified_session(&gw, "user-rt6").await;
    let r = retry(&gw, &v, json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("verified"),
        "{:?}",
        r.body
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_retried_replays_answer_the_retry_and_bad_input_changes_nothing() {
    let gw = Gateway::start(Backend::Dynamo).await;

    // Nevis, expired by the gateway's deadline (reconcile, two hours on).
    let (n, _, _) = super::nevis_flow::start(&gw, "user-rx1").await;
    idv::flows::reconcile::run(gw.app_at(time::Duration::hours(2))).await;
    assert_eq!(stored(&gw, &n).await["status"], "expired");

    // Bad input, another tenant, an open session: refused, nothing written.
    let before = gw.snapshot().await;
    for (body, field) in [
        (json!({"provider": "stripe"}), "provider"),
        (json!({"user_id": "someone-else"}), "user_id"),
        (json!({"lang": "de"}), "lang"),
        (json!({"metadata": {"k": 1}}), "metadata.k"),
    ] {
        let r = retry(&gw, &n, body).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{:?}", r.body);
    }
    let r = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/sessions/{n}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = retry(&gw, "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa", json!({})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(gw.snapshot().await, before, "nothing written");
    let (open, _, _) = super::nevis_flow::start(&gw, "user-rx2").await;
    let before = gw.snapshot().await;
    let r = retry(&gw, &open, json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("resume"),
        "{:?}",
        r.body
    );
    assert_eq!(gw.snapshot().await, before, "nothing written");

    // Retried under an Idempotency-Key: the replay answers the same retry, made once.
    let path = format!("/v1/sessions/{n}/retry");
    let first = post_with_key(&gw, &path, "retry-rx1", &json!({})).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let second = post_with_key(&gw, &path, "retry-rx1", &json!({})).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(id_of(&second.body), id_of(&first.body));
    assert_eq!(
        second.body["client"], first.body["client"],
        "the same start URL"
    );
    let list = gw.get("/v1/users/user-rx1/sessions").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        2,
        "{:?}",
        list.body
    );
    // The same key with another body is another request.
    let other = post_with_key(&gw, &path, "retry-rx1", &json!({"metadata": {"a": "b"}})).await;
    assert_eq!(other.status, 409, "{:?}", other.body);
    assert_eq!(
        stored(&gw, &n).await["next_session_id"],
        id_of(&first.body).as_str()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_announced_by_the_new_sessions_created_event_and_the_link_by_none() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let rx = Receiver::start().await;
    let r = gw
        .post("/v1/endpoints", &json!({"url": rx.url, "event_types": []}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (n, _, _) = super::nevis_flow::start(&gw, "user-re1").await;
    gw.post(&format!("/v1/sessions/{n}/cancel"), &json!({}))
        .await;
    let r = retry(&gw, &n, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let n2 = id_of(&r.body);
    let resumed = resume(&gw, &n2).await;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    gw.running.pump_events().await.expect("notify pump");
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = rx
            .received()
            .iter()
            .map(|r| r.json())
            .map(|v| {
                (
                    v["type"].as_str().unwrap().to_owned(),
                    v["data"]["session"]["id"].as_str().unwrap().to_owned(),
                    v["data"]["session"]["previous_session_id"].to_string(),
                )
            })
            .collect();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.sort();
    let mut want: Vec<(String, String, String)> = vec![
        ("session.canceled".into(), n.clone(), "null".into()),
        ("session.created".into(), n.clone(), "null".into()),
        ("session.created".into(), n2.clone(), json!(n).to_string()),
    ];
    want.sort();
    assert_eq!(
        seen, want,
        "the link on the retried session and the resume announce nothing"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_retries_make_one_retry_and_the_other_names_it() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let (n, _, _) = super::nevis_flow::start(&gw, "user-rr1").await;
    let r = gw
        .post(&format!("/v1/sessions/{n}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Both read the canceled session; the one transaction that links it lands, the other is
    // refused (its condition on the session's version fails, or it reads the link first).
    let (a, b) = tokio::join!(retry(&gw, &n, json!({})), retry(&gw, &n, json!({})));
    let (won, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(
        (won.status, lost.status),
        (201, 409),
        "{:?} {:?}",
        won.body,
        lost.body
    );
    let retry_id = id_of(&won.body);
    assert!(
        lost.body["detail"].as_str().unwrap().contains(&retry_id),
        "{:?}",
        lost.body
    );
    assert_eq!(stored(&gw, &n).await["next_session_id"], retry_id.as_str());
    let list = gw.get("/v1/users/user-rr1/sessions").await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [retry_id.as_str(), n.as_str()], "one retry stored");
    gw.stop().await;
}

/// The gateway's App as a deployment whose `IDV_PROVE_FLOW` now says `flow` would run it: the
/// same table, secret and simulators (which serve both flows).
fn app_with_prove_flow(gw: &Gateway, flow: ProveFlow) -> Arc<App> {
    let mut config = gw.running.app.config.clone();
    for (name, settings) in &mut config.providers.0 {
        if *name == "prove" {
            let mut prove = settings
                .downcast_ref::<idv::providers::prove::Settings>()
                .expect("prove's settings")
                .clone();
            prove.flow = flow;
            *settings = Arc::new(prove);
        }
    }
    Arc::new(App::new(
        config,
        gw.running.app.store.clone(),
        SecretSource::Static(Arc::new(gw.running.secrets.clone())),
        Arc::new(idv::clock::SystemClock),
    ))
}

fn fields_of(e: idv::Error) -> Vec<String> {
    let idv::Error::InvalidRequest(errors) = e else {
        panic!("a 400, not {e:?}");
    };
    let mut fields: Vec<String> = errors.into_iter().map(|f| f.field).collect();
    fields.sort_unstable();
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prove_retry_starts_the_flow_the_deployment_is_configured_with_now() {
    // Started under Verified Users (the local server's flow), failed; reads refresh at once.
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;
    let p = gw.start_prove("user-rp1", "mobile", json!({})).await;
    assert_eq!(p.status, 201, "{:?}", p.body);
    let vu = id_of(&p.body);
    gw.prove_authenticate(p.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{vu}")).await.body["status"],
        "failed"
    );
    let prove = &gw.running.prove;
    assert_eq!((prove.verify_requests(), prove.unify_requests()), (1, 0));

    // The deployment moved to Unify: its retry starts a Unify flow, which takes no names.
    let unify = app_with_prove_flow(&gw, ProveFlow::Unify);
    let Err(refused) = idv::flows::retry::retry(&unify, TENANT, &vu, &Map::new(), None).await
    else {
        panic!("a retry without the number is refused");
    };
    assert_eq!(fields_of(refused), ["phone_number"]);
    let body = json!({"phone_number": "+12001004014"});
    let started = idv::flows::retry::retry(&unify, TENANT, &vu, body.as_object().unwrap(), None)
        .await
        .expect("the retry starts");
    let u = started.session.id.to_string();
    assert!(
        started.client["auth_token"].is_string(),
        "{}",
        started.client
    );
    assert_eq!((prove.verify_requests(), prove.unify_requests()), (1, 1));
    let kept = provider_session(&gw, &u).await.prove().unwrap();
    assert_eq!(kept.flow, ProveFlow::Unify);
    assert_eq!(kept.possession, idv::providers::prove::Possession::Mobile);
    assert_eq!(stored(&gw, &u).await["previous_session_id"], vu.as_str());
    assert_eq!(stored(&gw, &vu).await["next_session_id"], u.as_str());

    // And back: the Unify session, canceled, is retried by the Verified Users deployment with
    // Verified Users' rules (the names again) and its /v3/verify.
    let r = gw
        .post(&format!("/v1/sessions/{u}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = retry(&gw, &u, json!({"phone_number": "+12001004011"})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = retry(
        &gw,
        &u,
        json!({"phone_number": "+12001004011", "first_name": "Sheilakathryn",
               "last_name": "Butrimovich"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((prove.verify_requests(), prove.unify_requests()), (2, 1));
    let kept = provider_session(&gw, &id_of(&r.body))
        .await
        .prove()
        .unwrap();
    assert_eq!(kept.flow, ProveFlow::VerifiedUsers);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_session_is_neither_resumed_nor_retried_and_nothing_changes() {
    use super::redaction::{REDACTOR, assert_scan_clean, keys};
    let gw = Gateway::start_with_keys(Backend::Dynamo, &[], keys()).await;
    let user = "user-rr-redact-4m8w";
    // The app's page for this user: kept as a start field of the Stripe session.
    let page = "rr-page-9q2z";
    let s = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": user,
                    "return_url": format!("https://app.example/back/{page}")}),
        )
        .await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let first = id_of(&s.body);
    // Canceled and retried (linked both ways), the retry canceled: retryable but for the
    // redaction.
    let r = gw
        .post(&format!("/v1/sessions/{first}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = retry(&gw, &first, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let second = id_of(&r.body);
    let r = gw
        .post(&format!("/v1/sessions/{second}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Stripe's `canceled` webhooks applied first: the redaction below is not racing them.
    let vs: Vec<String> = [&s, &r]
        .iter()
        .map(|r| r.body["provider_ref"].as_str().unwrap().to_owned())
        .collect();
    for v in &vs {
        stripe_delivered(&gw, v).await;
    }
    // An open Nevis session: resumable but for the redaction.
    let (nevis, _, _) = super::nevis_flow::start(&gw, user).await;
    assert_eq!(resume(&gw, &nevis).await.status, 200);
    assert!(format!("{:?}", gw.snapshot().await).contains(page));

    let r = gw
        .post_as(REDACTOR, &format!("/v1/users/{user}/redact"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3, "{:?}", r.body);
    // Whatever Stripe says about its redaction is applied before the table is compared.
    for v in &vs {
        stripe_delivered(&gw, v).await;
    }

    let before = gw.snapshot().await;
    let creates = || {
        gw.running
            .stripe
            .requests("POST /v1/identity/verification_sessions")
    };
    let created = creates();
    let attempts = [
        ("retry", second.clone(), None),
        ("retry", first.clone(), None),
        ("retry", second.clone(), Some("rr-redacted-1")),
        ("resume", nevis.clone(), None),
        ("resume", second.clone(), Some("rr-redacted-2")),
    ];
    for (what, id, key) in attempts {
        let path = format!("/v1/sessions/{id}/{what}");
        let r = match key {
            Some(k) => post_with_key(&gw, &path, k, &json!({})).await,
            None => gw.post(&path, &json!({})).await,
        };
        assert_eq!(r.status, 409, "{what} {id}: {:?}", r.body);
        assert_eq!(r.body["code"], "conflict", "{what} {id}");
        assert!(
            r.body["detail"].as_str().unwrap().contains("redacted"),
            "{what} {id}: {:?}",
            r.body
        );
    }
    assert_eq!(
        gw.snapshot().await,
        before,
        "a refused retry or resume wrote"
    );
    assert_eq!(
        creates(),
        created,
        "a refused retry started a Stripe session"
    );

    // The links stay (session ids: the chain of attempts), the kept start fields do not.
    assert_eq!(
        stored(&gw, &first).await["next_session_id"],
        second.as_str()
    );
    assert_eq!(
        stored(&gw, &second).await["previous_session_id"],
        first.as_str()
    );
    assert_scan_clean(&gw, &[user.to_owned(), page.to_owned()], None).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sends_the_user_back_where_the_retried_session_did() {
    use super::return_url::stripe_page_sends_back_to;
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;
    // Stripe: the retry's hosted page sends the user to the first start's return_url.
    let back = "https://app.example:8443/verified?order=A-7";
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-rb1", "return_url": back}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let first = id_of(&r.body);
    let r = gw
        .post(&format!("/v1/sessions/{first}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = retry(&gw, &first, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let page = r.body["client"]["url"].as_str().unwrap();
    assert_eq!(stripe_page_sends_back_to(page).await, back);
    // A retry whose body says `null` drops it: Stripe's page has nowhere of the app's to go.
    let other = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-rb1", "return_url": back}),
        )
        .await;
    let other = id_of(&other.body);
    let r = gw
        .post(&format!("/v1/sessions/{other}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = retry(&gw, &other, json!({"return_url": null})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let page = r.body["client"]["url"].as_str().unwrap();
    assert!(!stripe_page_sends_back_to(page).await.starts_with("http"));

    // Prove's desktop flow: the retry's Instant Link leads to the first start's return_url.
    let back = "https://app.example/prove-done?s=7";
    let p = gw
        .start_prove(
            "user-rb2",
            "desktop",
            json!({"final_target_url": null, "return_url": back}),
        )
        .await;
    assert_eq!(p.status, 201, "{:?}", p.body);
    let failed = id_of(&p.body);
    gw.prove_authenticate(p.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{failed}")).await.body["status"],
        "failed"
    );
    let r = retry(
        &gw,
        &failed,
        json!({"phone_number": "+12001004011", "first_name": "Sheilakathryn",
               "last_name": "Butrimovich"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let done = gw
        .prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "passed")
        .await;
    assert_eq!(done["final_target_url"], back, "{done}");
    gw.stop().await;
}
