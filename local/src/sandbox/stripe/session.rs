//! The VerificationSession as the simulator keeps it, its JSON as the v1 API renders it (with
//! the documented expansions), the test verified outputs and the verification report.

use crate::sandbox::person::FakePerson;
use serde_json::{Value, json};

/// The `last_error.code` values of `gelato_session_last_error`, with a reason a user may see.
/// The first five are reported by the session itself (the user never submitted); the others by
/// a check, after processing.
pub const ERROR_CODES: [(&str, &str); 19] = [
    (
        "abandoned",
        "The user began the verification but did not submit it.",
    ),
    (
        "consent_declined",
        "The user declined to be verified by Stripe.",
    ),
    (
        "country_not_supported",
        "Stripe does not verify users from this country.",
    ),
    (
        "device_not_supported",
        "The user's device has no camera, or camera access was refused.",
    ),
    (
        "under_supported_age",
        "The user is under the age of majority.",
    ),
    ("document_expired", "The document is expired."),
    (
        "document_type_not_supported",
        "The document is not one of the allowed types.",
    ),
    (
        "document_unverified_other",
        "The document could not be verified.",
    ),
    (
        "email_unverified_other",
        "The email address could not be verified.",
    ),
    (
        "email_verification_declined",
        "The user declined to verify the email address.",
    ),
    (
        "id_number_insufficient_document_data",
        "The document lacks the data to check the ID number.",
    ),
    (
        "id_number_mismatch",
        "The ID number does not match the name and date of birth.",
    ),
    (
        "id_number_unverified_other",
        "The ID number could not be verified.",
    ),
    (
        "phone_unverified_other",
        "The phone number could not be verified.",
    ),
    (
        "phone_verification_declined",
        "The user declined to verify the phone number.",
    ),
    (
        "selfie_document_missing_photo",
        "The document has no photo to compare the selfie with.",
    ),
    (
        "selfie_face_mismatch",
        "The selfie does not match the document photo.",
    ),
    (
        "selfie_manipulated",
        "The selfie appears to be manipulated.",
    ),
    (
        "selfie_unverified_other",
        "The selfie could not be verified.",
    ),
];

/// Codes the session reports without any check having run.
pub fn is_session_level(code: &str) -> bool {
    ERROR_CODES[..5].iter().any(|(c, _)| *c == code)
}

pub fn reason(code: &str) -> String {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, r)| (*r).to_owned())
        // ASSUMPTION: the enum is open (`x-stripeBypassValidation`); a code the simulator does not
        // know still gets a readable reason.
        .unwrap_or_else(|| "The verification could not be completed.".to_owned())
}

/// The check whose report block carries a code (`selfie_face_mismatch` -> `selfie`).
fn check_of(code: &str) -> &'static str {
    for check in ["document", "email", "id_number", "phone", "selfie"] {
        if code.starts_with(check) {
            return check;
        }
    }
    "document"
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    RequiresInput,
    Processing,
    Verified,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::RequiresInput => "requires_input",
            Status::Processing => "processing",
            Status::Verified => "verified",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "requires_input" => Status::RequiresInput,
            "processing" => Status::Processing,
            "verified" => Status::Verified,
            "canceled" => Status::Canceled,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocumentOptions {
    pub allowed_types: Option<Vec<String>>,
    pub require_id_number: Option<bool>,
    pub require_live_capture: Option<bool>,
    pub require_matching_selfie: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redaction {
    Processing,
    Redacted,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    /// Creation order, for lists (`created` has one-second resolution).
    pub seq: u64,
    pub kind: String,
    pub status: Status,
    pub created: i64,
    pub client_reference_id: Option<String>,
    pub client_secret: String,
    /// The hosted page's latest token: a new one for each retrieve while the user's turn lasts,
    /// and after each failed attempt.
    pub page_token: String,
    /// Every token handed out since the user's last attempt: each opens the page until an
    /// attempt is made (Stripe's `url` is single-use).
    pub live_tokens: Vec<String>,
    pub metadata: Vec<(String, String)>,
    pub document_options: Option<DocumentOptions>,
    pub provided_email: Option<String>,
    pub provided_phone: Option<String>,
    pub related_customer: Option<String>,
    pub return_url: Option<String>,
    pub last_error: Option<(String, String)>,
    pub last_report: Option<Report>,
    pub redaction: Option<Redaction>,
}

/// The last verification report: which checks ran and how they ended.
#[derive(Clone, Debug)]
pub struct Report {
    pub id: String,
    pub created: i64,
    /// `None`: every check verified.
    pub error_code: Option<String>,
}

/// What `expand[]` asked for, of the session's expandable fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expand {
    pub verified_outputs: bool,
    pub dob: bool,
    pub id_number: bool,
    pub report: bool,
}

