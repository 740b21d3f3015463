//! From a request to a flow and back: validate, authenticate, call the use case, shape the answer.

use super::{ApiRequest, ApiResponse, Function, MAX_BODY, Route, auth, problem, views};
use crate::flows::idempotency::IdempotencyKey;
use crate::flows::{authento, nevis, prove, sessions, tokens};
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
    let key = route.as_ref().map_or("unmatched", Route::key);
    let resp = match route {
        Err(e) => problem::response(&e),
        Ok(route) => dispatch(app, &route, &req)
            .await
            .unwrap_or_else(|e| problem::response(&e)),
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
    if *route == Route::AuthentoWebhook {
        let ack = authento::ingest_webhook(
            app,
            &req.body,
            req.header(crate::providers::authento::webhook::DIGEST_HEADER),
            req.header(crate::providers::authento::webhook::DIGEST_ALG_HEADER),
        )
        .await?;
        return Ok(views::ack(&ack));
    }
    if *route == Route::ProveWebhook {
        let ack = prove::ingest_webhook(
            app,
            &req.body,
            req.header(crate::providers::prove::webhook::AUTH_HEADER),
        )
        .await?;
        return Ok(views::ack(&ack));
    }
    if *route == Route::PassbaseWebhook {
        return super::passbase_routes::webhook(app, req).await;
    }
    let doc = app.secrets.get().await?;
    let tenant = auth::authenticate(&doc, req.header("authorization"))?;
    match route {
        Route::IssueToken => {
            let body = json_object(req)?;
            let input = super::authento_input::token_input(&body, &[])?;
            let idem = idempotency(req, &doc)?;
            let issued = tokens::issue(app, &tenant, &input, idem.as_ref()).await?;
            let client = json!({"token": issued.token, "verify_url": issued.verify_url});
            Ok(ApiResponse::json(
                StatusCode::CREATED,
                &json!({"session": views::session(&issued.session, Some(client)), "token": issued.token, "verify_url": issued.verify_url}),
            ))
        }
        Route::StartSession => {
            let body = json_object(req)?;
            let provider = body.get("provider").and_then(Value::as_str);
            match provider {
                Some("authento") => {
                    let input = super::authento_input::token_input(&body, &["provider"])?;
                    let idem = idempotency(req, &doc)?;
                    let issued = tokens::issue(app, &tenant, &input, idem.as_ref()).await?;
                    let client = json!({"token": issued.token, "verify_url": issued.verify_url});
                    Ok(ApiResponse::json(
                        StatusCode::CREATED,
                        &views::session(&issued.session, Some(client)),
                    ))
                }
                Some("prove") => {
                    let input = super::prove_input::start_input(&body)?;
                    let idem = idempotency(req, &doc)?;
                    let started = prove::start(app, &tenant, &input, idem.as_ref()).await?;
                    // A replay cannot give the token again: it is never stored.
                    let client = if started.replayed {
                        json!({"auth_token": null, "replayed": true})
                    } else {
                        json!({"auth_token": started.auth_token})
                    };
                    Ok(ApiResponse::json(
                        StatusCode::CREATED,
                        &views::session(&started.session, Some(client)),
                    ))
                }
                Some("nevis") => {
                    let input = nevis::parse_start(&body)?;
                    let idem = idempotency(req, &doc)?;
                    let started = nevis::start(app, &tenant, &input, idem.as_ref()).await?;
                    let client = json!({"start_url": started.start_url});
                    Ok(ApiResponse::json(
                        StatusCode::CREATED,
                        &views::session(&started.session, Some(client)),
                    ))
                }
                Some("passbase") => {
                    let idem = idempotency(req, &doc)?;
                    super::passbase_routes::start(app, &tenant, &body, idem.as_ref()).await
                }
                Some(_) => Err(Error::invalid(
                    "provider",
                    "invalid_value",
                    "one of authento, prove, nevis, passbase",
                )),
                None => Err(Error::invalid(
                    "provider",
                    "required",
                    "provider is required",
                )),
            }
        }
        Route::CancelSession { id } => {
            if !req.body.is_empty() {
                // A body, if any, is a JSON object with no fields: any field is a mistake.
                let fields: Vec<_> = json_object(req)?
                    .keys()
                    .map(|k| {
                        FieldError::new(k, "unknown_field", "a cancel request takes no fields")
                    })
                    .collect();
                if !fields.is_empty() {
                    return Err(Error::InvalidRequest(fields));
                }
            }
            let idem = idempotency(req, &doc)?;
            let s = crate::flows::idempotency::once(app, &tenant, idem.as_ref(), 200, || {
                sessions::cancel(app, &tenant, id)
            })
            .await?;
            Ok(ApiResponse::json(StatusCode::OK, &views::session(&s, None)))
        }
        Route::GetSession { id } => {
            let refresh = match req.query_param("refresh") {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(Error::invalid("refresh", "invalid_value", "true or false")),
            };
            let s = sessions::get(app, &tenant, id, refresh).await?;
            if s.prove.is_some() {
                let events = prove::identity_events(app, &s).await?;
                return Ok(ApiResponse::json(
                    StatusCode::OK,
                    &views::session_with_events(&s, &events),
                ));
            }
            Ok(ApiResponse::json(StatusCode::OK, &views::session(&s, None)))
        }
        Route::ListUserSessions { user_id } => {
            crate::input::user_id_param(user_id)?;
            let limit = crate::input::limit(req.query_param("limit"), 20)?;
            let page =
                sessions::list(app, &tenant, user_id, limit, req.query_param("cursor")).await?;
            Ok(ApiResponse::json(StatusCode::OK, &views::list(&page)))
        }
        Route::LinkSession { id } => {
            let body = json_object(req)?;
            let idem = idempotency(req, &doc)?;
            super::passbase_routes::link(app, &tenant, id, &body, idem).await
        }
        Route::ListUserReauthentications { user_id } => {
            super::passbase_routes::reauthentications(app, &tenant, user_id, req).await
        }
        Route::AuthentoWebhook | Route::ProveWebhook | Route::PassbaseWebhook => {
            unreachable!("handled above")
        }
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
                &doc.fingerprint_key,
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
