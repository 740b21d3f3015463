//! Passbase's identities API: `GET {api}/identities/{id}` with `X-API-KEY` (the secret key).
//! A read, so safe to retry: transport errors and 5xx are retried with backoff, a 429 waits for
//! `Retry-After` when that is short; anything else becomes our 502/503.

use super::{Identity, is_identity_key};
use crate::error::Error;
use crate::providers::retry;
use crate::secrets::PassbaseSecrets;
use std::time::Duration;

const PROVIDER: &str = "passbase";
const ATTEMPTS: u32 = 3;
/// Longest `Retry-After` we wait out inside one request.
const MAX_WAIT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone)]
pub enum IdentityLookup {
    Found(Identity),
    /// 404 "identity not found with the given ID".
    NotFound,
}

pub struct PassbaseClient {
    http: reqwest::Client,
    api_url: String,
}

impl PassbaseClient {
    pub fn new(http: reqwest::Client, api_url: &str) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The authoritative state of one identity.
    pub async fn identity(
        &self,
        creds: &PassbaseSecrets,
        id: &str,
    ) -> Result<IdentityLookup, Error> {
        if !is_identity_key(id) {
            return Ok(IdentityLookup::NotFound);
        }
        let url = format!("{}/identities/{id}", self.api_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .get(&url)
                .header("X-API-KEY", &creds.api_key)
                .header("Accept", "application/json")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(retry::backoff(attempt)).await;
                        continue;
                    }
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    };
                    return Err(unavailable(why, Duration::from_secs(2)));
                }
            };
            let status = resp.status();
            if status.as_u16() == 429 {
                let wait = retry::retry_after(resp.headers()).unwrap_or(Duration::from_secs(1));
                if attempt < ATTEMPTS && wait <= MAX_WAIT {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(unavailable("rate limited", wait));
            }
            if status.is_server_error() {
                if attempt < ATTEMPTS {
                    tokio::time::sleep(retry::backoff(attempt)).await;
                    continue;
                }
                return Err(unavailable(
                    &format!("answered {status}"),
                    Duration::from_secs(2),
                ));
            }
            if status.as_u16() == 404 {
                return Ok(IdentityLookup::NotFound);
            }
            if !status.is_success() {
                // 400/401/403: our key or request is wrong; an operator must act.
                return Err(Error::Provider {
                    provider: PROVIDER,
                    detail: format!("answered {status}"),
                });
            }
            let body = resp
                .bytes()
                .await
                .map_err(|_| unavailable("body cut short", Duration::from_secs(1)))?;
            // The serde message could quote personal data: only the fact reaches the error.
            let mut identity: Identity =
                serde_json::from_slice(&body).map_err(|_| Error::Provider {
                    provider: PROVIDER,
                    detail: "unreadable identity body".into(),
                })?;
            if !identity.id.eq_ignore_ascii_case(id) {
                return Err(Error::Provider {
                    provider: PROVIDER,
                    detail: "the identity read names another identity".into(),
                });
            }
            identity.id.make_ascii_lowercase();
            return Ok(IdentityLookup::Found(identity));
        }
    }
}

fn unavailable(detail: &str, retry_after: Duration) -> Error {
    Error::ProviderUnavailable {
        provider: PROVIDER,
        detail: detail.to_owned(),
        retry_after,
    }
}
