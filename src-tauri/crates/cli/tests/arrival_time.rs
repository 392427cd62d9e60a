//! A message's timestamps are judged against the time it arrived, never against the clock of
//! the machine decoding it, so an archive of any age reads as it did the day it arrived:
//! `cityops decode` takes the payload's own header time by default and `--received` when given,
//! and a replay takes the tape line's time. All on the real MiWay GTFS-Realtime capture of
//! 2025 kept in `fixtures/samples/` (provenance in its README).

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use cityops_engine::headless;
use prost::Message as _;
use serde_json::Value;

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/samples/gtfs-rt/miway/VehiclePositions.pb")
}

/// The capture as Google's bindings read it: its header time in milliseconds and the ids of
/// its vehicles, to check the adapter's answer against.
fn capture_truth() -> (i64, Vec<String>) {
    let feed = gtfs_realtime::FeedMessage::decode(std::fs::read(capture()).unwrap().as_slice()).unwrap();
    let header_ms = feed.header.timestamp.expect("the capture has a header time") as i64 * 1000;
    let mut ids: Vec<String> = feed
        .entity
        .iter()
        .filter(|e| e.vehicle.is_some())
        .map(|e| e.id.clone())
        .collect();
    ids.sort();
    (header_ms, ids)
}

fn decode(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cityops"))
        .args(["decode", "--format", "gtfs-rt", "--layer", "transport", "--json"])
        .args(extra)
        .arg(capture())
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "cityops decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn cityops_decode_reads_an_archived_capture_at_its_own_header_time() {
    let (header_ms, vehicles) = capture_truth();
    assert_eq!(
        vehicles.len(),
        125,
        "the capture holds the 125 vehicles its provenance row names"
    );
    let v = json(&decode(&[]));
    let observations = v["observations"].as_array().unwrap();
    let rejected = v["rejected"].as_array().unwrap();
    assert!(
        rejected.is_empty(),
        "{} refused, the first: {}",
        rejected.len(),
        rejected[0]
    );
    assert_eq!(observations.len(), vehicles.len(), "one observation per vehicle");
    assert_eq!(
        v["received"],
        serde_json::json!({"time": rfc3339(header_ms), "from": "payload header"})
    );
    for o in observations {
        assert_eq!(o["received_ms"], header_ms, "arrival is the header time: {o}");
    }
}

#[test]
fn cityops_decode_judges_timestamps_against_the_received_flag() {
    let (header_ms, vehicles) = capture_truth();

    // A minute after the capture: every vehicle is believable, and arrived at the given time.
    let soon = header_ms + 60_000;
    let v = json(&decode(&["--received", &rfc3339(soon)]));
    let observations = v["observations"].as_array().unwrap();
    assert_eq!(observations.len(), vehicles.len());
    assert!(
        observations.iter().all(|o| o["received_ms"] == soon),
        "arrival is the flag's time"
    );
    assert_eq!(
        v["received"],
        serde_json::json!({"time": rfc3339(soon), "from": "--received"})
    );

    // 400 days later, past the 366-day window: each vehicle is refused, naming that time.
    let late = header_ms + 400 * 24 * 3600 * 1000;
    let v = json(&decode(&["--received", &rfc3339(late)]));
    assert_eq!(v["observations"], serde_json::json!([]), "nothing that old is believed");
    let rejected = v["rejected"].as_array().unwrap();
    let stale: Vec<&Value> = rejected
        .iter()
        .filter(|r| r["place"].as_str().unwrap().starts_with("entity["))
        .collect();
    assert_eq!(stale.len(), vehicles.len(), "one refusal per vehicle");
    let arrival = format!("from the arrival time {}", rfc3339(late));
    for r in &stale {
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("days from") && reason.contains(&arrival),
            "{reason:?} should say it is too far {arrival}"
        );
    }
    assert!(
        rejected.iter().any(|r| r["place"] == "header.timestamp"),
        "the header time is refused too"
    );

    // A time that is not RFC 3339 is refused before anything is decoded, naming the flag.
    let out = decode(&["--received", "yesterday"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--received"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_archived_capture_on_a_tape_replays_at_its_line_time() {
    let (header_ms, vehicles) = capture_truth();
    let dir = tempfile::tempdir().unwrap();
    let start = rfc3339(header_ms - 60_000);
    std::fs::write(
        dir.path().join("scenario.toml"),
        format!(
            r#"name = "miway archive"
map = "helsinki"
start = "{start}"
view = [-79.64, 43.59, 12]
[[feeds]]
id = "miway"
layer = "transport"
format = "gtfs-rt"
"#
        ),
    )
    .unwrap();
    let arrived = header_ms + 5_000;
    let body = base64::engine::general_purpose::STANDARD.encode(std::fs::read(capture()).unwrap());
    let line = serde_json::json!({"time": rfc3339(arrived), "feed": "miway", "format": "gtfs-rt", "body_base64": body});
    std::fs::write(dir.path().join("tape.ndjson"), format!("{line}\n")).unwrap();

    let db = dir.path().join("out.db");
    let summary = headless::replay_max(dir.path(), &db).unwrap();
    assert_eq!(summary.rejected, 0, "nothing refused");
    assert_eq!(
        summary.per_layer.get("transport"),
        Some(&(vehicles.len() as u64)),
        "every vehicle replays"
    );
    let replay = headless::open_replay(dir.path(), &db).unwrap();
    let mut arrivals = std::collections::BTreeSet::new();
    replay
        .pipeline()
        .store()
        .for_each(summary.run, |o| {
            arrivals.insert(o.received_ms);
        })
        .unwrap();
    assert_eq!(
        arrivals.into_iter().collect::<Vec<_>>(),
        vec![arrived],
        "each arrived at its tape line's time"
    );
}
