//! The verification session: one model and one state machine for every provider. No I/O here.

mod model;
mod reauthentication;
pub mod schedule;
mod state;
mod subject;

pub use model::{
    DueKey, HistoryMark, IdentityEvent, MAX_HISTORY, Possession, ProveDetails, ProveRegion,
};
pub use model::{
    Evidence, HistoryEntry, LastError, Provider, Session, SessionId, Source, Status,
    VerificationType, is_valid_user_id,
};
pub use reauthentication::Reauthentication;
pub use state::{Decision, NOT_FOUND, PROVIDER_ERROR, Proposal, UNKNOWN_STATUS, decide};
pub use subject::Subject;
