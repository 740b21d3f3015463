//! Verified data: what a provider verified about the person of a verified session, read from the
//! provider when an app asks (`flows::verified_data`) and mapped to one shape (`model`), which the
//! gateway never stores or logs; and the record of each such read (`access`), which it keeps:
//! who, when, which session, never what.

mod access;
pub mod country;
mod model;

pub use access::{ACCESS_TTL, DataAccess, KEY_ID_LEN, key_id};
pub use model::{
    Address, Document, DocumentType, IdNumber, Person, VerifiedData, VerifiedRead, country_code,
    date, date_text, last4, text,
};
