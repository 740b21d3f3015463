//! Nevis's result data as verified data. Nevis documents that a `verified` session's answer
//! "contains the detailed result and data of the verification", but not its fields (NOT FOUND):
//! the whole shape below is an ASSUMPTION, the one the simulator serves:
//!
//! ```json
//! {"sessionId": "123456789", "status": "verified",
//!  "result": {"person": {"firstName", "lastName", "dateOfBirth": "YYYY-MM-DD",
//!                        "address": {"street", "postalCode", "city", "country"}},
//!             "document": {"type", "number", "issuingCountry", "expiryDate": "YYYY-MM-DD"}}}
//! ```
//!
//! Countries ISO 3166-1 alpha-3 or alpha-2 (ASSUMPTION; either is read). No email or phone.
//! Read only here, into structs without `Debug`; dropped when the request ends.

use crate::Error;
use crate::providers::transport::provider_error;
use crate::verified::{
    Address, Document, DocumentType, Person, VerifiedData, VerifiedRead, country_code, date_text,
    text,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    result: Option<Result_>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Result_ {
    person: Option<NevisPerson>,
    document: Option<NevisDocument>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NevisPerson {
    first_name: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<String>,
    address: Option<NevisAddress>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NevisAddress {
    street: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NevisDocument {
    #[serde(rename = "type")]
    kind: Option<String>,
    number: Option<String>,
    issuing_country: Option<String>,
    expiry_date: Option<String>,
}

/// The verified data of a session answer: unavailable unless Nevis still says `verified`.
pub(super) fn from_body(body: &[u8]) -> Result<VerifiedRead, Error> {
    // Serde's messages can quote the body: only the fact reaches the error.
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| provider_error(super::NAME, "unreadable session answer"))?;
    if answer.status != "verified" {
        return Ok(VerifiedRead::Unavailable(
            "Nevis no longer reports this verification as verified",
        ));
    }
    let result = answer.result.unwrap_or_default();
    let p = result.person.unwrap_or_default();
    let address = p.address.unwrap_or_default();
    Ok(VerifiedRead::Data(Box::new(VerifiedData {
        person: Person {
            first_name: text(p.first_name.as_deref()),
            middle_name: None,
            last_name: text(p.last_name.as_deref()),
            date_of_birth: date_text(p.date_of_birth.as_deref()),
            address: Address {
                line1: text(address.street.as_deref()),
                line2: None,
                city: text(address.city.as_deref()),
                state: None,
                postal_code: text(address.postal_code.as_deref()),
                country: country_code(address.country.as_deref()),
            }
            .or_none(),
            id_number: None,
        },
        document: result.document.map(|d| Document {
            kind: DocumentType::of(d.kind.as_deref().unwrap_or_default()),
            issuing_country: country_code(d.issuing_country.as_deref()),
            number: text(d.number.as_deref()),
            expiry_date: date_text(d.expiry_date.as_deref()),
        }),
        email: None,
        phone: None,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assumed_result_maps_to_the_shape() {
        let body = br#"{"sessionId":"123456789","status":"verified","result":{
            "person":{"firstName":"Erika","lastName":"Muster","dateOfBirth":"1990-01-01",
                      "address":{"street":"Musterweg 1","postalCode":"8000","city":"Zurich","country":"CHE"}},
            "document":{"type":"PASSPORT","number":"X1234567","issuingCountry":"CHE","expiryDate":"2031-01-01"}}}"#;
        let VerifiedRead::Data(d) = from_body(body).unwrap() else {
            panic!("verified");
        };
        assert_eq!(d.person.first_name.as_deref(), Some("Erika"));
        assert_eq!(d.person.date_of_birth.as_deref(), Some("1990-01-01"));
        let a = d.person.address.unwrap();
        assert_eq!(a.country.as_deref(), Some("CH"));
        assert_eq!(a.postal_code.as_deref(), Some("8000"));
        let doc = d.document.unwrap();
        assert_eq!(doc.kind, DocumentType::Passport);
        assert_eq!(doc.number.as_deref(), Some("X1234567"));
        assert_eq!(doc.expiry_date.as_deref(), Some("2031-01-01"));
    }

    #[test]
    fn a_session_no_longer_verified_gives_nothing_and_no_result_gives_nulls() {
        assert!(matches!(
            from_body(br#"{"status":"failed","errors":[{"code":"FACE_MISMATCH"}]}"#).unwrap(),
            VerifiedRead::Unavailable(_)
        ));
        let VerifiedRead::Data(d) = from_body(br#"{"status":"verified"}"#).unwrap() else {
            panic!("verified");
        };
        assert!(d.document.is_none() && d.person.address.is_none());
    }
}
