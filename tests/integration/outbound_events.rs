//! Outbound events end to end, on DynamoDB Local: committed changes read from the table's real
//! stream become events (one per change), delivered to an app's receiver on loopback, signed per
//! Standard Webhooks as the PyPI `standardwebhooks` package verifies; retried on the documented
//! schedule; 410 disables; a rotation signs with both secrets; a notify run killed mid-batch
//! loses nothing.

use super::passbase_support as pb;
use idv::events::deliver;
use idv::events::schedule::{ATTEMPTS, DELAYS, JITTER};
use idv::session::SessionId;
use idv_tests::receiver::{Receiver, verify_all};
use idv_tests::{Backend, Gateway};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

pub(crate) async fn gateway() -> Gateway {
    Gateway::start_with(Backend::Dynamo, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await
}

/// Registers the receiver; answers (endpoint id, its secret).
pub(crate) async fn endpoint(gw: &Gateway, url: &str, types: Value) -> (String, String) {
    let r = gw
        .post(
            "/v1/endpoints",
            &json!({"url": url, "event_types": types, "description": "test receiver"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (r.body["id"].as_str().unwrap().to_owned(), secret)
}

pub(crate) async fn pump(gw: &Gateway) {
    gw.running.pump_events().await.expect("notify pump");
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().expect("session id").to_owned()
}

/// The changes a session's history says were committed and are announced: its creation and
/// every status change, as (session, version).
async fn announced(gw: &Gateway, id: &str) -> Vec<(String, u64)> {
    gw.inspect()
        .session_history(&SessionId::parse(id).unwrap())
        .await
        .unwrap()
        .iter()
        .filter(|h| h.version == 1 || h.from != h.to)
        .map(|h| (id.to_owned(), h.version))
        .collect()
}

/// Session events received, as (session, version) -> how many deliveries.
fn received_session_events(rx: &Receiver) -> BTreeMap<(String, u64), usize> {
    let mut out = BTreeMap::new();
    for r in rx.received() {
        let v = r.json();
        if v["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("session.") && t != "session.reverification_recommended")
        {
            let k = (
                v["data"]["session"]["id"].as_str().unwrap().to_owned(),
                v["data"]["version"].as_u64().unwrap(),
            );
            *out.entry(k).or_insert(0) += 1;
        }
    }
    out
}

/// Every provider through each outcome it has, with the events of each change pumped: Authento
/// verified and failed-then-reset (an overturn), Prove verified with an identity event and
/// another expired, Nevis failed and canceled, Passbase verified with a reauthentication, Stripe
/// verified. The sessions' ids, and the overturned one.
pub(crate) async fn every_provider_scenario(gw: &Gateway) -> (Vec<String>, String) {
    let mut sessions = Vec::new();

    // Authento: verified; another failed, then reset at Authento (a decision overturned).
    let a = id_of(&gw.issue_token("user-e1", "BASIC").await.body["session"]);
    gw.authento("user-e1", "BASIC", "open", true).await;
    gw.authento("user-e1", "BASIC", "approve", true).await;
    let b = id_of(&gw.issue_token("user-e2", "POA").await.body["session"]);
    gw.authento("user-e2", "POA", "open", true).await;
    gw.authento("user-e2", "POA", "reject", true).await;
    gw.authento("user-e2", "POA", "reset", true).await;
    sessions.extend([a, b.clone()]);
    pump(gw).await;

    // Prove: verified, then the number changes hands (an identity event); another expires.
    let r = gw.start_prove("user-e3", "mobile", json!({})).await;
    let p = id_of(&r.body);
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "passed")
        .await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{p}")).await.body["status"],
        "verified"
    );
    let identity = super::prove_webhooks::identity_of(gw, &p).await;
    let sent = gw
        .prove_webhook(&identity, "PHONE_NUMBER_CHANGE", true)
        .await;
    assert_eq!(sent["delivered"]["status"], 200, "{sent}");
    let r = gw.start_prove("user-e4", "mobile", json!({})).await;
    let expiring = id_of(&r.body);
    idv::flows::reconcile::run(gw.app_at(Duration::hours(2))).await;
    assert_eq!(gw.stored_status(&expiring).await, "expired");
    sessions.extend([p, expiring]);

    // Nevis: failed; another canceled by the app.
    let (n, tc, _) = super::nevis_flow::start(gw, "user-e5").await;
    gw.nevis(&tc, "open", None).await;
    gw.nevis(&tc, "fail", Some("FACE_MISMATCH")).await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{n}")).await.body["status"],
        "failed"
    );
    let (c, _, _) = super::nevis_flow::start(gw, "user-e6").await;
    let canceled = gw
        .post(&format!("/v1/sessions/{c}/cancel"), &json!({}))
        .await;
    assert_eq!(canceled.status, 200, "{:?}", canceled.body);
    sessions.extend([n, c]);
    pump(gw).await;

    // Passbase: verified, then the user authenticates again (a reauthentication).
    let key = pb::new_identity(gw, None).await;
    let s = pb::linked_session(gw, "user-e7", &key).await;
    pb::act(gw, &key, &["approve"], "each").await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{s}")).await.body["status"],
        "verified"
    );
    pb::act(gw, &key, &["authenticate"], "each").await;
    sessions.push(s);

    // Stripe Identity: verified through the hosted page and its signed events.
    let st = super::stripe_flow::verified_session(gw, "user-e8").await;
    sessions.push(st);
    pump(gw).await;
    (sessions, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_of_every_provider_is_one_delivered_signed_event() {
    let gw = gateway().await;
    let rx = Receiver::start().await;
    let (_, secret) = endpoint(&gw, &rx.url, json!([])).await;
    let (sessions, b) = every_provider_scenario(&gw).await;
    // Nothing new: a pump with nothing committed sends nothing.
    let before = rx.received().len();
    pump(&gw).await;
    assert_eq!(rx.received().len(), before);

    // Exactly one delivered event per announced change, and nothing else.
    let mut expected = BTreeMap::new();
    for id in &sessions {
        for k in announced(&gw, id).await {
            expected.insert(k, 1usize);
        }
    }
    assert_eq!(received_session_events(&rx), expected);
    let got = rx.received();
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "session.created",
        "session.pending",
        "session.processing",
        "session.verified",
        "session.failed",
        "session.expired",
        "session.canceled",
        "session.decision_overturned",
    ] {
        assert!(types.iter().any(|x| x == t), "no {t} in {types:?}");
    }
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("session.reverification_recommended"), 1, "{types:?}");
    assert_eq!(count("user.reauthenticated"), 1, "{types:?}");
    // The overturn names the decision it left.
    let overturn = got
        .iter()
        .map(|r| r.json())
        .find(|v| v["type"] == "session.decision_overturned")
        .unwrap();
    assert_eq!(overturn["data"]["session"]["id"], b.as_str());
    assert_eq!(overturn["data"]["previous_status"], "failed");
    // Every delivery has its own id, and the independent implementation verifies each.
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), got.len(), "one delivery per event");
    for (r, v) in got.iter().zip(verify_all(&secret, &got)) {
        assert_eq!(v["ok"], true, "{v} for {}", r.body);
        assert_eq!(v["type"], r.json()["type"]);
        assert_eq!(r.id(), r.json()["id"].as_str().unwrap());
    }
    // No personal data, no client secret in any event.
    let all = got.iter().map(|r| r.body.as_str()).collect::<String>();
    for secretish in ["auth_token", "client_secret", "+1", "token\""] {
        assert!(!all.contains(secretish), "{secretish} in an event");
    }
    // The events API lists them all, newest first, page by page.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/events?limit=7".to_owned(),
            Some(c) => format!("/v1/events?limit=7&cursor={c}"),
        };
        let page = gw.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for e in page.body["data"].as_array().unwrap() {
            listed.push(e["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = listed.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, newest_first);
    assert_eq!(listed.len(), got.len());
    gw.stop().await;
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_hours_gets_every_event_on_the_schedule_and_410_disables() {
    let gw = gateway().await;
    let down = Receiver::start().await;
    let dead = Receiver::start().await;
    down.answer(503);
    dead.answer(500);
    let (down_id, _) = endpoint(&gw, &down.url, json!(["session.created"])).await;
    let (dead_id, _) = endpoint(&gw, &dead.url, json!(["session.created"])).await;
    let (s, _, _) = super::nevis_flow::start(&gw, "user-r1").await;
    pump(&gw).await;
    let events = gw.get(&format!("/v1/events?session_id={s}")).await.body;
    let event = events["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(down.received().len(), 1, "the first attempt is at once");

    // Each retry falls due on the schedule (±jitter), not before; the down one comes back
    // after its fourth attempt, the dead one runs the whole schedule out.
    let mut last = {
        let r = gw.get(&format!("/v1/events/{event}")).await.body;
        at(&r["deliveries"][0]["attempts"][0]["at"])
    };
    for n in 1..ATTEMPTS {
        let r = gw.get(&format!("/v1/events/{event}")).await.body;
        let dead_delivery = r["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["endpoint_id"] == dead_id.as_str())
            .unwrap()
            .clone();
        let due = at(&dead_delivery["next_attempt_at"]);
        let delay = DELAYS[n as usize - 1];
        let (lo, hi) = (
            last + delay.mul_f64(1.0 - JITTER) - Duration::seconds(1),
            last + delay.mul_f64(1.0 + JITTER) + Duration::seconds(1),
        );
        assert!(
            lo <= due && due <= hi,
            "attempt {}: due {due}, not in [{lo}, {hi}]",
            n + 1
        );
        let ahead = |t: OffsetDateTime| t - OffsetDateTime::now_utc();
        // A second before: nothing is due.
        let seen = dead.received().len();
        deliver::sweep(&gw.app_at(ahead(due - Duration::seconds(2))))
            .await
            .unwrap();
        assert_eq!(dead.received().len(), seen, "attempt {} early", n + 1);
        if n == 4 {
            down.answer(200);
        }
        deliver::sweep(&gw.app_at(ahead(due + Duration::seconds(2))))
            .await
            .unwrap();
        assert_eq!(dead.received().len(), seen + 1, "attempt {} missing", n + 1);
        last = due + Duration::seconds(2);
    }
    let r = gw.get(&format!("/v1/events/{event}")).await.body;
    let by_endpoint = |id: &str| {
        r["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["endpoint_id"] == id)
            .unwrap()
            .clone()
    };
    let gone = by_endpoint(&dead_id);
    assert_eq!(gone["state"], "failed", "{gone}");
    assert_eq!(gone["reason"], "schedule_exhausted");
    assert_eq!(
        gone["attempts"].as_array().unwrap().len(),
        ATTEMPTS as usize
    );
    assert!(
        gone["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == 500),
        "{gone}"
    );
    // The one that came back got it, with the same webhook-id every time, on its own schedule
    // (its own jitter): every failure answered 503, then a 200, each retry no earlier than the
    // schedule allows.
    let back = by_endpoint(&down_id);
    assert_eq!(back["state"], "delivered", "{back}");
    let attempts = back["attempts"].as_array().unwrap();
    let statuses: Vec<u64> = attempts
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert!(statuses.len() >= 2, "{back}");
    assert_eq!(statuses.last(), Some(&200), "{back}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 503),
        "{back}"
    );
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = at(&pair[1]["at"]) - at(&pair[0]["at"]);
        let least = DELAYS[i].mul_f64(1.0 - JITTER) - std::time::Duration::from_secs(1);
        assert!(
            gap >= least,
            "retry {} after {gap}, before the schedule's {least:?}",
            i + 2
        );
    }
    let got = down.received();
    assert_eq!(got.len(), attempts.len());
    assert!(got.iter().all(|r| r.id() == event));

    // 410 Gone: the endpoint is disabled with its reason, and gets nothing more.
    dead.answer(410);
    gw.post(
        &format!("/v1/events/{event}/resend"),
        &json!({"endpoint_id": dead_id}),
    )
    .await;
    deliver::sweep(&gw.app_at(Duration::ZERO)).await.unwrap();
    let ep = gw.get(&format!("/v1/endpoints/{dead_id}")).await.body;
    assert_eq!(ep["enabled"], false, "{ep}");
    assert_eq!(ep["disabled_reason"], "gone");
    let seen = dead.received().len();
    super::nevis_flow::start(&gw, "user-r2").await;
    pump(&gw).await;
    assert_eq!(
        dead.received().len(),
        seen,
        "a disabled endpoint gets nothing"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_receivers_holding_either_secret_verify_and_after_it_only_the_new() {
    let gw = gateway().await;
    let rx = Receiver::start().await;
    let (id, old) = endpoint(&gw, &rx.url, json!([])).await;
    let r = gw
        .post(&format!("/v1/endpoints/{id}/rotate_secret"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until = at(&r.body["previous_secret_expires_at"]);
    let hours = (until - OffsetDateTime::now_utc()).whole_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "{hours} minutes");
    // The secret is shown once: never on a read.
    let read = gw.get(&format!("/v1/endpoints/{id}")).await.body;
    assert!(read.get("secret").is_none(), "{read}");

    super::nevis_flow::start(&gw, "user-k1").await;
    pump(&gw).await;
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2);
    assert_eq!(verify_all(&old, &got)[0]["ok"], true);
    assert_eq!(verify_all(&new, &got)[0]["ok"], true);
    let stranger = idv::outbound::SigningSecret::generate().expose();
    assert_eq!(verify_all(&stranger, &got)[0]["ok"], false);

    // A day later the old secret no longer signs (a resend, sent with the real clock's time by
    // a sender whose clock is past the overlap: only the header is looked at).
    let event = got[0].id().to_owned();
    gw.post(&format!("/v1/events/{event}/resend"), &json!({}))
        .await;
    deliver::sweep(&gw.app_at(Duration::hours(25)))
        .await
        .unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id(), event, "a resend keeps the event's id");
    assert_eq!(got[1].headers["webhook-signature"].split(' ').count(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_run_killed_mid_batch_loses_nothing_and_repeats_carry_the_same_id() {
    let gw = gateway().await;
    let rx = Receiver::start().await;
    endpoint(&gw, &rx.url, json!([])).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(super::nevis_flow::start(&gw, &format!("user-m{i}")).await.0);
    }
    // The run stores two events, then the store fails under it: the batch reports the third
    // record, and the stream gives it (and what follows) again.
    let faulty = idv_tests::faulty::FaultyStore::new(gw.running.app.store.clone());
    faulty.fail_events_after(2, 1);
    let app = gw.app_with(faulty.clone(), Duration::ZERO);
    let first = gw.running.feed.lock().await.pump(&app).await.unwrap();
    assert_eq!(first.failed_batches, 1, "{first:?}");
    assert_eq!(rx.received().len(), 2);
    // The next run reads from the failed record on.
    pump(&gw).await;
    let got = rx.received();
    let distinct: std::collections::BTreeSet<String> =
        got.iter().map(|r| r.id().to_owned()).collect();
    assert_eq!(distinct.len(), 5, "one event per session created");
    assert_eq!(got.len(), 5);

    // Killed between sending and recording: the delivery stays leased, falls due when the
    // lease runs out, and is sent again under the same webhook-id.
    let (s, _, _) = super::nevis_flow::start(&gw, "user-m9").await;
    let real = idv::outbound::Sender::production(
        idv::outbound::Policy::Local,
        std::time::Duration::from_secs(5),
    );
    let hung = gw.app_sending_with(std::sync::Arc::new(SendThenHang(std::sync::Arc::new(real))));
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        gw.running.feed.lock().await.pump(&hung),
    )
    .await;
    let sent: Vec<_> = rx.received().into_iter().skip(5).collect();
    assert_eq!(sent.len(), 1, "sent once before the crash");
    // Nothing is due before the lease ends; after it, the sweep sends it again.
    deliver::sweep(&gw.app_at(Duration::seconds(30)))
        .await
        .unwrap();
    assert_eq!(rx.received().len(), 6);
    deliver::sweep(&gw.app_at(deliver::LEASE + Duration::seconds(1)))
        .await
        .unwrap();
    let again: Vec<_> = rx.received().into_iter().skip(5).collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].id(), again[1].id(), "a repeat carries the same id");
    assert_eq!(again[0].json()["data"]["session"]["id"], s.as_str());
    gw.stop().await;
}

/// A sender that sends, then never returns: the process dies before it records the attempt.
struct SendThenHang(std::sync::Arc<dyn idv::events::send::Post>);

#[async_trait::async_trait]
impl idv::events::send::Post for SendThenHang {
    async fn post(&self, m: &idv::events::send::Outgoing) -> idv::events::send::Answer {
        self.0.post(m).await;
        std::future::pending().await
    }
}

#[tokio::test]
async fn endpoints_and_events_are_the_tenants_own_and_bad_input_changes_nothing() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let rx = Receiver::start().await;
    let (id, _) = endpoint(&gw, &rx.url, json!(["session.verified"])).await;
    super::nevis_flow::start(&gw, "user-t1").await;
    gw.running.pump_events().await.unwrap();
    let mine = gw.get("/v1/events").await.body;
    let event = mine["data"][0]["id"].as_str().unwrap().to_owned();
    // Another tenant sees none of it.
    for path in [format!("/v1/endpoints/{id}"), format!("/v1/events/{event}")] {
        assert_eq!(gw.get_as(&gw.other_key, &path).await.status, 404, "{path}");
    }
    let theirs = gw.get_as(&gw.other_key, "/v1/endpoints").await.body;
    assert_eq!(theirs["data"], json!([]));
    let theirs = gw.get_as(&gw.other_key, "/v1/events").await.body;
    assert_eq!(theirs["data"], json!([]));
    let r = gw
        .post_as(
            &gw.other_key,
            &format!("/v1/endpoints/{id}/rotate_secret"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    // An endpoint of only session.verified got nothing for a creation.
    assert!(rx.received().is_empty());
    // Bad input: refused per field, nothing stored.
    let before = gw.snapshot().await;
    for body in [
        json!({}),
        json!({"url": "ftp://example.com/x"}),
        json!({"url": rx.url, "event_types": ["session.nope"]}),
        json!({"url": rx.url, "colour": "red"}),
        json!({"url": rx.url, "description": "x".repeat(300)}),
    ] {
        let r = gw.post("/v1/endpoints", &body).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert_eq!(gw.get("/v1/events?type=nope").await.status, 400);
    assert_eq!(gw.get("/v1/events?cursor=zzz").await.status, 400);
    assert_eq!(gw.get("/v1/events/evt_nothing").await.status, 404);
    assert_eq!(
        gw.snapshot().await,
        before,
        "a refused request changed the table"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_deployed_gateway_refuses_endpoints_it_must_not_call() {
    // Production policy (the deployed functions): https to public addresses only.
    let gw =
        Gateway::start_with(Backend::Memory, &[("IDV_OUTBOUND_ALLOW_LOOPBACK", "false")]).await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://169.254.169.254/",
        "https://10.0.0.1/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",
        "http://example.com/hook",
        "https://user:pw@example.com/hook",
    ] {
        let r = gw.post("/v1/endpoints", &json!({"url": url})).await;
        assert_eq!(r.status, 400, "{url}: {:?}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "url", "{url}");
    }
    let ok = gw
        .post(
            "/v1/endpoints",
            &json!({"url": "https://hooks.example.com/idv"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_holds_up_no_other() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_OUTBOUND_TIMEOUT_MS", "500")]).await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let rx = Receiver::start().await;
    let (silent_id, _) = endpoint(&gw, &silent_url, json!([])).await;
    endpoint(&gw, &rx.url, json!([])).await;
    for i in 0..3 {
        super::nevis_flow::start(&gw, &format!("user-h{i}")).await;
    }
    pump(&gw).await;
    assert_eq!(
        rx.received().len(),
        3,
        "the answering endpoint got every event"
    );
    // One sweep with all three due: the silent endpoint's first attempt times out, and the run
    // gives it no more (its other deliveries stay due), whatever the answering one does.
    let attempts_to_silent = || async {
        let events = gw.get("/v1/events").await.body;
        let mut n = 0;
        for e in events["data"].as_array().unwrap() {
            let one = gw
                .get(&format!("/v1/events/{}", e["id"].as_str().unwrap()))
                .await
                .body;
            let d = one["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["endpoint_id"] == silent_id.as_str())
                .unwrap()
                .clone();
            assert_eq!(d["state"], "pending", "{d}");
            for a in d["attempts"].as_array().unwrap() {
                assert_eq!(a["status"], Value::Null, "{a}");
                assert!(
                    a["error"].as_str().is_some_and(|e| e.contains("timed out")),
                    "{a}"
                );
                n += 1;
            }
        }
        n
    };
    let before = attempts_to_silent().await;
    let report = deliver::sweep(&gw.app_at(Duration::minutes(1)))
        .await
        .unwrap();
    assert_eq!(attempts_to_silent().await, before + 1, "{report:?}");
    assert_eq!(rx.received().len(), 3, "nothing twice to the answering one");
    hold.abort();
    gw.stop().await;
}
