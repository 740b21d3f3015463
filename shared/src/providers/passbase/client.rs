//! Passbase's identities API: `GET {api}/identities/{id}` with `X-API-KEY` (the secret key).
//! A read, so safe to retry: transport errors and 5xx are retried with backoff, a 429 waits for
//! `Retry-After` when that is short; anything else becomes our 502/503. Transport rules
//! (deadline, no redirects, bounded bodies) are `providers::transport`'s.

use super::settings::Secrets;
use super::{Identity, is_identity_key};
use crate::error::Error;
use crate::providers::transport::{Call, MAX_WORD, Resend, Transport, capped, provider_error};
use std::time::Duration;

const PROVIDER: &str = "passbase";
/// Longest `Retry-After` we wait out inside one request.
const MAX_WAIT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone)]
pub enum IdentityLookup {
    Found(Identity),
    /// 404 "identity not found with the given ID".
    NotFound,
}

pub struct PassbaseClient {
    transport: Transport,
    api_url: String,
}

impl PassbaseClient {
    pub fn new(transport: Transport, api_url: &str) -> Self {
        Self {
            transport,
            api_url: api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The authoritative state of one identity.
    pub async fn identity(&self, creds: &Secrets, id: &str) -> Result<IdentityLookup, Error> {
        let Some(body) = self.identity_body(creds, id).await? else {
            return Ok(IdentityLookup::NotFound);
        };
        // The serde message could quote personal data: only the fact reaches the error.
        let mut identity: Identity = serde_json::from_slice(&body)
            .map_err(|_| provider_error(PROVIDER, "unreadable identity body"))?;
        if !identity.id.eq_ignore_ascii_case(id) {
            return Err(provider_error(
                PROVIDER,
                "the identity read names another identity",
            ));
        }
        identity.id.make_ascii_lowercase();
        // Stored as the session's provider status: bounded where it enters.
        identity.status = capped(identity.status, MAX_WORD);
        Ok(IdentityLookup::Found(identity))
    }

    /// The same read, its body for the caller to read (the data points: `verified`); `None`
    /// when Passbase knows no such identity.
    pub async fn identity_body(
        &self,
        creds: &Secrets,
        id: &str,
    ) -> Result<Option<bytes::Bytes>, Error> {
        if !is_identity_key(id) {
            return Ok(None);
        }
        let url = &format!("{}/identities/{id}", self.api_url);
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
                        .header("X-API-KEY", creds.api_key.expose())
                        .header("Accept", "application/json"))
                },
                |_| None,
            )
            .await?;
        let status = answer.status;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            // 400/401/403: our key or request is wrong; an operator must act.
            return Err(provider_error(PROVIDER, format!("answered {status}")));
        }
        Ok(Some(answer.body))
    }
}
