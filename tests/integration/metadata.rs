//! `metadata` on a session (docs/api.md#metadata), on DynamoDB Local: stored once with the
//! session for every provider, shown on every read and in outbound event bodies; bad metadata
//! is a 400 naming the field, and nothing is written.

use idv_tests::receiver::Receiver;
use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};

fn sid(r: &Value) -> String {
    r["id"].as_str().expect("session id").to_owned()
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

/// The session's item as stored: its `md` attribute, as key -> value.
async fn stored_metadata(gw: &Gateway, id: &str) -> Option<Vec<(String, String)>> {
    let snapshot = gw.snapshot().await;
    let item = snapshot
        .get(&format!("SES#{id}|SES"))
        .expect("the session item");
    let md = item.get("md")?.as_m().expect("md is a map");
    let mut out: Vec<_> = md
        .iter()
        .map(|(k, v)| (k.clone(), v.as_s().expect("a string value").clone()))
        .collect();
    out.sort();
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_round_trips_for_two_providers_and_is_shown_on_reads_and_events() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let rx = Receiver::start().await;
    let r = gw
        .post(
            "/v1/endpoints",
            &json!({"url": rx.url, "event_types": [], "description": "metadata"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Nevis through `POST /v1/sessions`.
    let meta = json!({"order_id": "ord_123", "plan": "gold", "empty": ""});
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-md", "metadata": meta}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["metadata"], meta);
    let nevis = sid(&r.body);

    // Authento through `POST /v1/tokens`.
    let token_meta = json!({"k": "x".repeat(500)});
    let r = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "user-md", "verification_type": "BASIC", "metadata": token_meta}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["session"]["metadata"], token_meta);
    let authento = sid(&r.body["session"]);

    // A session without metadata shows `{}` and its item has no attribute for it.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-md"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["metadata"], json!({}));
    let bare = sid(&r.body);
    assert_eq!(stored_metadata(&gw, &bare).await, None);

    // Stored on the item, as a map of strings.
    assert_eq!(
        stored_metadata(&gw, &nevis).await.unwrap(),
        [
            ("empty".to_owned(), String::new()),
            ("order_id".to_owned(), "ord_123".to_owned()),
            ("plan".to_owned(), "gold".to_owned()),
        ]
    );
    assert_eq!(
        stored_metadata(&gw, &authento).await.unwrap(),
        [("k".to_owned(), "x".repeat(500))]
    );

    // Shown on a read (refreshed from the provider, and stored) and on the user's list.
    for refresh in ["", "?refresh=false"] {
        let r = gw.get(&format!("/v1/sessions/{nevis}{refresh}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["metadata"], meta);
        let r = gw.get(&format!("/v1/sessions/{authento}{refresh}")).await;
        assert_eq!(r.body["metadata"], token_meta);
    }
    let list = gw.get("/v1/users/user-md/sessions").await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let by_id = |id: &str| {
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))["metadata"]
            .clone()
    };
    assert_eq!(by_id(&nevis), meta);
    assert_eq!(by_id(&authento), token_meta);
    assert_eq!(by_id(&bare), json!({}));

    // A status change keeps it (an update never touches it), and its event carries it.
    gw.authento("user-md", "BASIC", "open", true).await;
    gw.authento("user-md", "BASIC", "approve", true).await;
    assert_eq!(
        gw.get(&format!("/v1/sessions/{authento}?refresh=false"))
            .await
            .body["status"],
        "verified"
    );
    assert_eq!(
        stored_metadata(&gw, &authento).await.unwrap(),
        [("k".to_owned(), "x".repeat(500))]
    );
    gw.running.pump_events().await.expect("notify pump");
    let events: Vec<Value> = rx.received().iter().map(|r| r.json()).collect();
    let of = |id: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["data"]["session"]["id"] == id)
            .collect()
    };
    let nevis_events = of(&nevis);
    assert!(!nevis_events.is_empty(), "{events:?}");
    for e in nevis_events {
        assert_eq!(e["data"]["session"]["metadata"], meta, "{e}");
    }
    let authento_events = of(&authento);
    assert!(
        authento_events
            .iter()
            .any(|e| e["data"]["session"]["status"] == "verified"),
        "{events:?}"
    );
    for e in authento_events {
        assert_eq!(e["data"]["session"]["metadata"], token_meta, "{e}");
    }
    for e in of(&bare) {
        assert_eq!(e["data"]["session"]["metadata"], json!({}), "{e}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_or_replayed_session_keeps_its_first_metadata() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let first = json!({"try": "1"});
    let body =
        |m: &Value| json!({"user_id": "user-mr", "verification_type": "BASIC", "metadata": m});
    let a = gw.post("/v1/tokens", &body(&first)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    // The same user and type reuse the open session: its metadata stays the first.
    let b = gw.post("/v1/tokens", &body(&json!({"try": "2"}))).await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    assert_eq!(sid(&b.body["session"]), sid(&a.body["session"]));
    assert_eq!(b.body["session"]["metadata"], first);

    // A replay under the same Idempotency-Key answers the same session, metadata and all.
    let p = json!({"provider": "nevis", "user_id": "user-mr", "metadata": {"a": "b"}});
    let one = post_with_key(&gw, "/v1/sessions", "md-key-1", &p).await;
    assert_eq!(one.status, 201, "{:?}", one.body);
    let two = post_with_key(&gw, "/v1/sessions", "md-key-1", &p).await;
    assert_eq!(two.status, 201, "{:?}", two.body);
    assert_eq!(sid(&two.body), sid(&one.body));
    assert_eq!(two.body["metadata"], json!({"a": "b"}));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_a_400_naming_the_field_and_writes_nothing() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let too_many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (Value::Object(too_many), "metadata", "invalid_value"),
        (json!({ "k".repeat(41): "v" }), "metadata", "invalid_value"),
        (
            json!({"note": "v".repeat(501)}),
            "metadata.note",
            "invalid_value",
        ),
        (json!({"n": 42}), "metadata.n", "invalid_type"),
        (json!({"o": {"x": "y"}}), "metadata.o", "invalid_type"),
        (json!(["a", "b"]), "metadata", "invalid_type"),
        (json!("order=1"), "metadata", "invalid_type"),
    ];
    let before = gw.snapshot().await;
    for (m, field, code) in &cases {
        let starts = [
            (
                "/v1/sessions",
                json!({"provider": "nevis", "user_id": "user-bad", "metadata": m}),
            ),
            (
                "/v1/sessions",
                json!({"provider": "stripe", "user_id": "user-bad", "metadata": m}),
            ),
            (
                "/v1/tokens",
                json!({"user_id": "user-bad", "verification_type": "BASIC", "metadata": m}),
            ),
        ];
        for (path, body) in starts {
            let r = gw.post(path, &body).await;
            assert_eq!(r.status, 400, "{path} {body}: {:?}", r.body);
            assert_eq!(r.body["code"], "invalid_request", "{:?}", r.body);
            let errors = r.body["errors"].as_array().expect("errors[]");
            assert!(
                errors
                    .iter()
                    .any(|e| e["field"] == *field && e["code"] == *code),
                "{path} {m}: {errors:?}"
            );
        }
    }
    // Bad metadata and a bad provider field are named together, in one answer.
    let r = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "user-bad", "verification_type": "NOPE", "metadata": {"n": 1}}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"verification_type") && fields.contains(&"metadata.n"),
        "{fields:?}"
    );
    assert_eq!(gw.snapshot().await, before, "nothing written");
    gw.stop().await;
}
