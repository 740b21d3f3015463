//! `POST /v1/sessions` with `provider: "stripe"`: every field checked, every bad field reported
//! at once, no value echoed.

use crate::Error;
use crate::error::FieldError;
use serde_json::{Map, Value};

/// What Stripe verifies: an identity document (with a selfie if asked), or an ID number alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Document,
    IdNumber,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Document => "document",
            Kind::IdNumber => "id_number",
        }
    }
}

/// `options[document]` of the create: which documents, and which extra checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentOptions {
    /// Of `driving_license`, `id_card`, `passport`; empty: any.
    pub allowed_types: Vec<String>,
    pub require_id_number: Option<bool>,
    pub require_live_capture: Option<bool>,
    pub require_matching_selfie: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInput {
    pub user_id: String,
    pub kind: Kind,
    /// Where Stripe's page sends the user when done.
    pub return_url: Option<String>,
    pub document: Option<DocumentOptions>,
}

const FIELDS: [&str; 5] = [
    "provider",
    "user_id",
    "type",
    "return_url",
    "document_options",
];
const DOCUMENT_TYPES: [&str; 3] = ["driving_license", "id_card", "passport"];
const CHECKS: [&str; 3] = [
    "require_id_number",
    "require_live_capture",
    "require_matching_selfie",
];
/// A start for Stripe. `loopback_http`: Stripe's API is a local simulator, so a `return_url` may
/// be plain http to this machine (`input::return_url`).
pub fn start_input(body: &Map<String, Value>, loopback_http: bool) -> Result<StartInput, Error> {
    let mut errors = Vec::new();
    for k in body.keys() {
        if !FIELDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "this field is not part of a stripe request",
            ));
        }
    }
    let field = |k: &str| body.get(k).filter(|v| !v.is_null());
    let user_id = crate::input::user_id(body, &mut errors);
    let kind = match field("type").map(Value::as_str) {
        None => Some(Kind::Document),
        Some(Some("document")) => Some(Kind::Document),
        Some(Some("id_number")) => Some(Kind::IdNumber),
        Some(_) => {
            errors.push(FieldError::new(
                "type",
                "invalid_value",
                "document or id_number",
            ));
            None
        }
    };
    let return_url = match field("return_url").map(|v| crate::input::return_url(v, loopback_http)) {
        None => None,
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    let document = match field("document_options") {
        None => None,
        Some(_) if kind == Some(Kind::IdNumber) => {
            errors.push(FieldError::new(
                "document_options",
                "invalid_value",
                "only with type document",
            ));
            None
        }
        Some(Value::Object(o)) => document_options(o, &mut errors),
        Some(_) => {
            errors.push(FieldError::new(
                "document_options",
                "invalid_type",
                "an object",
            ));
            None
        }
    };
    match (user_id, kind) {
        (Some(user_id), Some(kind)) if errors.is_empty() => Ok(StartInput {
            user_id,
            kind,
            return_url,
            document,
        }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

fn document_options(
    o: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<DocumentOptions> {
    let mut opts = DocumentOptions::default();
    let before = errors.len();
    for (k, v) in o {
        let field = format!("document_options.{k}");
        match (k.as_str(), v) {
            ("allowed_types", Value::Array(types)) => {
                for t in types {
                    match t.as_str().filter(|t| DOCUMENT_TYPES.contains(t)) {
                        Some(t) if !opts.allowed_types.iter().any(|a| a == t) => {
                            opts.allowed_types.push(t.to_owned());
                        }
                        _ => {
                            errors.push(FieldError::new(
                                &field,
                                "invalid_value",
                                "distinct values of driving_license, id_card, passport",
                            ));
                            break;
                        }
                    }
                }
            }
            ("allowed_types", _) => {
                errors.push(FieldError::new(&field, "invalid_type", "an array"));
            }
            (check, Value::Bool(b)) if CHECKS.contains(&check) => {
                let slot = match check {
                    "require_id_number" => &mut opts.require_id_number,
                    "require_live_capture" => &mut opts.require_live_capture,
                    _ => &mut opts.require_matching_selfie,
                };
                *slot = Some(*b);
            }
            (check, _) if CHECKS.contains(&check) => {
                errors.push(FieldError::new(&field, "invalid_type", "true or false"));
            }
            _ => errors.push(FieldError::new(
                &field,
                "unknown_field",
                "allowed_types, require_id_number, require_live_capture or require_matching_selfie",
            )),
        }
    }
    (errors.len() == before).then_some(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> Result<StartInput, Error> {
        start_input(v.as_object().unwrap(), false)
    }

    fn fields(e: Error) -> Vec<(String, String)> {
        match e {
            Error::InvalidRequest(f) => f.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_document_check_by_default_and_every_option_taken() {
        let i = input(json!({"provider": "stripe", "user_id": "u-1"})).unwrap();
        assert_eq!(
            (i.kind, i.return_url, i.document),
            (Kind::Document, None, None)
        );
        let i = input(json!({"provider": "stripe", "user_id": "u-1", "type": "document",
            "return_url": "https://app.example/done?x=1",
            "document_options": {"allowed_types": ["passport", "id_card"], "require_matching_selfie": true}}))
        .unwrap();
        let d = i.document.unwrap();
        assert_eq!(d.allowed_types, ["passport", "id_card"]);
        assert_eq!(d.require_matching_selfie, Some(true));
        assert_eq!(d.require_id_number, None);
        let i =
            input(json!({"provider": "stripe", "user_id": "u-1", "type": "id_number"})).unwrap();
        assert_eq!(i.kind, Kind::IdNumber);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let got = fields(
            input(json!({"provider": "stripe", "type": "selfie", "return_url": "http://x.example",
                "document_options": {"allowed_types": ["passport", "passport"], "require_live_capture": "yes", "x": 1},
                "phone": "+1"}))
            .unwrap_err(),
        );
        for want in [
            ("user_id", "required"),
            ("type", "invalid_value"),
            ("return_url", "invalid_format"),
            ("document_options.allowed_types", "invalid_value"),
            ("document_options.require_live_capture", "invalid_type"),
            ("document_options.x", "unknown_field"),
            ("phone", "unknown_field"),
        ] {
            assert!(
                got.contains(&(want.0.to_owned(), want.1.to_owned())),
                "{want:?} in {got:?}"
            );
        }
        let got = fields(
            input(
                json!({"provider": "stripe", "user_id": "u", "type": "id_number",
                "document_options": {}}),
            )
            .unwrap_err(),
        );
        assert_eq!(
            got,
            [("document_options".to_owned(), "invalid_value".to_owned())]
        );
    }
}
