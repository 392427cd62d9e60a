//! Running an exercise on the demo storm: a trainer's injects (recorded, correlated, seen by
//! time travel, and replayed from their tape lines to the same incidents), the live score, and
//! ending the exercise, which closes the trainee's record and writes the report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cityops_engine::dto::{InjectRequestDto, LifecycleStatus, OperatorRole};
use cityops_engine::{Engine, EngineConfig};
use cityops_store::Store;

const SUBSTATION: &str = "way/644615094";

fn demo() -> PathBuf {
    common::repo().join("fixtures/scenarios/helsinki-storm")
}

fn start(db: &Path) -> Engine {
    Engine::start(EngineConfig {
        scenario_dir: demo(),
        db_path: db.to_owned(),
        maps_dir: common::repo().join("maps"),
        backends: Some(common::repo().join("fixtures/backends/helsinki.toml")),
    })
    .unwrap()
}

fn request(inject: &str, lon: f64, lat: f64) -> InjectRequestDto {
    InjectRequestDto {
        inject: inject.into(),
        lon,
        lat,
        trainer: "Tiina".into(),
    }
}

/// The power outages stored for run 1 (the store holds the incidents at the clock's time).
fn outages(db: &Path) -> Vec<(String, i64)> {
    let store = Store::open(db).unwrap();
    store
        .stored_incidents(1)
        .unwrap()
        .into_iter()
        .filter(|i| i.incident_type == "power_outage")
        .map(|i| (i.root_cause.unwrap_or_default(), i.opened_ms))
        .collect()
}

