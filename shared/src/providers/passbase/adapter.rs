//! Passbase behind the provider seam. A session is opened linked to the SDK's identity access
//! key, or waiting for it (the app hands the SDK our reference as `metaData`, and links the key
//! later, or Passbase's identity names our reference); the authoritative read is the identity;
//! encrypted webhooks say "re-read the identity", and an `IDENTITY_AUTHENTICATED` of a verified
//! identity is a reauthentication.
//!
//! An identity whose metadata names a session belongs to that session only: linking it anywhere
//! else is refused, and a session linked to one that turns out to name another fails with
//! `identity_mismatch` (someone else's documents never verify a user).

use super::client::{IdentityLookup, PassbaseClient};
use super::input::{StartInput, link_input, start_input};
use super::settings::{Secrets, Settings};
use super::webhook::{self, Event as PassbaseEvent};
use super::{Evidence, Identity, NAME, ref_key, status};
use crate::Error;
use crate::providers::adapter::{
    Action, Adapter, Again, Authentic, Claim, ClaimRule, Cx, Dialect, Event, Fetched, Inbound,
    Judgement, Opaque, Opening, Resume, Taken, own,
};
use crate::providers::registry::ProviderSettings;
use crate::providers::transport::{Transport, provider_error};
use crate::session::{
    NOT_FOUND, Polling, Proposal, ProviderData, Reauthentication, Session, SessionId, Source,
    Status,
};
use crate::verified::VerifiedRead;
use async_trait::async_trait;
use http::HeaderMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

/// One answer for every refused link: it says nothing of where the identity belongs.
const NOT_LINKABLE: &str = "this Passbase identity cannot be linked to this session";

pub struct Passbase {
    settings: Settings,
    client: PassbaseClient,
}

pub(super) fn build(settings: &ProviderSettings, transport: &Transport) -> Arc<dyn Adapter> {
    let settings = settings
        .downcast_ref::<Settings>()
        .expect("passbase settings")
        .clone();
    let client = PassbaseClient::new(transport.clone(), &settings.api_url);
    Arc::new(Passbase { settings, client })
}

/// What the app hands the client SDK as `metaData` (after encrypting it with its RSA key, as
/// Passbase requires): our session reference, which Passbase returns as `identity.metadata`.
// ASSUMPTION (decision): the gateway does not hold the app's RSA private key; it returns the
// plain JSON string and the app's backend encrypts it (Passbase's "metadata encryption" step).
pub fn client_metadata(id: &SessionId) -> String {
    json!({ "session_ref": id.as_str() }).to_string()
}

impl Passbase {
    fn claim(identity_key: &str) -> Claim {
        Claim {
            key: ref_key(identity_key),
            rule: ClaimRule::Free(Taken::Conflict(NOT_LINKABLE)),
            kept: Some(identity_key.to_owned()),
        }
    }
}

/// Whether Passbase says the identity belongs to a session other than `id` (its metadata names
/// one). An identity with no reference of ours is anyone's to link: Passbase says nothing.
fn belongs_elsewhere(identity: &Identity, id: Option<&SessionId>) -> bool {
    identity
        .session_ref()
        .is_some_and(|named| Some(&named) != id)
}

