//! `GET /v1/sessions` (docs/api.md#listing) over HTTP on DynamoDB Local, with sessions of every
//! provider made through the simulators: each filter alone and combined lists exactly the
//! sessions it wants, newest first, page by page; another tenant's sessions are never listed,
//! neither through its cursors nor through a cursor crafted to name one of them; bad filters are
//! refused naming the parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// A session as the test made it, read back as stored.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    tenant: &'static str,
    user: String,
    provider: String,
    status: String,
    created_at: String,
}

struct Fixture {
    gw: Gateway,
    /// In creation order (each made after the previous one answered).
    made: Vec<Made>,
}

impl Fixture {
    fn key(&self, tenant: &str) -> &str {
        if tenant == "a" {
            &self.gw.key
        } else {
            &self.gw.other_key
        }
    }

    async fn make(&mut self, tenant: &'static str, path: &str, body: Value) -> String {
        let key = self.key(tenant).to_owned();
        let r = self.gw.post_as(&key, path, &body).await;
        assert_eq!(r.status, 201, "{path} {body}: {}", r.body);
        let id = r.body["id"]
            .as_str()
            .or(r.body["session"]["id"].as_str())
            .unwrap()
            .to_owned();
        self.made.push(Made {
            id: id.clone(),
            tenant,
            user: body["user_id"].as_str().unwrap().to_owned(),
            provider: String::new(),
            status: String::new(),
            created_at: String::new(),
        });
        id
    }

    /// Every session's provider, status and creation time as stored (read one by one, not
    /// listed).
    async fn settle(&mut self) {
        for m in &mut self.made {
            let key = if m.tenant == "a" {
                &self.gw.key
            } else {
                &self.gw.other_key
            };
            let r = self
                .gw
                .get_as(key, &format!("/v1/sessions/{}?refresh=false", m.id))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            m.provider = r.body["provider"].as_str().unwrap().to_owned();
            m.status = r.body["status"].as_str().unwrap().to_owned();
            m.created_at = r.body["created_at"].as_str().unwrap().to_owned();
        }
    }

    /// What a listing of `tenant` must answer: its sessions `wanted` keeps, newest first.
    fn expect(&self, tenant: &str, wanted: impl Fn(&Made) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .made
            .iter()
            .filter(|m| m.tenant == tenant && wanted(m))
            .map(|m| m.id.clone())
            .collect();
        ids.reverse();
        ids
    }

    /// Every session a listing answers, following `next_cursor` (pages of `limit`).
    async fn list(&self, tenant: &str, query: &[(&str, &str)], limit: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", limit));
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let r = self.get(tenant, &q).await;
            assert_eq!(r.status, 200, "{query:?}: {}", r.body);
            assert_eq!(r.body["object"], "list");
            for s in r.body["data"].as_array().unwrap() {
                assert_eq!(s["object"], "verification_session");
                ids.push(s["id"].as_str().unwrap().to_owned());
            }
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
        panic!("{query:?}: the cursor does not lead to the end");
    }

    async fn get(&self, tenant: &str, query: &[(&str, &str)]) -> Reply {
        self.gw
            .send(
                self.gw
                    .http
                    .get(self.gw.url("/v1/sessions"))
                    .query(query)
                    .bearer_auth(self.key(tenant)),
            )
            .await
    }
}

