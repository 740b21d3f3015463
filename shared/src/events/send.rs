//! The seam between deliveries and the network: `Post` sends one signed message and says how it
//! went. Production sends through `outbound::Sender` (the SSRF guard, no redirects, capped
//! reads); tests give their own where they must see what would be sent.

use async_trait::async_trait;
use std::time::Duration;

/// One message to one endpoint: what Standard Webhooks signs and sends.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `webhook-id`: the event id, the same on every attempt (the receiver's dedupe key).
    pub id: String,
    /// `webhook-timestamp`: this attempt's time, Unix seconds.
    pub timestamp: i64,
    pub body: String,
    pub url: String,
    /// `whsec_...` secrets to sign with: the current one, and during a rotation the previous.
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered,
    /// Anything else (another status, a timeout, a refused address): try again later.
    Failed,
    /// 410 Gone: the endpoint is to be disabled.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, in a few words (no response body, no secret).
    pub error: Option<String>,
    /// The endpoint's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

#[async_trait]
pub trait Post: Send + Sync {
    async fn post(&self, message: &Outgoing) -> Answer;
}

/// Production: the SSRF-guarded sender.
#[async_trait]
impl<R, D> Post for crate::outbound::Sender<R, D>
where
    R: crate::outbound::send::Resolve + 'static,
    D: crate::outbound::send::Dial + 'static,
{
    async fn post(&self, m: &Outgoing) -> Answer {
        use crate::outbound::{Message, Outcome as Sent, SigningSecret};
        let failed = |error: &str| Answer {
            outcome: Outcome::Failed,
            status: None,
            latency_ms: 0,
            error: Some(error.to_owned()),
            retry_after: None,
        };
        let Ok(url) = url::Url::parse(&m.url) else {
            return failed("the endpoint's URL is not valid");
        };
        let Ok(secrets) = m
            .secrets
            .iter()
            .map(|s| SigningSecret::parse(s))
            .collect::<Result<Vec<_>, _>>()
        else {
            return failed("the endpoint's secret is not valid");
        };
        let sent = self
            .send(&Message {
                id: m.id.clone(),
                timestamp: m.timestamp,
                body: bytes::Bytes::from(m.body.clone()),
                url,
                secrets,
            })
            .await;
        Answer {
            outcome: match sent.outcome {
                Sent::Delivered => Outcome::Delivered,
                Sent::Gone => Outcome::Gone,
                Sent::Failed | Sent::Refused => Outcome::Failed,
            },
            status: sent.status,
            latency_ms: sent.latency_ms,
            error: sent.error,
            retry_after: sent.retry_after,
        }
    }
}
