//! The route table: the same one for API Gateway (template.yaml) and the local server. The
//! session API's routes are fixed; each provider adds its webhook route and the routes only it
//! has (`providers::ALL`).

use crate::Error;
use crate::providers::registry::{ExtraRoute, Registration};
use http::Method;

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
}

/// The routes of the session API, whatever the providers.
const SESSION_ROUTES: [(&str, &str, Function); 7] = [
    ("POST", "/v1/sessions", Function::START_SESSION),
    ("POST", "/v1/sessions/{id}/cancel", Function::START_SESSION),
    ("GET", "/v1/sessions/{id}", Function::GET_SESSION),
    ("GET", "/v1/sessions/{id}/history", Function::GET_SESSION),
    ("GET", "/v1/users/{user_id}/sessions", Function::GET_SESSION),
    ("POST", "/v1/sessions/{id}/link", Function::START_SESSION),
    (
        "GET",
        "/v1/users/{user_id}/reauthentications",
        Function::GET_SESSION,
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

/// `(method, path template, function)` of every route: the session API's, outbound events',
/// then each provider's webhook and own routes.
pub fn routes() -> Vec<(&'static str, &'static str, Function)> {
    let mut all = SESSION_ROUTES.to_vec();
    all.extend(LISTING_ROUTES);
    all.extend(EVENT_ROUTES);
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
    ListUserReauthentications {
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
            Route::StartSession | Route::CancelSession { .. } | Route::LinkSession { .. } => {
                Function::START_SESSION
            }
            Route::GetSession { .. }
            | Route::SessionHistory { .. }
            | Route::ListUserSessions { .. }
            | Route::ListSessions
            | Route::ListUserReauthentications { .. } => Function::GET_SESSION,
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

    /// API Gateway's route key, e.g. `GET /v1/sessions/{id}`.
    pub fn key(&self) -> String {
        let fixed = match self {
            Route::StartSession => "POST /v1/sessions",
            Route::CancelSession { .. } => "POST /v1/sessions/{id}/cancel",
            Route::GetSession { .. } => "GET /v1/sessions/{id}",
            Route::SessionHistory { .. } => "GET /v1/sessions/{id}/history",
            Route::ListUserSessions { .. } => "GET /v1/users/{user_id}/sessions",
            Route::ListSessions => "GET /v1/sessions",
            Route::LinkSession { .. } => "POST /v1/sessions/{id}/link",
            Route::ListUserReauthentications { .. } => "GET /v1/users/{user_id}/reauthentications",
            Route::CreateEndpoint => "POST /v1/endpoints",
            Route::ListEndpoints => "GET /v1/endpoints",
            Route::GetEndpoint { .. } => "GET /v1/endpoints/{id}",
            Route::UpdateEndpoint { .. } => "PATCH /v1/endpoints/{id}",
            Route::DeleteEndpoint { .. } => "DELETE /v1/endpoints/{id}",
            Route::RotateEndpointSecret { .. } => "POST /v1/endpoints/{id}/rotate_secret",
            Route::ListEvents => "GET /v1/events",
            Route::GetEvent { .. } => "GET /v1/events/{id}",
            Route::ResendEvent { .. } => "POST /v1/events/{id}/resend",
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
            ("GET", ["v1", "users", user, "reauthentications"]) => {
                Some(Route::ListUserReauthentications {
                    user_id: decode(user)?,
                })
            }
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
