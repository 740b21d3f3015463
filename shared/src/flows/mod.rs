//! The use cases, whatever the provider: the only place where storage and providers meet. Each
//! provider is reached through its adapter (`providers::adapter`); none is named here.

mod apply;
pub mod bind;
pub mod contention;
pub mod deliveries;
pub mod idempotency;
pub mod link;
mod read;
pub mod reconcile;
pub mod redact;
mod refs;
pub mod resume;
pub mod retry;
pub mod sessions;
pub mod start;
pub mod verified_data;
pub mod webhook;

pub use apply::{Bookkeeping, apply_with_retry};

use crate::store::{Sessions, Stored};
use crate::{Error, session::Session, session::SessionId};

/// A session of `tenant`, or not found: another tenant's session is indistinguishable from none.
/// As `load_owned`, with the session's history (oldest first), in the same one read.
pub(crate) async fn load_owned_with_history(
    sessions: &dyn Sessions,
    tenant: &str,
    id: &str,
) -> Result<(Stored<Session>, Vec<crate::session::HistoryEntry>), Error> {
    let id = SessionId::parse(id).ok_or(Error::NotFound)?;
    match sessions.get_session_with_history(&id).await? {
        Some((s, history)) if s.tenant == tenant => Ok((s, history)),
        _ => Err(Error::NotFound),
    }
}

pub(crate) async fn load_owned(
    sessions: &dyn Sessions,
    tenant: &str,
    id: &str,
) -> Result<Stored<Session>, Error> {
    let id = SessionId::parse(id).ok_or(Error::NotFound)?;
    match sessions.get_session(&id).await? {
        Some(s) if s.tenant == tenant => Ok(s),
        _ => Err(Error::NotFound),
    }
}
