//! A reauthentication: a user who was already verified proved again that they are that person
//! (Passbase's biometric login, `IDENTITY_AUTHENTICATED`). Kept per user so that an app can ask
//! for a recent one before a risky action.

use super::model::{Provider, SessionId};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reauthentication {
    pub tenant: String,
    pub user_id: String,
    pub provider: Provider,
    /// The provider's identity the user proved again (Passbase: the identity access key).
    pub identity_id: String,
    /// The verified session that identity belongs to.
    pub session_id: SessionId,
    /// When it happened, as the provider reports it.
    pub at: OffsetDateTime,
    /// The provider's word for the result, e.g. `approved`.
    pub outcome: String,
    /// The delivery that reported it: the same event never records two.
    pub event_id: String,
}
