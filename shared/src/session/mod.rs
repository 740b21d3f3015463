//! The verification session: one model and one state machine for every provider. No I/O here,
//! and no provider named: a provider's own facts ride along as `ProviderData`.

mod data;
mod failure;
mod model;
mod provider;
mod reauthentication;
mod redaction;
pub mod schedule;
mod state;
mod subject;

pub use data::ProviderData;
pub use failure::{FailureCode, FailureTable, lookup as failure_of};
pub use model::{
    HistoryEntry, LastError, Provider, Session, SessionId, Source, Status, is_valid_user_id,
};
pub use model::{IdentityEvent, MAX_HISTORY, Metadata, StartOptions};
pub use reauthentication::Reauthentication;
pub use redaction::{
    MAX_DELETION_ATTEMPTS, ProviderDeletion, REDACTED, Redaction, RedactionState, erase_values,
};
pub use schedule::Polling;
pub use state::{Decision, NOT_FOUND, PROVIDER_ERROR, Proposal, UNKNOWN_STATUS, decide};
pub use subject::Subject;
