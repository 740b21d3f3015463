//! Paths and queries: `Route::matching`, `ApiRequest::parse_query`, `input::{limit,
//! user_id_param}`. Input: `method \0 query \0 path` (or a bare path). A matched route is one of
//! the route table's, with non-empty parameters that survive percent-encoding; a query round-trips
//! through form encoding; `limit` and `user_id_param` accept exactly what docs/api.md#limits allows.
#![no_main]

use http::Method;
use idv::http::{ApiRequest, Route, routes};
use idv::input::{limit, user_id_param};
use idv_fuzz::{fields, refused, user_id_rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ([method, query], path) = fields::<2>(data);
    let path = String::from_utf8_lossy(path);
    let query = String::from_utf8_lossy(query);
    let method = match method {
        [] => Method::GET,
        m => Method::from_bytes(m).unwrap_or(Method::POST),
    };

    let route = Route::matching(&method, &path);
    if let Some(r) = &route {
        check_route(&method, r);
    }
    if !path.ends_with('/') {
        assert_eq!(
            Route::matching(&method, &format!("{path}/")),
            route,
            "a trailing slash changes nothing"
        );
    }

    let pairs = ApiRequest::parse_query(Some(&query));
    let again = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    assert_eq!(ApiRequest::parse_query(Some(&again)), pairs);
    assert!(ApiRequest::parse_query(None).is_empty());

    for s in [&*path, &*query] {
        match limit(Some(s), 20) {
            Ok(n) => assert!(
                (1..=100).contains(&n) && s.parse::<usize>() == Ok(n),
                "{s:?}"
            ),
            Err(e) => {
                assert!(
                    !s.parse::<usize>().is_ok_and(|n| (1..=100).contains(&n)),
                    "{s:?}"
                );
                refused(&e);
            }
        }
        match user_id_param(s) {
            Ok(()) => assert!(user_id_rule(s), "{s:?}"),
            Err(e) => {
                assert!(!user_id_rule(s), "{s:?}");
                refused(&e);
            }
        }
    }
    assert_eq!(limit(None, 20).unwrap(), 20);
});

/// The route is the table's entry for its key, and its parameter, percent-encoded byte by byte
/// into the template, matches the same route again.
fn check_route(method: &Method, r: &Route) {
    let (m, template, function) = routes()
        .into_iter()
        .find(|(m, t, _)| format!("{m} {t}") == r.key())
        .expect("every route is in the table");
    assert_eq!(m, method.as_str());
    assert_eq!(r.function(), function);
    let param = match r {
        Route::CancelSession { id }
        | Route::ResumeSession { id }
        | Route::RetrySession { id }
        | Route::GetSession { id }
        | Route::SessionHistory { id }
        | Route::LinkSession { id }
        | Route::BindSession { id }
        | Route::GetEndpoint { id }
        | Route::UpdateEndpoint { id }
        | Route::DeleteEndpoint { id }
        | Route::RotateEndpointSecret { id }
        | Route::GetEvent { id }
        | Route::ResendEvent { id }
        | Route::VerifiedData { id }
        | Route::VerifiedDataAccesses { id }
        | Route::RedactSession { id } => Some(id),
        Route::ListUserSessions { user_id }
        | Route::ListUserReauthentications { user_id }
        | Route::RedactUser { user_id } => Some(user_id),
        // Listed, not `_`: a new route with a parameter must be added above.
        Route::StartSession
        | Route::ListSessions
        | Route::CreateEndpoint
        | Route::ListEndpoints
        | Route::ListEvents
        | Route::Webhook { .. }
        | Route::Extra { .. } => None,
    };
    let path = match param {
        Some(p) => {
            assert!(!p.is_empty());
            let encoded: String = p.bytes().map(|b| format!("%{b:02X}")).collect();
            template
                .replace("{id}", &encoded)
                .replace("{user_id}", &encoded)
        }
        None => template.to_string(),
    };
    assert_eq!(Route::matching(method, &path).as_ref(), Some(r), "{path}");
}
