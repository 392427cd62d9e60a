//! Property tests: no input makes an adapter panic, and whatever an adapter accepts is a sane
//! observation (a position in range, the message's feed and sequence, unique `idx`). Inputs are
//! random bytes and mutations (flipped, dropped, inserted, truncated bytes) of real payloads:
//! the MiWay GTFS-Realtime capture, a SensorThings response shaped like the server's, and MQTT
//! telemetry.

use std::collections::HashSet;
use std::path::Path;

use cityops_core::model::{GeoPoint, Layer};
use cityops_decoders::gtfs_rt::{GtfsRtAdapter, GtfsRtMapping};
use cityops_decoders::mqtt_json::MqttJsonAdapter;
use cityops_decoders::sensorthings::{SensorThingsAdapter, SensorThingsMapping};
use cityops_decoders::{checked_decode, gtfs_rt, mqtt_json, sensorthings, Adapter, MessageContext};
use proptest::prelude::*;

fn miway(file: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../fixtures/samples/gtfs-rt/miway")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the real MiWay capture is kept in fixtures/samples",
            p.display()
        )
    })
}

const STA: &str = r#"{"value":[{"@iot.id":"o1","phenomenonTime":"2026-11-26T21:08:00+00:00","result":231.5,"resultTime":"2026-11-26T21:08:00+00:00",
"Datastream":{"@iot.id":"d1","name":"F2 voltage","unitOfMeasurement":{"name":"volt","symbol":"V"},
"Thing":{"@iot.id":"t1","name":"Feeder F2 RTU","Locations":[{"@iot.id":"l1","encodingType":"application/geo+json","location":{"type":"Point","coordinates":[24.9431,60.1712]}}]},
"ObservedProperty":{"@iot.id":"p1","name":"voltage"}}},
{"@iot.id":"o2","phenomenonTime":"2026-11-26T21:09:00Z/2026-11-26T21:10:00Z","result":190,
"Datastream":{"@iot.id":"d1","name":"F2 voltage","Thing":{"name":"Feeder F2 RTU","Locations":[{"location":{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[24.9,60.1],[25.0,60.1],[25.0,60.2],[24.9,60.1]]]}}}]},
"ObservedProperty":{"name":"voltage"}}}],
"@iot.nextLink":"http://127.0.0.1:8000/sensorthings/v1.1/Observations?$top=2&$skip=2"}"#;

const MQTT: &str = r#"[{"sensor":"feeder-F2","time":"2026-11-26T21:08:30Z","voltage_kv":8.9,"breaker":"closed","meta":{"fw":"1.2"}},
{"sensor":"p7","time":1795727000,"lat":60.2,"lon":24.9,"pressure_bar":1.1}]"#;

/// 2026-11-26T21:00:00Z, close to the payloads' times.
const RECEIVED_MS: i64 = 1_795_726_800_000;

fn ctx(received_ms: i64) -> MessageContext<'static> {
    MessageContext {
        feed: "f",
        layer: Layer::Utility,
        seq: 5,
        received_ms,
        topic: Some("grid/s1/telemetry"),
    }
}

fn sta_adapter() -> SensorThingsAdapter {
    SensorThingsAdapter::new(SensorThingsMapping::default())
}

fn mqtt_adapter() -> MqttJsonAdapter {
    let spec = cityops_core::scenario::FeedSpec {
        id: "f".into(),
        layer: Layer::Utility,
        format: cityops_core::tape::FeedFormat::MqttJson,
        name: String::new(),
        mapping: serde_json::json!({
            "topics": ["grid/+/telemetry"], "id": "sensor", "time": "time",
            "sensors": {"feeder-F2": {"position": [24.9431, 60.1712]}},
            "thresholds": [{"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"},
                           {"field": "breaker", "equals": "open", "severity": "extreme", "kind": "feeder.trip"}]
        }),
    };
    MqttJsonAdapter::from_spec(&spec).unwrap()
}

/// Decodes and checks the invariants of whatever comes out.
fn check(adapter: &mut dyn Adapter, received_ms: i64, body: &[u8]) {
    if let Ok(d) = checked_decode(adapter, ctx(received_ms), body) {
        let mut idx = HashSet::new();
        for o in &d.observations {
            assert!(GeoPoint::new(o.position.lon, o.position.lat).is_some(), "{o:?}");
            assert_eq!((o.feed.as_str(), o.seq, o.received_ms), ("f", 5, received_ms));
            assert!(idx.insert(o.idx), "idx {} twice", o.idx);
            assert!(!o.entity.is_empty() && !o.kind.is_empty());
        }
        for r in &d.rejected {
            assert!(!r.place.is_empty() && !r.reason.is_empty(), "{r:?}");
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Drop(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<usize>().prop_map(Edit::Drop),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 1..8)
}

fn mutate(body: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = body.to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match *e {
            Edit::Flip(i, x) => {
                let i = i % b.len();
                b[i] ^= x | 1;
            }
            Edit::Drop(i) => {
                b.remove(i % b.len());
            }
            Edit::Insert(i, x) => b.insert(i % (b.len() + 1), x),
            Edit::Truncate(i) => b.truncate(i % b.len()),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048), received_ms in any::<i64>()) {
        check(&mut GtfsRtAdapter::new(GtfsRtMapping::default(), None), received_ms, &body);
        check(&mut sta_adapter(), received_ms, &body);
        check(&mut mqtt_adapter(), received_ms, &body);
        let _ = (gtfs_rt::bare_parse(&body), sensorthings::bare_parse(&body), mqtt_json::bare_parse(&body), sensorthings::next_link(&body));
    }

    #[test]
    fn mutated_gtfs_rt_never_panics(edits in edits(), file in 0usize..3) {
        let body = miway(["VehiclePositions.pb", "TripUpdates.pb", "Alerts.pb"][file]);
        let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
        // Positions first, so that mutated trip updates take the placement path too.
        check(&mut a, 1_761_519_032_000, &miway("VehiclePositions.pb"));
        check(&mut a, 1_761_519_032_000, &mutate(&body, &edits));
    }

    #[test]
    fn mutated_json_never_panics(edits in edits()) {
        check(&mut sta_adapter(), RECEIVED_MS, &mutate(STA.as_bytes(), &edits));
        check(&mut mqtt_adapter(), RECEIVED_MS, &mutate(MQTT.as_bytes(), &edits));
    }
}

#[test]
fn the_unmutated_payloads_decode() {
    let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
    assert_eq!(
        a.decode(ctx(1_761_519_032_000), &miway("VehiclePositions.pb"))
            .unwrap()
            .observations
            .len(),
        125
    );
    let d = sta_adapter().decode(ctx(RECEIVED_MS), STA.as_bytes()).unwrap();
    assert_eq!((d.observations.len(), d.rejected.len()), (2, 0));
    let d = mqtt_adapter().decode(ctx(RECEIVED_MS), MQTT.as_bytes()).unwrap();
    assert_eq!((d.observations.len(), d.rejected.len()), (2, 0), "{:?}", d.rejected);
}
