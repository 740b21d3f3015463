//! Validation shared by every request shape: each bad field is collected as a `FieldError` so that
//! one answer names them all (`invalid_request` with `errors[]`: docs/api.md#errors).

use crate::Error;
use crate::error::FieldError;
use crate::session::is_valid_user_id;
use serde_json::{Map, Value};

const USER_ID_RULE: &str = "1-128 chars of [A-Za-z0-9._:@-]";

/// The body's `user_id`, or `None` with the reason in `errors`.
pub fn user_id(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    match body.get("user_id").filter(|v| !v.is_null()) {
        None => {
            errors.push(FieldError::new(
                "user_id",
                "required",
                "user_id is required",
            ));
            None
        }
        Some(Value::String(s)) if is_valid_user_id(s) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("user_id", "invalid_format", USER_ID_RULE));
            None
        }
    }
}

/// A `{user_id}` path parameter.
pub fn user_id_param(user_id: &str) -> Result<(), Error> {
    if is_valid_user_id(user_id) {
        Ok(())
    } else {
        Err(Error::invalid("user_id", "invalid_format", USER_ID_RULE))
    }
}

/// A `limit` query parameter: 1-100, `default` when absent.
pub fn limit(raw: Option<&str>, default: usize) -> Result<usize, Error> {
    match raw {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(Error::invalid(
                "limit",
                "out_of_range",
                "a whole number from 1 to 100",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_ids_are_required_and_shaped() {
        let mut errors = Vec::new();
        let ok = json!({"user_id": "user-42"});
        assert_eq!(
            user_id(ok.as_object().unwrap(), &mut errors).as_deref(),
            Some("user-42")
        );
        assert!(user_id(json!({}).as_object().unwrap(), &mut errors).is_none());
        assert!(user_id(json!({"user_id": "a b"}).as_object().unwrap(), &mut errors).is_none());
        let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, ["required", "invalid_format"]);
        assert!(user_id_param("a/b").is_err());
    }

    #[test]
    fn limits_are_1_to_100() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20).unwrap(), 100);
        assert!(limit(Some("0"), 20).is_err());
        assert!(limit(Some("many"), 20).is_err());
    }
}
