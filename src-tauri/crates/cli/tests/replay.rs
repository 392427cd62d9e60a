//! Scenario-level tests of the engine: tapes through the real pipeline into a real SQLite file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_core::model::Layer;
use cityops_engine::dto::MapDiffDto;
use cityops_engine::headless;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm")
}

/// A feature line for a small hand-written tape.
fn line(t: &str, feed: &str, entity: &str, kind: &str, severity: &str, lon: f64) -> String {
    let body = serde_json::json!({
        "type": "Feature", "id": entity,
        "geometry": {"type": "Point", "coordinates": [lon, 60.17]},
        "properties": {"kind": kind, "severity": severity, "title": format!("{entity} {kind}")}
    });
    serde_json::json!({"time": t, "feed": feed, "format": "geojson", "body": body.to_string()}).to_string()
}

/// Writes a small scenario with three feeds, good lines and the given extra lines.
fn small_scenario(dir: &Path, extra: &[String]) {
    std::fs::write(dir.join("scenario.toml"), common::small_manifest("small")).unwrap();
    let mut lines = vec![
        line(
            "2026-11-26T21:01:00Z",
            "scada",
            "node/1",
            "substation.trip",
            "extreme",
            24.94,
        ),
        line(
            "2026-11-26T21:01:30Z",
            "signals",
            "node/2",
            "signal.dark",
            "severe",
            24.941,
        ),
        line(
            "2026-11-26T21:02:00Z",
            "cameras",
            "node/3",
            "camera.offline",
            "moderate",
            24.942,
        ),
        line(
            "2026-11-26T21:05:00Z",
            "signals",
            "node/2",
            "signal.restored",
            "normal",
            24.941,
        ),
        line(
            "2026-11-26T21:06:00Z",
            "scada",
            "node/1",
            "substation.restored",
            "normal",
            24.94,
        ),
    ];
    lines.extend_from_slice(extra);
    lines.sort_by_key(|l| l.get(9..33).unwrap_or("").to_owned());
    std::fs::write(dir.join("tape.ndjson"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn bad_input_is_quarantined_with_its_place_and_costs_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let bad_feature = serde_json::json!({"time": "2026-11-26T21:03:00Z", "feed": "cameras", "format": "geojson",
        "body": r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"node/9","geometry":{"type":"Point","coordinates":[24.94,60.17]},"properties":{"kind":"camera.offline"}},{"type":"Feature","id":"node/10","geometry":null,"properties":{"kind":"camera.offline"}}]}"#}).to_string();
    small_scenario(
        dir.path(),
        &[
            r#"{"time":"2026-11-26T21:02:30Z","feed":"cameras","format":"geojson","body":"{not json"}"#.to_owned(),
            r#"{"time":"2026-11-26T21:02:40Z","feed":"radar","format":"geojson","body":"{}"}"#.to_owned(),
            "{\"time\":\"2026-11-26T21:02:50Z\", this line is broken".to_owned(),
            bad_feature,
        ],
    );
    let db = dir.path().join("out.db");
    let summary = headless::replay_max(dir.path(), &db).unwrap();
    // Five good lines and the good feature of the mixed message survive.
    assert_eq!(summary.accepted, 6);
    assert_eq!(summary.per_layer["security"], 2);
    assert_eq!(summary.rejected, 4);

    let replay = headless::open_replay(dir.path(), &db).unwrap();
    let store = replay.pipeline().store();
    let q = store.quarantine(summary.run).unwrap();
    let described: Vec<String> = q
        .iter()
        .map(|e| format!("{} {} {}", e.feed, e.place, e.reason))
        .collect();
    assert!(
        described
            .iter()
            .any(|d| d.starts_with("tape tape.ndjson:") && d.contains("not a tape record")),
        "{described:?}"
    );
    assert!(
        described
            .iter()
            .any(|d| d.starts_with("cameras $ (line 1") && d.contains("not JSON")),
        "{described:?}"
    );
    assert!(
        described
            .iter()
            .any(|d| d.starts_with("radar $") && d.contains("not declared")),
        "{described:?}"
    );
    assert!(
        described.iter().any(|d| d.starts_with("cameras features[1].geometry")),
        "{described:?}"
    );
}

#[test]
fn demo_replays_give_the_same_observation_set_at_max_speed_and_paced() {
    let dir = tempfile::tempdir().unwrap();
    let a = headless::replay_max(&demo(), &dir.path().join("a.db")).unwrap();
    let b = headless::replay_max(&demo(), &dir.path().join("b.db")).unwrap();
    assert!(
        a.accepted >= 1_000,
        "the demo has at least 1,000 observations, got {}",
        a.accepted
    );
    for layer in ["transport", "security", "utility"] {
        assert!(a.per_layer[layer] > 0, "no {layer} observations");
    }
    assert_eq!(a.observation_set_hash, b.observation_set_hash);

    // The paced clock at 60x on a paused tokio runtime: an hour of scenario in virtual time.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let paced = rt
        .block_on(headless::replay_paced(&demo(), &dir.path().join("c.db"), 60.0))
        .unwrap();
    assert_eq!(paced.accepted, a.accepted);
    assert_eq!(paced.observation_set_hash, a.observation_set_hash);

    // Replaying into a database that already holds a run adds a new run with the same set.
    let again = headless::replay_max(&demo(), &dir.path().join("a.db")).unwrap();
    assert_ne!(again.run, a.run);
    assert_eq!(again.observation_set_hash, a.observation_set_hash);
}

#[test]
fn seeking_shows_the_picture_that_replaying_up_to_that_time_shows() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = demo();
    let mut probe = headless::open_replay(&scenario, &dir.path().join("p.db")).unwrap();
    let start = probe.now_ms();
    let end = probe.clock().end_ms;
    probe.run_to_end().unwrap();

    let mut seeker = headless::open_replay(&scenario, &dir.path().join("s.db")).unwrap();
    // Forward past the frontier, back, forward again within it, and to the very end.
    let span = end - start;
    for t in [
        start + span / 2,
        start + span / 5,
        start + span * 4 / 5,
        start + span / 3,
        end,
    ] {
        seeker.seek(t).unwrap();
        let mut played = headless::open_replay(&scenario, &dir.path().join(format!("r{t}.db"))).unwrap();
        // Advance in uneven steps, the way a paced clock does.
        let mut now = start;
        while now < t {
            now = (now + 7_919).min(t);
            played.advance_to(now).unwrap();
        }
        let seen: Vec<_> = seeker.picture().observations().cloned().collect();
        let want: Vec<_> = played.picture().observations().cloned().collect();
        assert!(!want.is_empty());
        assert_eq!(seen, want, "picture at {t} differs between seek and replay");
        assert_eq!(seeker.picture().newest(), played.picture().newest());
    }
    // After seeking back, playing forward reads the store instead of ingesting again.
    seeker.seek(start + span / 4).unwrap();
    let messages_before = seeker.pipeline().stats().messages;
    seeker.advance_to(start + span / 2).unwrap();
    assert_eq!(seeker.pipeline().stats().messages, messages_before);
}

