//! Fuzzes the tape line parser: a line is either a message or one clear refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(line) = cityops_fuzz::text(data) {
        match cityops_core::tape::parse_line(1, line) {
            // What parses formats back to a line that parses to the same message.
            Ok(msg) => assert_eq!(cityops_core::tape::parse_line(1, &cityops_core::tape::format_line(&msg)).ok(), Some(msg)),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
