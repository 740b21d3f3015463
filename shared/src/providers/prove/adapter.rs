//! Prove behind the provider seam, in either of its possession APIs (the deployment's
//! `IDV_PROVE_FLOW` for new sessions; each session keeps the one it started with). A start sends
//! `/v3/verify` or `/v3/unify` once (the app's client gets the `authToken` for the SDK's
//! possession check; it is never stored); Verified Users enrolls the identity with Identity
//! Manager when the flow is verified at once. The authoritative read is `/v3/verify-status` or
//! `/v3/unify-status`, polled until Prove decides or a possession window closes; Identity
//! Manager's webhooks are events recorded on the session that verified the identity, and a
//! redaction disenrolls the identity.

use super::client::{Disenrolled, ProveClient, StatusRead, UnifyRead, UnifyRequest, VerifyRequest};
use super::data::{Possession, ProveData, ProveFlow};
use super::input::{StartInput, bind_input, start_input};
use super::phone::Phone;
use super::settings::{Secrets, Settings};
use super::status::{self, Outcome};
use super::{NAME, customer_ref_key, identity_ref_key, webhook};
use crate::Error;
use crate::providers::adapter::{
    Action, Adapter, Again, Authentic, Claim, ClaimRule, Cx, Dialect, Event, Inbound, Judgement,
    Opaque, Opening, Recording, Resume, TokenUse, own,
};
use crate::providers::registry::ProviderSettings;
use crate::providers::transport::Transport;
use crate::session::{IdentityEvent, Polling, Proposal, ProviderData, Session, Status, Subject};
use async_trait::async_trait;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

pub struct Prove {
    settings: Settings,
    /// Holds Prove's OAuth tokens: built once per container, shared by its invocations.
    client: ProveClient,
}

pub(super) fn build(settings: &ProviderSettings, transport: &Transport) -> Arc<dyn Adapter> {
    let settings = settings
        .downcast_ref::<Settings>()
        .expect("prove settings")
        .clone();
    let client = ProveClient::new(transport.clone(), &settings.na_url, &settings.eu_url);
    Arc::new(Prove { settings, client })
}

fn data_of(session: &Session) -> Result<ProveData, Error> {
    session
        .data
        .read()
        .map_err(|e| Error::Internal(format!("prove session data: {e}")))
}

/// The refs of a verified identity: the identity's and its customer's, each pointing at the
/// latest verified session of the tenant (the one its events are recorded on); events kept
/// because no session knew them are recorded once they do.
fn identity_claims(session: &Session, identity: &str) -> Vec<Claim> {
    let customer = Subject::of(&session.tenant, &session.user_id);
    vec![
        Claim {
            key: identity_ref_key(identity),
            rule: ClaimRule::Replace,
            kept: Some(identity_subject(identity)),
        },
        Claim {
            key: customer_ref_key(customer.as_str()),
            rule: ClaimRule::Replace,
            kept: Some(customer_subject(customer.as_str())),
        },
    ]
}

/// An event's subjects: its identity, and its customer (our subject), as they are kept.
fn identity_subject(identity: &str) -> String {
    format!("identity:{identity}")
}

fn customer_subject(customer: &str) -> String {
    format!("customer:{customer}")
}

/// What a start sent to Prove answered, whichever the flow.
struct Started {
    proposal: Proposal,
    correlation_id: String,
    auth_token: Option<String>,
    /// Prove waits on the user's phone (a possession window runs).
    awaits_possession: bool,
}

impl Prove {
    async fn start_verify(
        &self,
        creds: &Secrets,
        input: &StartInput,
        session: &Session,
        customer: &Subject,
    ) -> Result<Started, Error> {
        let name = |n: &Option<String>| {
            n.clone()
                .ok_or_else(|| Error::Internal("a verified users start without a name".into()))
        };
        let request = VerifyRequest {
            first_name: name(&input.first_name)?,
            last_name: name(&input.last_name)?,
            phone_number: input.phone.for_prove(),
            possession_type: input.possession.as_str().to_owned(),
            email_address: input.email.clone(),
            final_target_url: input.final_target_url.clone(),
            sms_message: input.sms_message.clone(),
            allow_otp_retry: input.allow_otp_retry,
            client_request_id: session.id.to_string(),
            client_customer_id: customer.to_string(),
        };
        let answer = self
            .client
            .verify(creds, input.phone.region(), &request)
            .await?;
        let outcome = Outcome {
            success: &answer.success,
            possession_result: &answer.possession_result,
            verify_result: &answer.verify_result,
        };
        Ok(Started {
            proposal: status::proposal(&outcome),
            awaits_possession: outcome.awaits_possession(),
            correlation_id: answer.correlation_id,
            auth_token: answer.auth_token,
        })
    }

