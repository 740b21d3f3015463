//! The Authento token request (`POST /v1/tokens`, and `POST /v1/sessions` with `provider:
//! "authento"`): every bad field reported at once.

use super::VerificationType;
use crate::{Error, error::FieldError};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct TokenInput {
    pub user_id: String,
    pub verification_type: VerificationType,
    pub user_type: Option<String>,
    pub lang: Option<String>,
}

/// Validates the Authento token fields, reporting every bad field at once.
pub fn token_input(body: &Map<String, Value>, also_allowed: &[&str]) -> Result<TokenInput, Error> {
    const FIELDS: [&str; 4] = ["user_id", "verification_type", "user_type", "lang"];
    let mut errors = Vec::new();
    for k in body.keys() {
        if !FIELDS.contains(&k.as_str()) && !also_allowed.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "this field is not part of the request",
            ));
        }
    }
    let text = |k: &str| body.get(k).filter(|v| !v.is_null());
    let user_id = crate::input::user_id(body, &mut errors);
    let vt = match text("verification_type") {
        None => {
            errors.push(FieldError::new(
                "verification_type",
                "required",
                "BASIC or POA",
            ));
            None
        }
        Some(v) => {
            let parsed = v.as_str().and_then(VerificationType::parse);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "verification_type",
                    "invalid_value",
                    "BASIC or POA",
                ));
            }
            parsed
        }
    };
    let user_type = match text("user_type") {
        None => None,
        Some(Value::String(s)) if s == "INDIVIDUAL" || s == "CORPORATE" => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "user_type",
                "invalid_value",
                "INDIVIDUAL or CORPORATE",
            ));
            None
        }
    };
    let lang = match text("lang") {
        None => None,
        Some(Value::String(s)) if s.len() == 2 && s.bytes().all(|c| c.is_ascii_lowercase()) => {
            Some(s.clone())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "lang",
                "invalid_format",
                "an ISO 639-1 code such as en",
            ));
            None
        }
    };
    match (user_id, vt) {
        (Some(user_id), Some(verification_type)) if errors.is_empty() => Ok(TokenInput {
            user_id,
            verification_type,
            user_type,
            lang,
        }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}