/// Sessions of every provider and of several statuses, in three batches a second apart, for
/// two tenants with the same user ids.
async fn fixture() -> Fixture {
    let gw = Gateway::start(Backend::Dynamo).await;
    let mut f = Fixture {
        gw,
        made: Vec::new(),
    };
    let prove = |user: &str| {
        json!({"provider": "prove", "user_id": user, "phone_number": "+12001004011",
               "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "none"})
    };
    // Batch 1: verified and failed at Authento, a Prove verified at once, a canceled Passbase.
    f.make(
        "a",
        "/v1/tokens",
        json!({"user_id": "user-l1", "verification_type": "BASIC"}),
    )
    .await;
    f.gw.authento("user-l1", "BASIC", "approve", true).await;
    f.make(
        "a",
        "/v1/tokens",
        json!({"user_id": "user-l2", "verification_type": "POA"}),
    )
    .await;
    f.gw.authento("user-l2", "POA", "reject", true).await;
    f.make("a", "/v1/sessions", prove("user-l2")).await;
    f.make("b", "/v1/sessions", prove("user-l1")).await;
    let pb = f
        .make(
            "a",
            "/v1/sessions",
            json!({"provider": "passbase", "user_id": "user-l3"}),
        )
        .await;
    let r =
        f.gw.post(&format!("/v1/sessions/{pb}/cancel"), &json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Whole seconds apart: the creation-time filters compare with `created_at` as shown.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Batch 2: open sessions at Nevis and Stripe, and the other tenant's.
    f.make(
        "a",
        "/v1/sessions",
        json!({"provider": "nevis", "user_id": "user-l1"}),
    )
    .await;
    f.make(
        "b",
        "/v1/sessions",
        json!({"provider": "nevis", "user_id": "user-l1"}),
    )
    .await;
    f.make(
        "a",
        "/v1/sessions",
        json!({"provider": "stripe", "user_id": "user-l3"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Batch 3.
    f.make(
        "a",
        "/v1/sessions",
        json!({"provider": "stripe", "user_id": "user-l1"}),
    )
    .await;
    f.make(
        "b",
        "/v1/sessions",
        json!({"provider": "stripe", "user_id": "user-l3"}),
    )
    .await;
    f.make("a", "/v1/sessions", prove("user-l1")).await;
    f.settle().await;
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_lists_exactly_the_tenants_sessions_it_wants_newest_first() {
    let f = fixture().await;
    let a: Vec<&Made> = f.made.iter().filter(|m| m.tenant == "a").collect();
    let statuses: std::collections::BTreeSet<&str> = a.iter().map(|m| m.status.as_str()).collect();
    for s in ["verified", "failed", "canceled", "pending"] {
        assert!(statuses.contains(s), "the fixture has a {s} session: {a:?}");
    }
    // Batches by creation second: 1 before the first sleep, 2 between, 3 after.
    let batch2_first = f.made.iter().find(|m| m.provider == "nevis").unwrap();
    let batch3_first = f
        .made
        .iter()
        .find(|m| m.provider == "stripe" && m.user == "user-l1")
        .unwrap();
    let batch1_last = f.made.iter().rfind(|m| m.provider == "passbase").unwrap();
    let (t1, t2, t3) = (
        batch1_last.created_at.clone(),
        batch2_first.created_at.clone(),
        batch3_first.created_at.clone(),
    );
    assert!(t1 < t2 && t2 < t3, "{t1} {t2} {t3}");

    type Want = Box<dyn Fn(&Made) -> bool>;
    let cases: Vec<(Vec<(&str, &str)>, Want)> = vec![
        (vec![], Box::new(|_| true)),
        (
            vec![("status", "verified")],
            Box::new(|m| m.status == "verified"),
        ),
        (
            vec![("status", "pending")],
            Box::new(|m| m.status == "pending"),
        ),
        (
            vec![("status", "canceled")],
            Box::new(|m| m.status == "canceled"),
        ),
        (vec![("status", "expired")], Box::new(|_| false)),
        (
            vec![("provider", "stripe")],
            Box::new(|m| m.provider == "stripe"),
        ),
        (
            vec![("provider", "prove")],
            Box::new(|m| m.provider == "prove"),
        ),
        (
            vec![("user_id", "user-l1")],
            Box::new(|m| m.user == "user-l1"),
        ),
        (vec![("user_id", "user-nobody")], Box::new(|_| false)),
        (
            vec![("user_id", "user-l1"), ("provider", "stripe")],
            Box::new(|m| m.user == "user-l1" && m.provider == "stripe"),
        ),
        (
            vec![("user_id", "user-l2"), ("status", "verified")],
            Box::new(|m| m.user == "user-l2" && m.status == "verified"),
        ),
        (
            vec![("provider", "authento"), ("status", "failed")],
            Box::new(|m| m.provider == "authento" && m.status == "failed"),
        ),
        (
            vec![("created_after", t1.as_str())],
            Box::new({
                let t1 = t1.clone();
                move |m| m.created_at > t1
            }),
        ),
        (
            vec![("created_before", t2.as_str())],
            Box::new({
                let t2 = t2.clone();
                move |m| m.created_at < t2
            }),
        ),
        (
            vec![
                ("created_after", t1.as_str()),
                ("created_before", t3.as_str()),
            ],
            Box::new({
                let (t1, t3) = (t1.clone(), t3.clone());
                move |m| m.created_at > t1 && m.created_at < t3
            }),
        ),
        (
            vec![
                ("created_after", t1.as_str()),
                ("provider", "stripe"),
                ("user_id", "user-l3"),
            ],
            Box::new({
                let t1 = t1.clone();
                move |m| m.created_at > t1 && m.provider == "stripe" && m.user == "user-l3"
            }),
        ),
        // An empty range: nothing, and no cursor.
        (
            vec![
                ("created_after", t3.as_str()),
                ("created_before", t1.as_str()),
            ],
            Box::new(|_| false),
        ),
    ];
    for (query, wanted) in &cases {
        let want = f.expect("a", wanted);
        for limit in ["1", "2", "100"] {
            assert_eq!(
                f.list("a", query, limit).await,
                want,
                "{query:?} limit {limit}"
            );
        }
    }
    // A time with an offset is the same instant.
    let t1_plus_one = {
        let t = time::OffsetDateTime::parse(&t1, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .to_offset(time::macros::offset!(+01:00));
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(
        f.list("a", &[("created_after", t1_plus_one.as_str())], "100")
            .await,
        f.expect("a", |m| m.created_at > t1)
    );
    // Each answer is the session as a read shows it (a read adds a Prove session's identity
    // events).
    let r = f.get("a", &[("limit", "100")]).await;
    for listed in r.body["data"].as_array().unwrap() {
        let id = listed["id"].as_str().unwrap();
        let read = f.gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
        for (k, v) in listed.as_object().unwrap() {
            assert_eq!(&read.body[k], v, "{id}: {k}");
        }
    }
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_sessions_are_never_listed_not_even_through_a_crafted_cursor() {
    let f = fixture().await;
    for (tenant, other) in [("a", "b"), ("b", "a")] {
        let mine = f.expect(tenant, |_| true);
        assert_eq!(f.list(tenant, &[], "2").await, mine);
        // The same user ids at the other tenant: only this tenant's.
        assert_eq!(
            f.list(tenant, &[("user_id", "user-l1")], "1").await,
            f.expect(tenant, |m| m.user == "user-l1")
        );
        let theirs = f.expect(other, |_| true);
        assert!(mine.iter().all(|id| !theirs.contains(id)));
    }
    // B's cursor is no cursor of A's listing: 400 naming `cursor`, nothing listed.
    let b_page = f.get("b", &[("limit", "1")]).await;
    let b_cursor = b_page.body["next_cursor"].as_str().unwrap().to_owned();
    let r = f.get("a", &[("limit", "1"), ("cursor", &b_cursor)]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "cursor", "{}", r.body);
    assert!(r.body.get("data").is_none());
    // Nor is a cursor of A's own listing with other filters.
    let a_page = f.get("a", &[("limit", "1")]).await;
    let a_cursor = a_page.body["next_cursor"].as_str().unwrap().to_owned();
    let r = f
        .get(
            "a",
            &[
                ("limit", "1"),
                ("status", "verified"),
                ("cursor", &a_cursor),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "cursor", "{}", r.body);
    // A cursor of A's listing altered to stand at one of B's sessions (its tag left as it
    // was): it only positions A's own listing, which never holds B's sessions.
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&a_cursor).unwrap()).unwrap();
    let parts: Vec<&str> = raw.split('|').collect();
    assert_eq!(parts.len(), 4, "{raw}");
    let theirs = f.expect("b", |_| true);
    let by_id: HashMap<&str, &Made> = f.made.iter().map(|m| (m.id.as_str(), m)).collect();
    for b_id in &theirs {
        let crafted =
            URL_SAFE_NO_PAD.encode(format!("{}|{}|{b_id}|{}", parts[0], parts[1], parts[3]));
        let r = f.get("a", &[("limit", "100"), ("cursor", &crafted)]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for s in r.body["data"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap();
            assert_eq!(by_id[id].tenant, "a", "{} listed to A", by_id[id].id);
        }
    }
    // Its tag altered: refused.
    let tampered = URL_SAFE_NO_PAD.encode(format!(
        "{}|{}|{}|{}",
        parts[0],
        parts[1],
        parts[2],
        "0".repeat(16)
    ));
    let r = f.get("a", &[("limit", "1"), ("cursor", &tampered)]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    f.gw.stop().await;
}

#[tokio::test]
async fn bad_filters_are_refused_naming_each_parameter() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let get = |q: &'static [(&'static str, &'static str)]| {
        gw.send(
            gw.http
                .get(gw.url("/v1/sessions"))
                .query(q)
                .bearer_auth(&gw.key),
        )
    };
    let r = get(&[
        ("status", "done"),
        ("provider", "acme"),
        ("user_id", "a b"),
        ("created_after", "yesterday"),
        ("created_before", "2026-11-21"),
    ])
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{:?}",
        r.headers
    );
    let mut fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_after",
            "created_before",
            "provider",
            "status",
            "user_id"
        ]
    );
    for (q, field) in [
        (&[("limit", "0")][..], "limit"),
        (&[("limit", "101")][..], "limit"),
        (&[("cursor", "garbage")][..], "cursor"),
    ] {
        let r = gw
            .send(
                gw.http
                    .get(gw.url("/v1/sessions"))
                    .query(q)
                    .bearer_auth(&gw.key),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.body);
    }
    let r = gw.send(gw.http.get(gw.url("/v1/sessions"))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    gw.stop().await;
}
