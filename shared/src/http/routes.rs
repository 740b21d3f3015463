//! The route table: the same one for API Gateway (template.yaml) and the local server. The
//! session API's routes are fixed; each provider adds its webhook route and the routes only it
//! has (`providers::ALL`).

use super::scopes::Scope;
use crate::Error;
use crate::providers::registry::{ExtraOp, ExtraRoute, Registration};
use crate::secrets::Part;
use http::Method;
use std::collections::BTreeSet;

/// A Lambda function of template.yaml, by its binary's (and crate's) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Function(&'static str);

impl Function {
    pub const START_SESSION: Function = Function("start-session");
    pub const GET_SESSION: Function = Function("get-session");
    /// Not HTTP: an EventBridge schedule invokes it (no entry in `routes()`).
    pub const RECONCILE: Function = Function("reconcile");
    /// The endpoints API and the events API.
    pub const EVENTS_API: Function = Function("events-api");
    /// Not HTTP: the table's stream and a schedule invoke it (outbound events).
    pub const NOTIFY: Function = Function("notify");

    pub fn binary(self) -> &'static str {
        self.0
    }

    /// Every function: the session API's, reconcile, and those the providers register.
    pub fn all() -> Vec<Function> {
        let mut all = vec![
            Function::START_SESSION,
            Function::GET_SESSION,
            Function::RECONCILE,
            Function::NOTIFY,
        ];
        for (_, _, f) in routes() {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        all
    }

    /// A function the registry names (its own consts).
    pub(crate) const fn named_unchecked(name: &'static str) -> Function {
        Function(name)
    }

    /// The function of a binary name (a Lambda `main` says its own name).
    pub fn named(name: &str) -> Option<Function> {
        Function::all().into_iter().find(|f| f.0 == name)
    }

    /// The parts of the secret this function reads, derived from what it serves: the only
    /// secrets it is given (`App::from_env`) and the only ones its IAM policy may grant
    /// (template.yaml, held to this by tests/integration/iam.rs).
    /// - The gateway's keys: every app route authenticates with `api_keys` (and keys
    ///   `Idempotency-Key` fingerprints and seals endpoint secrets with `fingerprint_key`);
    ///   `notify` opens sealed endpoint secrets to sign deliveries. Webhook routes never do.
    /// - A provider's credentials: its webhook route and its own routes need its own; the
    ///   session routes and `reconcile` act on a session of any provider (start, refresh, link,
    ///   cancel, poll), so they need every provider's.
    pub fn secret_parts(self) -> BTreeSet<Part> {
        let routes: Vec<(&str, &str, Function)> =
            routes().into_iter().filter(|r| r.2 == self).collect();
        let mut parts = BTreeSet::new();
        let webhook_of = |path: &str| {
            crate::providers::ALL
                .iter()
                .find(|r| r.webhook.as_ref().is_some_and(|w| w.path == path))
                .map(|r| r.name)
        };
        for (_, path, _) in &routes {
            match webhook_of(path) {
                Some(provider) => {
                    parts.insert(Part::Provider(provider));
                }
                None => {
                    parts.insert(Part::Gateway);
                }
            }
        }
        if self == Function::NOTIFY {
            parts.insert(Part::Gateway);
        }
        for r in crate::providers::ALL {
            if r.routes.iter().any(|e| Function(e.function) == self) {
                parts.insert(Part::Provider(r.name));
            }
        }
        let on_any_session =
            self == Function::RECONCILE || SESSION_ROUTES.iter().any(|(_, _, f)| *f == self);
        if on_any_session {
            parts.extend(crate::providers::ALL.iter().map(|r| Part::Provider(r.name)));
        }
        parts
    }
}

