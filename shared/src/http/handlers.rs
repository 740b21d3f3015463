//! From a request to a flow and back: validate, authenticate, call the use case, shape the answer.
//! No provider is named here: a provider's requests reach its adapter through the generic flows.

use super::{ApiRequest, ApiResponse, Function, MAX_BODY, Route, auth, views};
use crate::events::endpoints;
use crate::flows::idempotency::IdempotencyKey;
use crate::flows::{bind, link, resume, retry, sessions, start, verified_data, webhook};
use crate::providers::registry::ExtraOp;
use crate::{App, Error, error::FieldError};
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// Serves one request for `function`. What matches no route (API Gateway's `$default` route
/// brings it) is a 404, or a 405 on a known path; a route of another function is a 404 too.
pub async fn handle(app: &App, function: Function, req: ApiRequest) -> ApiResponse {
    let started = Instant::now();
    let route = Route::resolve(&req.method, &req.path).and_then(|r| {
        if r.function() == function {
            Ok(r)
        } else {
            Err(Error::NotFound)
        }
    });
    let key = route
        .as_ref()
        .map_or_else(|_| "unmatched".to_owned(), Route::key);
    let resp = match route {
        Err(e) => super::problem::response(&e),
        Ok(route) => dispatch(app, &route, &req)
            .await
            .unwrap_or_else(|e| super::problem::response(&e)),
    };
    tracing::info!(
        route = key,
        status = resp.status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

async fn dispatch(app: &App, route: &Route, req: &ApiRequest) -> Result<ApiResponse, Error> {
    if req.body.len() > MAX_BODY {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY });
    }
    if let Route::Webhook { provider } = route {
        // Public: the provider's dialect checks authenticity on the raw request.
        let adapter = app.providers.by_name(provider).ok_or(Error::NotFound)?;
        let ack = webhook::ingest(app, adapter, &req.headers, &req.body).await;
        match &ack {
            Ok(a) if a.duplicate => crate::metrics::webhook_duplicated(provider),
            Err(e) if crate::metrics::is_webhook_rejection(e) => {
                crate::metrics::webhook_rejected(provider);
            }
            _ => {}
        }
        let ack = ack?;
        return Ok(views::ack(&ack));
    }
    let doc = app.secrets.get().await?;
    let caller = auth::authenticate(&doc, req.header("authorization"))?;
    if let Some(scope) = route.scope() {
        caller.require(scope)?;
    }
    if let Route::VerifiedData { id } = route {
        // Personal data: answered (no-store, as every answer), never kept.
        let read = verified_data::read(app, &caller, id).await?;
        return Ok(ApiResponse::json(
            StatusCode::OK,
            &views::verified_data(&read),
        ));
    }
    let tenant = caller.tenant;
    let providers = &app.providers;
    match route {
        Route::StartSession => {
            let mut body = json_object(req)?;
            let name = match body.remove("provider") {
                Some(Value::String(name)) => name,
                _ => {
                    return Err(Error::invalid(
                        "provider",
                        "required",
                        "provider is required",
                    ));
                }
            };
            let adapter = start::adapter_named(app, &name)?;
            let parsed = start::parse(adapter, &body)?;
            let idem = idempotency(req, &doc)?;
            let started = start::start(app, adapter, &tenant, parsed, idem.as_ref()).await?;
            Ok(ApiResponse::json(
                StatusCode::CREATED,
                &views::session(providers, &started.session, Some(started.client)),
            ))
        }
        Route::Extra { provider, route } => match route.op {
            ExtraOp::Start => {
                let body = json_object(req)?;
                let adapter = app.providers.by_name(provider).ok_or(Error::NotFound)?;
                let parsed = start::parse(adapter, &body)?;
                let idem = idempotency(req, &doc)?;
                let started = start::start(app, adapter, &tenant, parsed, idem.as_ref()).await?;
                let mut answer = json!({
                    "session": views::session(providers, &started.session, Some(started.client.clone())),
                });
                if let (Some(out), Value::Object(client)) = (answer.as_object_mut(), started.client)
                {
                    out.extend(client);
                }
                Ok(ApiResponse::json(StatusCode::CREATED, &answer))
            }
        },
        Route::CancelSession { id } => {
            no_fields(req)?;
            let idem = idempotency(req, &doc)?;
            let s = crate::flows::idempotency::once(app, &tenant, idem.as_ref(), 200, || {
                sessions::cancel(app, &tenant, id)
            })
            .await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session(providers, &s, None),
            ))
        }
        Route::ResumeSession { id } => {
            no_fields(req)?;
            let idem = idempotency(req, &doc)?;
            let resumed = resume::resume(app, &tenant, id, idem.as_ref()).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session(providers, &resumed.session, Some(resumed.client)),
            ))
        }
        Route::RetrySession { id } => {
            let body = if req.body.is_empty() {
                Map::new()
            } else {
                json_object(req)?
            };
            let idem = idempotency(req, &doc)?;
            let retried = retry::retry(app, &tenant, id, &body, idem.as_ref()).await?;
            Ok(ApiResponse::json(
                StatusCode::CREATED,
                &views::session(providers, &retried.session, Some(retried.client)),
            ))
        }
        Route::GetSession { id } => {
            let refresh = match req.query_param("refresh") {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(Error::invalid("refresh", "invalid_value", "true or false")),
            };
            let s = sessions::get(app, &tenant, id, refresh).await?;
            let events = sessions::identity_events(app, &s).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session_with_events(providers, &s, events.as_deref()),
            ))
        }
        Route::SessionHistory { id } => {
            let history = sessions::history(app, &tenant, id).await?;
            Ok(ApiResponse::json(StatusCode::OK, &views::history(&history)))
        }
        Route::ListUserSessions { user_id } => {
            crate::input::user_id_param(user_id)?;
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let filter = crate::store::SessionFilter::user(user_id);
            let page =
                sessions::list(app, &tenant, &filter, limit, req.query_param("cursor")).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::list(providers, &page),
            ))
        }
        Route::ListSessions => {
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let filter = sessions::filter(|k| req.query_param(k))?;
            let page =
                sessions::list(app, &tenant, &filter, limit, req.query_param("cursor")).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::list(providers, &page),
            ))
        }
        Route::LinkSession { id } => {
            let body = json_object(req)?;
            link::check(app, &body)?;
            let idem = idempotency(req, &doc)?;
            let s = crate::flows::idempotency::once(app, &tenant, idem.as_ref(), 200, || {
                link::link(app, &tenant, id, &body)
            })
            .await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session(providers, &s, None),
            ))
        }
        Route::BindSession { id } => {
            let body = json_object(req)?;
            bind::check(app, &body)?;
            let idem = idempotency(req, &doc)?;
            let s = crate::flows::idempotency::once(app, &tenant, idem.as_ref(), 200, || {
                bind::bind(app, &tenant, id, &body)
            })
            .await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session(providers, &s, None),
            ))
        }
        Route::ListUserReauthentications { user_id } => {
            crate::input::user_id_param(user_id)?;
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let list = sessions::reauthentications(app, &tenant, user_id, limit).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::reauthentications(&list),
            ))
        }
        Route::RedactSession { id } => {
            no_fields(req)?;
            let s = crate::flows::redact::redact_session(app, &tenant, id).await?;
            // As a read shows it (a Prove session's identity events: none left).
            let events = sessions::identity_events(app, &s).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::session_with_events(providers, &s, events.as_deref()),
            ))
        }
        Route::RedactUser { user_id } => {
            crate::input::user_id_param(user_id)?;
            no_fields(req)?;
            let list = crate::flows::redact::redact_user(app, &tenant, user_id).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::redacted_user(providers, &list),
            ))
        }
        Route::CreateEndpoint => {
            let body = json_object(req)?;
            let (e, secret) = endpoints::create(app, &tenant, &body).await?;
            Ok(ApiResponse::json(
                StatusCode::CREATED,
                &views::endpoint(&e, Some(&secret)),
            ))
        }
        Route::ListEndpoints => {
            let list = endpoints::list(app, &tenant).await?;
            Ok(ApiResponse::json(StatusCode::OK, &views::endpoints(&list)))
        }
        Route::GetEndpoint { id } => {
            let e = endpoints::get(app, &tenant, id).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::endpoint(&e, None),
            ))
        }
        Route::UpdateEndpoint { id } => {
            let body = json_object(req)?;
            let e = endpoints::update(app, &tenant, id, &body).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::endpoint(&e, None),
            ))
        }
        Route::DeleteEndpoint { id } => {
            endpoints::delete(app, &tenant, id).await?;
            Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
        }
        Route::RotateEndpointSecret { id } => {
            let (e, secret) = endpoints::rotate(app, &tenant, id).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::endpoint(&e, Some(&secret)),
            ))
        }
        Route::ListEvents => {
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let filter = endpoints::filter(req.query_param("type"), req.query_param("session_id"))?;
            let (list, next) =
                endpoints::list_events(app, &tenant, &filter, limit, req.query_param("cursor"))
                    .await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::events(&list, next.as_deref()),
            ))
        }
        Route::GetEvent { id } => {
            let (e, deliveries) = endpoints::get_event(app, &tenant, id).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::event(&e, Some(&deliveries)),
            ))
        }
        Route::ResendEvent { id } => {
            let body = if req.body.is_empty() {
                Map::new()
            } else {
                json_object(req)?
            };
            let (e, deliveries) = endpoints::resend(app, &tenant, id, &body).await?;
            Ok(ApiResponse::json(
                StatusCode::ACCEPTED,
                &views::event(&e, Some(&deliveries)),
            ))
        }
        Route::VerifiedDataAccesses { id } => {
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let (list, next) =
                verified_data::accesses(app, &tenant, id, limit, req.query_param("cursor")).await?;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &views::accesses(&list, next.as_deref()),
            ))
        }
        Route::Webhook { .. } | Route::VerifiedData { .. } => unreachable!("answered above"),
    }
}

/// The request's `Idempotency-Key`, bound to its method, path and body (keyed with the secret's
/// fingerprint key).
fn idempotency(
    req: &ApiRequest,
    doc: &crate::secrets::SecretDoc,
) -> Result<Option<IdempotencyKey>, Error> {
    req.header("idempotency-key")
        .map(|h| {
            IdempotencyKey::new(
                h,
                req.method.as_str(),
                &req.path,
                &req.body,
                doc.fingerprint_key(),
            )
        })
        .transpose()
}

/// The body as a JSON object; 415 unless it is declared JSON.
fn json_object(req: &ApiRequest) -> Result<Map<String, Value>, Error> {
    let is_json = req
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Error::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::BadRequest("the body must be a JSON object".into())),
        Err(_) => Err(Error::BadRequest("the body is not valid JSON".into())),
    }
}

/// A body, if any, is a JSON object with no fields (cancel, resume, redact): any field is a mistake.
fn no_fields(req: &ApiRequest) -> Result<(), Error> {
    if req.body.is_empty() {
        return Ok(());
    }
    let fields: Vec<_> = json_object(req)?
        .keys()
        .map(|k| FieldError::new(k, "unknown_field", "this request takes no fields"))
        .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidRequest(fields))
    }
}
