//! Passbase's request shapes: `POST /v1/sessions` with `provider: "passbase"` and `POST
//! /v1/sessions/{id}/link`. Validation reports every bad field at once.

use crate::{Error, error::FieldError};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct StartInput {
    pub user_id: String,
    /// The client SDK's `identityAccessKey`, when the app already has it.
    pub identity_key: Option<String>,
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
        Some(Value::String(k)) if super::is_identity_key(k) => Ok(Some(k.to_ascii_lowercase())),
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
pub fn start_input(body: &Map<String, Value>) -> Result<StartInput, Error> {
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
        Some(user_id) if errors.is_empty() => Ok(StartInput {
            user_id,
            identity_key,
        }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}
