//! The route table: the same one for API Gateway (template.yaml) and the local server.

use crate::Error;
use http::Method;

/// A Lambda function of template.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    IssueToken,
    StartSession,
    GetSession,
    WebhookAuthento,
    WebhookProve,
    /// Not HTTP: an EventBridge schedule invokes it (no entry in `ROUTES`).
    Reconcile,
    WebhookPassbase,
}

impl Function {
    pub fn binary(self) -> &'static str {
        match self {
            Function::IssueToken => "issue-token",
            Function::StartSession => "start-session",
            Function::GetSession => "get-session",
            Function::WebhookAuthento => "webhook-authento",
            Function::WebhookProve => "webhook-prove",
            Function::Reconcile => "reconcile",
            Function::WebhookPassbase => "webhook-passbase",
        }
    }
}

/// `(method, path template, function)` of every route.
pub const ROUTES: &[(&str, &str, Function)] = &[
    ("POST", "/v1/tokens", Function::IssueToken),
    ("POST", "/v1/sessions", Function::StartSession),
    ("POST", "/v1/sessions/{id}/cancel", Function::StartSession),
    ("GET", "/v1/sessions/{id}", Function::GetSession),
    ("GET", "/v1/users/{user_id}/sessions", Function::GetSession),
    ("POST", "/v1/webhooks/authento", Function::WebhookAuthento),
    ("POST", "/v1/webhooks/prove", Function::WebhookProve),
    ("POST", "/v1/sessions/{id}/link", Function::StartSession),
    (
        "GET",
        "/v1/users/{user_id}/reauthentications",
        Function::GetSession,
    ),
    ("POST", "/v1/webhooks/passbase", Function::WebhookPassbase),
];

/// The function template.yaml's `$default` route invokes: API Gateway sends it every request that
/// matches no route, and it answers 404 or 405 (`Route::resolve`) instead of API Gateway's own
/// plain 404. The local server sends unmatched requests to it too.
pub const DEFAULT_ROUTE_FUNCTION: Function = Function::GetSession;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    IssueToken,
    StartSession,
    CancelSession { id: String },
    GetSession { id: String },
    ListUserSessions { user_id: String },
    AuthentoWebhook,
    ProveWebhook,
    LinkSession { id: String },
    ListUserReauthentications { user_id: String },
    PassbaseWebhook,
}

impl Route {
    pub fn function(&self) -> Function {
        match self {
            Route::IssueToken => Function::IssueToken,
            Route::StartSession | Route::CancelSession { .. } => Function::StartSession,
            Route::GetSession { .. } | Route::ListUserSessions { .. } => Function::GetSession,
            Route::AuthentoWebhook => Function::WebhookAuthento,
            Route::ProveWebhook => Function::WebhookProve,
            Route::LinkSession { .. } => Function::StartSession,
            Route::ListUserReauthentications { .. } => Function::GetSession,
            Route::PassbaseWebhook => Function::WebhookPassbase,
        }
    }

