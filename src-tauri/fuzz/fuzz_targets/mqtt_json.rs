//! Fuzzes the MQTT JSON adapter with a mapping that exercises its thresholds and sensor table
//! (the default mapping would refuse nearly everything before looking at it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping = serde_json::json!({
        "topics": ["grid/+/telemetry"], "id": "sensor", "time": "time",
        "sensors": {"feeder-F2": {"position": [24.9431, 60.1712]}},
        "thresholds": [{"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"},
                       {"field": "breaker", "equals": "open", "severity": "extreme", "kind": "feeder.trip"}]
    });
    cityops_fuzz::decode(cityops_core::tape::FeedFormat::MqttJson, mapping, Some("grid/s1/telemetry"), data);
});
