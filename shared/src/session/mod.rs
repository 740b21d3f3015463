//! The verification session: one model and one state machine for every provider. No I/O here.

mod model;
mod reauthentication;
pub mod schedule;
mod state;

pub use model::{DueKey, IdentityEvent, Possession, ProveDetails, ProveRegion};
pub use model::{
    Evidence, HistoryEntry, LastError, Provider, Session, SessionId, Source, Status,
    VerificationType, is_valid_user_id,
};
pub use reauthentication::Reauthentication;
pub use state::{Decision, Proposal, decide};
