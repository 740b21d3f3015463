//! The outbound transport checked by an independent implementation: the `standardwebhooks`
//! package from PyPI (pinned in scripts/requirements-tools.txt) verifies what `idv::outbound`'s
//! production sender actually put on the wire to a receiver on loopback, including the
//! two-signature header of a secret rotation.

use idv::outbound::{Message, Outcome, Policy, Sender, SigningSecret};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use idv_tests::receiver::{Receiver, VERIFY, run_python};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn standardwebhooks_verifies_deliveries_with_either_secret_of_a_rotation() {
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let old = SigningSecret::generate();
    let new = SigningSecret::generate();
    let stranger = SigningSecret::generate();
    let body =
        json!({"type": "session.verified", "data": {"id": "ses_1", "version": 3}}).to_string();
    let sender = Sender::production(Policy::Local, Duration::from_secs(5));
    let one = Message {
        id: "evt_one".into(),
        timestamp: now(),
        body: body.clone().into(),
        url: url.parse().unwrap(),
        secrets: vec![old.clone()],
    };
    // During a rotation: both secrets sign, the new one first. Sent twice (a retry: same id,
    // this attempt's timestamp).
    let rotating = Message {
        id: "evt_two".into(),
        secrets: vec![new.clone(), old.clone()],
        ..one.clone()
    };
    for msg in [&one, &rotating, &rotating] {
        let attempt = sender.send(msg).await;
        assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
        assert_eq!(attempt.status, Some(204));
    }
    let seen: Vec<_> = rx
        .received()
        .into_iter()
        .map(|r| (r.headers, r.body))
        .collect();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].0["webhook-id"], "evt_one");
    assert_eq!(seen[1].0["webhook-id"], "evt_two");
    assert_eq!(seen[2].0["webhook-id"], "evt_two");
    assert_eq!(seen[1].0["webhook-signature"].split(' ').count(), 2);

    let mut cases = Vec::new();
    let mut want = Vec::new();
    let mut case = |headers: &BTreeMap<String, String>, body: &str, secret: &SigningSecret, ok| {
        cases.push(json!({"headers": headers, "body": body, "secret": secret.expose()}));
        want.push(ok);
    };
    // One secret: its holder verifies, nobody else does.
    case(&seen[0].0, &seen[0].1, &old, true);
    case(&seen[0].0, &seen[0].1, &new, false);
    // The rotation: a receiver holding only the old or only the new secret verifies, on both
    // attempts; a stranger does not; a tampered body does not.
    for (headers, body) in &seen[1..] {
        case(headers, body, &old, true);
        case(headers, body, &new, true);
        case(headers, body, &stranger, false);
        case(headers, &body.replace("verified", "failed"), &old, false);
        case(headers, &body.replace("verified", "failed"), &new, false);
    }
    let results = tokio::task::spawn_blocking(move || run_python(VERIFY, &Value::from(cases)))
        .await
        .unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), want.len());
    for (i, (r, ok)) in results.iter().zip(want).enumerate() {
        assert_eq!(r["ok"], ok, "case {i}: {r}");
        if ok {
            assert_eq!(r["type"], "session.verified");
        } else {
            assert_eq!(r["error"], "No matching signature found", "case {i}");
        }
    }
}

#[tokio::test]
async fn standardwebhooks_refuses_a_delivery_whose_timestamp_is_stale() {
    // The sender stamps what the caller says is now; a message stamped 10 minutes ago is
    // refused by the package (±5 min), which shows the timestamp is signed and checked.
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let secret = SigningSecret::generate();
    let msg = Message {
        id: "evt_stale".into(),
        timestamp: now() - 600,
        body: json!({"type": "session.verified"}).to_string().into(),
        url: url.parse().unwrap(),
        secrets: vec![secret.clone()],
    };
    let attempt = Sender::production(Policy::Local, Duration::from_secs(5))
        .send(&msg)
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered);
    let first = rx.received().remove(0);
    let (headers, body) = (first.headers, first.body);
    let cases = json!([{"headers": headers, "body": body, "secret": secret.expose()}]);
    let results = tokio::task::spawn_blocking(move || run_python(VERIFY, &cases))
        .await
        .unwrap();
    assert_eq!(results[0]["ok"], false);
    assert_eq!(results[0]["error"], "Message timestamp too old");
}
