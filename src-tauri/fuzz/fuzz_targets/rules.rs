//! Fuzzes the rules file parser (TOML, then validation of every rule).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = cityops_fuzz::text(data) {
        if let Err(e) = cityops_core::rules::Rules::parse(text) {
            assert!(!e.to_string().is_empty());
        }
    }
});
