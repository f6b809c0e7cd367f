//! Arbitrary request targets into the classifier; see `invariants.rs`.
#![no_main]
#![allow(dead_code)]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::check_target(data));
