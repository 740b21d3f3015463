//! `POST /v1/sessions` with `provider: "prove"`: every field checked as docs/providers/prove.md
//! says, every bad field reported at once. Messages never echo the values (they are personal
//! data). The names are Verified Users' only: Unify takes none (it checks possession of the
//! number, not who holds it), so under Unify they are optional, checked, and sent nowhere.

use super::{Phone, Possession, ProveFlow};
use crate::Error;
use crate::error::FieldError;
use serde_json::{Map, Value};

/// A validated start. Personal data lives here only for the request.
#[derive(Clone)]
pub struct StartInput {
    pub user_id: String,
    pub phone: Phone,
    /// Always present for Verified Users (required there).
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub possession: Possession,
    pub final_target_url: Option<String>,
    pub sms_message: Option<String>,
    pub email: Option<String>,
    pub allow_otp_retry: Option<bool>,
}

// Personal data never reaches a log through Debug.
impl std::fmt::Debug for StartInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartInput")
            .field("user_id", &self.user_id)
            .field("phone", &self.phone)
            .field("possession", &self.possession)
            .finish_non_exhaustive()
    }
}

const FIELDS: [&str; 11] = [
    "provider",
    "user_id",
    "phone_number",
    "first_name",
    "last_name",
    "possession_type",
    "final_target_url",
    "return_url",
    "sms_message",
    "email",
    "allow_otp_retry",
];
/// Prove's limit on `finalTargetUrl`.
const MAX_TARGET_URL: usize = 128;
/// One SMS.
const MAX_SMS: usize = 160;
/// ASSUMPTION: Prove states no name limit; 100 characters is far beyond real names.
const MAX_NAME: usize = 100;

pub fn start_input(body: &Map<String, Value>, flow: ProveFlow) -> Result<StartInput, Error> {
    let mut errors = Vec::new();
    for k in body.keys() {
        if !FIELDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "this field is not part of a prove request",
            ));
        }
    }
    let field = |k: &str| body.get(k).filter(|v| !v.is_null());
    let user_id = crate::input::user_id(body, &mut errors);
    let mut err = |f: &str, code: &str, msg: &str| errors.push(FieldError::new(f, code, msg));
    let phone = match field("phone_number") {
        None => {
            err("phone_number", "required", "phone_number is required");
            None
        }
        Some(v) => {
            let p = v.as_str().and_then(Phone::parse);
            if p.is_none() {
                err(
                    "phone_number",
                    "invalid_format",
                    "an E.164 number (+12001004011) or 10 US digits (2001004011)",
                );
            }
            p
        }
    };
    let names_required = flow == ProveFlow::VerifiedUsers;
    let mut name = |k: &str| match field(k) {
        None => {
            if names_required {
                err(k, "required", "a name is required");
            }
            None
        }
        Some(Value::String(s))
            if !s.trim().is_empty()
                && s.chars().count() <= MAX_NAME
                && !s.chars().any(char::is_control) =>
        {
            Some(s.trim().to_owned())
        }
        Some(_) => {
            err(
                k,
                "invalid_format",
                "1-100 characters, no control characters",
            );
            None
        }
    };
    let first_name = name("first_name");
    let last_name = name("last_name");
    let possession = match field("possession_type") {
        None => {
            err("possession_type", "required", "mobile, desktop or none");
            None
        }
        Some(v) => {
            let p = v.as_str().and_then(Possession::parse);
            if p.is_none() {
                err(
                    "possession_type",
                    "invalid_value",
                    "mobile, desktop or none",
                );
            }
            p
        }
    };
    let has_return_url = field("return_url").is_some();
    let final_target_url = match field("final_target_url") {
        None => {
            if possession == Some(Possession::Desktop) && !has_return_url {
                err(
                    "final_target_url",
                    "required",
                    "required when possession_type is desktop: where the Instant Link leads",
                );
            }
            None
        }
        Some(Value::String(s)) if is_target_url(s) => Some(s.clone()),
        Some(_) => {
            err(
                "final_target_url",
                "invalid_format",
                "an https URL of at most 128 characters of letters, digits and -._+=/:?",
            );
            None
        }
    };
    // `return_url`, the name every provider that takes one shares: for Prove, the desktop
    // flow's `finalTargetUrl` (where the Instant Link leads), under Prove's rule. The other
    // flows have no page that leads anywhere.
    let return_url = match field("return_url") {
        None => None,
        Some(_) if matches!(possession, Some(p) if p != Possession::Desktop) => {
            err(
                "return_url",
                "not_supported",
                "only with possession_type desktop: prove's other flows have no page to return from",
            );
            None
        }
        Some(_) if field("final_target_url").is_some() => {
            err(
                "return_url",
                "invalid_value",
                "give return_url or final_target_url, not both",
            );
            None
        }
        Some(Value::String(s)) if is_target_url(s) => Some(s.clone()),
        Some(_) => {
            err(
                "return_url",
                "invalid_format",
                "for prove, an https URL of at most 128 characters of letters, digits and -._+=/:? (its finalTargetUrl)",
            );
            None
        }
    };
    let final_target_url = final_target_url.or(return_url);
    let sms_message = match field("sms_message") {
        None => None,
        Some(Value::String(s)) if (1..=MAX_SMS).contains(&s.chars().count()) => Some(s.clone()),
        Some(_) => {
            err("sms_message", "invalid_format", "1-160 characters");
            None
        }
    };
    let email = match field("email") {
        None => None,
        Some(Value::String(s)) if is_email(s) => Some(s.clone()),
        Some(_) => {
            err("email", "invalid_format", "an email address");
            None
        }
    };
    let allow_otp_retry = match field("allow_otp_retry") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            err("allow_otp_retry", "invalid_type", "true or false");
            None
        }
    };
    match (user_id, phone, possession) {
        (Some(user_id), Some(phone), Some(possession)) if errors.is_empty() => Ok(StartInput {
            user_id,
            phone,
            first_name,
            last_name,
            possession,
            final_target_url,
            sms_message,
            email,
            allow_otp_retry,
        }),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

/// `POST /v1/sessions/{id}/bind` of a Prove Unify session: `{"phone_number": ...}`, the number
/// the app's own possession check proved (the session keeps it only masked).
pub fn bind_input(body: &Map<String, Value>) -> Result<Phone, Error> {
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| *k != "phone_number")
        .map(|k| FieldError::new(k, "unknown_field", "a prove bind takes phone_number only"))
        .collect();
    let phone = match body.get("phone_number").filter(|v| !v.is_null()) {
        None => {
            errors.push(FieldError::new(
                "phone_number",
                "required",
                "the number the app's own possession check proved",
            ));
            None
        }
        Some(v) => {
            let p = v.as_str().and_then(Phone::parse);
            if p.is_none() {
                errors.push(FieldError::new(
                    "phone_number",
                    "invalid_format",
                    "an E.164 number (+12001004011) or 10 US digits (2001004011)",
                ));
            }
            p
        }
    };
    match phone {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(Error::InvalidRequest(errors)),
    }
}

