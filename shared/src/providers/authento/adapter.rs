//! Authento behind the provider seam. A start opens (or reuses) the user's open session of the
//! track and signs the token that opens Authento's flow; the authoritative read is user-info,
//! by the user's subject (`session::Subject`, never the app's user id); a webhook only says
//! "re-read the user", and that read is applied to each session of the user (both tracks).

use super::client::{AuthentoClient, Lookup};
use super::data::{AuthentoData, VerificationType};
use super::input::{self, TokenInput};
use super::settings::{Secrets, Settings};
use super::token::{self, Claims};
use super::{NAME, ref_key, status, webhook};
use crate::Error;
use crate::providers::adapter::{
    Action, Adapter, Again, Authentic, Claim, ClaimRule, Cx, Dialect, Event, Inbound, Judgement,
    Opaque, Opening, Resume, Reused, own,
};
use crate::providers::registry::ProviderSettings;
use crate::providers::transport::Transport;
use crate::session::{Polling, ProviderData, Session, Subject};
use crate::verified::VerifiedRead;
use async_trait::async_trait;
use http::HeaderMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub struct Authento {
    settings: Settings,
    client: AuthentoClient,
}

pub(super) fn build(settings: &ProviderSettings, transport: &Transport) -> Arc<dyn Adapter> {
    let settings = settings
        .downcast_ref::<Settings>()
        .expect("authento settings")
        .clone();
    let client = AuthentoClient::new(
        transport.clone(),
        &settings.api_url,
        settings.max_requests_per_second,
    );
    Arc::new(Authento { settings, client })
}

impl Authento {
    fn issuer(&self) -> Result<&str, Error> {
        self.settings
            .issuer
            .as_deref()
            .ok_or(Error::ProviderNotConfigured(NAME))
    }

    /// The token for `session` issued at `iat` (HS256 is deterministic: a replay signs the same
    /// token again from the stored `iat`, so no token is ever stored), and the `client` it goes in.
    /// `page`: the `user_type` and `lang` of the request that reused the session (instead of
    /// those it was opened with).
    fn client_for(
        &self,
        cx: &Cx<'_>,
        session: &Session,
        iat: i64,
        page: Option<&str>,
    ) -> Result<Value, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let mut data: AuthentoData = session.data.read().map_err(Error::Internal)?;
        if let Some(page) = page {
            let asked: AuthentoData = serde_json::from_str(page)
                .map_err(|e| Error::Internal(format!("authento reuse request: {e}")))?;
            data.user_type = asked.user_type;
            data.lang = asked.lang;
        }
        let vt = data
            .verification_type
            .ok_or_else(|| Error::Internal("authento session without type".into()))?;
        let ttl = i64::try_from(self.settings.token_ttl.as_secs()).unwrap_or(900);
        let claims = Claims {
            iss: self.issuer()?.to_owned(),
            sub: Subject::of(&session.tenant, &session.user_id).to_string(),
            aud: token::AUDIENCE.to_owned(),
            iat,
            exp: iat + ttl,
            vt,
            ut: data.user_type,
            lang: data.lang,
        };
        let jwt = token::sign(&claims, creds.jwt_secret.expose())
            .map_err(|e| Error::Internal(format!("signing: {e}")))?;
        let verify_url = token::verify_url(&self.settings.verify_url, &jwt);
        Ok(json!({"token": jwt, "verify_url": verify_url}))
    }
}