    async fn start_unify(
        &self,
        creds: &Secrets,
        input: &StartInput,
        session: &Session,
        customer: &Subject,
    ) -> Result<Started, Error> {
        let request = UnifyRequest {
            possession_type: input.possession.as_str().to_owned(),
            client_request_id: session.id.to_string(),
            phone_number: input.phone.for_unify(),
            email_address: input.email.clone(),
            final_target_url: input.final_target_url.clone(),
            sms_message: input.sms_message.clone(),
            allow_otp_retry: input.allow_otp_retry,
            client_customer_id: customer.to_string(),
        };
        let answer = self
            .client
            .unify(creds, input.phone.region(), &request)
            .await?;
        Ok(Started {
            proposal: status::unify_proposal(&answer.success),
            // Customer-supplied possession has no Prove window: the app runs its own check.
            awaits_possession: answer.success == "pending" && input.possession != Possession::None,
            correlation_id: answer.correlation_id,
            auth_token: answer.auth_token,
        })
    }
}

/// A flow Prove no longer serves: the possession check timed out while the session waited on
/// it, else the flow is simply over.
fn step_refused(session: &Session) -> Judgement {
    let code = if session.status == Status::Pending {
        status::POSSESSION_TIMEOUT
    } else {
        status::FLOW_EXPIRED
    };
    Judgement {
        reason: Some(code),
        ..Judgement::of(status::expired(code))
    }
}

fn possession_timed_out() -> Judgement {
    Judgement {
        reason: Some(status::POSSESSION_TIMEOUT),
        ..Judgement::of(status::expired(status::POSSESSION_TIMEOUT))
    }
}

/// A `/v3/verify-status` answer, and the identity it names when verified.
fn judge_verify(
    read: &StatusRead,
    session: &Session,
    past_deadline: bool,
) -> (Judgement, Option<String>) {
    match read {
        StatusRead::StepNotAllowed => (step_refused(session), None),
        StatusRead::Status(r) => {
            let o = Outcome {
                success: &r.success,
                possession_result: &r.possession_result,
                verify_result: &r.verify_result,
            };
            if o.awaits_possession() && past_deadline {
                return (possession_timed_out(), None);
            }
            let p = status::proposal(&o);
            let identity = (p.status == Status::Verified)
                .then(|| r.identity_id.clone())
                .flatten();
            (Judgement::of(p), identity)
        }
    }
}

/// A `/v3/unify-status` (or `/v3/unify-bind`) answer, and the `proveId` it names when verified.
/// ASSUMPTION: that `proveId` is the identity Identity Manager's events name (Prove's current
/// enrollment answers `proveId` where the legacy one answered `identityId`).
fn judge_unify(
    read: &UnifyRead,
    session: &Session,
    past_deadline: bool,
) -> (Judgement, Option<String>) {
    match read {
        UnifyRead::StepNotAllowed => (step_refused(session), None),
        UnifyRead::Status(r) => {
            if r.success == "pending" && past_deadline {
                return (possession_timed_out(), None);
            }
            let p = status::unify_proposal(&r.success);
            let identity = (p.status == Status::Verified)
                .then(|| r.prove_id.clone())
                .flatten();
            (Judgement::of(p), identity)
        }
    }
}