/// The routes of the session API, whatever the providers.
const SESSION_ROUTES: [(&str, &str, Function); 12] = [
    ("POST", "/v1/sessions", Function::START_SESSION),
    ("POST", "/v1/sessions/{id}/cancel", Function::START_SESSION),
    ("POST", "/v1/sessions/{id}/resume", Function::START_SESSION),
    ("POST", "/v1/sessions/{id}/retry", Function::START_SESSION),
    ("GET", "/v1/sessions/{id}", Function::GET_SESSION),
    ("GET", "/v1/sessions/{id}/history", Function::GET_SESSION),
    ("GET", "/v1/users/{user_id}/sessions", Function::GET_SESSION),
    ("POST", "/v1/sessions/{id}/link", Function::START_SESSION),
    ("POST", "/v1/sessions/{id}/bind", Function::START_SESSION),
    (
        "GET",
        "/v1/users/{user_id}/reauthentications",
        Function::GET_SESSION,
    ),
    ("POST", "/v1/sessions/{id}/redact", Function::START_SESSION),
    (
        "POST",
        "/v1/users/{user_id}/redact",
        Function::START_SESSION,
    ),
];

/// Listing the tenant's sessions (beside `SESSION_ROUTES`: the same function as a session read).
const LISTING_ROUTES: [(&str, &str, Function); 1] =
    [("GET", "/v1/sessions", Function::GET_SESSION)];

/// The routes of outbound events: endpoints and events.
const EVENT_ROUTES: [(&str, &str, Function); 9] = [
    ("POST", "/v1/endpoints", Function::EVENTS_API),
    ("GET", "/v1/endpoints", Function::EVENTS_API),
    ("GET", "/v1/endpoints/{id}", Function::EVENTS_API),
    ("PATCH", "/v1/endpoints/{id}", Function::EVENTS_API),
    ("DELETE", "/v1/endpoints/{id}", Function::EVENTS_API),
    (
        "POST",
        "/v1/endpoints/{id}/rotate_secret",
        Function::EVENTS_API,
    ),
    ("GET", "/v1/events", Function::EVENTS_API),
    ("GET", "/v1/events/{id}", Function::EVENTS_API),
    ("POST", "/v1/events/{id}/resend", Function::EVENTS_API),
];

/// The routes of verified data: read live from the provider, and who read it.
const VERIFIED_DATA_ROUTES: [(&str, &str, Function); 2] = [
    (
        "GET",
        "/v1/sessions/{id}/verified_data",
        Function::GET_SESSION,
    ),
    (
        "GET",
        "/v1/sessions/{id}/verified_data/accesses",
        Function::GET_SESSION,
    ),
];

/// `(method, path template, function)` of every route: the session API's, outbound events',
/// verified data's, then each provider's webhook and own routes.
pub fn routes() -> Vec<(&'static str, &'static str, Function)> {
    let mut all = SESSION_ROUTES.to_vec();
    all.extend(LISTING_ROUTES);
    all.extend(EVENT_ROUTES);
    all.extend(VERIFIED_DATA_ROUTES);
    for r in crate::providers::ALL {
        if let Some(w) = &r.webhook {
            all.push(("POST", w.path, Function(w.function)));
        }
        for e in r.routes {
            all.push((e.method, e.path, Function(e.function)));
        }
    }
    all
}

/// The function template.yaml's `$default` route invokes: API Gateway sends it every request that
/// matches no route, and it answers 404 or 405 (`Route::resolve`) instead of API Gateway's own
/// plain 404. The local server sends unmatched requests to it too.
pub const DEFAULT_ROUTE_FUNCTION: Function = Function::GET_SESSION;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    StartSession,
    CancelSession {
        id: String,
    },
    ResumeSession {
        id: String,
    },
    RetrySession {
        id: String,
    },
    GetSession {
        id: String,
    },
    SessionHistory {
        id: String,
    },
    ListUserSessions {
        user_id: String,
    },
    ListSessions,
    LinkSession {
        id: String,
    },
    BindSession {
        id: String,
    },
    ListUserReauthentications {
        user_id: String,
    },
    RedactSession {
        id: String,
    },
    RedactUser {
        user_id: String,
    },
    CreateEndpoint,
    ListEndpoints,
    GetEndpoint {
        id: String,
    },
    UpdateEndpoint {
        id: String,
    },
    DeleteEndpoint {
        id: String,
    },
    RotateEndpointSecret {
        id: String,
    },
    ListEvents,
    GetEvent {
        id: String,
    },
    ResendEvent {
        id: String,
    },
    /// What the session's provider verified about the person, read live.
    VerifiedData {
        id: String,
    },
    /// Who read a session's verified data, and when.
    VerifiedDataAccesses {
        id: String,
    },
    /// A provider's webhook route.
    Webhook {
        provider: &'static str,
    },
    /// A route only one provider has.
    Extra {
        provider: &'static str,
        route: &'static ExtraRoute,
    },
}

