//! The one shape of verified data, whatever the provider (docs/api.md#verified-data). Every field
//! is nullable: each provider fills what it verifies (the table in docs/api.md). Values are
//! normalised where the shape promises a form (dates `YYYY-MM-DD`, countries ISO 3166-1 alpha-2,
//! an id number as its last four characters only); a provider value that does not fit is left
//! out rather than passed on unchecked.
//!
//! None of it is ever stored or logged: `Debug` shows no value, and nothing here is written to
//! the table (the access record is `DataAccess`).

use super::country;
use serde::Serialize;

/// What a provider verified about the person of one session.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifiedData {
    pub person: Person,
    pub document: Option<Document>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Person {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub address: Option<Address>,
    pub id_number: Option<IdNumber>,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// A national id number (Stripe's `us_ssn`, ...): its type and last four characters, never
/// the whole number.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct IdNumber {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub last4: Option<String>,
}

/// The identity document checked.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    #[serde(rename = "type")]
    pub kind: DocumentType,
    /// ISO 3166-1 alpha-2.
    pub issuing_country: Option<String>,
    pub number: Option<String>,
    /// `YYYY-MM-DD`.
    pub expiry_date: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    IdCard,
    DrivingLicense,
    ResidencePermit,
    /// A document the provider names otherwise (or not at all).
    Other,
}

impl DocumentType {
    /// A provider's word for a document: Stripe's `passport`, `id_card`, `driving_license`;
    /// Authento's `PASSPORT`, `ID_CARD`, `DRIVERS`, `RESIDENCE_PERMIT`; Passbase's `PASSPORT`,
    /// `NATIONAL_ID_CARD`, `DRIVERS_LICENSE`; Nevis's (assumed) `PASSPORT`, `ID_CARD`,
    /// `DRIVING_LICENSE`, `RESIDENCE_PERMIT`.
    pub fn of(word: &str) -> DocumentType {
        match word.to_ascii_lowercase().replace('-', "_").as_str() {
            "passport" => DocumentType::Passport,
            "id_card" | "national_id_card" | "national_id" | "identity_card" => {
                DocumentType::IdCard
            }
            "driving_license" | "drivers_license" | "drivers" | "driver_license"
            | "driving_licence" => DocumentType::DrivingLicense,
            "residence_permit" => DocumentType::ResidencePermit,
            _ => DocumentType::Other,
        }
    }
}

/// What a provider's live read gave for a session the gateway holds as verified.
pub enum VerifiedRead {
    Data(Box<VerifiedData>),
    /// The provider no longer reports the verification as verified, or withholds its data (it
    /// redacted it): why, in words an app may be shown (no value of the person's).
    Unavailable(&'static str),
}

/// Longest text value passed on (a name, an address line): longer is not a value of the shape.
const MAX_TEXT: usize = 256;

/// A provider's text value as the shape holds it: trimmed, `None` when empty, blank or absurdly
/// long.
pub fn text(v: Option<&str>) -> Option<String> {
    let v = v?.trim();
    (!v.is_empty() && v.len() <= MAX_TEXT).then(|| v.to_owned())
}

/// A calendar date as `YYYY-MM-DD`, if it is one.
pub fn date(year: i64, month: i64, day: i64) -> Option<String> {
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let d =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

/// A date a provider wrote as `YYYY-MM-DD` (a time after it, `T...`, is ignored), if it is one.
pub fn date_text(v: Option<&str>) -> Option<String> {
    let v = v?.trim();
    let day = v.split('T').next()?;
    let mut parts = day.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    date(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// A country as ISO 3166-1 alpha-2, from alpha-2 or alpha-3.
pub fn country_code(v: Option<&str>) -> Option<String> {
    country::alpha2(v?)
}

/// The last four letters or digits of an id number (separators dropped); `None` for a number of
/// fewer than four, which would be shown whole.
pub fn last4(v: Option<&str>) -> Option<String> {
    let chars: Vec<char> = v?.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    (chars.len() >= 4).then(|| chars[chars.len() - 4..].iter().collect())
}

impl Address {
    /// `None` when the provider gave no part of it.
    pub fn or_none(self) -> Option<Address> {
        (self != Address::default()).then_some(self)
    }
}

// Never a value in a log line or a panic message, whatever prints it.
macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<personal data>)"))
            }
        }
    )*};
}
opaque_debug!(VerifiedData, Person, Address, IdNumber, Document);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_and_written_one_way() {
        assert_eq!(date(1987, 4, 9).as_deref(), Some("1987-04-09"));
        assert_eq!(date(1987, 2, 30), None);
        assert_eq!(date(1, 1, 1).as_deref(), Some("0001-01-01"));
        assert_eq!(date_text(Some("1990-01-31")).as_deref(), Some("1990-01-31"));
        assert_eq!(
            date_text(Some("2031-05-01T00:00:00Z")).as_deref(),
            Some("2031-05-01")
        );
        for bad in ["", "1990-1-31", "31.01.1990", "1990-13-01", "19900131"] {
            assert_eq!(date_text(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn an_id_number_is_cut_to_its_last_four() {
        assert_eq!(last4(Some("900-12-3456")).as_deref(), Some("3456"));
        assert_eq!(last4(Some("3456")).as_deref(), Some("3456"));
        assert_eq!(last4(Some("456")), None);
        assert_eq!(last4(None), None);
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text(Some("  Jane ")).as_deref(), Some("Jane"));
        assert_eq!(text(Some("   ")), None);
        assert_eq!(text(Some(&"x".repeat(MAX_TEXT + 1))), None);
    }

    #[test]
    fn document_words_of_every_provider_map_to_one_type() {
        for (w, t) in [
            ("passport", DocumentType::Passport),
            ("PASSPORT", DocumentType::Passport),
            ("id_card", DocumentType::IdCard),
            ("NATIONAL_ID_CARD", DocumentType::IdCard),
            ("DRIVERS", DocumentType::DrivingLicense),
            ("DRIVERS_LICENSE", DocumentType::DrivingLicense),
            ("driving_license", DocumentType::DrivingLicense),
            ("RESIDENCE_PERMIT", DocumentType::ResidencePermit),
            ("SELFIE", DocumentType::Other),
        ] {
            assert_eq!(DocumentType::of(w), t, "{w}");
        }
    }

    #[test]
    fn debug_shows_no_value() {
        let d = VerifiedData {
            person: Person {
                first_name: Some("Jane".into()),
                ..Default::default()
            },
            email: Some("jane@example.com".into()),
            ..Default::default()
        };
        let shown = format!("{d:?} {:?}", d.person);
        assert!(
            !shown.contains("Jane") && !shown.contains("example"),
            "{shown}"
        );
    }
}
