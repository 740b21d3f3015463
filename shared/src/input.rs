//! Validation shared by every request shape: each bad field is collected as a `FieldError` so that
//! one answer names them all (`invalid_request` with `errors[]`: docs/api.md#errors).

use crate::Error;
use crate::error::FieldError;
use crate::session::{Metadata, is_valid_user_id};
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

/// `metadata` bounds, as Stripe's: at most this many keys...
pub const METADATA_MAX_KEYS: usize = 20;
/// ...each of 1 to this many characters...
pub const METADATA_MAX_KEY_CHARS: usize = 40;
/// ...each value a string of at most this many characters.
pub const METADATA_MAX_VALUE_CHARS: usize = 500;

/// The body's optional `metadata` (docs/api.md#metadata): an object of short strings, empty when
/// absent or null. Each bad part is collected in `errors`, named `metadata` or `metadata.<key>`.
pub fn metadata(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Metadata {
    let mut out = Metadata::new();
    let object = match body.get("metadata") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(o)) => o,
        Some(_) => {
            errors.push(FieldError::new(
                "metadata",
                "invalid_type",
                "an object of string values",
            ));
            return out;
        }
    };
    let before = errors.len();
    if object.len() > METADATA_MAX_KEYS {
        errors.push(FieldError::new(
            "metadata",
            "invalid_value",
            format!("at most {METADATA_MAX_KEYS} keys"),
        ));
    }
    let mut bad_key = false;
    for (key, value) in object {
        let chars = key.chars().count();
        if !(1..=METADATA_MAX_KEY_CHARS).contains(&chars) {
            // Named `metadata`, not by the key: a key of any length is not echoed back; and
            // said once, however many keys are bad.
            if !bad_key {
                errors.push(FieldError::new(
                    "metadata",
                    "invalid_value",
                    format!("keys are 1-{METADATA_MAX_KEY_CHARS} characters"),
                ));
            }
            bad_key = true;
            continue;
        }
        let field = format!("metadata.{key}");
        match value {
            Value::String(v) if v.chars().count() <= METADATA_MAX_VALUE_CHARS => {
                out.insert(key.clone(), v.clone());
            }
            Value::String(_) => errors.push(FieldError::new(
                field,
                "invalid_value",
                format!("at most {METADATA_MAX_VALUE_CHARS} characters"),
            )),
            _ => errors.push(FieldError::new(field, "invalid_type", "a string")),
        }
    }
    if errors.len() > before {
        out.clear();
    }
    out
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
    fn metadata_is_bounded_like_stripes() {
        let parse = |v: Value| {
            let mut errors = Vec::new();
            let m = metadata(json!({ "metadata": v }).as_object().unwrap(), &mut errors);
            let fields: Vec<String> = errors.into_iter().map(|e| e.field).collect();
            (m, fields)
        };
        let (m, fields) = parse(json!({"order": "A-1", "k": ""}));
        assert!(fields.is_empty());
        assert_eq!(m.get("order").map(String::as_str), Some("A-1"));
        assert!(parse(Value::Null).0.is_empty());
        let max: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(parse(Value::Object(max.clone())).0.len(), 20);
        let mut over = max;
        over.insert("k20".into(), json!("v"));
        assert_eq!(parse(Value::Object(over)).1, ["metadata"]);
        assert_eq!(parse(json!({ "x".repeat(41): "v" })).1, ["metadata"]);
        assert_eq!(
            parse(json!({ "": "v", "y".repeat(41): "w" })).1,
            ["metadata"]
        );
        assert!(
            parse(json!({ "é".repeat(40): "ü".repeat(500) }))
                .1
                .is_empty()
        );
        assert_eq!(
            parse(json!({ "a": "x".repeat(501), "ok": "fine" })),
            (Metadata::new(), vec!["metadata.a".to_owned()])
        );
        assert_eq!(parse(json!({ "n": 1 })).1, ["metadata.n"]);
        assert_eq!(parse(json!(["a"])).1, ["metadata"]);
        assert_eq!(parse(json!("a=b")).1, ["metadata"]);
    }

    #[test]
    fn limits_are_1_to_100() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20).unwrap(), 100);
        assert!(limit(Some("0"), 20).is_err());
        assert!(limit(Some("many"), 20).is_err());
    }
}