fn registration(name: &str) -> &'static Registration {
    crate::providers::registry::registration(name).expect("a route names a registered provider")
}

impl Route {
    pub fn function(&self) -> Function {
        match self {
            Route::StartSession
            | Route::CancelSession { .. }
            | Route::ResumeSession { .. }
            | Route::RetrySession { .. }
            | Route::LinkSession { .. }
            | Route::BindSession { .. }
            | Route::RedactSession { .. }
            | Route::RedactUser { .. } => Function::START_SESSION,
            Route::GetSession { .. }
            | Route::SessionHistory { .. }
            | Route::ListUserSessions { .. }
            | Route::ListSessions
            | Route::ListUserReauthentications { .. }
            | Route::VerifiedData { .. }
            | Route::VerifiedDataAccesses { .. } => Function::GET_SESSION,
            Route::CreateEndpoint
            | Route::ListEndpoints
            | Route::GetEndpoint { .. }
            | Route::UpdateEndpoint { .. }
            | Route::DeleteEndpoint { .. }
            | Route::RotateEndpointSecret { .. }
            | Route::ListEvents
            | Route::GetEvent { .. }
            | Route::ResendEvent { .. } => Function::EVENTS_API,
            Route::Webhook { provider } => Function(
                registration(provider)
                    .webhook
                    .as_ref()
                    .expect("a webhook route of a provider with webhooks")
                    .function,
            ),
            Route::Extra { route, .. } => Function(route.function),
        }
    }

    /// The scope an API key needs for this route; `None` for a provider's webhook (public: its
    /// dialect checks authenticity). Every route is named here, so a new one needs a choice.
    pub fn scope(&self) -> Option<Scope> {
        Some(match self {
            Route::StartSession
            | Route::CancelSession { .. }
            | Route::ResumeSession { .. }
            | Route::RetrySession { .. }
            | Route::LinkSession { .. }
            | Route::BindSession { .. } => Scope::SessionsWrite,
            Route::GetSession { .. }
            | Route::SessionHistory { .. }
            | Route::ListUserSessions { .. }
            | Route::ListSessions
            | Route::ListUserReauthentications { .. }
            // The record of who read, never what: a session's own bookkeeping.
            | Route::VerifiedDataAccesses { .. } => Scope::SessionsRead,
            // Personal data: never implied by a key without scopes.
            Route::VerifiedData { .. } => Scope::VerifiedDataRead,
            Route::RedactSession { .. } | Route::RedactUser { .. } => Scope::Redact,
            Route::CreateEndpoint
            | Route::UpdateEndpoint { .. }
            | Route::DeleteEndpoint { .. }
            | Route::RotateEndpointSecret { .. } => Scope::EndpointsWrite,
            Route::ListEndpoints | Route::GetEndpoint { .. } => Scope::EndpointsRead,
            Route::ListEvents | Route::GetEvent { .. } => Scope::EventsRead,
            Route::ResendEvent { .. } => Scope::EventsWrite,
            Route::Webhook { .. } => return None,
            Route::Extra { route, .. } => match route.op {
                ExtraOp::Start => Scope::SessionsWrite,
            },
        })
    }

