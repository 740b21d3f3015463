//! Stripe's verified outputs as verified data: `GET /v1/identity/verification_sessions/{id}`
//! with `expand[]=verified_outputs` (S1 `gelato_verified_outputs`: `first_name`, `last_name`,
//! `dob {day, month, year}`, `address {line1, line2, city, state, postal_code, country}`,
//! `email`, `phone`, `id_number`, `id_number_type`, `sex`), `expand[]=verified_outputs.dob` (a
//! sensitive field, which Stripe shows only when expanded on its own: D5) and
//! `expand[]=last_verification_report` (the document's `type` and `issuing_country`; the id
//! number check's `id_number`, "only the last 4 digits for `us_ssn`").
//!
//! Asked for deliberately not: `verified_outputs.id_number` (the whole national id number: the
//! shape keeps four characters, which the report gives) and the report's
//! `document.number`/`document.expiration_date` (further sensitive expansions): the document's
//! number and expiry stay null for Stripe.
//!
//! ASSUMPTION: the gateway's key may read `verified_outputs.dob` (Stripe wants a restricted key,
//! and for one only within 48 hours of the verification: D5; what it answers otherwise is NOT
//! FOUND: a refusal is a provider error, a null a null). A redacted session (`redaction` set)
//! holds placeholders, not data: it is answered as unavailable.
//!
//! Read only here, into structs without `Debug`; dropped when the request ends.

use crate::Error;
use crate::providers::transport::provider_error;
use crate::verified::{
    Address, Document, DocumentType, IdNumber, Person, VerifiedData, VerifiedRead, country_code,
    date, last4, text,
};
use serde::Deserialize;
use serde_json::Value;

/// The expansions of the read (in Stripe's `expand[]` form).
pub(super) const EXPAND: [&str; 3] = [
    "verified_outputs",
    "verified_outputs.dob",
    "last_verification_report",
];

