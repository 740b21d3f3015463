//! `POST /v1/sessions` with `provider: "nevis"`: `user_id`, nothing else.

use crate::Error;
use crate::error::FieldError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInput {
    pub user_id: String,
}

pub fn parse_start(body: &Map<String, Value>) -> Result<StartInput, Error> {
    let mut errors = Vec::new();
    for k in body.keys() {
        if k != "provider" && k != "user_id" {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "nevis sessions take no fields besides provider and user_id",
            ));
        }
    }
    let user_id = crate::input::user_id(body, &mut errors);
    match user_id {
        Some(user_id) if errors.is_empty() => Ok(StartInput { user_id }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_start_takes_a_user_id_and_nothing_else() {
        assert_eq!(
            parse_start(&body(json!({"provider": "nevis", "user_id": "u-1"}))).unwrap(),
            StartInput {
                user_id: "u-1".into()
            }
        );
        let Err(Error::InvalidRequest(errors)) = parse_start(&body(
            json!({"provider": "nevis", "user_id": "a b", "lang": "en"}),
        )) else {
            panic!("refused")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lang", "user_id"]);
    }
}
