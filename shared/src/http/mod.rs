//! HTTP: one request/response shape for Lambda and the local server, the route table, API-key
//! authentication, and the one place where errors become problem+json.

pub mod auth;
mod handlers;
pub mod lambda;
pub mod problem;
pub mod routes;
pub mod scopes;
pub(crate) mod views;

pub use handlers::handle;
pub use routes::{Function, Route, routes};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Bodies over this are refused with 413 before any parsing (docs/api.md#limits).
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Without query and without an API Gateway stage prefix.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
        raw.map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self::with_type(
            status,
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }

    /// No body (204).
    pub fn empty(status: StatusCode) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        ApiResponse {
            status,
            headers,
            body: Bytes::new(),
        }
    }

    pub fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        // Session bodies and tokens must not sit in shared caches.
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        ApiResponse {
            status,
            headers,
            body: Bytes::from(body),
        }
    }
}
