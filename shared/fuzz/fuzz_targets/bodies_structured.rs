//! The request-body parsers on objects built field by field: keys mostly from the parsers' own
//! vocabulary, values of every JSON type, strings often near-valid. Reaches the accepting paths
//! that random JSON rarely does; the checks are those of `bodies_json`.
#![no_main]

use arbitrary::Arbitrary;
use idv_fuzz::check_bodies;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "provider",
    "user_id",
    "verification_type",
    "user_type",
    "lang",
    "phone_number",
    "first_name",
    "last_name",
    "possession_type",
    "final_target_url",
    "sms_message",
    "email",
    "allow_otp_retry",
    "identity_access_key",
];

const SAMPLES: &[&str] = &[
    "authento",
    "prove",
    "nevis",
    "passbase",
    "user-42",
    "u:1@app.example",
    "BASIC",
    "POA",
    "INDIVIDUAL",
    "CORPORATE",
    "en",
    "+12001004011",
    "2001004011",
    "+447700900123",
    "mobile",
    "desktop",
    "none",
    "Sheilakathryn",
    " Butrimovich ",
    "https://www.example.com/landing-page",
    "#### is your code",
    "sbutrimovichb@who.int",
    "5a3c1b2e-0d4f-4e6a-9b8c-7d6e5f4a3b2c",
    "5A3C1B2E-0D4F-4E6A-9B8C-7D6E5F4A3B2C",
];

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Sample(u8),
    /// A sample with the fuzzer's text appended: near-valid values.
    Extended(u8, String),
    Free(String),
}

#[derive(Arbitrary, Debug)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Text),
    List(Vec<Text>),
    Object(Vec<(String, Text)>),
}

fuzz_target!(|fields: Vec<(Key, Val)>| {
    let mut body = Map::new();
    for (k, v) in fields {
        let key = match k {
            Key::Known(i) => KEYS[usize::from(i) % KEYS.len()].to_owned(),
            Key::Other(s) => s,
        };
        body.insert(key, value(v));
    }
    check_bodies(&body);
});

fn text(t: Text) -> String {
    let sample = |i: u8| SAMPLES[usize::from(i) % SAMPLES.len()];
    match t {
        Text::Sample(i) => sample(i).to_owned(),
        Text::Extended(i, s) => format!("{}{s}", sample(i)),
        Text::Free(s) => s,
    }
}

fn value(v: Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => json!(b),
        Val::Int(n) => json!(n),
        Val::Float(f) => json!(f),
        Val::Str(t) => json!(text(t)),
        Val::List(l) => json!(l.into_iter().map(text).collect::<Vec<_>>()),
        Val::Object(o) => Value::Object(o.into_iter().map(|(k, t)| (k, json!(text(t)))).collect()),
    }
}