#[async_trait]
impl Adapter for Authento {
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
        Ok(Box::new(input::token_input(body, &[])?))
    }

    /// Authento's page opens in a popup (`verify_url`) that the app's own page watches: its
    /// token has no claim for a page to return to (the documented claims are `iss`, `sub`,
    /// `aud`, `iat`, `vt`, `ut`, `lang`).
    fn takes_return_url(&self) -> Result<(), &'static str> {
        Err(
            "authento's verification runs in a popup over your page (verify_url): it has no \
             page to return to",
        )
    }

    /// One open session per user and track: an open one is reused (the new token continues the
    /// same Authento user), a finished one replaced.
    fn start_claims(&self, tenant: &str, input: &Opaque) -> Result<Vec<Claim>, Error> {
        let input: &TokenInput = own(input)?;
        let subject = Subject::of(tenant, &input.user_id);
        Ok(vec![Claim {
            key: ref_key(subject.as_str(), input.verification_type),
            rule: ClaimRule::Reuse,
            // Kept deliveries need no matching: the first read of a session is the truth.
            kept: None,
        }])
    }

    async fn start(&self, cx: &Cx<'_>, tenant: &str, input: Opaque) -> Result<Opening, Error> {
        let input: &TokenInput = own(&input)?;
        self.issuer()?;
        cx.credentials::<Secrets>(NAME)?;
        let mut session = Session::new(tenant, self.provider(), &input.user_id, cx.now);
        session.data = ProviderData::of(&AuthentoData {
            verification_type: Some(input.verification_type),
            user_type: input.user_type.clone(),
            lang: input.lang.clone(),
        });
        let iat = cx.now.unix_timestamp();
        let client = self.client_for(cx, &session, iat, None)?;
        Ok(Opening {
            session,
            claims: Vec::new(),
            client,
            replay: None,
            issued_at: Some(iat),
            read: None,
        })
    }

    fn replayed(&self, cx: &Cx<'_>, session: &Session, again: &Again<'_>) -> Result<Value, Error> {
        let iat = again
            .issued_at
            .ok_or_else(|| Error::Internal("idempotency record without iat".into()))?;
        self.client_for(cx, session, iat, again.replay)
    }

    /// A reused session's token follows the request's `user_type` and `lang` (absent ones
    /// absent), not those the session was opened with: the app asks for the page it shows now.
    /// Kept as the replay, so that an `Idempotency-Key` replay signs the same token again; the
    /// session itself is not written.
    fn reuse_request(&self, input: &Opaque) -> Option<String> {
        let input: &TokenInput = own(input).ok()?;
        serde_json::to_string(&AuthentoData {
            verification_type: None,
            user_type: input.user_type.clone(),
            lang: input.lang.clone(),
        })
        .ok()
    }

    fn reused(
        &self,
        cx: &Cx<'_>,
        session: &Session,
        request: Option<&str>,
    ) -> Result<Reused, Error> {
        let iat = cx.now.unix_timestamp();
        Ok(Reused {
            client: self.client_for(cx, session, iat, request)?,
            issued_at: Some(iat),
            replay: request.map(str::to_owned),
        })
    }

    /// A new token, signed now: Authento's flow continues where the user left it.
    fn resume(&self) -> Resume {
        Resume::Here
    }

    /// The token follows the `user_type` and `lang` the session was opened with. Its `iat` is
    /// kept with an `Idempotency-Key`, so that a replay signs the same token again.
    fn resumed(
        &self,
        cx: &Cx<'_>,
        session: &Session,
        _read: Option<&Opaque>,
    ) -> Result<Reused, Error> {
        let iat = cx.now.unix_timestamp();
        Ok(Reused {
            client: self.client_for(cx, session, iat, None)?,
            issued_at: Some(iat),
            replay: None,
        })
    }

    fn retry_fields(&self) -> &'static [&'static str] {
        &["verification_type", "user_type", "lang"]
    }

    fn subject(&self, session: &Session) -> Option<String> {
        Some(Subject::of(&session.tenant, &session.user_id).to_string())
    }

    async fn fetch(
        &self,
        cx: &Cx<'_>,
        subject: &str,
        _session: Option<&Session>,
    ) -> Result<Opaque, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        Ok(Box::new(
            self.client.basic_user_info(&creds, subject).await?,
        ))
    }

    fn judge(&self, _cx: &Cx<'_>, answer: &Opaque, session: &Session) -> Result<Judgement, Error> {
        let lookup: &Lookup = own(answer)?;
        let data: AuthentoData = session.data.read().map_err(Error::Internal)?;
        let vt = data.verification_type.unwrap_or(VerificationType::Basic);
        Ok(Judgement {
            provider_ref: match lookup {
                Lookup::Found(info) => Some(info.id.clone()),
                Lookup::NotFound => None,
            },
            ..Judgement::of(status::proposal(lookup, vt))
        })
    }

    fn webhook(&self) -> Option<&dyn Dialect> {
        Some(self)
    }

    /// The user's full information (names, identity document), read by the user's subject; only
    /// while Authento still reports the session's track verified.
    async fn verified_data(&self, cx: &Cx<'_>, session: &Session) -> Result<VerifiedRead, Error> {
        let creds = cx.credentials::<Secrets>(NAME)?;
        let data: AuthentoData = session.data.read().map_err(Error::Internal)?;
        let vt = data.verification_type.unwrap_or(VerificationType::Basic);
        let subject = Subject::of(&session.tenant, &session.user_id).to_string();
        match self.client.full_user_info(&creds, &subject).await? {
            Some(body) => super::verified::from_body(&body, vt),
            None => Ok(VerifiedRead::Unavailable(
                "Authento no longer knows this user",
            )),
        }
    }

    fn view(&self, session: &Session, out: &mut Map<String, Value>) {
        let data: AuthentoData = session.data.read().unwrap_or_default();
        out.insert(
            "verification_type".into(),
            json!(data.verification_type.map(VerificationType::as_str)),
        );
    }
}

