//! Nevis IDV's two endpoints with the bearer access key. Reads are retried (safe); the create is
//! retried only when the request never left (a refused connection), since a second POST would
//! open a second Nevis session.

use super::wire::{self, Created, NevisSession};
use crate::error::Error;
use crate::providers::retry;
use crate::secrets::NevisSecrets;
use std::time::Duration;

const PROVIDER: &str = "nevis";
const ATTEMPTS: u32 = 3;

pub struct NevisClient {
    http: reqwest::Client,
    /// The instance URL; `None` when Nevis is not configured.
    api_url: Option<String>,
}

impl NevisClient {
    pub fn new(http: reqwest::Client, api_url: Option<&str>) -> Self {
        Self {
            http,
            api_url: api_url.map(|u| u.trim_end_matches('/').to_owned()),
        }
    }

    pub fn instance_url(&self) -> Result<&str, Error> {
        self.api_url
            .as_deref()
            .ok_or(Error::ProviderNotConfigured(PROVIDER))
    }

    /// `POST idverification/sessions`: a new Nevis session and the URL to send the user to.
    pub async fn create_session(&self, creds: &NevisSecrets) -> Result<Created, Error> {
        let url = format!("{}{}", self.instance_url()?, wire::SESSIONS_PATH);
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            // ASSUMPTION: Nevis needs no request fields (the redirect URL is set per integration).
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&creds.access_key)
                .header("Accept", "application/json")
                .json(&serde_json::json!({}))
                .send()
                .await;
            match sent {
                Ok(r) => break r,
                Err(e) if e.is_connect() && attempt < ATTEMPTS => {
                    tokio::time::sleep(retry::backoff(attempt)).await;
                }
                // A timeout may have created a session on Nevis: not retried, the caller may.
                Err(e) => return Err(transport(&e)),
            }
        };
        let body = check(resp).await?;
        let created: Created = serde_json::from_slice(&body).map_err(|_| Error::Provider {
            provider: PROVIDER,
            detail: "unreadable create-session answer".into(),
        })?;
        if !wire::is_session_id(&created.session_id) {
            return Err(Error::Provider {
                provider: PROVIDER,
                detail: "sessionId is not nine digits".into(),
            });
        }
        Ok(created)
    }

    /// `GET idverification/sessions/{sessionId}`: the session's current status (and result).
    pub async fn get_session(
        &self,
        creds: &NevisSecrets,
        session_id: &str,
    ) -> Result<NevisSession, Error> {
        if !wire::is_session_id(session_id) {
            return Err(Error::Internal(
                "stored Nevis sessionId is malformed".into(),
            ));
        }
        let url = format!(
            "{}{}/{session_id}",
            self.instance_url()?,
            wire::SESSIONS_PATH
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .get(&url)
                .bearer_auth(&creds.access_key)
                .header("Accept", "application/json")
                .send()
                .await;
            let outcome = match sent {
                Ok(resp) => check(resp).await,
                Err(e) => Err(transport(&e)),
            };
            match outcome {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|_| Error::Provider {
                        provider: PROVIDER,
                        detail: "unreadable session answer".into(),
                    });
                }
                // A read is safe to repeat: retry what may pass on its own.
                Err(Error::ProviderUnavailable { retry_after, .. })
                    if attempt < ATTEMPTS && retry_after <= Duration::from_secs(2) =>
                {
                    tokio::time::sleep(retry::backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Nevis's status codes on ours: 5xx and 429 may pass (503, retryable); anything else is a
/// request or configuration problem an operator must look at (502).
async fn check(resp: reqwest::Response) -> Result<bytes::Bytes, Error> {
    let status = resp.status();
    if status.as_u16() == 429 {
        let wait = retry::retry_after(resp.headers()).unwrap_or(Duration::from_secs(1));
        return Err(unavailable("rate limited", wait));
    }
    if status.is_server_error() {
        return Err(unavailable(
            &format!("answered {status}"),
            Duration::from_secs(2),
        ));
    }
    if !status.is_success() {
        // 401 missing key, 403 invalid key, 404 unknown session, 400/405/409/415/422 our request.
        return Err(Error::Provider {
            provider: PROVIDER,
            detail: format!("answered {status}"),
        });
    }
    resp.bytes()
        .await
        .map_err(|_| unavailable("body cut short", Duration::from_secs(1)))
}

fn transport(e: &reqwest::Error) -> Error {
    let why = if e.is_timeout() {
        "timed out"
    } else {
        "unreachable"
    };
    unavailable(why, Duration::from_secs(2))
}

fn unavailable(detail: &str, retry_after: Duration) -> Error {
    Error::ProviderUnavailable {
        provider: PROVIDER,
        detail: detail.to_owned(),
        retry_after,
    }
}
