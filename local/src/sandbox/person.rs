//! The person behind a simulated verification: clearly fake (Jane Sample-..., Sample Street in
//! Exampleville, a 555-01xx phone number, an id number starting with 9, which no SSN does),
//! deterministic for a seed (the provider's id for the person or the flow: the same answer on
//! every read) and distinct between seeds, so that a test can look for each value where it must
//! never be (the gateway's table, its logs).

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePerson {
    pub first_name: String,
    pub last_name: String,
    /// `(year, month, day)`.
    pub date_of_birth: (i32, u8, u8),
    pub street: String,
    pub city: String,
    pub postal_code: String,
    pub email: String,
    pub phone: String,
    /// An identity document's number.
    pub document_number: String,
    /// `(year, month, day)`.
    pub document_expiry: (i32, u8, u8),
    /// A national id number of nine digits (Stripe's `us_ssn`).
    pub id_number: String,
}

impl FakePerson {
    pub fn of(seed: &str) -> FakePerson {
        let h = Sha256::digest(seed.as_bytes());
        let n = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        const LETTERS: &[u8] = b"bcdfghjklmnpqrstvwxz";
        const VOWELS: &[u8] = b"aeiou";
        // A pronounceable tag: consonant, vowel, consonant, vowel, consonant.
        let tag: String = (0..5)
            .map(|i| {
                let set = if i % 2 == 0 { LETTERS } else { VOWELS };
                set[h[20 + i] as usize % set.len()] as char
            })
            .collect();
        let last_name = format!("Sample-{}{}", tag[..1].to_uppercase(), &tag[1..]);
        let digits = |x: u32, width: usize| format!("{:0width$}", x % 10u32.pow(width as u32));
        FakePerson {
            first_name: "Jane".into(),
            date_of_birth: (1950 + (n(0) % 50) as i32, 1 + (h[4] % 12), 1 + (h[5] % 28)),
            street: format!("{} Sample Street", 1 + n(6) % 999),
            city: "Exampleville".into(),
            postal_code: format!("9{}", digits(n(10), 4)),
            email: format!("jane.{}@example.com", last_name.to_lowercase()),
            phone: format!("+120155501{}", digits(n(14), 2)),
            document_number: format!("SX{}", digits(n(2), 7)),
            document_expiry: (2030 + (h[8] % 10) as i32, 1 + (h[9] % 12), 1 + (h[16] % 28)),
            id_number: format!("9{}", digits(n(12), 8)),
            last_name,
        }
    }

    pub fn date_of_birth_text(&self) -> String {
        ymd(self.date_of_birth)
    }

    pub fn document_expiry_text(&self) -> String {
        ymd(self.document_expiry)
    }
}

fn ymd((y, m, d): (i32, u8, u8)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_is_the_same_person_and_another_seed_another() {
        let a = FakePerson::of("user-1");
        assert_eq!(a, FakePerson::of("user-1"));
        let b = FakePerson::of("user-2");
        assert_ne!(a.last_name, b.last_name);
        assert_ne!(a.document_number, b.document_number);
        assert!(a.last_name.starts_with("Sample-"), "{}", a.last_name);
        assert_eq!(a.id_number.len(), 9);
        assert!(a.id_number.starts_with('9'));
        assert!(a.phone.starts_with("+120155501") && a.phone.len() == 12);
        assert!(
            time::Date::from_calendar_date(
                a.date_of_birth.0,
                time::Month::try_from(a.date_of_birth.1).unwrap(),
                a.date_of_birth.2
            )
            .is_ok()
        );
    }
}