    /// API Gateway's route key, e.g. `GET /v1/sessions/{id}`.
    pub fn key(&self) -> String {
        let fixed = match self {
            Route::StartSession => "POST /v1/sessions",
            Route::CancelSession { .. } => "POST /v1/sessions/{id}/cancel",
            Route::ResumeSession { .. } => "POST /v1/sessions/{id}/resume",
            Route::RetrySession { .. } => "POST /v1/sessions/{id}/retry",
            Route::GetSession { .. } => "GET /v1/sessions/{id}",
            Route::SessionHistory { .. } => "GET /v1/sessions/{id}/history",
            Route::ListUserSessions { .. } => "GET /v1/users/{user_id}/sessions",
            Route::ListSessions => "GET /v1/sessions",
            Route::LinkSession { .. } => "POST /v1/sessions/{id}/link",
            Route::BindSession { .. } => "POST /v1/sessions/{id}/bind",
            Route::ListUserReauthentications { .. } => "GET /v1/users/{user_id}/reauthentications",
            Route::RedactSession { .. } => "POST /v1/sessions/{id}/redact",
            Route::RedactUser { .. } => "POST /v1/users/{user_id}/redact",
            Route::CreateEndpoint => "POST /v1/endpoints",
            Route::ListEndpoints => "GET /v1/endpoints",
            Route::GetEndpoint { .. } => "GET /v1/endpoints/{id}",
            Route::UpdateEndpoint { .. } => "PATCH /v1/endpoints/{id}",
            Route::DeleteEndpoint { .. } => "DELETE /v1/endpoints/{id}",
            Route::RotateEndpointSecret { .. } => "POST /v1/endpoints/{id}/rotate_secret",
            Route::ListEvents => "GET /v1/events",
            Route::GetEvent { .. } => "GET /v1/events/{id}",
            Route::ResendEvent { .. } => "POST /v1/events/{id}/resend",
            Route::VerifiedData { .. } => "GET /v1/sessions/{id}/verified_data",
            Route::VerifiedDataAccesses { .. } => "GET /v1/sessions/{id}/verified_data/accesses",
            Route::Webhook { provider } => {
                let w = registration(provider).webhook.as_ref();
                return format!("POST {}", w.map_or("", |w| w.path));
            }
            Route::Extra { route, .. } => return format!("{} {}", route.method, route.path),
        };
        fixed.to_owned()
    }

