//! The use cases. The only place where storage and providers meet.

mod apply;
pub mod authento;
pub mod deliveries;
pub mod idempotency;
pub mod nevis;
pub mod passbase;
pub mod prove;
pub mod reconcile;
pub mod sessions;
pub mod tokens;

pub use apply::{Bookkeeping, apply_with_retry};

use crate::{App, Error, session::Session, session::SessionId};

/// A session of `tenant`, or not found: another tenant's session is indistinguishable from none.
pub(crate) async fn load_owned(app: &App, tenant: &str, id: &str) -> Result<Session, Error> {
    let id = SessionId::parse(id).ok_or(Error::NotFound)?;
    match app.store.get_session(&id).await? {
        Some(s) if s.tenant == tenant => Ok(s),
        _ => Err(Error::NotFound),
    }
}
