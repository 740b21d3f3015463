//! Phone numbers as docs/providers/prove.md accepts them (E.164, or 10 US digits), the region that serves them,
//! the form sent to Prove, and the only form that is kept (masked).

use super::ProveRegion;

/// A valid number, as digits with the country code (no `+`).
#[derive(Clone, PartialEq, Eq)]
pub struct Phone {
    digits: String,
}

// The number is personal data: it never reaches a log through Debug.
impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl Phone {
    /// `+<country><number>` with 8-15 digits in all (E.164), or exactly 10 digits (a US number).
    pub fn parse(input: &str) -> Option<Phone> {
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        let digits = if let Some(rest) = input.strip_prefix('+') {
            if !all_digits(rest) || !(8..=15).contains(&rest.len()) || rest.starts_with('0') {
                return None;
            }
            // North America (+1) has 10 national digits.
            if rest.starts_with('1') && rest.len() != 11 {
                return None;
            }
            rest.to_owned()
        } else if all_digits(input) && input.len() == 10 {
            format!("1{input}")
        } else {
            return None;
        };
        Some(Phone { digits })
    }

    /// North American numbers go to the NA platform, the others to the EU one (Prove's rule).
    pub fn region(&self) -> ProveRegion {
        if self.digits.starts_with('1') {
            ProveRegion::Na
        } else {
            ProveRegion::Eu
        }
    }

    /// The form Prove's sandbox users are written in: 10 digits for NA (`2001004011`), country
    /// code and number for the others (`447968900002`). ASSUMPTION: Prove documents "+" as
    /// allowed but shows its test users without it.
    pub fn for_prove(&self) -> String {
        match self.region() {
            ProveRegion::Na => self.digits[1..].to_owned(),
            ProveRegion::Eu => self.digits.clone(),
        }
    }

    /// Unify's form: 10 digits for NA (with or without `+1`, Prove says), `+`, country code and
    /// number for the others ("International numbers need `+` and the country code").
    pub fn for_unify(&self) -> String {
        match self.region() {
            ProveRegion::Na => self.digits[1..].to_owned(),
            ProveRegion::Eu => format!("+{}", self.digits),
        }
    }

    /// `+1*******011`: the first digit and the last three.
    pub fn masked(&self) -> String {
        let n = self.digits.len();
        format!(
            "+{}{}{}",
            &self.digits[..1],
            "*".repeat(n - 4),
            &self.digits[n - 3..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_and_ten_us_digits() {
        let us = Phone::parse("2001004011").unwrap();
        assert_eq!(us, Phone::parse("+12001004011").unwrap());
        assert_eq!(us.region(), ProveRegion::Na);
        assert_eq!(us.for_prove(), "2001004011");
        assert_eq!(us.masked(), "+1*******011");
        let uk = Phone::parse("+447968900002").unwrap();
        assert_eq!(uk.region(), ProveRegion::Eu);
        assert_eq!(uk.for_prove(), "447968900002");
        assert_eq!(uk.masked(), "+4********002");
        assert_eq!(us.for_unify(), "2001004011");
        assert_eq!(uk.for_unify(), "+447968900002");
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "+",
            "200100401",
            "20010040111",
            "+1200100401",
            "+0123456789",
            "+44 7968 900002",
            "(200) 100-4011",
            "+1234567",
            "+1234567890123456",
            "２００１００４０１１",
        ] {
            assert!(Phone::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_only_the_masked_number() {
        let p = Phone::parse("+12001004011").unwrap();
        assert!(!format!("{p:?}").contains("2001004011"));
    }
}