#[derive(Deserialize)]
struct Session {
    status: String,
    #[serde(default)]
    redaction: Option<Value>,
    #[serde(default)]
    verified_outputs: Option<Outputs>,
    /// An id when not expanded, the report when it is.
    #[serde(default)]
    last_verification_report: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Outputs {
    first_name: Option<String>,
    last_name: Option<String>,
    dob: Option<Dob>,
    address: Option<StripeAddress>,
    email: Option<String>,
    phone: Option<String>,
    id_number_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Dob {
    day: Option<i64>,
    month: Option<i64>,
    year: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StripeAddress {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Report {
    document: Option<ReportDocument>,
    id_number: Option<ReportIdNumber>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReportDocument {
    #[serde(rename = "type")]
    kind: Option<String>,
    issuing_country: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReportIdNumber {
    id_number: Option<String>,
    id_number_type: Option<String>,
}

/// The verified data of an expanded session: unavailable unless Stripe still says `verified`
/// and has not redacted it.
pub(super) fn from_body(body: &[u8]) -> Result<VerifiedRead, Error> {
    // Serde's messages can quote the body: only the fact reaches the error.
    let unreadable = |_| provider_error(super::NAME, "unreadable verification session");
    let s: Session = serde_json::from_slice(body).map_err(unreadable)?;
    if s.status != "verified" {
        return Ok(VerifiedRead::Unavailable(
            "Stripe no longer reports this verification as verified",
        ));
    }
    if s.redaction.as_ref().is_some_and(|r| !r.is_null()) {
        return Ok(VerifiedRead::Unavailable(
            "Stripe has redacted this verification's data",
        ));
    }
    let o = s.verified_outputs.unwrap_or_default();
    let report: Report = match s.last_verification_report {
        Some(v @ Value::Object(_)) => serde_json::from_value(v).map_err(unreadable)?,
        _ => Report::default(),
    };
    let dob = o
        .dob
        .and_then(|d| date(d.year?, d.month?, d.day?))
        // ASSUMPTION: Stripe's redaction placeholder (year 1) is never a real date of birth.
        .filter(|d| !d.starts_with("0001-"));
    let a = o.address.unwrap_or_default();
    let id_number = report
        .id_number
        .map(|n| IdNumber {
            kind: text(n.id_number_type.as_deref()).or(text(o.id_number_type.as_deref())),
            last4: last4(n.id_number.as_deref()),
        })
        .or_else(|| {
            text(o.id_number_type.as_deref()).map(|kind| IdNumber {
                kind: Some(kind),
                last4: None,
            })
        });
    Ok(VerifiedRead::Data(Box::new(VerifiedData {
        person: Person {
            first_name: text(o.first_name.as_deref()),
            middle_name: None,
            last_name: text(o.last_name.as_deref()),
            date_of_birth: dob,
            address: Address {
                line1: text(a.line1.as_deref()),
                line2: text(a.line2.as_deref()),
                city: text(a.city.as_deref()),
                state: text(a.state.as_deref()),
                postal_code: text(a.postal_code.as_deref()),
                country: country_code(a.country.as_deref()),
            }
            .or_none(),
            id_number,
        },
        document: report.document.map(|d| Document {
            kind: DocumentType::of(d.kind.as_deref().unwrap_or_default()),
            issuing_country: country_code(d.issuing_country.as_deref()),
            number: None,
            expiry_date: None,
        }),
        email: text(o.email.as_deref()),
        phone: text(o.phone.as_deref()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The S2 report fixture's document block, in a verified session with its outputs expanded.
    const VERIFIED: &str = r#"{"id":"vs_1Pgc76B7WZ01zgkWBdQi8PTU","object":"identity.verification_session",
 "status":"verified","type":"document","redaction":null,
 "verified_outputs":{"first_name":"Jenny","last_name":"Rosen","dob":{"day":9,"month":4,"year":1987},
   "address":{"line1":"1234 Main St.","city":"San Francisco","state":"CA","country":"US","line2":null,"postal_code":null},
   "email":null,"phone":null,"id_number":null,"id_number_type":"us_ssn","sex":"unknown"},
 "last_verification_report":{"id":"vr_1","object":"identity.verification_report","type":"document",
   "document":{"status":"verified","type":"driving_license","first_name":"Jenny","last_name":"Rosen","issuing_country":"US","error":null},
   "id_number":{"status":"verified","error":null,"id_number":"6789","id_number_type":"us_ssn"}}}"#;

    #[test]
    fn verified_outputs_and_the_report_map_to_the_shape() {
        let VerifiedRead::Data(d) = from_body(VERIFIED.as_bytes()).unwrap() else {
            panic!("verified");
        };
        assert_eq!(d.person.first_name.as_deref(), Some("Jenny"));
        assert_eq!(d.person.date_of_birth.as_deref(), Some("1987-04-09"));
        let a = d.person.address.unwrap();
        assert_eq!(a.state.as_deref(), Some("CA"));
        assert_eq!(a.postal_code, None);
        let n = d.person.id_number.unwrap();
        assert_eq!(
            (n.kind.as_deref(), n.last4.as_deref()),
            (Some("us_ssn"), Some("6789"))
        );
        let doc = d.document.unwrap();
        assert_eq!(doc.kind, DocumentType::DrivingLicense);
        assert_eq!(doc.issuing_country.as_deref(), Some("US"));
        assert_eq!(doc.number, None);
    }

    #[test]
    fn a_redacted_or_undecided_session_gives_nothing() {
        let redacted = VERIFIED.replace(
            r#""redaction":null"#,
            r#""redaction":{"status":"redacted"}"#,
        );
        let requires_input = VERIFIED.replace(
            r#""status":"verified","type""#,
            r#""status":"requires_input","type""#,
        );
        for body in [redacted, requires_input] {
            assert!(matches!(
                from_body(body.as_bytes()).unwrap(),
                VerifiedRead::Unavailable(_)
            ));
        }
    }
}