#[async_trait]
impl Adapter for Passbase {
    fn name(&self) -> &'static str {
        NAME
    }

    fn failure_codes(&self) -> crate::session::FailureTable {
        super::status::FAILURES
    }

    fn polling(&self) -> Polling {
        Polling::Push
    }

    fn parse_start(&self, body: &Map<String, Value>) -> Result<Opaque, Error> {
        Ok(Box::new(start_input(body)?))
    }

    /// ASSUMPTION: Passbase's flow runs in its client SDK (or hosted link), whose documented
    /// options name no return URL; the SDK tells the app's page when it is done (`onFinish`),
    /// and the gateway starts nothing at Passbase that could carry one.
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Err(
            "passbase's flow runs in its client SDK, which reports its end to your page \
             (onFinish): there is no page to return to",
        )
    }

    fn start_claims(&self, _tenant: &str, input: &Opaque) -> Result<Vec<Claim>, Error> {
        let input: &StartInput = own(input)?;
        Ok(input.identity_key.iter().map(|k| Self::claim(k)).collect())
    }

    /// The identity first: one that names another session is not this new session's. Its read
    /// is applied right away only if deliveries were kept for it; otherwise the webhook (or the
    /// overdue check) brings the state.
    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error> {
        let input: &StartInput = own(&input)?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        let mut read = None;
        if let Some(k) = &input.identity_key {
            let started_ms = cx.now_ms();
            let lookup = self.client.identity(&creds, k).await?;
            if let IdentityLookup::Found(identity) = &lookup {
                if belongs_elsewhere(identity, None) {
                    return Err(Error::Conflict(NOT_LINKABLE.into()));
                }
                read = Some(Fetched {
                    answer: Box::new(lookup),
                    started_ms,
                });
            }
        }
        // ASSUMPTION: Passbase documents no expiry for sessions or keys: `expires_at` stays null.
        let mut session = Session::new(tenant, self.provider(), &input.user_id, cx.now);
        session.provider_ref = input.identity_key.clone();
        let client = json!({"metadata": client_metadata(&session.id)});
        Ok(Opening {
            session,
            claims: Vec::new(),
            client,
            replay: None,
            issued_at: None,
            read,
        })
    }

    fn replayed(
        &self,
        _cx: &Cx<'_>,
        session: &Session,
        _again: &Again<'_>,
    ) -> Result<Value, Error> {
        Ok(json!({"metadata": client_metadata(&session.id)}))
    }

    /// Not linked yet: Passbase has nothing we could ask about.
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
        Ok(Box::new(self.client.identity(&creds, subject).await?))
    }

    fn judge(&self, _cx: &Cx<'_>, answer: &Opaque, session: &Session) -> Result<Judgement, Error> {
        let identity = match own::<IdentityLookup>(answer)? {
            IdentityLookup::Found(i) => i,
            // ASSUMPTION: a 404 for a linked key means Passbase has not created the identity yet.
            IdentityLookup::NotFound => {
                return Ok(Judgement::of(Proposal {
                    status: Status::Created,
                    provider_status: None,
                    last_error: None,
                    source: Source::ProviderRead,
                    unclear: Some(NOT_FOUND),
                }));
            }
        };
        let proposal = if belongs_elsewhere(identity, Some(&session.id)) {
            tracing::warn!(session_id = %session.id, "linked passbase identity names another session");
            status::mismatch(identity)
        } else {
            status::proposal(identity)
        };
        Ok(Judgement {
            // The identity's key, which a link sets with this very write.
            provider_ref: Some(identity.id.clone()),
            data: identity.evidence().map(|e| ProviderData::of(&e)),
            ..Judgement::of(proposal)
        })
    }

    fn names(&self, answer: &Opaque) -> Option<SessionId> {
        match answer.downcast_ref::<IdentityLookup>()? {
            IdentityLookup::Found(i) => i.session_ref(),
            IdentityLookup::NotFound => None,
        }
    }

    fn parse_link(&self, body: &Map<String, Value>) -> Option<Result<String, Error>> {
        Some(link_input(body))
    }

    fn link_claims(&self, subject: &str) -> Vec<Claim> {
        vec![Self::claim(subject)]
    }

    fn webhook(&self) -> Option<&dyn Dialect> {
        Some(self)
    }

    /// The identity's data points, read again now: only while the identity is still this
    /// session's and approved.
    async fn verified_data(&self, cx: &Cx<'_>, session: &Session) -> Result<VerifiedRead, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let key = Adapter::subject(self, session).ok_or_else(|| {
            Error::Internal("a verified passbase session without its identity".into())
        })?;
        let Some(body) = self.client.identity_body(&creds, &key).await? else {
            return Ok(VerifiedRead::Unavailable(
                "Passbase no longer knows this identity",
            ));
        };
        // First what the session may keep (id, status, metadata), as every read checks it.
        let identity: Identity = serde_json::from_slice(&body)
            .map_err(|_| provider_error(NAME, "unreadable identity body"))?;
        if !identity.id.eq_ignore_ascii_case(&key) {
            return Err(provider_error(
                NAME,
                "the identity read names another identity",
            ));
        }
        if belongs_elsewhere(&identity, Some(&session.id)) {
            return Ok(VerifiedRead::Unavailable(
                "the Passbase identity names another session",
            ));
        }
        if status::proposal(&identity).status != Status::Verified {
            return Ok(VerifiedRead::Unavailable(
                "Passbase no longer reports this identity as approved",
            ));
        }
        super::verified::from_body(&body).map(|d| VerifiedRead::Data(Box::new(d)))
    }

    /// What the document check concluded, never who the person is.
    fn view(&self, session: &Session, out: &mut Map<String, Value>) {
        if session.data.is_empty() {
            return;
        }
        let e: Evidence = session.data.read().unwrap_or_default();
        out.insert("score".into(), json!(e.score));
        out.insert("document_type".into(), json!(e.document_type));
        out.insert("document_country".into(), json!(e.document_country));
    }

    /// The flow runs in Passbase's client SDK, which holds its state; the server has no step
    /// to renew.
    fn resume(&self) -> Resume {
        Resume::Unsupported(
            "Passbase's flow runs in its client SDK, which holds its state: the gateway has no step to renew; cancel the session and retry it for a new attempt",
        )
    }
}

