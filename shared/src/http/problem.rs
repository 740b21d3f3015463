//! The one mapping from errors to responses: RFC 9457 problem+json with the stable codes of
//! docs/api.md#errors.
//! `detail` never carries secrets, personal data or internals; those go to the log.

use super::ApiResponse;
use crate::Error;
use http::{HeaderValue, StatusCode};
use serde_json::json;

pub fn response(e: &Error) -> ApiResponse {
    let (status, code, title) = classify(e);
    let detail = match e {
        Error::StoreUnavailable(_) => "the session store is unavailable; retry shortly".to_owned(),
        Error::Internal(_) => "an unexpected error occurred".to_owned(),
        Error::ProviderUnavailable { provider, .. } => {
            format!("{provider} is unavailable; retry shortly")
        }
        Error::Provider { provider, .. } => {
            format!("{provider} answered in a way the gateway could not use")
        }
        other => other.to_string(),
    };
    if status.is_server_error() {
        tracing::error!(code, error = %e, "request failed");
    }
    let mut body = json!({
        "type": format!("urn:idv-gateway:problem:{code}"),
        "title": title,
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    if let Error::InvalidRequest(errors) = e {
        body["errors"] = json!(errors);
    }
    if let Error::Forbidden { scope } = e {
        body["required_scope"] = json!(scope.as_str());
    }
    let mut resp = ApiResponse::with_type(
        status,
        "application/problem+json",
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    let retry_after = match e {
        Error::ProviderUnavailable { retry_after, .. } | Error::InProgress { retry_after } => {
            Some(retry_after.as_secs().max(1))
        }
        Error::StoreUnavailable(_) => Some(1),
        _ => None,
    };
    if let Some(secs) = retry_after {
        resp.headers
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Error::MethodNotAllowed { allow, .. } = e
        && let Ok(v) = HeaderValue::from_str(allow)
    {
        resp.headers.insert(http::header::ALLOW, v);
    }
    if matches!(e, Error::Unauthenticated) {
        resp.headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

fn classify(e: &Error) -> (StatusCode, &'static str, &'static str) {
    match e {
        Error::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Unauthenticated",
        ),
        Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "insufficient_scope", "Forbidden"),
        Error::InvalidRequest(_) | Error::BadRequest(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid request",
        ),
        Error::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
        Error::MethodNotAllowed { .. } => (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        ),
        Error::Conflict(_) | Error::InProgress { .. } => {
            (StatusCode::CONFLICT, "conflict", "Conflict")
        }
        Error::PayloadTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
        ),
        Error::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
        ),
        // A conflict with what the session is (its provider's flow), told apart by its code.
        Error::NotResumable(_) => (
            StatusCode::CONFLICT,
            "not_supported",
            "Not supported by the provider",
        ),
        Error::ProviderNotConfigured(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider_not_configured",
            "Provider not configured",
        ),
        Error::NotSupported(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_supported",
            "Not supported",
        ),
        Error::Provider { .. } => (StatusCode::BAD_GATEWAY, "provider_error", "Provider error"),
        Error::ProviderUnavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            "Provider unavailable",
        ),
        Error::StoreUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "Store unavailable",
        ),
        Error::InvalidSignature => (
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "Invalid signature",
        ),
        Error::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn body(r: &ApiResponse) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn retryable_errors_carry_retry_after_and_hide_internals() {
        let r = response(&Error::ProviderUnavailable {
            provider: "authento",
            detail: "secret internals".into(),
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(r.status, 503);
        assert_eq!(r.headers["retry-after"], "3");
        assert_eq!(body(&r)["code"], "provider_unavailable");
        assert!(!body(&r)["detail"].as_str().unwrap().contains("internals"));
        let r = response(&Error::StoreUnavailable("table xyz throttled".into()));
        assert_eq!(r.headers["retry-after"], "1");
        assert!(!body(&r)["detail"].as_str().unwrap().contains("xyz"));
    }

    #[test]
    fn a_method_not_allowed_says_which_are() {
        let r = response(&Error::MethodNotAllowed {
            method: "DELETE".into(),
            allow: "GET".into(),
        });
        assert_eq!(r.status, 405);
        assert_eq!(r.headers["allow"], "GET");
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(body(&r)["code"], "method_not_allowed");
    }

    #[test]
    fn a_missing_scope_is_403_naming_it() {
        let r = response(&Error::Forbidden {
            scope: crate::http::scopes::Scope::Redact,
        });
        assert_eq!(r.status, 403);
        assert_eq!(body(&r)["code"], "insufficient_scope");
        assert_eq!(body(&r)["required_scope"], "redact");
        assert!(body(&r)["detail"].as_str().unwrap().contains("redact"));
    }

    #[test]
    fn invalid_requests_list_their_fields() {
        let r = response(&Error::invalid(
            "user_id",
            "required",
            "user_id is required",
        ));
        assert_eq!(r.status, 400);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(body(&r)["errors"][0]["field"], "user_id");
    }
}