#[test]
fn the_engine_streams_coalesced_diffs_and_answers_details() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = common::demo_engine(&dir.path().join("e.db"));
        let diffs: Arc<Mutex<Vec<MapDiffDto>>> = Arc::default();
        let sink = diffs.clone();
        engine
            .subscribe(Box::new(move |d| {
                sink.lock().unwrap().push(d);
                true
            }))
            .unwrap();
        engine.set_speed(None).unwrap();
        assert!(engine.set_speed(Some(-1.0)).is_err());
        engine.play().unwrap();
        let mut waited = 0;
        while !diffs.lock().unwrap().last().is_some_and(|d| d.clock.finished) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
            assert!(waited < 10_000, "replay did not finish");
        }
        let (n_diffs, n_upserts, last) = {
            let d = diffs.lock().unwrap();
            (
                d.len(),
                d.iter().map(|d| d.upserts.len()).sum::<usize>(),
                d.last().unwrap().clone(),
            )
        };
        assert!(
            diffs.lock().unwrap()[0].reset,
            "a subscriber first gets the whole picture"
        );
        let shown: u32 = last.layers.iter().map(|l| l.count).sum();
        assert!(shown > 50);
        // Coalescing: far fewer messages than upserts.
        assert!(n_diffs * 10 < n_upserts, "{n_diffs} diffs for {n_upserts} upserts");
        for layer in [Layer::Transport, Layer::Security, Layer::Utility] {
            let l = last.layers.iter().find(|l| l.layer == layer).unwrap();
            assert!(l.count > 0 && l.newest_observed_ms.is_some(), "{layer}");
        }
        assert!(!last.clock.playing);

        let hostile = engine.observation("report/hostile-0001".into()).await.unwrap();
        assert!(hostile.title.contains("<img src=x onerror=alert(1)>"));
        assert!(engine.observation("no/such".into()).await.is_err());

        // Seeking back to the start shows an empty map again, as a reset.
        let before = diffs.lock().unwrap().len();
        engine.seek(last.clock.start_ms).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let d = diffs.lock().unwrap()[before].clone();
        assert!(d.reset);
        assert_eq!(d.clock.now_ms, last.clock.start_ms);
        assert!(d.layers.iter().all(|l| l.count == 0) || d.upserts.len() < shown as usize);
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 10, ..proptest::prelude::ProptestConfig::default() })]

    /// Time travel for review: after any sequence of seeks, the picture and the incidents at
    /// time T are those of a fresh replay stopped at T.
    #[test]
    fn time_travel_to_any_moment_equals_replaying_to_it(fractions in proptest::collection::vec(0.0f64..=1.0, 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let scenario = demo();
        let mut seeker = headless::open_replay(&scenario, &dir.path().join("s.db")).unwrap();
        let (start, end) = (seeker.now_ms(), seeker.clock().end_ms);
        for (i, f) in fractions.iter().enumerate() {
            let t = start + ((end - start) as f64 * f) as i64;
            seeker.seek(t).unwrap();
            let mut played = headless::open_replay(&scenario, &dir.path().join(format!("r{i}.db"))).unwrap();
            played.advance_to(t).unwrap();
            let seen: Vec<_> = seeker.picture().observations().cloned().collect();
            let want: Vec<_> = played.picture().observations().cloned().collect();
            proptest::prop_assert_eq!(seen, want, "picture at {}", t);
            proptest::prop_assert_eq!(seeker.desk().unwrap().incident_set_hash(), played.desk().unwrap().incident_set_hash(), "incidents at {}", t);
        }
    }
}