/// A body counts as Passbase's only if it decrypts *and* parses as a known Passbase event.
impl Dialect for Passbase {
    fn authenticate(
        &self,
        cx: &Cx<'_>,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Authentic, Error> {
        let creds = cx
            .credentials::<Secrets>(NAME)
            .map_err(|_| Error::InvalidSignature)?;
        let opened = webhook::open(creds.webhook_secrets(), self.settings.allow_plaintext, body)
            .ok_or(Error::InvalidSignature)?;
        Ok(Authentic {
            body: opened.plaintext,
            token: None,
        })
    }

    fn events(&self, authentic: &Authentic) -> Result<Vec<Inbound>, &'static str> {
        let event = webhook::parse(&authentic.body).ok_or("not a Passbase event")?;
        Ok(vec![Inbound {
            event_id: webhook::event_id(&event, &authentic.body),
            content_id: false,
            subjects: vec![event.key.clone()],
            // Passbase's events carry no personal data: the identity key, the event, its status
            // and times.
            payload: serde_json::to_string(&event).map_err(|_| "an unkeepable event")?,
            name: event.event,
        }])
    }

    /// The identity read is the truth (their webhooks carry no trustworthy ordering). Read even
    /// when no session is linked to the identity yet: its metadata may name one.
    fn action(&self) -> Action {
        Action::Reread {
            without_session: true,
        }
    }

    fn refs(&self, subject: &str) -> Vec<String> {
        vec![ref_key(subject)]
    }

    fn subject(&self, event: &Event<'_>) -> Result<String, Error> {
        Ok(kept(event)?.key)
    }

    fn event_name(&self, event: &Event<'_>) -> Option<String> {
        kept(event).ok().map(|e| e.event)
    }

    fn reauthentication(&self, event: &Event<'_>, session: &Session) -> Option<Reauthentication> {
        let e = kept(event).ok()?;
        if e.event != webhook::IDENTITY_AUTHENTICATED || session.status != Status::Verified {
            return None;
        }
        let at = e
            .updated
            .or(e.created)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(event.received_at);
        Some(Reauthentication {
            tenant: session.tenant.clone(),
            user_id: session.user_id.clone(),
            provider: self.provider(),
            identity_id: e.key,
            session_id: session.id.clone(),
            at,
            // ASSUMPTION: IDENTITY_AUTHENTICATED reports an approved authentication unless it says
            // otherwise in `status`.
            outcome: e.status.unwrap_or_else(|| "approved".to_owned()),
            event_id: event.id.to_owned(),
        })
    }
}

fn kept(event: &Event<'_>) -> Result<PassbaseEvent, Error> {
    serde_json::from_str(event.payload)
        .map_err(|e| Error::Internal(format!("kept passbase event: {e}")))
}
