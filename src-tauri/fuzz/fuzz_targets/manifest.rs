//! Fuzzes `manifest` (see `cityops_fuzz::run`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cityops_fuzz::run("manifest", data);
});
