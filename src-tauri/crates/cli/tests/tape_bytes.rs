//! A tape is read as bytes, one line at a time: a line that is not UTF-8, holds a NUL byte or
//! carries a body over the size limit is refused on its own, with its line number and why, and
//! every other line replays. Both the real pipeline (`headless::replay_max`) and `cityops check`
//! (the binary) are run on a scenario folder written here.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cityops_decoders::MAX_BODY_BYTES;
use cityops_engine::headless;

/// A good tape line: one GeoJSON feature of `entity` on `feed` at `time`.
fn good(time: &str, feed: &str, entity: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "type": "Feature", "id": entity,
        "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
        "properties": {"kind": "status", "severity": "minor", "title": entity}
    });
    serde_json::json!({"time": time, "feed": feed, "format": "geojson", "body": body.to_string()})
        .to_string()
        .into_bytes()
}

/// Writes the scenario and returns the entities of its good lines and the numbers of its bad
/// ones, each with a word its refusal must say.
fn scenario_with_bad_bytes(dir: &Path) -> (BTreeSet<String>, Vec<(u64, &'static str)>) {
    std::fs::write(dir.join("scenario.toml"), common::small_manifest("bad bytes")).unwrap();
    let oversized = format!(
        r#"{{"time":"2026-11-26T21:02:10Z","feed":"cameras","format":"geojson","body":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES + 1)
    );
    let lines: Vec<Vec<u8>> = vec![
        good("2026-11-26T21:01:00Z", "scada", "node/1"),
        // A Latin-1 byte where UTF-8 was expected, inside the body.
        b"{\"time\":\"2026-11-26T21:01:10Z\",\"feed\":\"signals\",\"format\":\"geojson\",\"body\":\"caf\xe9\"}"
            .to_vec(),
        good("2026-11-26T21:01:30Z", "signals", "node/2"),
        b"{\"time\":\"2026-11-26T21:01:40Z\",\"feed\":\"cameras\",\0\"format\":\"geojson\",\"body\":\"{}\"}".to_vec(),
        good("2026-11-26T21:02:00Z", "cameras", "node/3"),
        oversized.into_bytes(),
        good("2026-11-26T21:05:00Z", "signals", "node/4"),
        // A line cut in the middle of a three-byte character (the euro sign).
        b"{\"time\":\"2026-11-26T21:05:30Z\",\"feed\":\"signals\",\"format\":\"geojson\",\"body\":\"\xe2\x82".to_vec(),
        // Written on Windows: the carriage return is part of the line ending, not of the record.
        [good("2026-11-26T21:06:00Z", "scada", "node/5"), b"\r".to_vec()].concat(),
    ];
    std::fs::write(dir.join("tape.ndjson"), lines.join(&b'\n')).unwrap();
    let entities = ["node/1", "node/2", "node/3", "node/4", "node/5"]
        .map(String::from)
        .into();
    (
        entities,
        vec![(2, "not UTF-8"), (4, "NUL"), (6, "limit"), (8, "not UTF-8")],
    )
}

#[test]
fn a_tape_line_of_bad_bytes_costs_only_itself_in_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (entities, bad) = scenario_with_bad_bytes(dir.path());
    let db = dir.path().join("out.db");
    let summary = headless::replay_max(dir.path(), &db).unwrap_or_else(|e| panic!("the replay stopped: {e}"));

    let replay = headless::open_replay(dir.path(), &db).unwrap();
    let store = replay.pipeline().store();
    let mut stored = BTreeSet::new();
    store
        .for_each(summary.run, |o| {
            stored.insert(o.entity.to_string());
        })
        .unwrap();
    assert_eq!(stored, entities, "every good line's observation is stored");
    assert_eq!(summary.accepted, entities.len() as u64);

    let q = store.quarantine(summary.run).unwrap();
    let refused: Vec<u64> = q.iter().map(|e| e.seq).collect();
    assert_eq!(
        refused,
        bad.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        "each bad line refused once: {q:?}"
    );
    for (entry, (line, word)) in q.iter().zip(&bad) {
        assert_eq!(entry.feed, "tape");
        assert_eq!(entry.place, format!("tape.ndjson:{line}"));
        assert!(
            entry.reason.contains(word),
            "line {line}: {:?} should say {word:?}",
            entry.reason
        );
        // The refusal is words, not the oversized body carried into the quarantine.
        assert!(
            entry.reason.len() < 200,
            "line {line}: {} bytes of reason",
            entry.reason.len()
        );
    }
    assert!(
        q[2].reason.contains(&format!("{} bytes", MAX_BODY_BYTES + 1)),
        "{:?}",
        q[2].reason
    );
    assert_eq!(summary.rejected, bad.len() as u64);
}

#[test]
fn cityops_check_names_each_bad_tape_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad) = scenario_with_bad_bytes(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "bad lines are problems:\n{stdout}");
    let tape = dir.path().join("tape.ndjson");
    let problems: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        problems.len(),
        bad.len(),
        "one problem per bad line and nothing else:\n{stdout}"
    );
    for (problem, (line, word)) in problems.iter().zip(&bad) {
        let place = format!("{}:{line}: ", tape.display());
        assert!(
            problem.starts_with(&place) && problem.contains(word),
            "{problem:?} should start with {place:?} and say {word:?}"
        );
    }
}