#[async_trait]
impl Adapter for Prove {
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
        Ok(Box::new(start_input(body, self.settings.flow)?))
    }

    /// The desktop flow's `finalTargetUrl` (`input`): where the Instant Link leads.
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// The start (`/v3/verify` or `/v3/unify`, as the deployment's flow says) is sent exactly once
    /// per session (and once per `Idempotency-Key`: the key is taken before this runs); the
    /// session is stored only after Prove answered, so a failure leaves nothing behind.
    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error> {
        let input: &StartInput = own(&input)?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        let now = cx.now;
        let mut session = Session::new(tenant, self.provider(), &input.user_id, now);
        let region = input.phone.region();
        // The customer as Prove knows it: unique per tenant and user, so that another app's user
        // of the same id is another Prove customer with identities of its own.
        let customer = Subject::of(tenant, &input.user_id);
        let flow = self.settings.flow;
        let started = match flow {
            ProveFlow::VerifiedUsers => {
                self.start_verify(&creds, input, &session, &customer)
                    .await?
            }
            ProveFlow::Unify => self.start_unify(&creds, input, &session, &customer).await?,
        };
        let proposal = started.proposal;
        // An answer the gateway cannot read settles nothing: the flow starts as pending, and the
        // first read tells.
        session.status = if proposal.unclear.is_some() {
            Status::Pending
        } else {
            proposal.status
        };
        session.provider_status = proposal.provider_status;
        session.last_error = proposal.last_error;
        session.provider_ref = Some(started.correlation_id);
        session.last_checked_at = Some(now);
        session.expires_at = Some(now + self.settings.session_window);
        let window = match input.possession {
            Possession::Desktop => Some(self.settings.instant_link_window),
            Possession::Mobile => Some(self.settings.otp_window),
            Possession::None => None,
        };
        let mut data = ProveData {
            flow,
            possession: input.possession,
            region,
            phone_masked: input.phone.masked(),
            possession_deadline: window
                .filter(|_| started.awaits_possession)
                .map(|w| now + w),
            identity_id: None,
            reverification_recommended: false,
        };
        // Verified Users verified at once (`possession_type: none`): enroll now, while the number
        // is in hand. A failure here is a retryable error and no session: the start is simply
        // repeated. (Unify's start answers `pending`: its outcome, and its `proveId`, come from
        // unify-status.)
        if flow == ProveFlow::VerifiedUsers && session.status == Status::Verified {
            let id = self
                .client
                .enroll_identity(&creds, region, &input.phone.for_prove(), customer.as_str())
                .await?;
            data.identity_id = Some(id);
        }
        session.data = ProviderData::of(&data);
        let claims = match &data.identity_id {
            Some(identity) => identity_claims(&session, identity),
            None => Vec::new(),
        };
        Ok(Opening {
            session,
            claims,
            client: json!({"auth_token": started.auth_token}),
            replay: None,
            issued_at: None,
            read: None,
        })
    }

    /// Our choice (openapi.yaml, docs/providers/prove.md): the `authToken` is never stored, so a
    /// replay cannot give it again; it says so with `replayed` instead.
    fn replayed(&self, _cx: &Cx<'_>, _s: &Session, _again: &Again<'_>) -> Result<Value, Error> {
        Ok(json!({"auth_token": null, "replayed": true}))
    }

    fn subject(&self, session: &Session) -> Option<String> {
        session.provider_ref.clone()
    }

    async fn fetch(
        &self,
        cx: &Cx<'_>,
        subject: &str,
        session: Option<&Session>,
    ) -> Result<Opaque, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let session =
            session.ok_or_else(|| Error::Internal("a prove flow is read for a session".into()))?;
        let data = data_of(session)?;
        let (region, id) = (data.region, session.id.as_str());
        // The flow the session was started with, whatever the deployment says now.
        Ok(match data.flow {
            ProveFlow::VerifiedUsers => Box::new(
                self.client
                    .verify_status(&creds, region, subject, id)
                    .await?,
            ),
            ProveFlow::Unify => Box::new(
                self.client
                    .unify_status(&creds, region, subject, id)
                    .await?,
            ),
        })
    }

    /// Expires a flow that Prove closed, or whose possession window passed while Prove still
    /// waits on the user; a verified flow's identity takes its refs.
    fn judge(&self, cx: &Cx<'_>, answer: &Opaque, session: &Session) -> Result<Judgement, Error> {
        let mut data = data_of(session)?;
        let past_deadline = data.possession_deadline.is_some_and(|d| d <= cx.now);
        let (mut judgement, identity) = match data.flow {
            ProveFlow::VerifiedUsers => judge_verify(own(answer)?, session, past_deadline),
            ProveFlow::Unify => judge_unify(own(answer)?, session, past_deadline),
        };
        match identity {
            Some(id) if data.identity_id.as_deref() != Some(id.as_str()) => {
                // The refs first (a webhook may name the identity as soon as Prove enrolled it),
                // the id with the same write as the verified status.
                judgement.claims = identity_claims(session, &id);
                data.identity_id = Some(id);
                judgement.data = Some(ProviderData::of(&data));
            }
            None if judgement.proposal.status == Status::Verified && data.identity_id.is_none() => {
                // ASSUMPTION: Prove enrolls a verified flow and says so with identityId
                // (Verified Users) or proveId (Unify: "required if success=true"). Without it we
                // cannot enroll later: the number was never stored.
                tracing::warn!(session_id = %session.id, "verified prove flow without an identity id; no Identity Manager events for it");
            }
            _ => {}
        }
        Ok(judgement)
    }

    fn parse_bind(&self, body: &Map<String, Value>) -> Option<Result<Opaque, Error>> {
        Some(bind_input(body).map(|p| Box::new(p) as Opaque))
    }

    /// A Unify flow of customer-supplied possession (`none`) whose last read said
    /// `possession_required`: no Prove Key authenticated, the app's own check is due.
    fn awaits_bind(&self, session: &Session) -> bool {
        session.status == Status::Pending
            && session.provider_status.as_deref() == Some(status::POSSESSION_REQUIRED)
            && data_of(session)
                .is_ok_and(|d| d.flow == ProveFlow::Unify && d.possession == Possession::None)
    }

    /// `/v3/unify-bind` with the number the app's check proved. A number that is plainly not the
    /// session's (its masked form differs) is refused before Prove is asked.
    async fn bind(&self, cx: &Cx<'_>, session: &Session, input: Opaque) -> Result<Opaque, Error> {
        let phone: &Phone = own(&input)?;
        let data = data_of(session)?;
        if phone.masked() != data.phone_masked {
            return Err(Error::invalid(
                "phone_number",
                "mismatch",
                "not the number this session was started with",
            ));
        }
        let correlation_id = session
            .provider_ref
            .as_deref()
            .ok_or_else(|| Error::Internal("a prove session without its correlation id".into()))?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        Ok(Box::new(
            self.client
                .unify_bind(
                    &creds,
                    data.region,
                    correlation_id,
                    &phone.for_unify(),
                    session.id.as_str(),
                )
                .await?,
        ))
    }

    fn webhook(&self) -> Option<&dyn Dialect> {
        Some(self)
    }

    fn view(&self, session: &Session, out: &mut Map<String, Value>) {
        if let Ok(data) = data_of(session) {
            out.insert(
                "reverification_recommended".into(),
                json!(data.reverification_recommended),
            );
        }
    }

    fn shows_identity_events(&self) -> bool {
        true
    }

    /// Identity Manager's disenrollment: the one deletion Prove's API offers.
    fn deletes_data(&self) -> bool {
        true
    }

    /// Disenrolls the session's identity (`super::deletion_ref`: `DELETE /v3/identity/{proveId}`
    /// at the platform that enrolled it): Prove stops watching the number, and its events about
    /// it stop. What Prove keeps of the flows themselves is under its own retention: no API of
    /// Prove's deletes it.
    async fn delete_data(&self, cx: &Cx<'_>, reference: &str) -> Result<(), Error> {
        let (region, identity) = super::parse_deletion_ref(reference)
            .ok_or_else(|| Error::Internal("a malformed prove deletion reference".into()))?;
        let creds = cx.credentials::<Secrets>(NAME)?;
        match self
            .client
            .disenroll_identity(&creds, region, identity)
            .await?
        {
            Disenrolled::Done => Ok(()),
            // ASSUMPTION: Prove answers 404 for an identity it does not hold (it documents 404
            // for its other Identity Manager reads, not for this one), and so for a second
            // disenrollment of the same identity: nothing is left to delete. A repeat after a
            // crash between Prove's answer and its record lands here.
            Disenrolled::Unknown => {
                tracing::info!("prove knows no such identity: nothing to disenroll");
                Ok(())
            }
        }
    }

    /// Prove answers a flow's `authToken` once, and the gateway never keeps it.
    fn resume(&self) -> Resume {
        Resume::Unsupported(
            "Prove gives a flow's authToken once and the gateway does not keep it, so this flow has no new step: cancel the session and retry it for a new flow",
        )
    }

    /// The flow's settings. The phone number, names and e-mail address are personal data, and
    /// the SMS text and the desktop landing page may carry some (docs/data-inventory.md): never
    /// kept, so a retry gives them again.
    fn retry_fields(&self) -> &'static [&'static str] {
        &["possession_type", "allow_otp_retry"]
    }
}

