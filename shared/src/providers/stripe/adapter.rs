//! Stripe Identity behind the provider seam: a start creates a verification session (the app's
//! client gets its hosted `url`), the authoritative read is the session, reconcile reads it when
//! its webhook is overdue, a cancel by the app cancels it at Stripe, and a signed event says
//! "read the session again".

use super::client::{CreateRequest, Lookup, StripeClient};
use super::input::{StartInput, start_input};
use super::settings::{Secrets, Settings};
use super::{NAME, ref_key, status, webhook};
use crate::Error;
use crate::providers::adapter::{
    Action, Adapter, Again, Authentic, Claim, ClaimRule, Cx, Dialect, Event, Inbound, Judgement,
    Opaque, Opening, Resume, Reused, Taken, own,
};
use crate::providers::registry::ProviderSettings;
use crate::providers::transport::Transport;
use crate::session::{NOT_FOUND, Polling, Proposal, Session, Source, Status, Subject};
use crate::verified::VerifiedRead;
use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub struct Stripe {
    settings: Settings,
    client: StripeClient,
}

pub(super) fn build(settings: &ProviderSettings, transport: &Transport) -> Arc<dyn Adapter> {
    let settings = settings
        .downcast_ref::<Settings>()
        .expect("stripe settings")
        .clone();
    let client = StripeClient::new(transport.clone(), &settings.api_url);
    Arc::new(Stripe { settings, client })
}

impl Stripe {
    fn verification_session(session: &Session) -> Result<&str, Error> {
        session.provider_ref.as_deref().ok_or_else(|| {
            Error::Internal("stripe session without its verification session".into())
        })
    }
}

/// What a recorded event keeps: the session it is about and what Stripe said happened.
#[derive(Debug, Serialize, Deserialize)]
struct KeptEvent {
    #[serde(rename = "vs")]
    session: String,
    #[serde(rename = "t")]
    kind: String,
}

#[async_trait]
impl Adapter for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Stripe's events say when to read; reconcile reads a session whose event is overdue.
    fn failure_codes(&self) -> crate::session::FailureTable {
        super::status::FAILURES
    }

    fn polling(&self) -> Polling {
        Polling::Push
    }

    fn parse_start(&self, body: &Map<String, Value>) -> Result<Opaque, Error> {
        let local = self.settings.api_url.starts_with("http://");
        Ok(Box::new(start_input(body, local)?))
    }

    /// Stripe's `return_url`: where its hosted page sends the user when done.
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// The verification session first: a session of ours always has its Stripe session. Its
    /// create carries our session id as Stripe's `Idempotency-Key`, so a create repeated after a
    /// lost answer is the same Stripe session; if storing ours fails, the Stripe session is left
    /// unused and the app gets a retryable 503.
    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error> {
        let input: &StartInput = own(&input)?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        let mut session = Session::new(tenant, self.provider(), &input.user_id, cx.now);
        // The user as Stripe knows it: unique per tenant and user, never the app's user id.
        let subject = Subject::of(tenant, &input.user_id);
        let request = CreateRequest {
            kind: input.kind,
            client_reference_id: subject.as_str(),
            session_ref: session.id.as_str(),
            return_url: input.return_url.as_deref(),
            document: input.document.as_ref(),
        };
        let vs = self.client.create(&creds, &request).await?;
        let proposal = status::proposal(&vs);
        // A new session is the user's turn; an answer the gateway cannot read settles nothing.
        session.status = if proposal.unclear.is_some() {
            Status::Pending
        } else {
            proposal.status
        };
        session.provider_status = proposal.provider_status;
        session.last_error = proposal.last_error;
        session.provider_ref = Some(vs.id.clone());
        session.last_checked_at = Some(cx.now);
        session.expires_at = Some(cx.now + self.settings.session_ttl);
        let url = vs.url.clone().unwrap_or_default();
        Ok(Opening {
            session,
            claims: vec![Claim {
                key: ref_key(&vs.id),
                rule: ClaimRule::Free(Taken::ProviderError(
                    "Stripe answered a verification session that is already in use",
                )),
                // An event may come before the session is stored: kept, then applied.
                kept: Some(vs.id),
            }],
            client: json!({ "url": url }),
            // Kept with the Idempotency-Key: a replay answers the first answer's page.
            replay: Some(url),
            issued_at: None,
            read: None,
        })
    }

    fn replayed(&self, _cx: &Cx<'_>, _s: &Session, again: &Again<'_>) -> Result<Value, Error> {
        Ok(json!({ "url": again.replay }))
    }

    fn deletes_data(&self) -> bool {
        true
    }

    /// Stripe's redact. One it refuses (a session still `processing`: it must finish first) is
    /// an error, tried again later, unless Stripe already redacts it.
    async fn delete_data(&self, cx: &Cx<'_>, reference: &str) -> Result<(), Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        match self.client.redact(&creds, reference).await? {
            super::client::Canceled::Done => Ok(()),
            super::client::Canceled::Refused => {
                match self.client.retrieve(&creds, reference).await? {
                    Lookup::Found(vs) if vs.redaction.as_ref().is_some_and(|r| !r.is_null()) => {
                        Ok(())
                    }
                    // ASSUMPTION: a session Stripe no longer has holds nothing to delete.
                    Lookup::NotFound => Ok(()),
                    Lookup::Found(vs) => Err(Error::Conflict(format!(
                        "Stripe cannot redact it yet: it is {} there",
                        vs.status
                    ))),
                }
            }
        }
    }

    /// At Stripe first: its page must not stay open to the user. A cancel Stripe refuses is
    /// answered by the session's state there.
    async fn cancel(&self, cx: &Cx<'_>, session: &Session) -> Result<(), Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let id = Self::verification_session(session)?;
        match self.client.cancel(&creds, id).await? {
            super::client::Canceled::Done => Ok(()),
            // ASSUMPTION: Stripe's refusal says nothing usable (400 without a code): its state
            // tells. Already canceled is the same result; anything else is the app's conflict.
            super::client::Canceled::Refused => match self.client.retrieve(&creds, id).await? {
                Lookup::Found(vs) if vs.status == "canceled" => Ok(()),
                Lookup::Found(vs) => Err(Error::Conflict(format!(
                    "Stripe can no longer cancel it: it is {} there",
                    vs.status
                ))),
                Lookup::NotFound => Err(Error::Conflict(
                    "Stripe does not know this verification session".into(),
                )),
            },
        }
    }

    /// Stripe's way: "retrieve the VerificationSession to get a fresh URL" while it is
    /// `requires_input` (its `url` is single-use and lasts 48 hours). The flows read it first.
    fn resume(&self) -> Resume {
        Resume::AfterRead
    }

    fn resumed(
        &self,
        _cx: &Cx<'_>,
        _session: &Session,
        read: Option<&Opaque>,
    ) -> Result<Reused, Error> {
        let read =
            read.ok_or_else(|| Error::Internal("a stripe resume without its read".into()))?;
        match own::<Lookup>(read)? {
            Lookup::Found(vs) => match (vs.status.as_str(), &vs.url) {
                ("requires_input", Some(url)) => Ok(Reused {
                    client: json!({ "url": url }),
                    issued_at: None,
                    // Kept with the Idempotency-Key: a replay answers the same page.
                    replay: Some(url.clone()),
                }),
                ("processing", _) => Err(Error::Conflict(
                    "Stripe is checking what the user submitted: there is no step to resume until it decides"
                        .into(),
                )),
                (status, _) => Err(Error::Conflict(format!(
                    "Stripe gives no page for a verification session that is {status}"
                ))),
            },
            Lookup::NotFound => Err(Error::Conflict(
                "Stripe does not know this verification session".into(),
            )),
        }
    }

    fn retry_fields(&self) -> &'static [&'static str] {
        // And its `return_url`, as every provider's that takes one (`flows::start`).
        &["type", "document_options"]
    }

    fn subject(&self, session: &Session) -> Option<String> {
        session.provider_ref.clone()
    }

    /// The session's verified outputs, read again now with the expansions that show them.
    async fn verified_data(&self, cx: &Cx<'_>, session: &Session) -> Result<VerifiedRead, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let id = Self::verification_session(session)?;
        match self.client.retrieve_verified(&creds, id).await? {
            Some(body) => super::verified::from_body(&body),
            None => Ok(VerifiedRead::Unavailable(
                "Stripe no longer knows this verification session",
            )),
        }
    }

    async fn fetch(
        &self,
        cx: &Cx<'_>,
        subject: &str,
        _session: Option<&Session>,
    ) -> Result<Opaque, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        Ok(Box::new(self.client.retrieve(&creds, subject).await?))
    }

    fn judge(&self, _cx: &Cx<'_>, answer: &Opaque, _session: &Session) -> Result<Judgement, Error> {
        let proposal = match own::<Lookup>(answer)? {
            Lookup::Found(vs) => status::proposal(vs),
            // Stripe does not know it (another account's key, a deleted test session): news for
            // nobody, never grounds to undo anything.
            Lookup::NotFound => Proposal {
                status: Status::Created,
                provider_status: None,
                last_error: None,
                source: Source::ProviderRead,
                unclear: Some(NOT_FOUND),
            },
        };
        Ok(Judgement::of(proposal))
    }

    fn webhook(&self) -> Option<&dyn Dialect> {
        Some(self)
    }
}