    /// API Gateway's route key, e.g. `GET /v1/sessions/{id}`.
    pub fn key(&self) -> &'static str {
        match self {
            Route::IssueToken => "POST /v1/tokens",
            Route::StartSession => "POST /v1/sessions",
            Route::CancelSession { .. } => "POST /v1/sessions/{id}/cancel",
            Route::GetSession { .. } => "GET /v1/sessions/{id}",
            Route::ListUserSessions { .. } => "GET /v1/users/{user_id}/sessions",
            Route::AuthentoWebhook => "POST /v1/webhooks/authento",
            Route::ProveWebhook => "POST /v1/webhooks/prove",
            Route::LinkSession { .. } => "POST /v1/sessions/{id}/link",
            Route::ListUserReauthentications { .. } => "GET /v1/users/{user_id}/reauthentications",
            Route::PassbaseWebhook => "POST /v1/webhooks/passbase",
        }
    }

    /// Matches a request, or says why not: `NotFound` for a path no route has, `MethodNotAllowed`
    /// (with the methods it has, for `Allow`) for a known path asked with another method.
    pub fn resolve(method: &Method, path: &str) -> Result<Route, Error> {
        if let Some(route) = Route::matching(method, path) {
            return Ok(route);
        }
        let mut allow: Vec<&str> = ROUTES.iter().map(|(m, _, _)| *m).collect();
        allow.sort_unstable();
        allow.dedup();
        allow.retain(|m| {
            Method::from_bytes(m.as_bytes()).is_ok_and(|m| Route::matching(&m, path).is_some())
        });
        if allow.is_empty() {
            Err(Error::NotFound)
        } else {
            Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow: allow.join(", "),
            })
        }
    }

    /// Matches a request; `None` is a 404 or a 405 (see `resolve`).
    pub fn matching(method: &Method, path: &str) -> Option<Route> {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let m = method.as_str();
        Some(match (m, segments.as_slice()) {
            ("POST", ["v1", "tokens"]) => Route::IssueToken,
            ("POST", ["v1", "sessions"]) => Route::StartSession,
            ("POST", ["v1", "sessions", id, "cancel"]) => Route::CancelSession { id: decode(id)? },
            ("GET", ["v1", "sessions", id]) => Route::GetSession { id: decode(id)? },
            ("GET", ["v1", "users", user, "sessions"]) => Route::ListUserSessions {
                user_id: decode(user)?,
            },
            ("POST", ["v1", "webhooks", "authento"]) => Route::AuthentoWebhook,
            ("POST", ["v1", "webhooks", "prove"]) => Route::ProveWebhook,
            ("POST", ["v1", "sessions", id, "link"]) => Route::LinkSession { id: decode(id)? },
            ("GET", ["v1", "users", user, "reauthentications"]) => {
                Route::ListUserReauthentications {
                    user_id: decode(user)?,
                }
            }
            ("POST", ["v1", "webhooks", "passbase"]) => Route::PassbaseWebhook,
            _ => return None,
        })
    }
}

/// Percent-decodes one path segment; invalid UTF-8 or an empty segment matches nothing.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_matches_its_function() {
        for (method, template, function) in ROUTES {
            let path = template
                .replace("{id}", "ses_x")
                .replace("{user_id}", "user-42");
            let route =
                Route::matching(&Method::from_bytes(method.as_bytes()).unwrap(), &path).unwrap();
            assert_eq!(route.function(), *function, "{template}");
            assert_eq!(route.key(), format!("{method} {template}"));
        }
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        let r = Route::matching(&Method::GET, "/v1/users/user%3A42%40app/sessions").unwrap();
        assert_eq!(
            r,
            Route::ListUserSessions {
                user_id: "user:42@app".into()
            }
        );
        assert!(Route::matching(&Method::GET, "/v1/users//sessions").is_none());
        assert!(Route::matching(&Method::DELETE, "/v1/sessions/x").is_none());
    }

    fn allow(method: Method, path: &str) -> Option<String> {
        match Route::resolve(&method, path) {
            Err(Error::MethodNotAllowed { allow, .. }) => Some(allow),
            Err(Error::NotFound) => None,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_405_with_its_methods_and_an_unknown_path_404() {
        assert_eq!(
            allow(Method::DELETE, "/v1/sessions/x").as_deref(),
            Some("GET")
        );
        assert_eq!(allow(Method::GET, "/v1/sessions").as_deref(), Some("POST"));
        assert_eq!(
            allow(Method::TRACE, "/v1/webhooks/prove/").as_deref(),
            Some("POST")
        );
        assert_eq!(
            allow(Method::PUT, "/v1/users/u/reauthentications").as_deref(),
            Some("GET")
        );
        assert_eq!(allow(Method::GET, "/v1/nothing"), None);
        assert_eq!(allow(Method::DELETE, "/v1/users//sessions"), None);
        // Every route's path refuses every other method with exactly its own.
        for (method, template, _) in ROUTES {
            let path = template
                .replace("{id}", "ses_x")
                .replace("{user_id}", "user-42");
            assert_eq!(
                allow(Method::PATCH, &path).as_deref(),
                Some(*method),
                "{template}"
            );
        }
    }
}
