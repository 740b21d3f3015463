//! A record of the table's stream (`idv::store::{item_from_json, change_of}`, what notify reads
//! before anything else). Input: a JSON image in DynamoDB's format. Never panics: an unreadable
//! image is an error (the batch reports it), anything else a change or nothing.
#![no_main]

use idv::store::{change_of, item_from_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Some(image) = item_from_json(&json) {
        let _ = change_of(true, &image);
        let _ = change_of(false, &image);
    }
});
