//! Nevis IDV's two endpoints with the bearer access key. Reads are retried (safe); the create is
//! sent again only when the request never left (a refused connection), since a second POST would
//! open a second Nevis session, and it is not sent at all without the time to finish it.
//! Transport rules (deadline, no redirects, bounded bodies) are `providers::transport`'s.

use super::settings::Secrets;
use super::wire::{self, Created, NevisSession};
use crate::error::Error;
use crate::providers::transport::{Call, Resend, Transport, provider_error};
use std::time::Duration;

const PROVIDER: &str = "nevis";
/// Longest `Retry-After` waited out inside one read.
const MAX_WAIT: Duration = Duration::from_secs(2);

pub struct NevisClient {
    transport: Transport,
    /// The instance URL; `None` when Nevis is not configured.
    api_url: Option<String>,
}

impl NevisClient {
    pub fn new(transport: Transport, api_url: Option<&str>) -> Self {
        Self {
            transport,
            api_url: api_url.map(|u| u.trim_end_matches('/').to_owned()),
        }
    }

    pub fn instance_url(&self) -> Result<&str, Error> {
        self.api_url
            .as_deref()
            .ok_or(Error::ProviderNotConfigured(PROVIDER))
    }

    /// `POST idverification/sessions`: a new Nevis session and the URL to send the user to.
    pub async fn create_session(&self, creds: &Secrets) -> Result<Created, Error> {
        let url = &format!("{}{}", self.instance_url()?, wire::SESSIONS_PATH);
        let call = Call {
            provider: PROVIDER,
            resend: Resend::IfNotSent,
            max_wait: MAX_WAIT,
        };
        let answer = self
            .transport
            .run(
                call,
                self.transport.deadline(),
                // ASSUMPTION: Nevis needs no request fields (the redirect URL is set per
                // integration).
                move || async move {
                    Ok(self
                        .transport
                        .http()
                        .post(url)
                        .bearer_auth(creds.access_key.expose())
                        .header("Accept", "application/json")
                        .json(&serde_json::json!({})))
                },
                |_| None,
            )
            .await?;
        check(answer.status)?;
        let created: Created = serde_json::from_slice(&answer.body)
            .map_err(|_| provider_error(PROVIDER, "unreadable create-session answer"))?;
        if !wire::is_session_id(&created.session_id) {
            return Err(provider_error(PROVIDER, "sessionId is not nine digits"));
        }
        // Handed to the app as it is: a URL's usual length at most.
        if created.start_url.len() > wire::MAX_START_URL {
            return Err(provider_error(PROVIDER, "startUrl is too long"));
        }
        Ok(created)
    }

    /// `GET idverification/sessions/{sessionId}`: the session's current status (its result is
    /// not read: `wire::NevisSession`).
    pub async fn get_session(
        &self,
        creds: &Secrets,
        session_id: &str,
    ) -> Result<NevisSession, Error> {
        let body = self.get_session_body(creds, session_id).await?;
        // The words that get stored are capped by `wire` as they are read.
        serde_json::from_slice(&body)
            .map_err(|_| provider_error(PROVIDER, "unreadable session answer"))
    }

    /// The same read, its body for the caller to read (the result data: `verified`).
    pub async fn get_session_body(
        &self,
        creds: &Secrets,
        session_id: &str,
    ) -> Result<bytes::Bytes, Error> {
        if !wire::is_session_id(session_id) {
            return Err(Error::Internal(
                "stored Nevis sessionId is malformed".into(),
            ));
        }
        let url = &format!(
            "{}{}/{session_id}",
            self.instance_url()?,
            wire::SESSIONS_PATH
        );
        let call = Call {
            provider: PROVIDER,
            resend: Resend::Safe,
            max_wait: MAX_WAIT,
        };
        let answer = self
            .transport
            .run(
                call,
                self.transport.deadline(),
                move || async move {
                    Ok(self
                        .transport
                        .http()
                        .get(url)
                        .bearer_auth(creds.access_key.expose())
                        .header("Accept", "application/json"))
                },
                |_| None,
            )
            .await?;
        check(answer.status)?;
        Ok(answer.body)
    }
}

/// Nevis's status codes on ours once 5xx and 429 were dealt with (`transport::default_step`):
/// anything but success is a request or configuration problem an operator must look at (502).
fn check(status: reqwest::StatusCode) -> Result<(), Error> {
    if status.is_success() {
        return Ok(());
    }
    // 401 missing key, 403 invalid key, 404 unknown session, 400/405/409/415/422 our request.
    Err(provider_error(PROVIDER, format!("answered {status}")))
}
