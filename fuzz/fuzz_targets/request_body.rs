//! libFuzzer target: any bytes as a `POST /webhook` body and signature header, checked by
//! `fuzz/checks/request_body.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/request_body.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
