//! Stripe's v1 API for Identity verification sessions: form-encoded requests with the secret key
//! as a bearer token and a pinned `Stripe-Version`. The create carries an `Idempotency-Key` (our
//! session id), so Stripe itself makes a repeated create the same one: it is safe to resend, like
//! the reads. Transport rules (deadline, no redirects, bounded bodies) are `providers::transport`'s.

use super::input::{DocumentOptions, Kind};
use super::settings::Secrets;
use super::{NAME, is_id};
use crate::error::Error;
use crate::providers::transport::{
    self, Call, MAX_WORD, Resend, Transport, capped, provider_error,
};
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;

/// The API version the adapter was written against (the official SDKs' own pin): Stripe renders
/// objects as this version whatever the account's default.
pub const API_VERSION: &str = "2026-10-28.endive";
/// Longest `Retry-After` waited out inside one operation.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// A URL's usual length at most: the hosted `url` is handed to the app as it is.
const MAX_URL: usize = 2048;

/// What the gateway reads of a verification session: never `verified_outputs` (not expanded, so
/// Stripe does not send it; only `retrieve_verified` asks for it), never `client_secret`.
#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSession {
    pub id: String,
    /// `requires_input`, `processing`, `verified`, `canceled`.
    pub status: String,
    #[serde(default)]
    pub last_error: Option<SessionError>,
    /// The hosted page, while the session is `requires_input` (48 hours, single use).
    #[serde(default)]
    pub url: Option<String>,
    /// `{status: processing|redacted|validated}` once redacted (`null` before).
    #[serde(default)]
    pub redaction: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionError {
    #[serde(default)]
    pub code: Option<String>,
    /// Stripe's explanation, which "can be shown to your user".
    #[serde(default)]
    pub reason: Option<String>,
}

/// A retrieve's answer.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(VerificationSession),
    /// 404 `resource_missing`.
    NotFound,
}

/// A cancel's answer.
#[derive(Debug, Clone)]
pub enum Canceled {
    Done,
    /// 400: the session's state does not allow it (already canceled, processing, verified).
    Refused,
}

/// A create's parameters (the app's choices and our references: no personal data).
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub kind: Kind,
    /// Our subject for the user: Stripe's `client_reference_id`.
    pub client_reference_id: &'a str,
    /// Our session id: `metadata[session_ref]`, and the create's `Idempotency-Key`.
    pub session_ref: &'a str,
    pub return_url: Option<&'a str>,
    pub document: Option<&'a DocumentOptions>,
}

impl CreateRequest<'_> {
    /// The form, with nested fields in brackets and arrays indexed, as Stripe's SDKs send them.
    fn form(&self) -> Vec<(String, String)> {
        let mut f = vec![
            ("type".to_owned(), self.kind.as_str().to_owned()),
            (
                "client_reference_id".to_owned(),
                self.client_reference_id.to_owned(),
            ),
            (
                "metadata[session_ref]".to_owned(),
                self.session_ref.to_owned(),
            ),
        ];
        if let Some(u) = self.return_url {
            f.push(("return_url".into(), u.to_owned()));
        }
        if let Some(d) = self.document {
            for (i, t) in d.allowed_types.iter().enumerate() {
                f.push((format!("options[document][allowed_types][{i}]"), t.clone()));
            }
            for (name, value) in [
                ("require_id_number", d.require_id_number),
                ("require_live_capture", d.require_live_capture),
                ("require_matching_selfie", d.require_matching_selfie),
            ] {
                if let Some(v) = value {
                    f.push((format!("options[document][{name}]"), v.to_string()));
                }
            }
        }
        f
    }
}

pub struct StripeClient {
    transport: Transport,
    api_url: String,
}

impl StripeClient {
    pub fn new(transport: Transport, api_url: &str) -> Self {
        Self {
            transport,
            api_url: api_url.trim_end_matches('/').to_owned(),
        }
    }

    fn sessions(&self) -> String {
        format!("{}/v1/identity/verification_sessions", self.api_url)
    }

