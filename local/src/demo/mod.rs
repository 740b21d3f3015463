//! The demo app at `/`: a plain HTML/CSS/JS page (no build step, embedded in the binary) that
//! does what an app does with the public API: start a session, send the user to the provider's
//! step, watch the session, list the user's sessions, cancel. It doubles as example integration
//! code. Only `idv-local` serves it: it injects the local API key into the page, which a real app
//! must never do (the key belongs on the app's backend).

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");
/// Where the page's key goes; empty when the keys come from a secrets file (the page asks).
const KEY_SLOT: &str = "{{API_KEY}}";

/// The demo's routes. `gateway` answers every other method on them, so that `POST /` is still
/// the API's 404 problem, as on API Gateway.
pub fn router(api_key: Option<&str>, gateway: Router) -> Router {
    let with_key = INDEX.replace(
        KEY_SLOT,
        &crate::sandbox::html_escape(api_key.unwrap_or_default()),
    );
    let without_key = INDEX.replace(KEY_SLOT, "");
    let page = move |headers: HeaderMap| {
        let index = if is_loopback_host(&headers) {
            with_key.clone()
        } else {
            without_key.clone()
        };
        async move { asset("text/html; charset=utf-8", index) }
    };
    Router::new()
        .route("/", get(page).fallback_service(gateway.clone()))
        .route(
            "/demo/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT.to_owned()) })
                .fallback_service(gateway.clone()),
        )
        .route(
            "/demo/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE.to_owned()) })
                .fallback_service(gateway),
        )
}

/// Only a page asked for by a loopback name carries the key: a web site whose own name resolves
/// to 127.0.0.1 (DNS rebinding) reads the page as same-origin, and must not find the key in it.
fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The page holds the API key: never cached, never framed, no inline code.
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn app() -> Router {
        let gateway = Router::new().fallback(|| async { StatusCode::NOT_FOUND });
        router(Some("idv_sk_<key>"), gateway)
    }

    async fn page(host: Option<&str>) -> String {
        let mut request = Request::get("/");
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let r = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn only_a_loopback_host_gets_the_key() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(
                page(Some(host)).await.contains("idv_sk_&lt;key&gt;"),
                "{host}"
            );
        }
        for host in [
            "attacker.example:8080",
            "127.0.0.1.attacker.example",
            "localhost.",
            "",
        ] {
            let body = page(Some(host)).await;
            assert!(!body.contains("idv_sk_"), "{host}");
            assert!(body.contains("name=\"idv-api-key\" content=\"\""), "{host}");
        }
        assert!(!page(None).await.contains("idv_sk_"));
    }

    #[tokio::test]
    async fn serves_the_page_with_the_key_escaped_and_leaves_other_methods_to_the_gateway() {
        let r = app()
            .oneshot(
                Request::get("/")
                    .header(header::HOST, "127.0.0.1:8080")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("content=\"idv_sk_&lt;key&gt;\""), "{body}");
        assert!(!body.contains(KEY_SLOT));
        for (method, path) in [("POST", "/"), ("DELETE", "/demo/app.js")] {
            let r = app()
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(path)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
        let js = app()
            .oneshot(Request::get("/demo/app.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            js.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }
}
