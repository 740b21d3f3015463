//! The VerificationSession endpoints: create, retrieve, update, cancel, redact and list.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::api::{
    ApiError, CANCEL, CREATE, Call, Done, LIST, Params, REDACT, RETRIEVE, Run, UPDATE,
    invalid_param, no_such_session, serve, state_error,
};
use super::params::{
    apply_fields, created_range, expand, find, integer, only, optional_text, text,
};
use super::session::{Redaction, Session, Status};
use super::{Action, StripeSim, new_id, now_secs};

fn run_create(sim: &StripeSim, params: &Params, call: &Call) -> Result<Done, ApiError> {
    only(
        params,
        &[
            "type",
            "client_reference_id",
            "metadata",
            "options",
            "provided_details",
            "return_url",
            "related_customer",
            "verification_flow",
            "expand",
        ],
        "",
    )?;
    let expand = expand(params, "")?;
    if let Some(flow) = find(params, "verification_flow") {
        // ASSUMPTION: the simulated account has no Dashboard-configured verification flows.
        let flow = text(flow, "verification_flow")?;
        return Err(invalid_param(
            "verification_flow",
            format!("No such verification flow: '{flow}'"),
        )
        .code("resource_missing"));
    }
    if find(params, "type").is_none() {
        return Err(
            invalid_param("type", "Missing required param: type.").code("parameter_missing")
        );
    }
    let id = new_id("vs_");
    let mut session = Session {
        id: id.clone(),
        seq: 0,
        kind: String::new(),
        status: Status::RequiresInput,
        created: now_secs(),
        client_reference_id: None,
        client_secret: String::new(),
        page_token: String::new(),
        live_tokens: Vec::new(),
        metadata: Vec::new(),
        document_options: None,
        provided_email: None,
        provided_phone: None,
        related_customer: None,
        return_url: None,
        last_error: None,
        last_report: None,
        redaction: None,
    };
    apply_fields(&mut session, params)?;
    if let Some(node) = find(params, "client_reference_id") {
        session.client_reference_id = optional_text(node, "client_reference_id", 5000)?;
    }
    if let Some(node) = find(params, "related_customer") {
        session.related_customer = optional_text(node, "related_customer", 5000)?;
    }
    if let Some(node) = find(params, "return_url") {
        let value = optional_text(node, "return_url", 5000)?;
        if let Some(u) = &value
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(invalid_param("return_url", "Not a valid URL").code("url_invalid"));
        }
        session.return_url = value;
    }
    let mut st = sim.state();
    st.seq += 1;
    session.seq = st.seq;
    st.sessions.insert(id.clone(), session);
    super::renew_credentials(&mut st, &id);
    let event = sim.emit(
        &mut st,
        &id,
        "identity.verification_session.created",
        call.request(),
    );
    let body = sim.render(&st.sessions[&id], expand);
    Ok(Done {
        body,
        events: vec![event],
    })
}

pub async fn create(
    State(sim): State<StripeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &sim,
        CREATE,
        Method::POST,
        &uri,
        &headers,
        &body,
        Box::new(run_create),
    )
    .await
}

pub async fn retrieve(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let run: Run = Box::new(move |sim, params, _call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let mut st = sim.state();
        let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
        if s.open() {
            // "Retrieve the VerificationSession to get a fresh URL": while it is the user's turn.
            super::fresh_page(&mut st, &id);
        }
        Ok(Done {
            body: sim.render(&st.sessions[&id], expand),
            events: Vec::new(),
        })
    });
    serve(
        &sim,
        RETRIEVE,
        Method::GET,
        &uri,
        &headers,
        query.as_bytes(),
        run,
    )
    .await
}

pub async fn update(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, _call| {
        only(
            params,
            &["type", "metadata", "options", "provided_details", "expand"],
            "",
        )?;
        let expand = expand(params, "")?;
        let mut st = sim.state();
        let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
        if s.status != Status::RequiresInput || s.redaction.is_some() {
            return Err(ApiError::invalid(format!(
                "This VerificationSession cannot be updated: its status is {}{}; only a \
                 session in requires_input can be updated.",
                s.status.as_str(),
                if s.redaction.is_some() {
                    " and it is redacted"
                } else {
                    ""
                }
            )));
        }
        let mut updated = s.clone();
        apply_fields(&mut updated, params)?;
        let body = sim.render(&updated, expand);
        st.sessions.insert(id.clone(), updated);
        // ASSUMPTION: updates emit no event (no `identity.verification_session.updated` exists).
        Ok(Done {
            body,
            events: Vec::new(),
        })
    });
    serve(&sim, UPDATE, Method::POST, &uri, &headers, &body, run).await
}

pub async fn cancel(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let (_, events) = sim
            .act(&id, &Action::Cancel, call.request())
            .map_err(|r| state_error(r, &id))?;
        let st = sim.state();
        Ok(Done {
            body: sim.render(&st.sessions[&id], expand),
            events,
        })
    });
    serve(&sim, CANCEL, Method::POST, &uri, &headers, &body, run).await
}

