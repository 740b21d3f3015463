//! Issue an Authento verification token: open (or reuse) the user's open Authento session for the
//! verification type, and sign the JWT that opens Authento's flow.

use super::idempotency::{self, IdempotencyKey};
use crate::providers::authento::token::{self, Claims};
use crate::secrets::AuthentoSecrets;
use crate::session::{HistoryEntry, Provider, Session, VerificationType};
use crate::store::{IdempotencyRecord, RefClaim, StoreError, authento_ref_key};
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
    let ref_key = authento_ref_key(&input.user_id, input.verification_type.as_str());

    for _ in 0..ATTEMPTS {
        if let Some(key) = idem
            && let Some(record) = idempotency::lookup(app, tenant, key).await?
        {
            return replay(app, creds, issuer, &record).await;
        }
        let now = app.clock.now();
        let iat = now.unix_timestamp();
        let existing = match app.store.get_ref(&ref_key).await? {
            Some(r) => app.store.get_session(&r.session_id).await?.map(|s| (r, s)),
            None => None,
        };
        let replaces = match existing {
            Some((r, s)) if !s.status.is_terminal() => {
                if r.tenant != tenant {
                    return Err(Error::Conflict(
                        "another app of this gateway has an open Authento session for this user id"
                            .into(),
                    ));
                }
                // Reuse the open session; the new token continues the same Authento user.
                if let Some(key) = idem {
                    match app
                        .store
                        .put_idempotency(&key.record(app, tenant, &s.id, 201, Some(iat)))
                        .await
                    {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => continue, // a twin request won: replay it
                        Err(e) => return Err(e.into()),
                    }
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
        let idem_record = idem.map(|k| k.record(app, tenant, &session.id, 201, Some(iat)));
        match app
            .store
            .create_session(&session, &history, Some(&claim), idem_record.as_ref())
            .await
        {
            Ok(()) => {
                tracing::info!(session_id = %session.id, provider = "authento", "session created");
                return sign(app, creds, issuer, session, iat);
            }
            // Someone opened a session for this user (or used this key) first: look again.
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
    creds: &AuthentoSecrets,
    issuer: &str,
    r: &IdempotencyRecord,
) -> Result<Issued, Error> {
    let session = app
        .store
        .get_session(&r.session_id)
        .await?
        .ok_or(Error::NotFound)?;
    let iat = r
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
        sub: session.user_id.clone(),
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
