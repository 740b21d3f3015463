//! Verified data, read live and never stored: `GET /v1/sessions/{id}/verified_data` reads what
//! the session's provider verified about the person, now, through its adapter; the answer goes to
//! the app and nowhere else. Each read is recorded first (who, when, which session; never what):
//! an answer whose record could not be written is not given.

use crate::http::auth::Caller;
use crate::providers::adapter::Cx;
use crate::session::{HistoryEntry, Session, Status};
use crate::verified::{DataAccess, VerifiedData, VerifiedRead};
use crate::{App, Error};
use time::OffsetDateTime;

/// One read of a session's verified data, with its record.
pub struct Read {
    pub session: Session,
    /// When the session became verified, if its kept history still says.
    pub verified_at: Option<OffsetDateTime>,
    pub data: VerifiedData,
    pub access: DataAccess,
}

/// Reads the verified data of a `verified` session of the caller's tenant from its provider.
/// Another tenant's session is not found; a session that is not verified, or whose provider no
/// longer reports it verified, is a 409 saying why; a provider that offers none, a 422.
pub async fn read(app: &App, caller: &Caller, id: &str) -> Result<Read, Error> {
    let (session, history) =
        super::load_owned_with_history(&*app.store, &caller.tenant, id).await?;
    let session = session.into_value();
    // Its provider ids are erased (or being erased): nothing can be read for it, ever again.
    if session.redaction.is_some() {
        return Err(Error::Conflict(
            "the session was redacted: its verified data cannot be read".into(),
        ));
    }
    if session.status != Status::Verified {
        return Err(Error::Conflict(format!(
            "the session is {}: verified data exists only for a verified session",
            session.status.as_str()
        )));
    }
    let adapter = app.providers.get(&session.provider)?;
    let secrets = app.secrets.get().await?;
    let cx = Cx {
        secrets: &secrets,
        now: app.clock.now(),
    };
    let data = match adapter.verified_data(&cx, &session).await? {
        VerifiedRead::Data(d) => *d,
        VerifiedRead::Unavailable(why) => return Err(Error::Conflict(why.to_owned())),
    };
    let access = DataAccess::new(
        session.id.clone(),
        &caller.tenant,
        &caller.key_id,
        app.clock.now(),
    );
    // Recorded before it is answered: no read of personal data goes unrecorded.
    app.store.record_access(&access).await?;
    tracing::info!(
        session_id = %session.id,
        key_id = %access.key_id,
        access_id = %access.id,
        "verified data read"
    );
    Ok(Read {
        verified_at: verified_at(&history),
        session,
        data,
        access,
    })
}

/// `GET /v1/sessions/{id}/verified_data/accesses`: the session's access records, newest first.
/// A cursor that is not an access id is a 400 (it never reaches the store).
pub async fn accesses(
    app: &App,
    tenant: &str,
    id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<DataAccess>, Option<String>), Error> {
    let session = super::load_owned(&*app.store, tenant, id).await?;
    if let Some(c) = cursor
        && !DataAccess::is_id(c)
    {
        return Err(Error::invalid(
            "cursor",
            "invalid",
            "this cursor does not belong to this listing",
        ));
    }
    Ok(app.store.list_accesses(&session.id, limit, cursor).await?)
}

/// When the session last became verified: the latest change into `verified` from another
/// status (history is oldest first).
fn verified_at(history: &[HistoryEntry]) -> Option<OffsetDateTime> {
    history
        .iter()
        .rev()
        .find(|h| h.to == Status::Verified && h.from != Status::Verified)
        .map(|h| h.at)
}
