//! Fuzzes the scenario manifest parser (TOML, then the scenario's own checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = cityops_fuzz::text(data) {
        if let Err(e) = cityops_core::scenario::Manifest::parse(text) {
            assert!(!e.to_string().is_empty());
        }
    }
});
