//! Arbitrary bodies into the `$batch` inspector; see `invariants.rs`.
#![no_main]
#![allow(dead_code)]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::check_batch(data));
