//! Authento's user information (`/userinfo/full`) as verified data. Documented (A5): `fullInfo`
//! of an individual is `{firstName, firstNameEn, middleName, middleNameEn, lastName, lastNameEn,
//! idDocs: [{docType, docSubtype, country, number, validUntil}]}`, countries ISO 3166-1
//! alpha-3; `status.basic`/`status.poa` as on the basic read. Authento gives no date of birth,
//! postal address, email or phone (its `addresses` are wallet addresses): those stay null.
//!
//! Read only here, into structs without `Debug`; dropped when the request ends.

use super::client::Envelope;
use super::data::VerificationType;
use crate::Error;
use crate::providers::transport::provider_error;
use crate::verified::{
    Document, DocumentType, Person, VerifiedData, VerifiedRead, country_code, date_text, text,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct FullUser {
    status: Tracks,
    #[serde(rename = "fullInfo", default)]
    full_info: Option<FullInfo>,
}

#[derive(Deserialize)]
struct Tracks {
    #[serde(default)]
    basic: Option<String>,
    #[serde(default)]
    poa: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct FullInfo {
    first_name: Option<String>,
    middle_name: Option<String>,
    last_name: Option<String>,
    id_docs: Vec<IdDoc>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IdDoc {
    doc_type: Option<String>,
    country: Option<String>,
    number: Option<String>,
    valid_until: Option<String>,
}

/// The verified data of a full user-info answer, for a session of track `vt`: unavailable
/// unless Authento still reports that track `VERIFIED`.
pub(super) fn from_body(body: &[u8], vt: VerificationType) -> Result<VerifiedRead, Error> {
    // Serde's messages can quote the body: only the fact reaches the error.
    let env: Envelope<FullUser> = serde_json::from_slice(body)
        .map_err(|_| provider_error(super::NAME, "unreadable full user-info body"))?;
    let user = match (env.success, env.result) {
        (true, Some(u)) => u,
        (true, None) => return Ok(VerifiedRead::Unavailable(NOT_VERIFIED)),
        (false, _) => {
            return Err(provider_error(
                super::NAME,
                "full user-info answered success=false",
            ));
        }
    };
    let track = match vt {
        VerificationType::Basic => user.status.basic,
        VerificationType::Poa => user.status.poa,
    };
    if track.as_deref() != Some("VERIFIED") {
        return Ok(VerifiedRead::Unavailable(NOT_VERIFIED));
    }
    let info = user.full_info.unwrap_or_default();
    // The identity document: the first that is one (a selfie or a company's document is not).
    let document = info
        .id_docs
        .iter()
        .find(|d| {
            !matches!(
                d.doc_type.as_deref(),
                Some("SELFIE") | Some("COMPANY_DOC") | None
            )
        })
        .map(|d| Document {
            kind: DocumentType::of(d.doc_type.as_deref().unwrap_or_default()),
            issuing_country: country_code(d.country.as_deref()),
            number: text(d.number.as_deref()),
            // ASSUMPTION: `validUntil` is `YYYY-MM-DD` (its format is not documented; the
            // example shows null); another form is left out.
            expiry_date: date_text(d.valid_until.as_deref()),
        });
    Ok(VerifiedRead::Data(Box::new(VerifiedData {
        person: Person {
            // The names as written on the document; Authento's `*En` transliterations are not
            // passed on (ASSUMPTION: the unsuffixed ones are the document's).
            first_name: text(info.first_name.as_deref()),
            middle_name: text(info.middle_name.as_deref()),
            last_name: text(info.last_name.as_deref()),
            ..Default::default()
        },
        document,
        email: None,
        phone: None,
    })))
}

const NOT_VERIFIED: &str = "Authento no longer reports this verification as verified";

#[cfg(test)]
mod tests {
    use super::*;

    /// A5's full-info example (fixed to valid JSON), with a document number and expiry.
    const FULL: &str = r#"{"success":true,"result":{"id":"khz3h1vqr0023ptxk3j8w0a78","type":"INDIVIDUAL",
 "status":{"basic":"VERIFIED","poa":"UNVERIFIED"},
 "basicInfo":{"country":"AUT","nonUS":true,"nonEU":false,"eighteenPlus":true,"pep":null},
 "fullInfo":{"firstName":"Jason","firstNameEn":"Jason","middleName":"Timothy","middleNameEn":"Timothy","lastName":"Bourne","lastNameEn":"Bourne",
   "idDocs":[{"docType":"SELFIE","docSubtype":null,"country":"HKG","number":null,"validUntil":null},
             {"docType":"ID_CARD","docSubtype":"FRONT_SIDE","country":"HKG","number":"K1234567","validUntil":"2031-05-01"}]},
 "addresses":[],"questionnaires":[],"timeUpdated":1687938817.611}}"#;

    #[test]
    fn full_info_maps_to_names_and_the_identity_document() {
        let VerifiedRead::Data(d) = from_body(FULL.as_bytes(), VerificationType::Basic).unwrap()
        else {
            panic!("verified");
        };
        assert_eq!(d.person.first_name.as_deref(), Some("Jason"));
        assert_eq!(d.person.middle_name.as_deref(), Some("Timothy"));
        assert_eq!(d.person.last_name.as_deref(), Some("Bourne"));
        assert_eq!(d.person.date_of_birth, None);
        let doc = d.document.unwrap();
        assert_eq!(doc.kind, DocumentType::IdCard);
        assert_eq!(doc.issuing_country.as_deref(), Some("HK"));
        assert_eq!(doc.number.as_deref(), Some("K1234567"));
        assert_eq!(doc.expiry_date.as_deref(), Some("2031-05-01"));
    }

    #[test]
    fn a_track_authento_no_longer_reports_verified_gives_nothing() {
        assert!(matches!(
            from_body(FULL.as_bytes(), VerificationType::Poa).unwrap(),
            VerifiedRead::Unavailable(_)
        ));
    }

    #[test]
    fn an_unreadable_body_is_a_provider_error_that_quotes_nothing() {
        let e = from_body(
            br#"{"success":true,"result":{"status":"Jason"}}"#,
            VerificationType::Basic,
        )
        .err()
        .unwrap();
        assert!(!e.to_string().contains("Jason"), "{e}");
    }
}