/// The session's expandable fields (`x-expandableFields`, and the nested sensitive ones).
/// ASSUMPTION: the others are objects the simulator always shows whole, so expanding them is
/// accepted and changes nothing.
pub const EXPANDABLE: [&str; 10] = [
    "verified_outputs",
    "verified_outputs.dob",
    "verified_outputs.id_number",
    "verified_outputs.address",
    "last_verification_report",
    "last_error",
    "options",
    "provided_details",
    "redaction",
    "related_person",
];

impl Expand {
    /// `Err(path)` names the first path that cannot be expanded.
    pub fn parse(paths: &[String], prefix: &str) -> Result<Self, String> {
        let mut e = Expand::default();
        for p in paths {
            let Some(field) = p.strip_prefix(prefix) else {
                return Err(p.clone());
            };
            match field {
                "verified_outputs" | "verified_outputs.address" => e.verified_outputs = true,
                "verified_outputs.dob" => {
                    e.verified_outputs = true;
                    e.dob = true
                }
                "verified_outputs.id_number" => {
                    e.verified_outputs = true;
                    e.id_number = true
                }
                "last_verification_report" => e.report = true,
                f if EXPANDABLE.contains(&f) => {}
                _ => return Err(p.clone()),
            }
        }
        Ok(e)
    }
}

const REDACTED: &str = "[redacted]";

impl Session {
    fn redacted(&self) -> bool {
        self.redaction == Some(Redaction::Redacted)
    }

    /// `client_secret` and `url` are handed out only while the user can still act.
    // ASSUMPTION: both are null once the session is processing, verified or canceled (the
    // verified fixture shows null for both; processing and canceled are not shown anywhere).
    pub fn open(&self) -> bool {
        self.status == Status::RequiresInput && self.redaction.is_none()
    }

    /// ASSUMPTION: the hosted url's format is not documented (every example shows "...").
    pub fn page_url(&self, base: &str) -> String {
        format!("{base}/verify/{}", self.page_token)
    }

    /// The object as the API answers it.
    pub fn to_json(&self, base: &str, expand: Expand) -> Value {
        let redacted = self.redacted();
        let text = |v: &Option<String>| match v {
            Some(_) if redacted => json!(REDACTED),
            Some(s) => json!(s),
            None => Value::Null,
        };
        let metadata: serde_json::Map<String, Value> = if redacted {
            serde_json::Map::new()
        } else {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect()
        };
        let options = match &self.document_options {
            Some(d) => {
                let mut doc = serde_json::Map::new();
                if let Some(t) = &d.allowed_types {
                    doc.insert("allowed_types".into(), json!(t));
                }
                for (k, v) in [
                    ("require_id_number", d.require_id_number),
                    ("require_live_capture", d.require_live_capture),
                    ("require_matching_selfie", d.require_matching_selfie),
                ] {
                    if let Some(v) = v {
                        doc.insert(k.into(), json!(v));
                    }
                }
                json!({"document": doc})
            }
            None => json!({}),
        };
        let provided_details = if self.provided_email.is_none() && self.provided_phone.is_none() {
            Value::Null
        } else {
            let mut p = serde_json::Map::new();
            if self.provided_email.is_some() {
                p.insert("email".into(), text(&self.provided_email));
            }
            if self.provided_phone.is_some() {
                p.insert("phone".into(), text(&self.provided_phone));
            }
            Value::Object(p)
        };
        let mut v = json!({
            "id": self.id,
            "object": "identity.verification_session",
            // ASSUMPTION: the integrator's own reference survives redaction (it is how the
            // integrator finds the session; no personal data belongs in it).
            "client_reference_id": self.client_reference_id,
            "client_secret": if self.open() { json!(self.client_secret) } else { Value::Null },
            "created": self.created,
            "last_error": self.last_error.as_ref().map(|(code, reason)| json!({"code": code, "reason": reason})),
            "last_verification_report": match (&self.last_report, expand.report) {
                (Some(r), true) => self.report_json(r),
                (Some(r), false) => json!(r.id),
                (None, _) => Value::Null,
            },
            "livemode": false,
            "metadata": metadata,
            "options": options,
            "provided_details": provided_details,
            "redaction": self.redaction.map(|r| json!({"status": match r {
                Redaction::Processing => "processing",
                Redaction::Redacted => "redacted",
            }})),
            "related_customer": text(&self.related_customer),
            "related_customer_account": null,
            "status": self.status.as_str(),
            "type": self.kind,
            "url": if self.open() { json!(self.page_url(base)) } else { Value::Null },
        });
        // ASSUMPTION: unexpanded, `verified_outputs` is left out (as in the verified fixture);
        // expanded, it is null until the session is verified.
        if expand.verified_outputs {
            v["verified_outputs"] = self.verified_outputs(expand);
        }
        v
    }

