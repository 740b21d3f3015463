//! Nevis behind the provider seam: a start opens one Nevis session (its `startUrl` is the app's
//! `client.start_url`), the authoritative read is that session, and reconcile polls it (Nevis
//! has no webhooks) until it ends or our deadline passes.

use super::client::NevisClient;
use super::input::{StartInput, parse_start};
use super::settings::{Secrets, Settings};
use super::wire::{self, NevisSession};
use super::{NAME, ref_key, status};
use crate::Error;
use crate::providers::adapter::{
    Adapter, Again, Claim, ClaimRule, Cx, Judgement, Opaque, Opening, Resume, Reused, Taken, own,
};
use crate::providers::registry::ProviderSettings;
use crate::providers::transport::{Transport, provider_error};
use crate::session::{Polling, Session};
use crate::verified::VerifiedRead;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub struct Nevis {
    settings: Settings,
    client: NevisClient,
}

pub(super) fn build(settings: &ProviderSettings, transport: &Transport) -> Arc<dyn Adapter> {
    let settings = settings
        .downcast_ref::<Settings>()
        .expect("nevis settings")
        .clone();
    let client = NevisClient::new(transport.clone(), settings.api_url.as_deref());
    Arc::new(Nevis { settings, client })
}

#[async_trait]
impl Adapter for Nevis {
    fn name(&self) -> &'static str {
        NAME
    }

    fn failure_codes(&self) -> crate::session::FailureTable {
        super::status::FAILURES
    }

    fn polling(&self) -> Polling {
        Polling::Pull
    }

    fn parse_start(&self, body: &Map<String, Value>) -> Result<Opaque, Error> {
        Ok(Box::new(parse_start(body)?))
    }

    /// ASSUMPTION: Nevis documents no per-session redirect: the user returns to the redirect
    /// URL configured for the customer when IDV is ordered (or through a Nevis Portal ticket).
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Err(
            "nevis sends the user back to the redirect URL configured for your Nevis instance: \
             it takes none per session",
        )
    }

    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error> {
        let input: &StartInput = own(&input)?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        let instance = self.client.instance_url()?;
        // Nevis first: a session of ours always has its Nevis session. If storing fails, the
        // Nevis session is left unused (it never starts) and the app gets a retryable 503.
        let created = self.client.create_session(&creds).await?;
        if !wire::is_start_url_of(instance, &created.start_url) {
            return Err(provider_error(
                NAME,
                "startUrl is not a page of the Nevis instance",
            ));
        }
        let mut session = Session::new(tenant, self.provider(), &input.user_id, cx.now);
        session.provider_ref = Some(created.session_id.clone());
        session.expires_at = Some(cx.now + self.settings.session_ttl);
        Ok(Opening {
            session,
            claims: vec![Claim {
                key: ref_key(&created.session_id),
                rule: ClaimRule::Free(Taken::ProviderError(
                    "Nevis answered a sessionId that is already in use",
                )),
                // No webhooks: nothing is ever kept.
                kept: None,
            }],
            client: json!({"start_url": created.start_url}),
            // Kept with the Idempotency-Key, so that a replay answers exactly the first answer.
            replay: Some(created.start_url),
            issued_at: None,
            read: None,
        })
    }

    fn replayed(&self, _cx: &Cx<'_>, session: &Session, again: &Again<'_>) -> Result<Value, Error> {
        let start_url = match again.replay {
            Some(url) => url.to_owned(),
            // A key completed before start URLs were kept: the documented shape, by its id.
            None => wire::start_url(
                self.client.instance_url()?,
                session
                    .provider_ref
                    .as_deref()
                    .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?,
            ),
        };
        Ok(json!({"start_url": start_url}))
    }

    /// The start URL again, while Nevis says its session is not over: the flows read it first.
    // ASSUMPTION: Nevis documents no lifetime of a session or of its startUrl; a session not over
    // (`pending`, `in_progress`) is taken to accept its start URL again (the user reopens the
    // page), and the gateway's own deadline (`IDV_NEVIS_SESSION_TTL_SECONDS`) bounds it.
    fn resume(&self) -> Resume {
        Resume::AfterRead
    }

    fn resumed(
        &self,
        _cx: &Cx<'_>,
        session: &Session,
        read: Option<&Opaque>,
    ) -> Result<Reused, Error> {
        let read = read.ok_or_else(|| Error::Internal("a nevis resume without its read".into()))?;
        let remote: &NevisSession = own(read)?;
        if !matches!(
            remote.status.to_ascii_lowercase().as_str(),
            "pending" | "in_progress"
        ) {
            return Err(Error::Conflict(format!(
                "Nevis says the verification is {}: there is no step to resume",
                remote.status
            )));
        }
        let id = session
            .provider_ref
            .as_deref()
            .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?;
        // ASSUMPTION: the startUrl keeps its documented shape (`.../idv/welcome.html?tc=<id>`),
        // so it is rebuilt from the sessionId rather than kept.
        let start_url = wire::start_url(self.client.instance_url()?, id);
        Ok(Reused {
            client: json!({"start_url": start_url}),
            issued_at: None,
            // Kept with the Idempotency-Key: a replay answers the same URL.
            replay: Some(start_url),
        })
    }

    fn subject(&self, session: &Session) -> Option<String> {
        session.provider_ref.clone()
    }

    async fn fetch(
        &self,
        cx: &Cx<'_>,
        subject: &str,
        _session: Option<&Session>,
    ) -> Result<Opaque, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        Ok(Box::new(self.client.get_session(&creds, subject).await?))
    }

    fn judge(&self, _cx: &Cx<'_>, answer: &Opaque, _session: &Session) -> Result<Judgement, Error> {
        let remote: &NevisSession = own(answer)?;
        Ok(Judgement::of(status::proposal(remote)))
    }

    /// The Nevis session's result data, read again now.
    async fn verified_data(&self, cx: &Cx<'_>, session: &Session) -> Result<VerifiedRead, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let id = Adapter::subject(self, session)
            .ok_or_else(|| Error::Internal("nevis session without its sessionId".into()))?;
        let body = self.client.get_session_body(&creds, &id).await?;
        super::verified::from_body(&body)
    }
}