impl Dialect for Stripe {
    fn authenticate(
        &self,
        cx: &Cx<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Authentic, Error> {
        // No credentials to check it against: refused, like a forgery.
        let creds = cx
            .credentials::<Secrets>(NAME)
            .map_err(|_| Error::InvalidSignature)?;
        let header = headers
            .get(webhook::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        if !webhook::is_authentic(
            creds.webhook_secrets(),
            header,
            body,
            cx.now.unix_timestamp(),
        ) {
            return Err(Error::InvalidSignature);
        }
        Ok(Authentic {
            body: body.to_vec(),
            token: None,
        })
    }

    fn events(&self, authentic: &Authentic) -> Result<Vec<Inbound>, &'static str> {
        let e = webhook::parse(&authentic.body)?;
        let kept = KeptEvent {
            session: e.session.clone(),
            kind: e.kind.clone(),
        };
        Ok(vec![Inbound {
            // Stripe's own event id: a redelivery (new timestamp, new signature) is the same id.
            event_id: e.id,
            content_id: false,
            subjects: vec![e.session],
            payload: serde_json::to_string(&kept).map_err(|_| "an unkeepable event")?,
            name: e.kind,
        }])
    }

    /// Events are not ordered and may repeat: the session read is the truth.
    fn action(&self) -> Action {
        Action::Reread {
            without_session: false,
        }
    }

    fn refs(&self, subject: &str) -> Vec<String> {
        vec![ref_key(subject)]
    }

    fn subject(&self, event: &Event<'_>) -> Result<String, Error> {
        let kept: KeptEvent = serde_json::from_str(event.payload)
            .map_err(|e| Error::Internal(format!("kept stripe event: {e}")))?;
        Ok(kept.session)
    }

    fn event_name(&self, event: &Event<'_>) -> Option<String> {
        serde_json::from_str::<KeptEvent>(event.payload)
            .ok()
            .map(|k| k.kind)
    }
}
