//! `return_url` on a start (docs/api.md#return-url), over HTTP on DynamoDB Local against the
//! simulators: a provider that takes one gets it (Stripe's hosted page sends the user there,
//! Prove's Instant Link leads there), a bad one is refused naming the field, and a provider whose
//! flow has no page to return from refuses it; a refused start changes nothing.

use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};

async fn gateway() -> Gateway {
    Gateway::start(Backend::Dynamo).await
}

/// The one field error of a 400, as `(field, code)`.
fn field_error(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "invalid_request", "{}", r.body);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{}", r.body);
    (
        errors[0]["field"].as_str().unwrap().to_owned(),
        errors[0]["code"].as_str().unwrap().to_owned(),
    )
}

/// Where Stripe's hosted page (the simulator's) sends the user once the tester decides.
pub(crate) async fn stripe_page_sends_back_to(url: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 200);
    let r = http
        .post(url)
        .form(&[("action", "verify")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the page sends the user back");
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// How many sessions the tenant has: a refused start must add none.
async fn count(gw: &Gateway) -> usize {
    let r = gw.get("/v1/sessions?limit=100").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn stripe_sends_the_user_back_to_the_sessions_return_url() {
    let gw = gateway().await;
    for back in [
        "https://app.example:8443/verified?order=A-1#done",
        // The simulator's API is plain http on loopback: so may the way back be.
        "http://127.0.0.1:3000/back",
    ] {
        let r = gw
            .post(
                "/v1/sessions",
                &json!({"provider": "stripe", "user_id": "user-ru1", "return_url": back}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let page = r.body["client"]["url"].as_str().unwrap();
        assert_eq!(stripe_page_sends_back_to(page).await, back);
    }
    // Without one, Stripe's page has nowhere of the app's to go: the simulator says so.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-ru1", "return_url": null}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let back = stripe_page_sends_back_to(r.body["client"]["url"].as_str().unwrap()).await;
    assert!(!back.starts_with("http"), "{back}");
    gw.stop().await;
}

#[tokio::test]
async fn a_bad_return_url_is_refused_naming_it_and_nothing_is_started() {
    let gw = gateway().await;
    let long = format!("https://app.example/{}", "a".repeat(2048));
    let bad: [Value; 8] = [
        json!("http://app.example/back"),
        json!("https://user:secret@app.example/back"),
        json!("https://app.example/a b"),
        json!("javascript:alert(1)"),
        json!("http://10.0.0.7/back"),
        json!(long),
        json!(42),
        json!(""),
    ];
    let before = count(&gw).await;
    for url in bad {
        let r = gw
            .post(
                "/v1/sessions",
                &json!({"provider": "stripe", "user_id": "user-ru2", "return_url": url}),
            )
            .await;
        assert_eq!(
            field_error(&r),
            ("return_url".into(), "invalid_format".into()),
            "{url}"
        );
        assert!(
            !r.body.to_string().contains("secret@"),
            "the value is not echoed: {}",
            r.body
        );
    }
    assert_eq!(count(&gw).await, before, "nothing was started");
    gw.stop().await;
}

#[tokio::test]
async fn proves_instant_link_leads_to_the_return_url() {
    let gw = gateway().await;
    let back = "https://app.example/prove-done?s=1";
    let r = gw
        .start_prove(
            "user-ru3",
            "desktop",
            json!({"final_target_url": null, "return_url": back}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["client"]["auth_token"].as_str().unwrap().to_owned();
    // The simulator got it as the flow's finalTargetUrl: its Instant Link leads there.
    let done = gw.prove_authenticate(&token, "passed").await;
    assert_eq!(done["final_target_url"], back, "{done}");

    // Prove's own limits hold for it (128 characters; letters, digits and -._+=/:?) ...
    let long = format!("https://app.example/{}", "a".repeat(120));
    for url in [
        long.as_str(),
        "https://app.example/a#b",
        "http://127.0.0.1/back",
    ] {
        let r = gw
            .start_prove(
                "user-ru3",
                "desktop",
                json!({"final_target_url": null, "return_url": url}),
            )
            .await;
        assert_eq!(
            field_error(&r),
            ("return_url".into(), "invalid_format".into()),
            "{url}"
        );
    }
    // ... it is one of the two names, not both ...
    let r = gw
        .start_prove("user-ru3", "desktop", json!({"return_url": back}))
        .await;
    assert_eq!(
        field_error(&r),
        ("return_url".into(), "invalid_value".into())
    );
    // ... and Prove's mobile and no-possession flows have no page to return from.
    for possession in ["mobile", "none"] {
        let r = gw
            .start_prove("user-ru3", possession, json!({"return_url": back}))
            .await;
        assert_eq!(
            field_error(&r),
            ("return_url".into(), "not_supported".into()),
            "{possession}"
        );
    }
    gw.stop().await;
}

/// Under Unify (the deployment default: `IDV_PROVE_FLOW` unset), the desktop flow takes it as
/// `/v3/unify`'s `finalTargetUrl`, under the same rule; the other flows refuse it.
#[tokio::test]
async fn proves_unify_instant_link_leads_to_the_return_url() {
    let gw = Gateway::start_with(Backend::Dynamo, &[("IDV_PROVE_FLOW", "unify")]).await;
    let back = "https://app.example/unify-done?s=2";
    // Unify's test user who passes; Unify takes no names.
    let start = |possession: &str, url: &str| {
        json!({"provider": "prove", "user_id": "user-ru4", "phone_number": "+12001004014",
            "possession_type": possession, "return_url": url})
    };
    let r = gw.post("/v1/sessions", &start("desktop", back)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["client"]["auth_token"].as_str().unwrap().to_owned();
    let done = gw.prove_authenticate(&token, "passed").await;
    assert_eq!(done["final_target_url"], back, "{done}");
    let r = gw
        .post("/v1/sessions", &start("desktop", "https://app.example/a#b"))
        .await;
    assert_eq!(
        field_error(&r),
        ("return_url".into(), "invalid_format".into())
    );
    for possession in ["mobile", "none"] {
        let r = gw.post("/v1/sessions", &start(possession, back)).await;
        assert_eq!(
            field_error(&r),
            ("return_url".into(), "not_supported".into()),
            "{possession}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn providers_without_a_page_to_return_from_refuse_a_return_url() {
    let gw = gateway().await;
    let back = "https://app.example/back";
    let before = count(&gw).await;
    for (i, (path, body)) in [
        (
            "/v1/sessions",
            json!({"provider": "authento", "user_id": "user-ru4", "verification_type": "BASIC"}),
        ),
        (
            "/v1/tokens",
            json!({"user_id": "user-ru4", "verification_type": "BASIC"}),
        ),
        (
            "/v1/sessions",
            json!({"provider": "nevis", "user_id": "user-ru4"}),
        ),
        (
            "/v1/sessions",
            json!({"provider": "passbase", "user_id": "user-ru4"}),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut with = body.clone();
        with["return_url"] = json!(back);
        let r = gw.post(path, &with).await;
        assert_eq!(
            field_error(&r),
            ("return_url".into(), "not_supported".into()),
            "{path} {body}"
        );
        let detail = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(!detail.contains(back), "not echoed: {detail}");
        // Every other bad field is named beside it.
        let mut also = with.clone();
        also["user_id"] = json!("a b");
        let r = gw.post(path, &also).await;
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"return_url") && fields.contains(&"user_id"),
            "{}",
            r.body
        );
        // A null return_url is an absent one.
        with["return_url"] = Value::Null;
        with["user_id"] = json!(format!("user-ru4-{i}"));
        let r = gw.post(path, &with).await;
        assert_eq!(r.status, 201, "{path}: {}", r.body);
    }
    // Only the four without a return_url were started.
    assert_eq!(count(&gw).await, before + 4);
    gw.stop().await;
}
