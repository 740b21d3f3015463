//! What the fuzz targets share: how one fuzz input is cut into header strings and a body, and the
//! checks every request-body parser must pass, whichever way its input was made.

use idv::Error;
use idv::providers::{authento, nevis, passbase, prove};
use serde_json::{Map, Value};

/// Splits `data` into `N` NUL-terminated fields and the body after them. An input with fewer than
/// `N` NULs is all body with empty fields, so a sample body from `events/` is a seed as it is.
pub fn fields<const N: usize>(data: &[u8]) -> ([&[u8]; N], &[u8]) {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in &mut out {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                *slot = &rest[..i];
                rest = &rest[i + 1..];
            }
            None => return ([&data[..0]; N], data),
        }
    }
    (out, rest)
}

/// A field as a header value: absent when empty, else its text (invalid UTF-8 replaced, as a
/// header a proxy passed through could be anything).
pub fn header(field: &[u8]) -> Option<String> {
    (!field.is_empty()).then(|| String::from_utf8_lossy(field).into_owned())
}

/// The user id rule (docs/api.md#sessions), written out again so the parsers are checked against the rule, not
/// against themselves.
pub fn user_id_rule(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'@' | b'-'))
}

/// A Passbase identity key as the gateway stores it: a lower-case hyphenated UUID.
pub fn lower_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// Runs every request-body parser on `body` and checks what each answers: an accepted body has
/// only the parser's fields and values inside the documented rules; a refused one is a 400
/// `invalid_request` naming at least one field, never another kind of error.
pub fn check_bodies(body: &Map<String, Value>) {
    let only = |allowed: &[&str]| body.keys().all(|k| allowed.contains(&k.as_str()));

    for also in [&[][..], &["provider"][..]] {
        match authento::input::token_input(body, also) {
            Ok(t) => {
                assert!(only(
                    &[
                        &["user_id", "verification_type", "user_type", "lang"][..],
                        also
                    ]
                    .concat()
                ));
                assert!(user_id_rule(&t.user_id));
                assert!(matches!(
                    t.user_type.as_deref(),
                    None | Some("INDIVIDUAL" | "CORPORATE")
                ));
                assert!(
                    t.lang
                        .as_deref()
                        .is_none_or(|l| l.len() == 2 && l.bytes().all(|c| c.is_ascii_lowercase()))
                );
            }
            Err(e) => refused(&e),
        }
    }

    // Verified Users requires the names; Unify takes them optionally (checked all the same).
    for flow in [prove::ProveFlow::VerifiedUsers, prove::ProveFlow::Unify] {
        match prove::input::start_input(body, flow) {
            Ok(p) => {
                assert!(only(&[
                    "provider",
                    "user_id",
                    "phone_number",
                    "first_name",
                    "last_name",
                    "possession_type",
                    "final_target_url",
                    "sms_message",
                    "email",
                    "allow_otp_retry",
                ]));
                assert!(user_id_rule(&p.user_id));
                if flow == prove::ProveFlow::VerifiedUsers {
                    assert!(p.first_name.is_some() && p.last_name.is_some());
                }
                for name in [&p.first_name, &p.last_name].into_iter().flatten() {
                    assert!(!name.is_empty() && name.trim() == name);
                    assert!(name.chars().count() <= 100 && !name.chars().any(char::is_control));
                }
                for digits in [p.phone.for_prove(), p.phone.for_unify()] {
                    assert!(
                        digits
                            .trim_start_matches('+')
                            .bytes()
                            .all(|c| c.is_ascii_digit())
                    );
                }
                if p.possession == prove::Possession::Desktop {
                    assert!(p.final_target_url.is_some(), "desktop needs a target URL");
                }
                if let Some(u) = &p.final_target_url {
                    assert!(u.len() <= 128 && u.starts_with("https://"), "{u:?}");
                }
                if let Some(s) = &p.sms_message {
                    assert!((1..=160).contains(&s.chars().count()));
                }
                if let Some(e) = &p.email {
                    assert!(
                        e.chars().count() <= 254
                            && e.contains('@')
                            && !e.contains(char::is_whitespace)
                    );
                }
            }
            Err(e) => refused(&e),
        }
    }
    match prove::input::bind_input(body) {
        Ok(phone) => {
            assert!(only(&["phone_number"]));
            assert!(
                phone
                    .for_unify()
                    .trim_start_matches('+')
                    .bytes()
                    .all(|c| c.is_ascii_digit())
            );
        }
        Err(e) => refused(&e),
    }

    match nevis::input::parse_start(body) {
        Ok(n) => {
            assert!(only(&["provider", "user_id"]));
            assert!(user_id_rule(&n.user_id));
        }
        Err(e) => refused(&e),
    }

    match passbase::input::start_input(body) {
        Ok(p) => {
            assert!(only(&["provider", "user_id", "identity_access_key"]));
            assert!(user_id_rule(&p.user_id));
            assert!(p.identity_key.as_deref().is_none_or(lower_uuid));
        }
        Err(e) => refused(&e),
    }

    match passbase::input::link_input(body) {
        Ok(k) => {
            assert!(only(&["identity_access_key"]));
            assert!(lower_uuid(&k), "{k:?}");
        }
        Err(e) => refused(&e),
    }
}

/// A refused body is a 400 `invalid_request` problem naming each bad field, never a 5xx.
pub fn refused(e: &Error) {
    let Error::InvalidRequest(errors) = e else {
        panic!("a body parser answered {e:?}, not invalid_request");
    };
    assert!(!errors.is_empty(), "invalid_request names no field");
    for f in errors {
        assert!(!f.code.is_empty() && !f.message.is_empty(), "{f:?}");
    }
    let resp = idv::http::problem::response(e);
    assert_eq!(resp.status, http::StatusCode::BAD_REQUEST);
    problem_body(&resp, 400);
}

/// Checks a problem+json response: the content type, and a JSON body whose `status` is the
/// response's and whose `code` and `type` agree.
pub fn problem_body(resp: &idv::http::ApiResponse, status: u16) {
    assert_eq!(
        resp.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let v: Value = serde_json::from_slice(&resp.body).expect("a problem body is JSON");
    assert_eq!(v["status"], status);
    let code = v["code"].as_str().expect("a problem has a code");
    assert_eq!(v["type"], format!("urn:idv-gateway:problem:{code}"));
    assert!(v["title"].is_string() && v["detail"].is_string());
}
