//! Issue an Authento verification token: open (or reuse) the user's open Authento session for the
//! verification type, and sign the JWT that opens Authento's flow.

use super::idempotency::{self, Claim, Done, Held, IdempotencyKey};
use crate::providers::authento::token::{self, Claims};
use crate::secrets::AuthentoSecrets;
use crate::session::{HistoryEntry, Provider, Session, Subject, VerificationType};
use crate::store::{RefClaim, StoreError, authento_ref_key};
use crate::{App, Error};

#[derive(Debug, Clone)]
pub struct TokenInput {
    pub user_id: String,
    pub verification_type: VerificationType,
    pub user_type: Option<String>,
    pub lang: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Issued {
    pub session: Session,
    pub token: String,
    pub verify_url: String,
}

const ATTEMPTS: usize = 4;

pub async fn issue(
    app: &App,
    tenant: &str,
    input: &TokenInput,
    idem: Option<&IdempotencyKey>,
) -> Result<Issued, Error> {
    let secrets = app.secrets.get().await?;
    let creds = secrets
        .authento
        .as_ref()
        .ok_or(Error::ProviderNotConfigured("authento"))?;
    let issuer = app
        .config
        .authento
        .issuer
        .as_deref()
        .ok_or(Error::ProviderNotConfigured("authento"))?;
    let held = match idempotency::claim(app, tenant, idem).await? {
        Some(Claim::Replay(done)) => return replay(app, tenant, creds, issuer, &done).await,
        Some(Claim::Fresh(h)) => Some(h),
        None => None,
    };
    let result = open_or_reuse(app, tenant, input, held.as_ref(), creds, issuer).await;
    idempotency::releasing(app, held.as_ref(), result).await
}

/// The user's open session of this track (reused), or a new one that takes the track's ref.
async fn open_or_reuse(
    app: &App,
    tenant: &str,
    input: &TokenInput,
    held: Option<&Held>,
    creds: &AuthentoSecrets,
    issuer: &str,
) -> Result<Issued, Error> {
    // The user as Authento knows it: unique per tenant and user, so that another app's user of
    // the same id is another Authento user.
    let subject = Subject::of(tenant, &input.user_id);
    let ref_key = authento_ref_key(subject.as_str(), input.verification_type.as_str());
    for _ in 0..ATTEMPTS {
        let now = app.clock.now();
        let iat = now.unix_timestamp();
        let existing = match app.store.get_ref(&ref_key).await? {
            Some(r) => app.store.get_session(&r.session_id).await?.map(|s| (r, s)),
            None => None,
        };
        let replaces = match existing {
            // The subject is the tenant's own: a ref of another tenant cannot exist.
            Some((r, _)) if r.tenant != tenant => {
                return Err(Error::Internal("an Authento ref of another tenant".into()));
            }
            Some((_, s)) if !s.status.is_terminal() => {
                // Reuse the open session; the new token continues the same Authento user.
                if let Some(h) = held {
                    h.complete(app, &h.done(app, &s.id, 201, Some(iat), None))
                        .await?;
                }
                return sign(app, creds, issuer, s, iat);
            }
            Some((r, _)) => Some(r.session_id),
            None => None,
        };

        let mut session = Session::new(tenant, Provider::Authento, &input.user_id, now);
        session.verification_type = Some(input.verification_type);
        session.user_type = input.user_type.clone();
        session.lang = input.lang.clone();
        // Push provider: reconcile reads Authento if no webhook brought news for a while.
        crate::session::schedule::first_check(&mut session, now);
        let history = HistoryEntry::created(&session);
        let claim = RefClaim {
            key: ref_key.clone(),
            tenant: tenant.to_owned(),
            replaces,
        };
        let done = held.map(|h| (h.done(app, &session.id, 201, Some(iat), None), h.owner()));
        match app
            .store
            .create_session(
                &session,
                &history,
                std::slice::from_ref(&claim),
                done.as_ref().map(|(r, o)| (r, *o)),
            )
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = "authento", "session created");
                return sign(app, creds, issuer, session, iat);
            }
            // Someone opened a session for this user first: look again.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::StoreUnavailable(
        "too much contention on one user".into(),
    ))
}

/// The first response again: the same session, and the same JWT re-signed from the stored `iat`
/// (HS256 is deterministic), so no token is ever stored.
async fn replay(
    app: &App,
    tenant: &str,
    creds: &AuthentoSecrets,
    issuer: &str,
    done: &Done,
) -> Result<Issued, Error> {
    let session = idempotency::replayed_session(app, tenant, done).await?;
    let iat = done
        .issued_at
        .ok_or_else(|| Error::Internal("idempotency record without iat".into()))?;
    sign(app, creds, issuer, session, iat)
}

fn sign(
    app: &App,
    creds: &AuthentoSecrets,
    issuer: &str,
    session: Session,
    iat: i64,
) -> Result<Issued, Error> {
    let vt = session
        .verification_type
        .ok_or_else(|| Error::Internal("authento session without type".into()))?;
    let ttl = i64::try_from(app.config.token_ttl.as_secs()).unwrap_or(900);
    let claims = Claims {
        iss: issuer.to_owned(),
        sub: Subject::of(&session.tenant, &session.user_id).to_string(),
        aud: token::AUDIENCE.to_owned(),
        iat,
        exp: iat + ttl,
        vt,
        ut: session.user_type.clone(),
        lang: session.lang.clone(),
    };
    let jwt = token::sign(&claims, &creds.jwt_secret)
        .map_err(|e| Error::Internal(format!("signing: {e}")))?;
    let verify_url = token::verify_url(&app.config.authento.verify_url, &jwt);
    Ok(Issued {
        session,
        token: jwt,
        verify_url,
    })
}
