//! The Lambda side: API Gateway HTTP API events in, the same `handle` as the local server.

use super::{ApiRequest, ApiResponse, Function};
use crate::App;
use crate::deadline::{self, handle_before};
use lambda_http::{Body, RequestExt, service_fn};
use std::convert::Infallible;
use std::sync::Arc;

pub type LambdaError = lambda_http::Error;

/// What a function's `main` calls with its own binary name: logs, config and clients once per
/// container, then serve the routes of that function.
pub async fn run(binary: &str) -> Result<(), LambdaError> {
    let function = Function::named(binary)
        .ok_or_else(|| format!("{binary} is not a function of this gateway (http::routes)"))?;
    let app = App::for_lambda(function).await?;
    lambda_http::run(service_fn(move |req: lambda_http::Request| {
        let app = Arc::clone(&app);
        // The invocation's deadline: answered 503 problem+json before it, not killed at it.
        let until = req.lambda_context_ref().map_or_else(
            || tokio::time::Instant::now() + deadline::function_timeout(function),
            |ctx| deadline::instant_of(ctx.deadline(), function),
        );
        async move {
            let resp = handle_before(&app, function, from_lambda(req), until).await;
            Ok::<_, Infallible>(to_lambda(resp))
        }
    }))
    .await
}

pub fn from_lambda(req: lambda_http::Request) -> ApiRequest {
    // The path as the route table knows it: without a stage prefix.
    let path = req.raw_http_path().to_owned();
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    ApiRequest {
        method: parts.method,
        path,
        query: ApiRequest::parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    }
}

pub fn to_lambda(resp: ApiResponse) -> lambda_http::Response<Body> {
    let mut out =
        lambda_http::Response::new(Body::Text(String::from_utf8_lossy(&resp.body).into_owned()));
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}
