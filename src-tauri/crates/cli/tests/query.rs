//! `cityops query`: what happened in a box and a time range, checked against a full scan of
//! the same run.

mod common;

use std::path::PathBuf;
use std::process::Command;

use cityops_core::model::{GeoPoint, Layer};
use cityops_store::Store;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm")
}

fn cityops(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cityops")).args(args).output().unwrap()
}

#[test]
fn a_box_and_a_time_range_give_what_a_full_scan_gives() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let db_s = db.to_str().unwrap();
    let replay = cityops(&["replay", demo().to_str().unwrap(), "--db", db_s, "--json"]);
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    // Around the Kaisankuja substation, from the trip (19:12:07Z) for eight minutes.
    let (w, s, e, n) = (24.935, 60.168, 24.950, 60.178);
    let (from, to) = ("2026-11-26T19:12:00Z", "2026-11-26T19:20:00Z");
    let ask = |bbox: &str, extra: &[&str]| {
        let args = ["query", "--db", db_s, "--bbox", bbox, "--from", from, "--to", to];
        cityops(&[args.as_slice(), extra].concat())
    };
    let here = "24.935,60.168,24.950,60.178";
    let out = ask(here, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let store = Store::open(&db).unwrap();
    let run = store.latest_run().unwrap().unwrap();
    let ms = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis();
    let inside = |p: GeoPoint| (w..=e).contains(&p.lon) && (s..=n).contains(&p.lat);
    let mut want = Vec::new();
    store
        .for_each(run, |o| {
            if inside(o.position) && (ms(from)..=ms(to)).contains(&o.observed_ms) {
                want.push((o.feed.clone(), o.seq, o.idx));
            }
        })
        .unwrap();
    want.sort();
    let mut got: Vec<(String, u64, u32)> = v["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["feed"].as_str().unwrap().to_owned(),
                o["seq"].as_u64().unwrap(),
                o["idx"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    got.sort();
    assert!(want.len() > 20, "the box holds the outage: {}", want.len());
    assert_eq!(got, want, "the index gives what the full scan gives");
    assert_eq!(v["count"].as_u64(), Some(want.len() as u64));
    let per_kind: u64 = v["perKind"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(per_kind, want.len() as u64);
    assert!(v["perKind"]["signal.dark"].as_u64().unwrap() > 0, "{}", v["perKind"]);

    // One layer only; the text form counts per kind.
    let utility = ask(here, &["--layer", "utility", "--json"]);
    let u: serde_json::Value = serde_json::from_slice(&utility.stdout).unwrap();
    let layers: Vec<&str> = u["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["layer"].as_str().unwrap())
        .collect();
    assert!(
        !layers.is_empty() && layers.iter().all(|l| *l == Layer::Utility.as_str()),
        "{layers:?}"
    );
    let text = ask(here, &[]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with(&format!("run {run}: {} observations", want.len())),
        "{text}"
    );
    assert!(text.contains(" signal.dark\n"), "{text}");

    // A box the wrong way round is a usage error that says what a box is.
    let bad = ask("24.95,60.17,24.93,60.18", &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("west,south,east,north"));
}

/// The map's box asks the engine the same question, up to the clock: what the replay has not
/// reached stays out, and a box that is not one is refused in words.
#[test]
fn the_map_box_answers_up_to_the_clock_with_counts_per_kind() {
    use cityops_engine::dto::{ApiError, ApiErrorCode, AreaQueryDto};
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = common::demo_engine(&dir.path().join("e.db"));
        let start = engine.scenario().start_ms;
        let q = |to_min: i64| AreaQueryDto {
            west: 24.935,
            south: 60.168,
            east: 24.950,
            north: 60.178,
            from_ms: start,
            to_ms: start + to_min * 60_000,
            layer: None,
        };
        // 21:20, eight minutes after the trip.
        engine.seek(start + 20 * 60_000).unwrap();
        let answer = loop {
            let a = engine.query_area(q(60)).await.unwrap();
            if a.per_kind.iter().any(|k| k.kind == "signal.dark") {
                break a;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let total: u32 = answer.per_kind.iter().map(|k| k.count).sum();
        assert_eq!(total, answer.count);
        assert!(
            answer.per_kind.windows(2).all(|w| w[0].count >= w[1].count),
            "the most first"
        );
        // Every one is counted; the newest 500 are listed.
        assert_eq!(answer.observations.len(), (answer.count as usize).min(500));
        assert_eq!(answer.listed_all, answer.count <= 500);
        let clock = start + 20 * 60_000;
        assert!(
            answer.observations.iter().all(|o| o.observed_ms <= clock),
            "nothing after the clock"
        );
        assert!(
            answer
                .observations
                .windows(2)
                .all(|w| w[0].observed_ms >= w[1].observed_ms),
            "newest first"
        );
        // Asked to the end of the tape at 21:20, the box answers what it answers to 21:20.
        let to_clock = engine.query_area(q(20)).await.unwrap();
        assert_eq!(to_clock.count, answer.count);
        // One layer only.
        let mut utility = q(60);
        utility.layer = Some(Layer::Utility);
        let u = engine.query_area(utility).await.unwrap();
        assert!(u.count > 0 && u.per_kind.iter().all(|k| k.layer == Layer::Utility));
        // Refused in words.
        let mut flipped = q(60);
        flipped.west = 24.96;
        let e = engine.query_area(flipped).await.unwrap_err();
        assert_eq!(ApiError::from(&e).code, ApiErrorCode::InvalidInput);
        assert!(e.to_string().contains("is not a box"), "{e}");
        let mut backwards = q(60);
        backwards.from_ms = backwards.to_ms + 1;
        assert!(engine.query_area(backwards).await.is_err());
    });
}