    /// `POST /v1/identity/verification_sessions`.
    pub async fn create(
        &self,
        creds: &Secrets,
        req: &CreateRequest<'_>,
    ) -> Result<VerificationSession, Error> {
        let url = &self.sessions();
        let form = &req.form();
        let answer = self
            .send(
                Resend::Safe,
                move || {
                    self.transport
                        .http()
                        .post(url)
                        .header("Idempotency-Key", req.session_ref)
                        .form(form)
                },
                creds,
            )
            .await?;
        match answer.status {
            s if s.is_success() => {
                let vs = read(&answer.body)?;
                // Handed to the app as it is: an absolute URL of the API's scheme, of a sane length.
                let url_ok = vs.url.as_deref().is_some_and(|u| {
                    u.len() <= MAX_URL
                        && url::Url::parse(u).is_ok_and(|p| {
                            p.host_str().is_some()
                                && (p.scheme() == "https" || self.api_url.starts_with("http://"))
                        })
                });
                if !url_ok {
                    return Err(provider_error(
                        NAME,
                        "a new verification session without a usable url",
                    ));
                }
                Ok(vs)
            }
            s => Err(refused(s)),
        }
    }

    /// `GET /v1/identity/verification_sessions/{id}`: the authoritative state. A read.
    pub async fn retrieve(&self, creds: &Secrets, id: &str) -> Result<Lookup, Error> {
        if !is_id(id, "vs_") {
            return Err(Error::Internal(
                "stored Stripe session id is malformed".into(),
            ));
        }
        let url = &format!("{}/{id}", self.sessions());
        let answer = self
            .send(Resend::Safe, move || self.transport.http().get(url), creds)
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(Lookup::NotFound),
            s if s.is_success() => Ok(Lookup::Found(read(&answer.body)?)),
            s => Err(refused(s)),
        }
    }

    /// `GET /v1/identity/verification_sessions/{id}` with `verified_outputs` (and its `dob`) and
    /// the last verification report expanded: the body, for `verified` to read; `None` for a
    /// 404. The only read that asks Stripe for personal data.
    pub async fn retrieve_verified(
        &self,
        creds: &Secrets,
        id: &str,
    ) -> Result<Option<bytes::Bytes>, Error> {
        if !is_id(id, "vs_") {
            return Err(Error::Internal(
                "stored Stripe session id is malformed".into(),
            ));
        }
        let url = &format!("{}/{id}", self.sessions());
        let answer = self
            .send(
                Resend::Safe,
                move || {
                    self.transport
                        .http()
                        .get(url)
                        .query(&super::verified::EXPAND.map(|e| ("expand[]", e)))
                },
                creds,
            )
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(answer.body)),
            s => Err(refused(s)),
        }
    }

    /// `POST /v1/identity/verification_sessions/{id}/cancel`. Repeating it changes nothing (a
    /// second one is refused as the first one's effect).
    pub async fn cancel(&self, creds: &Secrets, id: &str) -> Result<Canceled, Error> {
        self.act(creds, id, "cancel").await
    }

    /// `POST /v1/identity/verification_sessions/{id}/redact` (a redaction of ours): `Done`, or
    /// `Refused` (400: its state does not allow it, e.g. `processing`).
    pub async fn redact(&self, creds: &Secrets, id: &str) -> Result<Canceled, Error> {
        self.act(creds, id, "redact").await
    }

    /// `POST .../{id}/<action>` of a session: `Done` on success, `Refused` on Stripe's 400 (its
    /// state does not allow the action).
    async fn act(&self, creds: &Secrets, id: &str, action: &str) -> Result<Canceled, Error> {
        if !is_id(id, "vs_") {
            return Err(Error::Internal(
                "stored Stripe session id is malformed".into(),
            ));
        }
        let url = &format!("{}/{id}/{action}", self.sessions());
        let answer = self
            .send(Resend::Safe, move || self.transport.http().post(url), creds)
            .await?;
        match answer.status {
            s if s.is_success() => Ok(Canceled::Done),
            StatusCode::BAD_REQUEST => Ok(Canceled::Refused),
            s => Err(refused(s)),
        }
    }

    /// One operation: the request `build` makes, with the key and the pinned version.
    async fn send(
        &self,
        resend: Resend,
        build: impl Fn() -> reqwest::RequestBuilder,
        creds: &Secrets,
    ) -> Result<transport::Answer, Error> {
        let call = Call {
            provider: NAME,
            resend,
            max_wait: MAX_WAIT,
        };
        let build = &build;
        self.transport
            .run(
                call,
                self.transport.deadline(),
                move || async move {
                    Ok(build()
                        .bearer_auth(creds.api_key.expose())
                        .header("Stripe-Version", API_VERSION)
                        .header("Accept", "application/json"))
                },
                // Stripe says when a request must not be repeated (`Stripe-Should-Retry:
                // false`); otherwise 429 and 5xx follow the common rules.
                |answer| {
                    let never = answer
                        .headers
                        .get("stripe-should-retry")
                        .is_some_and(|v| v.as_bytes() == b"false");
                    (never && !answer.status.is_success()).then(|| {
                        transport::Step::Fail(provider_error(
                            NAME,
                            format!("answered {} (not to be retried)", answer.status),
                        ))
                    })
                },
            )
            .await
    }
}

