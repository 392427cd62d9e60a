//! Fuzzes the geojson adapter with its default mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cityops_fuzz::decode(cityops_core::tape::FeedFormat::GeoJson, serde_json::Value::Null, None, data);
});