/// The minimal form of an Identity Manager event that is kept to match it later: what it says
/// happened to whose identity, never a phone number or a description.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptEvent {
    #[serde(rename = "t")]
    event_type: String,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    #[serde(rename = "at", default, skip_serializing_if = "Option::is_none")]
    occurred_at: Option<String>,
}

/// The JWT is checked before the body is read and bound to this body by the flows (a captured
/// token over another body is refused); each event is recorded before any is acted on (Prove
/// does not retry), deduplicated by its id, and kept until a session knows its identity or its
/// customer.
impl Dialect for Prove {
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
            .get(webhook::AUTH_HEADER)
            .and_then(|v| v.to_str().ok());
        let token = webhook::authenticate(creds.webhook_secrets(), header, cx.now.unix_timestamp())
            .ok_or(Error::InvalidSignature)?;
        Ok(Authentic {
            body: body.to_vec(),
            token: token.id.map(|id| TokenUse {
                id,
                expires: OffsetDateTime::from_unix_timestamp(token.expires_unix)
                    .unwrap_or(cx.now + time::Duration::minutes(10)),
            }),
        })
    }

    fn events(&self, authentic: &Authentic) -> Result<Vec<Inbound>, &'static str> {
        let mut inbound = Vec::new();
        for e in webhook::parse(&authentic.body)? {
            let kept = KeptEvent {
                event_type: e.event_type.clone(),
                identity: e.identity_id.clone(),
                customer: e.client_customer_id.clone(),
                occurred_at: e.event_timestamp.clone(),
            };
            // The identity's session first; else the customer's (an event with only the
            // documented fields names the customer, our subject).
            let subjects = kept
                .identity
                .iter()
                .map(|i| identity_subject(i))
                .chain(kept.customer.iter().map(|c| customer_subject(c)))
                .collect();
            inbound.push(Inbound {
                event_id: e.event_id,
                content_id: false,
                subjects,
                payload: serde_json::to_string(&kept).map_err(|_| "an unkeepable event")?,
                name: e.event_type,
            });
        }
        Ok(inbound)
    }

    fn action(&self) -> Action {
        Action::Record
    }

    /// Only a customer the gateway named (a subject) can name a session.
    fn refs(&self, subject: &str) -> Vec<String> {
        if let Some(identity) = subject.strip_prefix("identity:") {
            return vec![identity_ref_key(identity)];
        }
        subject
            .strip_prefix("customer:")
            .and_then(Subject::parse)
            .map(|c| vec![customer_ref_key(c.as_str())])
            .unwrap_or_default()
    }

    /// An event exists only for an identity Prove verified and enrolled: a session that has not
    /// read its outcome yet is verified at Prove, and is flagged too.
    fn record(&self, event: &Event<'_>, session: &Session) -> Result<Recording, Error> {
        let kept: KeptEvent = serde_json::from_str(event.payload)
            .map_err(|e| Error::Internal(format!("kept prove event: {e}")))?;
        let reverify = webhook::REVERIFY_EVENTS.contains(&kept.event_type.as_str());
        let flaggable = !matches!(
            session.status,
            Status::Failed | Status::Expired | Status::Canceled
        );
        let mut data = data_of(session)?;
        let flag = reverify && flaggable && !data.reverification_recommended;
        if flag {
            data.reverification_recommended = true;
        }
        Ok(Recording {
            event: IdentityEvent {
                session_id: session.id.clone(),
                event_id: event.id.to_owned(),
                event_type: kept.event_type,
                occurred_at: kept.occurred_at.as_deref().and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                }),
                received_at: event.received_at,
            },
            data: flag.then(|| ProviderData::of(&data)),
        })
    }
}
