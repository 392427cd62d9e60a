//! What every fuzz target shares: decoding one input with a format's adapter and checking the
//! invariants of whatever comes out. A panic, a sanitizer report or a broken invariant is a
//! finding; an `Err` is the decoder doing its job.

use std::collections::HashSet;
use std::path::Path;

use cityops_core::model::{GeoPoint, Layer};
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use cityops_decoders::{adapter_for, checked_decode, MessageContext};

/// When every fuzzed message arrives (2026-11-26T21:00:00Z), so time checks have a reference.
pub const RECEIVED_MS: i64 = 1_795_726_800_000;

/// Decodes `body` as `format` with `mapping`, then checks: every observation has a valid
/// position, its feed, sequence and arrival time, a distinct index, an entity and a kind; every
/// refusal names a place and a reason.
pub fn decode(format: FeedFormat, mapping: serde_json::Value, topic: Option<&str>, body: &[u8]) {
    let spec = FeedSpec {
        id: "fuzz".into(),
        layer: Layer::Utility,
        format,
        name: String::new(),
        mapping,
    };
    let mut adapter = adapter_for(&spec, Path::new(".")).expect("the fuzz mapping is valid");
    let ctx = MessageContext {
        feed: "fuzz",
        layer: Layer::Utility,
        seq: 7,
        received_ms: RECEIVED_MS,
        topic,
    };
    match checked_decode(adapter.as_mut(), ctx, body) {
        Ok(d) => {
            let mut idx = HashSet::new();
            for o in &d.observations {
                assert!(
                    GeoPoint::new(o.position.lon, o.position.lat).is_some(),
                    "invalid position {o:?}"
                );
                assert_eq!((o.feed.as_str(), o.seq, o.received_ms), ("fuzz", 7, RECEIVED_MS));
                assert!(idx.insert(o.idx), "index {} twice", o.idx);
                assert!(!o.entity.is_empty() && !o.kind.is_empty(), "{o:?}");
                // The digest must be computable and stable for anything the store accepts.
                assert_eq!(
                    serde_json::to_string(&o.fields).ok(),
                    serde_json::to_string(&o.fields).ok()
                );
            }
            for r in &d.rejected {
                assert!(!r.place.is_empty() && !r.reason.is_empty(), "{r:?}");
            }
        }
        Err(e) => assert!(!e.reason.is_empty(), "an empty refusal"),
    }
}

/// Text inputs (the manifest, the rules): the bytes as UTF-8, or nothing to do.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Every fuzz target by name, as `fuzz_targets/<name>.rs` runs it. The engine's test
/// `fuzz_regressions` includes this file and replays the kept findings and seeds through it,
/// so a finding fixed once stays fixed without a fuzzer.
pub const TARGETS: [&str; 9] = [
    "gtfs_rt",
    "cap",
    "cot",
    "sensorthings",
    "geojson",
    "mqtt_json",
    "tape_line",
    "manifest",
    "rules",
];

/// Runs target `name` on one input; panics on a finding.
pub fn run(name: &str, data: &[u8]) {
    use cityops_core::tape::FeedFormat;
    match name {
        "gtfs_rt" => decode(FeedFormat::GtfsRt, serde_json::Value::Null, None, data),
        "cap" => decode(FeedFormat::Cap, serde_json::Value::Null, None, data),
        "cot" => decode(FeedFormat::Cot, serde_json::Value::Null, None, data),
        "sensorthings" => decode(FeedFormat::SensorThings, serde_json::Value::Null, None, data),
        "geojson" => decode(FeedFormat::GeoJson, serde_json::Value::Null, None, data),
        "mqtt_json" => {
            let mapping = serde_json::json!({
                "topics": ["grid/+/telemetry"], "id": "sensor", "time": "time",
                "sensors": {"feeder-F2": {"position": [24.9431, 60.1712]}},
                "thresholds": [{"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"},
                               {"field": "breaker", "equals": "open", "severity": "extreme", "kind": "feeder.trip"}]
            });
            decode(FeedFormat::MqttJson, mapping, Some("grid/s1/telemetry"), data)
        }
        "tape_line" => {
            // The input as a whole tape, bytes and all, as a replay reads it: every line is
            // either a message or an issue with its number, and nothing else happens.
            use cityops_core::tape::{format_line, parse_line_bytes, parse_tape};
            let limit = cityops_decoders::MAX_BODY_BYTES;
            let (messages, issues) = parse_tape(data, limit);
            let lines = data.split(|b| *b == b'\n').count() as u64;
            for msg in messages {
                assert!((1..=lines).contains(&msg.line), "line {} of {lines}", msg.line);
                // What parses formats back to a line that parses to the same message.
                let line = msg.line;
                assert_eq!(
                    parse_line_bytes(line, format_line(&msg).as_bytes(), limit).ok(),
                    Some(msg)
                );
            }
            for issue in issues {
                assert!(
                    (1..=lines).contains(&issue.line) && !issue.reason.to_string().is_empty(),
                    "{issue:?}"
                );
            }
        }
        "manifest" => {
            if let Some(text) = text(data) {
                if let Err(e) = cityops_core::scenario::Manifest::parse(text) {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        "rules" => {
            if let Some(text) = text(data) {
                if let Err(e) = cityops_core::rules::Rules::parse(text) {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        other => panic!("no fuzz target {other}"),
    }
}
