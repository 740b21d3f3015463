//! The gateway's errors. Each maps to one problem+json response in `http::problem`; nothing else
//! decides status codes.

use std::time::Duration;

/// One invalid field of a request, reported in `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// An authenticated key without the scope the route needs.
    #[error("this API key lacks the scope {scope}")]
    Forbidden { scope: crate::http::scopes::Scope },
    #[error("the request is invalid")]
    InvalidRequest(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    /// A known path asked with a method it does not serve; `allow` lists those it does.
    #[error("{method} is not allowed here; this path serves {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("{0}")]
    Conflict(String),
    /// A twin request holds the `Idempotency-Key`: retry after it finished.
    #[error("a request with this Idempotency-Key is still in progress")]
    InProgress { retry_after: Duration },
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// The session's provider has no second client step (a resume of a flow whose client step
    /// is given once); the message says why and what to do instead. A 409 `not_supported`: it
    /// conflicts with what the session is, as a resume of a session that is over does
    /// (schemathesis counts a 422 to a schema-valid request as a refusal of valid input).
    #[error("{0}")]
    NotResumable(&'static str),
    #[error("provider {0} is not configured on this gateway")]
    ProviderNotConfigured(&'static str),
    /// The session's provider does not offer what the route asks (verified data from Prove).
    #[error("{0}")]
    NotSupported(String),
    #[error("{provider} answered unexpectedly: {detail}")]
    Provider {
        provider: &'static str,
        detail: String,
    },
    #[error("{provider} is unavailable: {detail}")]
    ProviderUnavailable {
        provider: &'static str,
        detail: String,
        retry_after: Duration,
    },
    #[error("the session store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("invalid webhook signature")]
    InvalidSignature,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Error::InvalidRequest(vec![FieldError::new(field, code, message)])
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(m) => Error::StoreUnavailable(m),
            // A lost optimistic race that a flow did not retry: the caller may simply try again.
            StoreError::Conflict => Error::StoreUnavailable("concurrent update, retry".into()),
            StoreError::Corrupt(m) => Error::Internal(m),
        }
    }
}