/// Redaction is allowed in `requires_input` (which it cancels) and `verified` (ASSUMPTION: so a
/// session canceled otherwise cannot be redacted, as the documented rule reads); it then stays
/// `processing` until Stripe finishes it (Stripe: up to 4 days; ASSUMPTION: here only when a test
/// says so, `/control/sessions/{id}` `finish_redaction`).
pub async fn redact(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run: Run = Box::new(move |sim, params, call| {
        only(params, &["expand"], "")?;
        let expand = expand(params, "")?;
        let (status, redaction) = {
            let st = sim.state();
            let s = st.sessions.get(&id).ok_or_else(|| no_such_session(&id))?;
            (s.status, s.redaction)
        };
        let mut events = Vec::new();
        // ASSUMPTION: redacting again answers the session unchanged.
        if redaction.is_none() {
            if !matches!(status, Status::RequiresInput | Status::Verified) {
                return Err(ApiError::invalid(format!(
                    "This VerificationSession cannot be redacted: its status is {}; only a \
                     session in requires_input or verified can be redacted.",
                    status.as_str()
                )));
            }
            let set = |value| {
                if let Some(s) = sim.state().sessions.get_mut(&id) {
                    s.redaction = value;
                }
            };
            set(Some(Redaction::Processing));
            // Redacting an open session cancels it; the `canceled` event shows the redaction.
            if status == Status::RequiresInput {
                match sim.act(&id, &Action::Cancel, call.request()) {
                    Ok((_, canceled)) => events = canceled,
                    Err(r) => {
                        set(None);
                        return Err(state_error(r, &id));
                    }
                }
            }
        }
        let st = sim.state();
        Ok(Done {
            body: sim.render(&st.sessions[&id], expand),
            events,
        })
    });
    serve(&sim, REDACT, Method::POST, &uri, &headers, &body, run).await
}

fn run_list(sim: &StripeSim, params: &Params) -> Result<Done, ApiError> {
    only(
        params,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "status",
            "client_reference_id",
            "related_customer",
            "created",
            "expand",
        ],
        "",
    )?;
    let expand = expand(params, "data.")?;
    let limit = match find(params, "limit") {
        None => 10,
        Some(node) => {
            let n = integer(node, "limit")?;
            if !(1..=100).contains(&n) {
                return Err(invalid_param(
                    "limit",
                    format!(
                        "This value must be greater than or equal to 1 and less than or equal to 100 (it currently is {n})."
                    ),
                ));
            }
            n as usize
        }
    };
    let status = match find(params, "status") {
        None => None,
        Some(node) => {
            let s = text(node, "status")?;
            Some(Status::parse(s).ok_or_else(|| {
                invalid_param(
                    "status",
                    "Invalid status: must be one of canceled, processing, requires_input, or verified",
                )
            })?)
        }
    };
    let reference = find(params, "client_reference_id")
        .map(|n| text(n, "client_reference_id").map(str::to_owned))
        .transpose()?;
    let customer = find(params, "related_customer")
        .map(|n| text(n, "related_customer").map(str::to_owned))
        .transpose()?;
    let (min, max) = match find(params, "created") {
        Some(node) => created_range(node)?,
        None => (i64::MIN, i64::MAX),
    };
    let after = find(params, "starting_after")
        .map(|n| text(n, "starting_after").map(str::to_owned))
        .transpose()?;
    let before = find(params, "ending_before")
        .map(|n| text(n, "ending_before").map(str::to_owned))
        .transpose()?;
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
        .code("parameters_exclusive")
        .param("ending_before")
        .validation());
    }
    let st = sim.state();
    let mut all: Vec<&Session> = st
        .sessions
        .values()
        .filter(|s| status.is_none_or(|w| s.status == w))
        .filter(|s| {
            reference
                .as_deref()
                .is_none_or(|r| s.client_reference_id.as_deref() == Some(r))
        })
        .filter(|s| {
            customer
                .as_deref()
                .is_none_or(|c| s.related_customer.as_deref() == Some(c))
        })
        .filter(|s| (min..=max).contains(&s.created))
        .collect();
    // Newest first.
    all.sort_by_key(|s| std::cmp::Reverse(s.seq));
    // ASSUMPTION: a cursor naming no session is a 400 `resource_missing`.
    let position = |cursor: &str, param: &'static str| -> Result<u64, ApiError> {
        st.sessions.get(cursor).map(|s| s.seq).ok_or_else(|| {
            invalid_param(param, format!("No such verification_session: '{cursor}'"))
                .code("resource_missing")
        })
    };
    let (page, has_more): (Vec<&Session>, bool) = match (&after, &before) {
        (Some(cursor), _) => {
            let seq = position(cursor, "starting_after")?;
            let rest: Vec<&Session> = all.into_iter().filter(|s| s.seq < seq).collect();
            let more = rest.len() > limit;
            (rest.into_iter().take(limit).collect(), more)
        }
        (_, Some(cursor)) => {
            let seq = position(cursor, "ending_before")?;
            let newer: Vec<&Session> = all.into_iter().filter(|s| s.seq > seq).collect();
            let more = newer.len() > limit;
            let skip = newer.len().saturating_sub(limit);
            (newer.into_iter().skip(skip).collect(), more)
        }
        _ => {
            let more = all.len() > limit;
            (all.into_iter().take(limit).collect(), more)
        }
    };
    let data: Vec<Value> = page.iter().map(|s| sim.render(s, expand)).collect();
    Ok(Done {
        body: json!({
            "object": "list",
            "url": "/v1/identity/verification_sessions",
            "has_more": has_more,
            "data": data,
        }),
        events: Vec::new(),
    })
}

pub async fn list(
    State(sim): State<StripeSim>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    serve(
        &sim,
        LIST,
        Method::GET,
        &uri,
        &headers,
        query.as_bytes(),
        Box::new(|sim, params, _| run_list(sim, params)),
    )
    .await
}