    /// Test data: the session's fake person (`FakePerson`, seeded by the session id), the same
    /// on every read.
    fn verified_outputs(&self, expand: Expand) -> Value {
        if self.status != Status::Verified {
            return Value::Null;
        }
        let p = FakePerson::of(&self.id);
        let redacted = self.redacted();
        let s = |v: &str| if redacted { json!(REDACTED) } else { json!(v) };
        // Sensitive fields need their own expansion (and, at Stripe, a restricted key).
        // ASSUMPTION: the simulator's secret key may read them.
        let (year, month, day) = p.date_of_birth;
        let dob = if !expand.dob {
            Value::Null
        } else if redacted {
            json!({"day": 1, "month": 1, "year": 1})
        } else {
            json!({"day": day, "month": month, "year": year})
        };
        let address = if self.kind == "id_number" {
            Value::Null
        } else {
            json!({"line1": s(&p.street), "line2": null, "city": s(&p.city),
                   "state": null, "postal_code": s(&p.postal_code), "country": "US"})
        };
        json!({
            "address": address,
            "dob": dob,
            "email": self.provided_email.as_deref().map(s),
            "first_name": s(&p.first_name),
            "last_name": s(&p.last_name),
            "id_number": if self.id_number_checked() && expand.id_number { s(&p.id_number) } else { Value::Null },
            "id_number_type": if self.id_number_checked() { json!("us_ssn") } else { Value::Null },
            "phone": self.provided_phone.as_deref().map(s),
            "sex": if redacted { json!(REDACTED) } else { json!("unknown") },
            "unparsed_place_of_birth": null,
            "unparsed_sex": null,
        })
    }

    fn id_number_checked(&self) -> bool {
        self.kind == "id_number"
            || self
                .document_options
                .as_ref()
                .and_then(|d| d.require_id_number)
                == Some(true)
    }

    /// The `identity.verification_report` behind `last_verification_report`.
    fn report_json(&self, r: &Report) -> Value {
        let failed_check = r.error_code.as_deref().map(check_of);
        let block = |check: &str| {
            let error = match (&r.error_code, failed_check) {
                (Some(code), Some(c)) if c == check => {
                    json!({"code": code, "reason": reason(code)})
                }
                _ => Value::Null,
            };
            let status = if error.is_null() {
                "verified"
            } else {
                "unverified"
            };
            (status, error)
        };
        let mut v = json!({
            "id": r.id,
            "object": "identity.verification_report",
            "client_reference_id": self.client_reference_id,
            "created": r.created,
            "livemode": false,
            "options": if self.kind == "id_number" { json!({"id_number": {}}) } else { json!({"document": {}}) },
            "type": self.kind,
            "verification_session": self.id,
        });
        let redacted = self.redacted();
        let name = |v: &str| if redacted { REDACTED } else { v }.to_owned();
        let p = FakePerson::of(&self.id);
        // The id number check's `id_number`: "only the last 4 digits for `us_ssn`" (S1).
        let ssn_last4 = name(&p.id_number[p.id_number.len() - 4..]);
        if self.kind == "id_number" {
            let (status, error) = block("id_number");
            v["id_number"] = json!({"status": status, "error": error, "first_name": name(&p.first_name),
                "last_name": name(&p.last_name), "id_number_type": "us_ssn", "dob": null, "id_number": ssn_last4});
        } else {
            let (status, error) = block("document");
            v["document"] = json!({"status": status, "error": error, "type": "passport",
                "issuing_country": "US", "first_name": name(&p.first_name), "last_name": name(&p.last_name),
                "number": null, "expiration_date": null, "files": []});
            let options = self.document_options.clone().unwrap_or_default();
            if options.require_matching_selfie == Some(true) || failed_check == Some("selfie") {
                let (status, error) = block("selfie");
                v["selfie"] =
                    json!({"status": status, "error": error, "document": null, "selfie": null});
            }
            if options.require_id_number == Some(true) || failed_check == Some("id_number") {
                let (status, error) = block("id_number");
                v["id_number"] = json!({"status": status, "error": error, "id_number_type": "us_ssn",
                    "id_number": ssn_last4});
            }
        }
        for check in ["email", "phone"] {
            if failed_check == Some(check) {
                let (status, error) = block(check);
                v[check] = json!({"status": status, "error": error});
            }
        }
        v
    }
}
