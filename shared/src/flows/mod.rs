//! The use cases, whatever the provider: the only place where storage and providers meet. Each
//! provider is reached through its adapter (`providers::adapter`); none is named here.

mod apply;
pub mod contention;
pub mod deliveries;
pub mod idempotency;
pub mod link;
mod read;
pub mod reconcile;
mod refs;
pub mod resume;
pub mod retry;
pub mod sessions;
pub mod start;
pub mod webhook;

pub use apply::{Bookkeeping, apply_with_retry};

use crate::store::{Sessions, Stored};
use crate::{Error, session::Session, session::SessionId};

/// A session of `tenant`, or not found: another tenant's session is indistinguishable from none.
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
