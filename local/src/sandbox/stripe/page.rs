//! The hosted verification page a session's `url` opens. In Stripe's test mode the tester
//! "submits the session by selecting a predefined test case"; here the tester picks the outcome:
//! verified, a failure with any `last_error.code`, leaving (abandoned) or cancelling. After the
//! action the browser goes to the session's `return_url`, as Stripe sends the user back.

use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::session::{ERROR_CODES, Session, Status};
use super::{Action, StripeSim};
use crate::sandbox::html_escape;

#[derive(Deserialize)]
pub struct ActionForm {
    action: Option<String>,
    error_code: Option<String>,
}

/// The session a page token opens, and whether the token is still good for the user's current
/// attempt (an attempt spends the links handed out before it; the session gets a new `url`).
fn lookup(sim: &StripeSim, token: &str) -> Option<(Session, bool)> {
    let st = sim.state();
    let id = st.pages.get(token)?;
    let s = st.sessions.get(id)?.clone();
    let current = s.live_tokens.iter().any(|t| t == token);
    Some((s, current))
}

pub async fn show(State(sim): State<StripeSim>, Path(token): Path<String>) -> Response {
    match lookup(&sim, &token) {
        Some((s, current)) => Html(render(&s, current)).into_response(),
        None => page_error(
            StatusCode::NOT_FOUND,
            "This verification link is not valid.",
        ),
    }
}

