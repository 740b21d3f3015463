//! Scoped API keys: each app route needs one scope; a key without it is refused with 403
//! `insufficient_scope` naming the scope, before anything is read or written; a key written
//! without `scopes` keeps what keys could do before scopes existed. Over HTTP, on DynamoDB Local.

use idv::http::routes;
use idv::http::scopes::Scope;
use idv::secrets::{ApiKeyEntry, SecretDoc};
use idv_tests::{Backend, Gateway, TENANT};
use serde_json::json;

/// Keys of `TENANT` as the secret document would hold them, parsed as the gateway parses it.
fn keys(scoped: &[(&str, Option<&[&str]>)]) -> Vec<ApiKeyEntry> {
    let entries: Vec<_> = scoped
        .iter()
        .map(|(key, scopes)| {
            let mut e = json!({"tenant": TENANT, "sha256": idv::http::auth::digest(key)});
            if let Some(s) = scopes {
                e["scopes"] = json!(s);
            }
            e
        })
        .collect();
    let doc = json!({"fingerprint_key": "f".repeat(32), "api_keys": entries});
    SecretDoc::parse(&doc.to_string())
        .expect("a valid secret document")
        .api_keys
}

const NONE: &str = "idv_sk_test_scopes_none";
const READ: &str = "idv_sk_test_scopes_read";
const WRITE: &str = "idv_sk_test_scopes_write";
const EVENTS: &str = "idv_sk_test_scopes_events";

async fn gateway() -> Gateway {
    Gateway::start_with_keys(
        Backend::Dynamo,
        &[],
        keys(&[
            (NONE, Some(&[])),
            (READ, Some(&["sessions:read"])),
            (WRITE, Some(&["sessions:write"])),
            (EVENTS, Some(&["events:read", "endpoints:read"])),
        ]),
    )
    .await
}

fn assert_forbidden(r: &idv_tests::Reply, scope: &str, what: &str) {
    assert_eq!(r.status, 403, "{what}: {:?}", r.body);
    assert_eq!(r.body["code"], "insufficient_scope", "{what}");
    assert_eq!(r.body["required_scope"], scope, "{what}");
    assert!(
        r.body["detail"].as_str().unwrap().contains(scope),
        "{what}: {:?}",
        r.body
    );
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{what}"
    );
}

#[tokio::test]
async fn a_key_without_the_routes_scope_gets_403_naming_it_on_every_app_route_and_nothing_changes()
{
    let gw = gateway().await;
    // Something to find: a session and an endpoint of the tenant, made with its implied key.
    let s = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-1"}),
        )
        .await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let id = s.body["id"].as_str().unwrap().to_owned();
    let before = gw.snapshot().await;
    let spec = crate::openapi::Spec::load();

    let mut checked = 0;
    for (method, template, _) in routes() {
        let path = template.replace("{id}", &id).replace("{user_id}", "user-1");
        let route = idv::http::Route::matching(&method.parse().unwrap(), &path).unwrap();
        let Some(scope) = route.scope() else {
            continue; // a provider's webhook: public, its dialect checks it
        };
        let req = gw
            .http
            .request(method.parse().unwrap(), gw.url(&path))
            .bearer_auth(NONE)
            .header("idempotency-key", format!("scopes-{checked}"))
            .json(
                &json!({"provider": "nevis", "user_id": "user-2", "url": "https://example.com/"}),
            );
        let r = gw.send(req).await;
        assert_forbidden(&r, scope.as_str(), &format!("{method} {template}"));
        spec.assert_conforms(method, template, &r);
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} app routes");
    assert_eq!(
        gw.snapshot().await,
        before,
        "a refused request changed the table"
    );
    // The Idempotency-Keys the refused requests carried were never taken.
    let again = gw
        .send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "scopes-0")
                .json(&json!({"provider": "nevis", "user_id": "user-3"})),
        )
        .await;
    assert_eq!(again.status, 201, "{:?}", again.body);
}

#[tokio::test]
async fn each_scope_opens_its_routes_only() {
    let gw = gateway().await;
    // sessions:write starts and cancels, but cannot read back.
    let s = gw
        .post_as(
            WRITE,
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-1"}),
        )
        .await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let id = s.body["id"].as_str().unwrap().to_owned();
    let r = gw.get_as(WRITE, &format!("/v1/sessions/{id}")).await;
    assert_forbidden(&r, "sessions:read", "write key reads");

    // sessions:read reads (the session is the tenant's, whichever key made it) but cannot start.
    let r = gw
        .get_as(READ, &format!("/v1/sessions/{id}?refresh=false"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = gw.get_as(READ, "/v1/users/user-1/sessions").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["id"], id.as_str());
    let r = gw
        .post_as(
            READ,
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-1"}),
        )
        .await;
    assert_forbidden(&r, "sessions:write", "read key starts");
    for what in ["cancel", "resume", "retry"] {
        let r = gw
            .post_as(READ, &format!("/v1/sessions/{id}/{what}"), &json!({}))
            .await;
        assert_forbidden(&r, "sessions:write", &format!("read key: {what}"));
    }
    // sessions:write resumes; a canceled session it retries.
    let r = gw
        .post_as(WRITE, &format!("/v1/sessions/{id}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // events:read + endpoints:read list, but neither add an endpoint nor read sessions.
    assert_eq!(gw.get_as(EVENTS, "/v1/events").await.status, 200);
    assert_eq!(gw.get_as(EVENTS, "/v1/endpoints").await.status, 200);
    let r = gw
        .post_as(
            EVENTS,
            "/v1/endpoints",
            &json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_forbidden(&r, "endpoints:write", "events key adds an endpoint");
    let r = gw.get_as(EVENTS, &format!("/v1/sessions/{id}")).await;
    assert_forbidden(&r, "sessions:read", "events key reads a session");

    // A key written without scopes keeps all it had, and an unknown key is still 401, not 403.
    let r = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = gw
        .post_as(WRITE, &format!("/v1/sessions/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = gw.get_as("idv_sk_test_unknown", "/v1/events").await;
    assert_eq!(r.status, 401, "{:?}", r.body);
}

#[test]
fn keys_without_scopes_have_the_implied_ones_and_unknown_scopes_are_refused_by_name() {
    let implied = &keys(&[("k", None)])[0];
    for s in Scope::ALL {
        assert_eq!(implied.scopes.allows(s), Scope::IMPLIED.contains(&s), "{s}");
    }
    let doc = json!({"fingerprint_key": "f".repeat(32), "api_keys": [
        {"tenant": TENANT, "sha256": idv::http::auth::digest("k"), "scopes": ["sessions:read", "verified-data:read"]}
    ]});
    let e = SecretDoc::parse(&doc.to_string()).unwrap_err();
    assert!(
        e.contains("api_keys[0]") && e.contains("\"verified-data:read\""),
        "{e}"
    );
}
