//! Passbase's identity data points as verified data: what the integration guide's step 5 has an
//! integrator fetch after a decision ("personal data collected and shared during an
//! Authentication (E.g. first name, last name, document number...)"), from `GET
//! /identities/{id}`. Documented (B1, B2): `owner {email, first_name, last_name}` and
//! `resources[] {type, datapoints}`; the data point keys include `first_names`, `last_name`,
//! `date_of_birth`, `document_number`, `document_origin_country`, `date_of_expiry`, `address`,
//! `city` (the support page's list). Their formats are not documented (NOT FOUND): dates
//! `YYYY-MM-DD` (as in the B1 fixture), countries alpha-3 (ASSUMPTION), `address` one line of text
//! (ASSUMPTION); a value in another form is left out. No phone.
//!
//! Read only here, into structs without `Debug`; dropped when the request ends.

use crate::Error;
use crate::providers::transport::provider_error;
use crate::verified::{
    Address, Document, DocumentType, Person, VerifiedData, country_code, date_text, text,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct DataIdentity {
    owner: Option<Owner>,
    resources: Vec<Resource>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Owner {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resource {
    #[serde(rename = "type")]
    kind: Option<String>,
    datapoints: Datapoints,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Datapoints {
    first_names: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<String>,
    document_number: Option<String>,
    document_origin_country: Option<String>,
    date_of_expiry: Option<String>,
    address: Option<String>,
    city: Option<String>,
    // ASSUMPTION: `postal_code` and `country` name the address's, if Passbase sends them (the
    // support page's list ends with an ellipsis).
    postal_code: Option<String>,
    country: Option<String>,
}

/// The verified data of an identity body the caller already checked (its id, its session, its
/// status). The document is the first resource's; each name falls back on the owner's (what
/// the user typed) only when the document has none.
pub(super) fn from_body(body: &[u8]) -> Result<VerifiedData, Error> {
    // Serde's messages can quote the body: only the fact reaches the error.
    let identity: DataIdentity = serde_json::from_slice(body)
        .map_err(|_| provider_error(super::NAME, "unreadable identity body"))?;
    let owner = identity.owner.unwrap_or_default();
    let resource = identity.resources.into_iter().next().unwrap_or_default();
    let p = resource.datapoints;
    let document = resource.kind.as_deref().map(|kind| Document {
        kind: DocumentType::of(kind),
        issuing_country: country_code(p.document_origin_country.as_deref()),
        number: text(p.document_number.as_deref()),
        expiry_date: date_text(p.date_of_expiry.as_deref()),
    });
    Ok(VerifiedData {
        person: Person {
            first_name: text(p.first_names.as_deref()).or(text(owner.first_name.as_deref())),
            middle_name: None,
            last_name: text(p.last_name.as_deref()).or(text(owner.last_name.as_deref())),
            date_of_birth: date_text(p.date_of_birth.as_deref()),
            address: Address {
                line1: text(p.address.as_deref()),
                line2: None,
                city: text(p.city.as_deref()),
                state: None,
                postal_code: text(p.postal_code.as_deref()),
                country: country_code(p.country.as_deref()),
            }
            .or_none(),
            id_number: None,
        },
        document,
        email: text(owner.email.as_deref()),
        phone: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passbase's documented identity fixture (B1), with an expiry and an address.
    const FIXTURE: &str = r#"{"id":"00000000-0000-0000-0000-000000000000","status":"approved","score":0.93,
 "owner":{"email":"john.doe@example.com","first_name":"John","last_name":"Doe"},
 "created":1600250430,"updated":1600250430,"metadata":{"foo":"bar"},
 "resources":[{"type":"NATIONAL_ID_CARD","datapoints":{"date_of_birth":"1970-01-01","document_number":"010101010101",
   "first_names":"Jessie","last_name":"Smith","document_origin_country":"DEU","date_of_expiry":"2030-06-30",
   "address":"Musterstrasse 1","city":"Berlin"}}],
 "watchlist":{"clean":true,"types":[],"sources":[],"media":[],"listings":{}}}"#;

    #[test]
    fn data_points_map_to_the_shape_the_document_first() {
        let d = from_body(FIXTURE.as_bytes()).unwrap();
        assert_eq!(d.person.first_name.as_deref(), Some("Jessie"));
        assert_eq!(d.person.last_name.as_deref(), Some("Smith"));
        assert_eq!(d.person.date_of_birth.as_deref(), Some("1970-01-01"));
        assert_eq!(d.email.as_deref(), Some("john.doe@example.com"));
        let a = d.person.address.unwrap();
        assert_eq!(a.line1.as_deref(), Some("Musterstrasse 1"));
        assert_eq!(a.city.as_deref(), Some("Berlin"));
        let doc = d.document.unwrap();
        assert_eq!(doc.kind, DocumentType::IdCard);
        assert_eq!(doc.issuing_country.as_deref(), Some("DE"));
        assert_eq!(doc.number.as_deref(), Some("010101010101"));
        assert_eq!(doc.expiry_date.as_deref(), Some("2030-06-30"));
    }

    #[test]
    fn without_resources_the_owner_names_the_person() {
        let d = from_body(
            br#"{"owner":{"email":"a@example.com","first_name":"John","last_name":"Doe"}}"#,
        )
        .unwrap();
        assert_eq!(d.person.first_name.as_deref(), Some("John"));
        assert!(d.document.is_none() && d.person.address.is_none());
    }
}