fn incidents_json(db: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("incidents")
        .arg("--db")
        .arg(db)
        .args(["--run", "1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_trainer_inject_is_recorded_correlated_time_travelled_and_replays_as_a_tape_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("exercise.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start_ms = 1_795_719_600_000; // 19:00Z, the scenario's start; the real trip is at 19:12:07.
    let t0 = start_ms + 120_000;
    let line = rt.block_on(async {
        let engine = start(&db);
        assert_eq!(engine.scenario().injects.len(), 5, "the demo's palette");
        engine.seek(t0).unwrap();
        // Picked about 100 m from the substation: the inject snaps to it.
        let inject = engine
            .inject(request("substation-trip", 24.9430, 60.1738))
            .await
            .unwrap();
        assert_eq!(
            (inject.n, inject.entity.as_str(), inject.scenario_ms),
            (1, SUBSTATION, t0)
        );
        assert_eq!(inject.title, "Substation trip: Kaisankuja substation");
        // What the palette lacks, what is too far from any substation, and an unnamed trainer
        // are refused, and none of them is recorded.
        let unknown = engine.inject(request("volcano", 24.943, 60.1738)).await.unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("inject \"volcano\" in the scenario's palette not found"),
            "{unknown}"
        );
        let far = engine
            .inject(request("substation-trip", 24.99, 60.20))
            .await
            .unwrap_err();
        assert!(far.to_string().contains("no substation within 400 m"), "{far}");
        let anonymous = engine
            .inject(InjectRequestDto {
                trainer: " ".into(),
                ..request("citizen-report", 24.95, 60.17)
            })
            .await
            .unwrap_err();
        assert!(anonymous.to_string().contains("trainer's name"), "{anonymous}");

        // A minute later the outage is open at the inject's time, ten minutes before the tape's.
        engine.seek(t0 + 60_000).unwrap();
        let ex = engine.exercise().await.unwrap();
        assert_eq!(ex.injects.len(), 1);
        let open = outages(&db);
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].0, SUBSTATION);
        assert!(
            (t0..t0 + 1000).contains(&open[0].1),
            "opened at {} (inject at {t0})",
            open[0].1
        );
        // Time travel: before the inject there is no outage; after it, the same one again.
        // The store's copy follows a seek by itself once the clock rests (nothing here asks the
        // engine to flush).
        engine.seek(t0 - 30_000).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !outages(&db).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the stored incidents never followed the seek back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        engine.seek(t0 + 60_000).unwrap();
        engine.exercise().await.unwrap();
        assert_eq!(outages(&db), open);

        // The trainee acknowledges it; the score counts it (the objective is about the first
        // power outage, which is now the injected one).
        engine
            .sign_in("Trainee".into(), OperatorRole::Operator, None)
            .await
            .unwrap();
        let id = Store::open(&db)
            .unwrap()
            .stored_incidents(1)
            .unwrap()
            .into_iter()
            .find(|i| i.incident_type == "power_outage")
            .unwrap()
            .id;
        engine
            .incident_transition(id.clone(), LifecycleStatus::Acknowledged)
            .await
            .unwrap();
        let score = engine.exercise().await.unwrap().score.unwrap();
        assert_eq!(score.objectives[0].outcome, "met", "{:?}", score.objectives[0]);

        // Ending the exercise closes the record: the report says who ended it and lists the
        // inject; the trainee can no longer act, injects are refused, review goes on.
        let html = engine.end_exercise(Some("Tiina".into()), None).await.unwrap();
        assert!(html.contains("Exercise ended at 21:03:00 by Tiina."), "{html:.3000}");
        assert!(
            html.contains("<td>inject</td><td>Substation trip: Kaisankuja substation by Tiina (trainer)</td>"),
            "{html:.6000}"
        );
        let after = engine
            .incident_transition(id, LifecycleStatus::Dispatched)
            .await
            .unwrap_err();
        assert!(
            after
                .to_string()
                .contains("the exercise ended at scenario time 21:03:00"),
            "{after}"
        );
        assert!(engine.inject(request("citizen-report", 24.95, 60.17)).await.is_err());
        let ex = engine.exercise().await.unwrap();
        assert_eq!(
            (ex.ended_ms, ex.ended_by.as_deref()),
            (Some(t0 + 60_000), Some("Tiina"))
        );
        engine.set_speed(None).unwrap();
        engine.play().unwrap();
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            engine.exercise().await.unwrap();
            let store = Store::open(&db).unwrap();
            if store.frontier(1).unwrap().1 >= Some(start_ms + 3_600_000 - 60_000) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "review replay did not finish"
            );
        }
        // Let the last tick settle, then read what the run holds.
        tokio::time::sleep(Duration::from_millis(500)).await;
        engine.pause().unwrap();
        Store::open(&db).unwrap().injects(1).unwrap()[0].line.clone()
    });
    // `cityops injects` writes the run's injects as tape lines.
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("injects")
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{line}\n"));
    let msg = cityops_core::tape::parse_line(1, &line).unwrap();
    assert_eq!((msg.feed.as_str(), msg.time_ms), ("inject.utility", t0));
    let a = incidents_json(&db);
    assert!(
        a["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["rootCause"] == SUBSTATION || i["root_cause"] == SUBSTATION),
        "{a:.2000}"
    );

    // The inject's tape line, put on a copy of the tape in time order, replays headless to the
    // incidents the exercise had (the transitions aside: nobody signs in to a headless replay).
    let copy = dir.path().join("storm");
    std::fs::create_dir_all(&copy).unwrap();
    let manifest = std::fs::read_to_string(demo().join("scenario.toml"))
        .unwrap()
        .replace(
            "assets = \"assets.geojson\"",
            &format!("assets = \"{}\"", demo().join("assets.geojson").display()),
        )
        .replace(
            "zones = \"zones.geojson\"",
            &format!("zones = \"{}\"", demo().join("zones.geojson").display()),
        )
        .replace(
            "rules = \"../../rules/default.toml\"",
            &format!(
                "rules = \"{}\"",
                common::repo().join("fixtures/rules/default.toml").display()
            ),
        );
    std::fs::write(
        copy.join("scenario.toml"),
        format!("{manifest}\n[[feeds]]\nid = \"inject.utility\"\nlayer = \"utility\"\nformat = \"geojson\"\n"),
    )
    .unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(demo().join("tape.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let at = lines
        .iter()
        .position(|l| cityops_core::tape::parse_line(1, l).unwrap().time_ms > t0)
        .unwrap();
    lines.insert(at, line);
    std::fs::write(copy.join("tape.ndjson"), lines.join("\n") + "\n").unwrap();
    let db2 = dir.path().join("replayed.db");
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("replay")
        .arg(&copy)
        .arg("--db")
        .arg(&db2)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // An incident's id names the message that opened it: the inject's sequence number is its
    // number among injects live and its line on the copied tape, and every line after it moved
    // down by one (the demo's operator call opens an incident later on), so ids are compared
    // without the line.
    let strip = |mut v: serde_json::Value| {
        let mut out = Vec::new();
        for i in v["incidents"].as_array_mut().unwrap() {
            let o = i.as_object_mut().unwrap();
            // Who acknowledged is a decision the trainee made, not something the tape holds.
            o.retain(|k, _| !["lifecycle", "transitions", "acknowledgedBy"].contains(&k.as_str()));
            let id = o["id"].as_str().unwrap().to_owned();
            let parts: Vec<&str> = id.split('/').collect();
            o.insert("id".into(), format!("inc/{}/{}", parts[1], parts[3]).into());
            out.push(serde_json::to_string(o).unwrap());
        }
        out
    };
    let (replayed, live) = (strip(incidents_json(&db2)), strip(a));
    assert_eq!(replayed.len(), live.len());
    for (r, l) in replayed.iter().zip(&live) {
        assert!(r == l, "replayed:\n{r:.600}\nexercise:\n{l:.600}");
    }
}

#[test]
fn kpi_charts_follow_the_clock_and_the_report_embeds_the_map_image() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kpi.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = start(&db);
        let now = 1_795_719_600_000 + 20 * 60_000;
        engine.seek(now).unwrap();
        let charts = engine.kpi().await.unwrap();
        let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "observations-per-layer",
                "active-incidents",
                "time-to-acknowledge",
                "time-to-dispatch",
                "feed-health"
            ]
        );
        assert!(charts
            .iter()
            .all(|c| c.svg.starts_with("<svg") && c.svg.trim_end().ends_with("</svg>")));
        // The charts hold what the store holds at the clock, per layer, and nothing later.
        let counts = Store::open(&db).unwrap().counts(1).unwrap();
        assert!(counts.per_layer.iter().map(|(_, n)| n).sum::<u64>() > 0);
        for (layer, n) in &counts.per_layer {
            assert_eq!(
                charts[0].totals.get(layer.as_str()).copied().unwrap_or(0.0),
                *n as f64,
                "{layer:?}"
            );
        }
        engine.seek(now + 20 * 60_000).unwrap();
        let later = engine.kpi().await.unwrap();
        let total = |c: &cityops_engine::dto::ChartDto| c.totals.values().sum::<f64>();
        assert!(total(&later[0]) > total(&charts[0]), "the charts grow with the clock");

        // A PNG from the app's map is embedded as it came; anything else is refused.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&[0u8; 64]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        let html = engine
            .report(Some(format!("data:image/png;base64,{b64}")))
            .await
            .unwrap();
        assert!(html.contains(&format!(
            "<img alt=\"Map of the main incident's area\" src=\"data:image/png;base64,{b64}\"/>"
        )));
        let gif =
            base64::engine::general_purpose::STANDARD.encode(b"GIF89a and then some more bytes to be long enough");
        let e = engine.report(Some(gif)).await.unwrap_err();
        assert!(e.to_string().contains("not a PNG"), "{e}");
        assert!(engine
            .report(Some("%%%".into()))
            .await
            .unwrap_err()
            .to_string()
            .contains("not base64"));
    });
}
