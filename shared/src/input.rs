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

/// The longest `return_url` taken (Stripe states no limit; a URL's usual one).
pub const RETURN_URL_MAX: usize = 2048;

/// What a `return_url` must be, as said to the app.
pub const RETURN_URL_RULE: &str = "an https URL (a host name, an optional port, then a path) of \
     at most 2048 characters, without user info";

/// A start's `return_url` (docs/api.md#return-url): where the provider's page sends the user
/// when done. `https://`, a host name (labels of letters, digits and inner `-`, the last one
/// starting with a letter: never an IP address, which a browser's URL parser would take a
/// numeric last label for; no user info), an optional port, then a path, query or fragment of
/// URL characters; at most 2048 characters, and a URL a browser's parser takes (`url`).
/// `loopback_http` also takes `http://` to this machine (`localhost`, `127.0.0.1`, `[::1]`): for
/// a provider reached over plain http, i.e. a local simulator, never a real provider. The same
/// rule as openapi.yaml's pattern, checked by hand. The gateway never fetches it.
pub fn return_url(value: &Value, loopback_http: bool) -> Result<String, FieldError> {
    let bad = || FieldError::new("return_url", "invalid_format", RETURN_URL_RULE);
    let Value::String(url) = value else {
        return Err(bad());
    };
    let ok = url.len() <= RETURN_URL_MAX
        && match url.strip_prefix("https://") {
            Some(rest) => authority_and_tail(rest, is_host_name),
            None => {
                loopback_http
                    && url.strip_prefix("http://").is_some_and(|rest| {
                        authority_and_tail(rest, |h| {
                            matches!(h, "localhost" | "127.0.0.1" | "[::1]")
                        })
                    })
            }
        };
    if ok && url::Url::parse(url).is_ok() {
        Ok(url.clone())
    } else {
        Err(bad())
    }
}

/// `host[:port]` as `host_ok` says, then nothing or a `/...` of URL characters.
fn authority_and_tail(rest: &str, host_ok: impl Fn(&str) -> bool) -> bool {
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` holds colons of its own: a port follows the bracket.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    // 1-65535, no leading zero (openapi.yaml's pattern says the same).
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && !p.starts_with('0')
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok(host)
        && port_ok
        && tail
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._~:/?#@!$&'()*+,;=%-".contains(&c))
}

/// Labels of letters, digits and inner `-`, 1-63 each, the last one starting with a letter.
fn is_host_name(host: &str) -> bool {
    host.split('.').all(|l| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    }) && host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_alphabetic()))
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
    fn a_return_url_is_https_bounded_and_without_user_info() {
        let ok = |u: &str, local: bool| return_url(&json!(u), local).is_ok();
        for u in [
            "https://app.example",
            "https://app.example/done?session=1#top",
            "https://app.example:8443/back",
            "https://app.example:65535",
            "https://a-b.example/x/y.z;p=1&q=%20",
        ] {
            assert!(ok(u, false), "{u}");
        }
        let long = format!("https://app.example/{}", "a".repeat(RETURN_URL_MAX - 20));
        assert_eq!(long.len(), RETURN_URL_MAX);
        assert!(ok(&long, false));
        for u in [
            "http://app.example/done",
            "https://user:pw@app.example/done",
            "https://user@app.example/",
            "https://app.example:0/",
            "https://app.example:65536/",
            "https://app.example:0443/",
            "https://app.example:/",
            "https://-app.example/",
            "https://app..example/",
            "https://Cxfl.3D.D.8.6",
            "https://10.0.0.1/back",
            "https://app.0x1/",
            "https://app.example/a b",
            "https://app.example/<script>",
            "javascript:alert(1)",
            "https:///x",
            "//app.example/x",
            "",
        ] {
            assert!(!ok(u, false) && !ok(u, true), "{u}");
        }
        assert!(!ok(&format!("{long}a"), false));
        // Plain http to this machine, for a local simulator only.
        for u in [
            "http://localhost:3000/back",
            "http://127.0.0.1/back",
            "http://[::1]:8080",
        ] {
            assert!(ok(u, true) && !ok(u, false), "{u}");
        }
        assert!(!ok("http://10.0.0.1/back", true));
        assert!(!ok("http://localhost.example/back", true));
        let e = return_url(&json!(42), false).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code.as_str()),
            ("return_url", "invalid_format")
        );
    }

    #[test]
    fn limits_are_1_to_100() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20).unwrap(), 100);
        assert!(limit(Some("0"), 20).is_err());
        assert!(limit(Some("many"), 20).is_err());
    }
}