    /// Matches a request, or says why not: `NotFound` for a path no route has, `MethodNotAllowed`
    /// (with the methods it has, for `Allow`) for a known path asked with another method.
    pub fn resolve(method: &Method, path: &str) -> Result<Route, Error> {
        if let Some(route) = Route::matching(method, path) {
            return Ok(route);
        }
        let mut allow: Vec<&str> = routes().iter().map(|(m, _, _)| *m).collect();
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
        let session_route = match (m, segments.as_slice()) {
            ("POST", ["v1", "sessions"]) => Some(Route::StartSession),
            ("GET", ["v1", "sessions"]) => Some(Route::ListSessions),
            ("POST", ["v1", "sessions", id, "cancel"]) => {
                Some(Route::CancelSession { id: decode(id)? })
            }
            ("POST", ["v1", "sessions", id, "resume"]) => {
                Some(Route::ResumeSession { id: decode(id)? })
            }
            ("POST", ["v1", "sessions", id, "retry"]) => {
                Some(Route::RetrySession { id: decode(id)? })
            }
            ("GET", ["v1", "sessions", id]) => Some(Route::GetSession { id: decode(id)? }),
            ("GET", ["v1", "sessions", id, "history"]) => {
                Some(Route::SessionHistory { id: decode(id)? })
            }
            ("GET", ["v1", "users", user, "sessions"]) => Some(Route::ListUserSessions {
                user_id: decode(user)?,
            }),
            ("POST", ["v1", "sessions", id, "link"]) => {
                Some(Route::LinkSession { id: decode(id)? })
            }
            ("POST", ["v1", "sessions", id, "bind"]) => {
                Some(Route::BindSession { id: decode(id)? })
            }
            ("GET", ["v1", "users", user, "reauthentications"]) => {
                Some(Route::ListUserReauthentications {
                    user_id: decode(user)?,
                })
            }
            ("POST", ["v1", "sessions", id, "redact"]) => {
                Some(Route::RedactSession { id: decode(id)? })
            }
            ("POST", ["v1", "users", user, "redact"]) => Some(Route::RedactUser {
                user_id: decode(user)?,
            }),
            ("POST", ["v1", "endpoints"]) => Some(Route::CreateEndpoint),
            ("GET", ["v1", "endpoints"]) => Some(Route::ListEndpoints),
            ("GET", ["v1", "endpoints", id]) => Some(Route::GetEndpoint { id: decode(id)? }),
            ("PATCH", ["v1", "endpoints", id]) => Some(Route::UpdateEndpoint { id: decode(id)? }),
            ("DELETE", ["v1", "endpoints", id]) => Some(Route::DeleteEndpoint { id: decode(id)? }),
            ("POST", ["v1", "endpoints", id, "rotate_secret"]) => {
                Some(Route::RotateEndpointSecret { id: decode(id)? })
            }
            ("GET", ["v1", "events"]) => Some(Route::ListEvents),
            ("GET", ["v1", "events", id]) => Some(Route::GetEvent { id: decode(id)? }),
            ("POST", ["v1", "events", id, "resend"]) => {
                Some(Route::ResendEvent { id: decode(id)? })
            }
            ("GET", ["v1", "sessions", id, "verified_data"]) => {
                Some(Route::VerifiedData { id: decode(id)? })
            }
            ("GET", ["v1", "sessions", id, "verified_data", "accesses"]) => {
                Some(Route::VerifiedDataAccesses { id: decode(id)? })
            }
            _ => None,
        };
        if session_route.is_some() {
            return session_route;
        }
        // A provider's routes have no parameters: they match as written.
        for r in crate::providers::ALL {
            if let Some(w) = &r.webhook
                && m == "POST"
                && path == w.path
            {
                return Some(Route::Webhook { provider: r.name });
            }
            if let Some(route) = r.routes.iter().find(|e| e.method == m && e.path == path) {
                return Some(Route::Extra {
                    provider: r.name,
                    route,
                });
            }
        }
        None
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
        for (method, template, function) in routes() {
            let path = template
                .replace("{id}", "ses_x")
                .replace("{user_id}", "user-42");
            let route =
                Route::matching(&Method::from_bytes(method.as_bytes()).unwrap(), &path).unwrap();
            assert_eq!(route.function(), function, "{template}");
            assert_eq!(route.key(), format!("{method} {template}"));
        }
    }

    #[test]
    fn every_app_route_needs_a_scope_and_only_webhooks_none() {
        for (method, template, _) in routes() {
            let path = template
                .replace("{id}", "ses_x")
                .replace("{user_id}", "user-42");
            let route =
                Route::matching(&Method::from_bytes(method.as_bytes()).unwrap(), &path).unwrap();
            let is_webhook = matches!(route, Route::Webhook { .. });
            assert_eq!(route.scope().is_none(), is_webhook, "{template}");
            // Reading needs a read scope; changing needs a write one (never read for a POST).
            if let Some(scope) = route.scope() {
                let name = scope.as_str();
                assert_eq!(
                    method == "GET",
                    name.ends_with(":read"),
                    "{method} {template}"
                );
            }
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
        assert_eq!(
            allow(Method::DELETE, "/v1/sessions").as_deref(),
            Some("GET, POST")
        );
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
        // Every route's path refuses a method none has with exactly the methods it has.
        for (_, template, _) in routes() {
            let path = template
                .replace("{id}", "ses_x")
                .replace("{user_id}", "user-42");
            let mut methods: Vec<&str> = routes()
                .iter()
                .filter(|(_, t, _)| *t == template)
                .map(|(m, _, _)| *m)
                .collect();
            methods.sort_unstable();
            assert_eq!(
                allow(Method::PUT, &path),
                Some(methods.join(", ")),
                "{template}"
            );
        }
    }
}
