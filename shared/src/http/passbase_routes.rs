//! The Passbase routes' request and response shapes: `POST /v1/sessions` with `provider:
//! "passbase"`, `POST /v1/sessions/{id}/link`, `GET /v1/users/{user_id}/reauthentications` and
//! `POST /v1/webhooks/passbase`. Validation reports every bad field at once; the flows live in
//! `flows::passbase`.

use super::{ApiRequest, ApiResponse, views};
use crate::flows::idempotency::{self, IdempotencyKey};
use crate::flows::passbase;
use crate::{App, Error, error::FieldError};
use http::StatusCode;
use serde_json::{Map, Value, json};

pub(super) async fn webhook(app: &App, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let ack = passbase::ingest_webhook(app, &req.body).await?;
    Ok(super::views::ack(&ack))
}

pub(super) async fn start(
    app: &App,
    tenant: &str,
    body: &Map<String, Value>,
    idem: Option<&IdempotencyKey>,
) -> Result<ApiResponse, Error> {
    let input = start_input(body)?;
    let s = passbase::start(app, tenant, &input, idem).await?;
    let client = json!({"metadata": passbase::client_metadata(&s.id)});
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &views::session(&s, Some(client)),
    ))
}

pub(super) async fn link(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
    idem: Option<IdempotencyKey>,
) -> Result<ApiResponse, Error> {
    let key = link_input(body)?;
    let s = idempotency::once(app, tenant, idem.as_ref(), 200, || {
        passbase::link(app, tenant, id, &key)
    })
    .await?;
    Ok(ApiResponse::json(StatusCode::OK, &views::session(&s, None)))
}

pub(super) async fn reauthentications(
    app: &App,
    tenant: &str,
    user_id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, Error> {
    crate::input::user_id_param(user_id)?;
    let limit = crate::input::limit(req.query_param("limit"), 20)?;
    let list = passbase::reauthentications(app, tenant, user_id, limit).await?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        &views::reauthentications(&list),
    ))
}

fn unknown_fields(body: &Map<String, Value>, allowed: &[&str]) -> Vec<FieldError> {
    body.keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::new(k, "unknown_field", "this field is not part of the request"))
        .collect()
}

/// `identity_access_key`: the Passbase SDK's UUID. Reported as a field error when malformed.
fn identity_key_field(body: &Map<String, Value>, required: bool) -> Result<Option<String>, Error> {
    match body.get("identity_access_key").filter(|v| !v.is_null()) {
        None if required => Err(Error::invalid(
            "identity_access_key",
            "required",
            "identity_access_key is required",
        )),
        None => Ok(None),
        Some(Value::String(k)) if crate::providers::passbase::is_identity_key(k) => {
            Ok(Some(k.to_ascii_lowercase()))
        }
        Some(_) => Err(Error::invalid(
            "identity_access_key",
            "invalid_format",
            "the UUID the Passbase SDK's onFinish reports",
        )),
    }
}

/// Validates `POST /v1/sessions/{id}/link`: the identity access key, nothing else.
pub fn link_input(body: &Map<String, Value>) -> Result<String, Error> {
    let mut errors = unknown_fields(body, &["identity_access_key"]);
    let key = match identity_key_field(body, true) {
        Ok(k) => k,
        Err(Error::InvalidRequest(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(e) => return Err(e),
    };
    match key {
        Some(k) if errors.is_empty() => Ok(k),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

/// Validates `POST /v1/sessions` for Passbase, reporting every bad field at once.
pub fn start_input(body: &Map<String, Value>) -> Result<passbase::StartInput, Error> {
    let mut errors = unknown_fields(body, &["provider", "user_id", "identity_access_key"]);
    let user_id = crate::input::user_id(body, &mut errors);
    let identity_key = match identity_key_field(body, false) {
        Ok(k) => k,
        Err(Error::InvalidRequest(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(e) => return Err(e),
    };
    match user_id {
        Some(user_id) if errors.is_empty() => Ok(passbase::StartInput {
            user_id,
            identity_key,
        }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}