/// A session as it is kept: its id checked, its words and error cut to size.
fn read(body: &[u8]) -> Result<VerificationSession, Error> {
    let mut vs: VerificationSession = serde_json::from_slice(body)
        .map_err(|_| provider_error(NAME, "unreadable verification session"))?;
    if !is_id(&vs.id, "vs_") {
        return Err(provider_error(
            NAME,
            "a verification session id that is not one",
        ));
    }
    vs.status = capped(vs.status, MAX_WORD);
    if let Some(e) = vs.last_error.as_mut() {
        e.code = e.code.take().map(|c| capped(c, MAX_WORD));
        e.reason = e.reason.take().map(|r| capped(r, 500));
    }
    Ok(vs)
}

/// Stripe's other answers (401 key, 403 permission, 400/404/409 our request): an operator must
/// look (502). Stripe's error body is not quoted: its messages may echo what was sent.
fn refused(status: StatusCode) -> Error {
    provider_error(NAME, format!("answered {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_form_uses_brackets_and_indices_as_the_sdks_do() {
        let d = DocumentOptions {
            allowed_types: vec!["passport".into(), "id_card".into()],
            require_matching_selfie: Some(true),
            ..Default::default()
        };
        let req = CreateRequest {
            kind: Kind::Document,
            client_reference_id: "subj",
            session_ref: "ses_x",
            return_url: Some("https://app.example/r"),
            document: Some(&d),
        };
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(req.form())
            .finish();
        assert_eq!(
            encoded,
            "type=document&client_reference_id=subj&metadata%5Bsession_ref%5D=ses_x\
             &return_url=https%3A%2F%2Fapp.example%2Fr\
             &options%5Bdocument%5D%5Ballowed_types%5D%5B0%5D=passport\
             &options%5Bdocument%5D%5Ballowed_types%5D%5B1%5D=id_card\
             &options%5Bdocument%5D%5Brequire_matching_selfie%5D=true"
        );
    }

    #[test]
    fn a_session_is_read_without_what_it_does_not_need_and_cut_to_size() {
        let body = format!(
            r#"{{"id":"vs_123","object":"identity.verification_session","status":"requires_input",
               "client_secret":"vs_123_secret_x","url":"https://verify.stripe.com/start/x",
               "last_error":{{"code":"document_expired","reason":"{}"}},
               "verified_outputs":{{"first_name":"Jenny"}}}}"#,
            "r".repeat(600)
        );
        let vs = read(body.as_bytes()).unwrap();
        assert_eq!(vs.status, "requires_input");
        let e = vs.last_error.unwrap();
        assert_eq!(e.code.as_deref(), Some("document_expired"));
        assert!(e.reason.unwrap().len() <= 503);
        assert!(read(br#"{"id":"cus_1","status":"verified"}"#).is_err());
    }
}
