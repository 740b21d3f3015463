//! The gateway's routes on axum: each request becomes the same `ApiRequest` a Lambda function
//! gets, and goes through the same `idv::http::handle`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use idv::deadline::{function_timeout, handle_before};
use idv::http::routes::DEFAULT_ROUTE_FUNCTION;
use idv::http::{ApiRequest, ApiResponse, MAX_BODY, Route, problem};
use idv::{App, Error};
use std::sync::Arc;

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(serve)
        .with_state(app)
}

async fn serve(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Read one byte past the limit, so that the handler sees an oversized body and answers 413.
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY + 1).await else {
        return to_axum(problem::response(&Error::PayloadTooLarge {
            limit: MAX_BODY,
        }));
    };
    // As on API Gateway: a request no route matches goes to the `$default` route's function,
    // which answers 404 or 405.
    let function = Route::matching(&parts.method, parts.uri.path())
        .map_or(DEFAULT_ROUTE_FUNCTION, |r| r.function());
    let req = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: ApiRequest::parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    // Lambda gives each invocation its deadline; here it is the function's timeout (or
    // IDV_REQUEST_TIMEOUT_MS), counted from the request's arrival.
    let until = tokio::time::Instant::now()
        + app
            .config
            .request_timeout
            .unwrap_or_else(|| function_timeout(function));
    to_axum(handle_before(&app, function, req, until).await)
}

fn to_axum(resp: ApiResponse) -> Response {
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}