/// `https://`, a host name (labels of letters, digits and `-`, the last one starting with a
/// letter, so never an IP address; no port), then a path or query of the characters Prove allows
/// (`-._+=/:?`); at most 128 characters. The same rule as openapi.yaml's pattern, checked by hand.
fn is_target_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://") else {
        return false;
    };
    let (host, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let label_ok =
        |l: &str| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    s.len() <= MAX_TARGET_URL
        && host.split('.').all(label_ok)
        && host
            .rsplit('.')
            .next()
            .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_alphabetic()))
        && tail
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._+=/:?".contains(&c))
}

/// One `@` after a non-empty local part, a domain with a dot that is neither its first nor its
/// last character, no whitespace, at most 254 characters (openapi.yaml's pattern).
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.chars().count() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> Result<StartInput, Error> {
        start_input(v.as_object().unwrap(), ProveFlow::VerifiedUsers)
    }

    fn unify(v: Value) -> Result<StartInput, Error> {
        start_input(v.as_object().unwrap(), ProveFlow::Unify)
    }

    #[test]
    fn unify_takes_no_names_but_checks_any_given() {
        let mut b = ok();
        let o = b.as_object_mut().unwrap();
        o.remove("first_name");
        o.remove("last_name");
        let i = unify(b.clone()).unwrap();
        assert_eq!(i.first_name, None);
        assert_eq!(
            fields(input(b.clone()).unwrap_err()),
            [
                ("first_name".to_owned(), "required".to_owned()),
                ("last_name".to_owned(), "required".to_owned())
            ]
        );
        b["first_name"] = json!("");
        assert_eq!(
            fields(unify(b.clone()).unwrap_err()),
            [("first_name".to_owned(), "invalid_format".to_owned())]
        );
        b["first_name"] = json!("Lorant");
        b["last_name"] = json!("Nerger");
        b["possession_type"] = json!("none");
        assert!(unify(b.clone()).is_ok() && input(b).is_ok());
    }

    fn fields(e: Error) -> Vec<(String, String)> {
        match e {
            Error::InvalidRequest(f) => f.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn ok() -> Value {
        json!({"provider": "prove", "user_id": "u1", "phone_number": "2001004011",
               "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "mobile"})
    }

    #[test]
    fn a_bind_names_one_valid_number() {
        let bind = |v: Value| bind_input(v.as_object().unwrap());
        assert_eq!(
            bind(json!({"phone_number": "+2001004025"})).unwrap(),
            Phone::parse("+2001004025").unwrap()
        );
        assert_eq!(
            fields(bind(json!({"phone_number": "12", "otp": "1234"})).unwrap_err()),
            [
                ("otp".to_owned(), "unknown_field".to_owned()),
                ("phone_number".to_owned(), "invalid_format".to_owned())
            ]
        );
        assert_eq!(
            fields(bind(json!({})).unwrap_err()),
            [("phone_number".to_owned(), "required".to_owned())]
        );
    }

    #[test]
    fn a_complete_request_passes() {
        let i = input(ok()).unwrap();
        assert_eq!(i.possession, Possession::Mobile);
        let mut d = ok();
        d["possession_type"] = json!("desktop");
        d["final_target_url"] = json!("https://www.example.com/landing-page");
        d["sms_message"] = json!("#### is your code");
        d["email"] = json!("sbutrimovichb@who.int");
        d["allow_otp_retry"] = json!(true);
        assert!(input(d).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let e = input(
            json!({"provider": "prove", "phone_number": "12345", "first_name": "",
            "possession_type": "desktop", "sms_message": "x".repeat(161), "email": "no-at",
            "allow_otp_retry": "yes", "verification_type": "BASIC"}),
        )
        .unwrap_err();
        let got = fields(e);
        for want in [
            ("user_id", "required"),
            ("phone_number", "invalid_format"),
            ("first_name", "invalid_format"),
            ("last_name", "required"),
            ("final_target_url", "required"),
            ("sms_message", "invalid_format"),
            ("email", "invalid_format"),
            ("allow_otp_retry", "invalid_type"),
            ("verification_type", "unknown_field"),
        ] {
            assert!(
                got.contains(&(want.0.to_owned(), want.1.to_owned())),
                "{want:?} in {got:?}"
            );
        }
    }

    #[test]
    fn return_url_is_the_desktop_flows_target_under_proves_rule() {
        let mut d = ok();
        d["possession_type"] = json!("desktop");
        d["return_url"] = json!("https://app.example/back?s=1");
        let i = input(d.clone()).unwrap();
        assert_eq!(
            i.final_target_url.as_deref(),
            Some("https://app.example/back?s=1")
        );
        d["final_target_url"] = json!("https://app.example/other");
        assert_eq!(
            fields(input(d.clone()).unwrap_err()),
            [("return_url".to_owned(), "invalid_value".to_owned())]
        );
        d["final_target_url"] = Value::Null;
        d["return_url"] = json!(format!("https://app.example/{}", "a".repeat(120)));
        assert_eq!(
            fields(input(d).unwrap_err()),
            [("return_url".to_owned(), "invalid_format".to_owned())]
        );
        for possession in ["mobile", "none"] {
            let mut m = ok();
            m["possession_type"] = json!(possession);
            m["return_url"] = json!("https://app.example/back");
            assert_eq!(
                fields(input(m.clone()).unwrap_err()),
                [("return_url".to_owned(), "not_supported".to_owned())]
            );
            m["return_url"] = Value::Null;
            assert!(input(m).is_ok());
        }
    }

    #[test]
    fn the_target_url_is_https_and_short() {
        for bad in [
            "http://example.com/x",
            "https://",
            "ftp://example.com",
            "https://example.com/a b",
            "https://example.com/?a=1&b=2",
            "HTTPS://example.com",
            "https://example.com:8443/x",
            "https://10.0.0.1/x",
            "https://example..com",
            "https://.example.com",
        ] {
            assert!(!is_target_url(bad), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(109));
        assert_eq!(long.len(), 129);
        assert!(!is_target_url(&long));
        assert!(is_target_url(&long[..128]));
        for good in [
            "https://localhost",
            "https://www.example.com?next=/a:b",
            "https://a-1.example.co/x/y.html?q=1+2",
        ] {
            assert!(is_target_url(good), "{good}");
        }
    }
}
