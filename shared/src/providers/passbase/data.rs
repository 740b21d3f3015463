//! What a session keeps of Passbase: the document check's outcome, never who the person is.

use serde::{Deserialize, Serialize};

/// The few facts of a document check a session keeps (data minimisation: never names, dates of
/// birth, document numbers or emails). Empty until Passbase reports them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// The provider's confidence, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// e.g. `PASSPORT`, `NATIONAL_ID_CARD`, `DRIVERS_LICENSE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// The issuing country as the provider reports it (e.g. `DEU`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_country: Option<String>,
}