impl Dialect for Authento {
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
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if !webhook::is_authentic(
            creds.webhook_secrets(),
            body,
            header(webhook::DIGEST_HEADER),
            header(webhook::DIGEST_ALG_HEADER),
        ) {
            return Err(Error::InvalidSignature);
        }
        Ok(Authentic {
            body: body.to_vec(),
            token: None,
        })
    }

    fn events(&self, authentic: &Authentic) -> Result<Vec<Inbound>, &'static str> {
        let event = webhook::parse(&authentic.body)?;
        // Only a subject the gateway issued can name a session; any other user is kept unmatched.
        let user = Subject::parse(&event.user_identifier)
            .map_or_else(|| event.user_identifier.clone(), |s| s.to_string());
        Ok(vec![Inbound {
            event_id: webhook::event_id(&authentic.body),
            // Authento's bodies carry no event id: the same body after a change is a new event.
            content_id: true,
            subjects: vec![user.clone()],
            // All a later attempt needs: whom to re-read, and the event's name for the history.
            payload: serde_json::to_string(&KeptEvent {
                user,
                event: Some(event.event.clone()),
            })
            .map_err(|_| "an unkeepable event")?,
            name: event.event,
        }])
    }

    /// Their webhooks carry no trustworthy ordering: the API read is the truth, one per user.
    fn action(&self) -> Action {
        Action::Reread {
            without_session: false,
        }
    }

    /// A user's sessions of both tracks.
    fn refs(&self, subject: &str) -> Vec<String> {
        VerificationType::ALL
            .into_iter()
            .map(|vt| ref_key(subject, vt))
            .collect()
    }

    fn subject(&self, event: &Event<'_>) -> Result<String, Error> {
        Ok(KeptEvent::of(event.payload).user)
    }

    fn event_name(&self, event: &Event<'_>) -> Option<String> {
        KeptEvent::of(event.payload).event
    }
}

/// What a delivery keeps of an Authento event.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptEvent {
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
}

impl KeptEvent {
    /// A delivery kept before the event's name was kept holds the user alone.
    fn of(payload: &str) -> Self {
        serde_json::from_str(payload).unwrap_or_else(|_| KeptEvent {
            user: payload.to_owned(),
            event: None,
        })
    }
}