pub async fn act(
    State(sim): State<StripeSim>,
    Path(token): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some((session, current)) = lookup(&sim, &token) else {
        return page_error(
            StatusCode::NOT_FOUND,
            "This verification link is not valid.",
        );
    };
    if !current || session.status != Status::RequiresInput || session.redaction.is_some() {
        return page_error(
            StatusCode::CONFLICT,
            "This verification link has already been used. Ask for a new one.",
        );
    }
    let id = session.id.clone();
    let processing = Duration::from_millis(sim.state().processing_ms);
    let code = form.error_code.unwrap_or_default();
    if form.action.as_deref() == Some("fail") && !ERROR_CODES.iter().any(|(c, _)| *c == code) {
        return page_error(StatusCode::BAD_REQUEST, "Unknown error code.");
    }
    // What the user does now, and what Stripe decides after processing.
    let (now, later) = match form.action.as_deref() {
        Some("verify") => (Action::Submit, Some(Action::Verify)),
        Some("fail") if super::session::is_session_level(&code) => {
            (Action::Fail { code, reason: None }, None)
        }
        Some("fail") => (Action::Submit, Some(Action::Fail { code, reason: None })),
        Some("submit") => (Action::Submit, None),
        Some("abandon") => (Action::Abandon, None),
        Some("cancel") => (Action::Cancel, None),
        _ => return page_error(StatusCode::BAD_REQUEST, "Unknown action."),
    };
    let events = match sim.act(&id, &now, None) {
        Ok((_, events)) => events,
        Err(why) => return page_error(StatusCode::CONFLICT, &format!("{why:?}")),
    };
    match later {
        None => sim.deliver_later(events, Duration::ZERO),
        Some(decision) => {
            // Stripe processes after the user is sent back; the events go out in order.
            let sim = sim.clone();
            tokio::spawn(async move {
                sim.deliver(&events, false, None).await;
                tokio::time::sleep(processing).await;
                if let Ok((_, decided)) = sim.act(&id, &decision, None) {
                    sim.deliver(&decided, false, None).await;
                }
            });
        }
    }
    let back = match session.return_url {
        Some(url) => url,
        None => token,
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response()
}

fn page_error(status: StatusCode, reason: &str) -> Response {
    let body = crate::sandbox::page::document(
        "Stripe Identity",
        "Stripe Identity (sandbox)",
        &format!(
            "<h1>Identity verification unavailable</h1><p class=\"alert\" role=\"alert\">{}</p>\n",
            html_escape(reason)
        ),
    );
    (status, Html(body)).into_response()
}

fn render(s: &Session, current: bool) -> String {
    use crate::sandbox::page::step;
    let hidden = |action: &'static str| [("action", action)];
    let last_error = match &s.last_error {
        Some((code, reason)) => format!("{} ({})", html_escape(code), html_escape(reason)),
        None => "none".into(),
    };
    // `abandoned` has its own button.
    let options: String = ERROR_CODES[1..]
        .iter()
        .map(|(c, r)| format!("<option value=\"{c}\">{c}: {}</option>", html_escape(r)))
        .collect();
    let select = format!(
        "<label for=\"error_code\">Failure</label> \
         <select id=\"error_code\" name=\"error_code\">{options}</select> "
    );
    let requirements = match &s.document_options {
        Some(d) => {
            let mut parts = Vec::new();
            if let Some(types) = &d.allowed_types {
                parts.push(format!("documents: {}", html_escape(&types.join(", "))));
            }
            if d.require_matching_selfie == Some(true) {
                parts.push("matching selfie".into());
            }
            if d.require_id_number == Some(true) {
                parts.push("ID number".into());
            }
            if d.require_live_capture == Some(true) {
                parts.push("live capture".into());
            }
            if parts.is_empty() {
                "none".into()
            } else {
                parts.join("; ")
            }
        }
        None => "none".into(),
    };
    let actions = if current && s.status == Status::RequiresInput && s.redaction.is_none() {
        format!(
            "<h2>Choose the test case</h2>\n{}{}{}{}{}",
            step(
                &hidden("verify"),
                "",
                "",
                "Submit: every check passes (verified)",
                "Stripe processes the submission, then verifies it (events processing, then \
                 verified): the session is verified.",
            ),
            step(
                &hidden("fail"),
                "",
                &select,
                "Submit: fail with this code",
                "A check fails: Stripe sets last_error and asks the user to try again \
                 (requires_input, with a new url). The session stays pending with that code as \
                 last_error.",
            ),
            step(
                &hidden("submit"),
                "",
                "",
                "Submit only (stays processing until a test decides)",
                "Stripe is still processing; nothing is decided until a test (or the control \
                 route) does.",
            ),
            step(
                &hidden("abandon"),
                "",
                "",
                "Leave without submitting (abandoned)",
                "The user leaves: Stripe changes nothing and sends no event; the gateway's \
                 deadline (expires_at) expires the session if nobody comes back.",
            ),
            step(
                &hidden("cancel"),
                "",
                "",
                "Cancel the session",
                "The VerificationSession is canceled at Stripe (event canceled): the session is \
                 canceled, last_error canceled.",
            ),
        )
    } else if !current && s.status == Status::RequiresInput {
        "<p role=\"status\">This link has been used. The integration gets a new url by \
         retrieving the session.</p>"
            .into()
    } else {
        "<p role=\"status\">Nothing left to do on this page: you can close it.</p>".into()
    };
    let main = format!(
        "<h1>Stripe Identity verification (sandbox)</h1>\n\
         <p class=\"note\">Test mode: no document is checked; the outcome is yours to choose. \
         Stripe's real page captures the document and selfie here, then sends the user to the \
         session's return_url.</p>\n\
         <dl><dt>Session</dt><dd id=\"session\">{id}</dd>\
         <dt>Type</dt><dd id=\"type\">{kind}</dd>\
         <dt>Requirements</dt><dd id=\"requirements\">{requirements}</dd>\
         <dt>Status</dt><dd id=\"status\">{status}</dd>\
         <dt>Last error</dt><dd id=\"last_error\">{last_error}</dd></dl>\n\
         {actions}",
        id = html_escape(&s.id),
        kind = html_escape(&s.kind),
        status = s.status.as_str(),
    );
    crate::sandbox::page::document(
        "Stripe Identity",
        &format!(
            "Stripe Identity verification: {} (sandbox)",
            s.status.as_str()
        ),
        &main,
    )
}
