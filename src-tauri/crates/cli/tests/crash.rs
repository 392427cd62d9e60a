//! Crash safety of the whole engine: `cityops ingest` (a drop-folder feed) and `cityops
//! dispatch` (a burst of actions to our Open311 server) share one database and are killed
//! together with SIGKILL at pseudo-random points, many times over, while files keep arriving.
//! After every kill the database must pass `PRAGMA integrity_check`, hold every observation it
//! had committed before the kill, and hold none twice; at the end one clean run drains the
//! folder and the outbox, and every dropped feature is stored exactly once, every committed
//! action created exactly once on the server.
//!
//! `CITYOPS_CRASH_TRIALS` sets the number of kills (CI: the default, 50; a release runs more,
//! see RELIABILITY.md).
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cityops_engine::dto::ActionStatus;
use cityops_store::Store;

const FEATURES_PER_FILE: usize = 5;

/// A small deterministic generator (the seed is printed, so a failure can be rerun).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Drops file `n` into `inbox` the way a writer should (a hidden name, then a rename), with
/// features whose ids say which file and which feature they are.
fn drop_file(inbox: &Path, n: usize) {
    let features: Vec<String> = (0..FEATURES_PER_FILE)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":"drop/{n}/{i}","geometry":{{"type":"Point","coordinates":[24.94{n:03},60.17{i}]}},"properties":{{"kind":"report.outage","severity":"minor","title":"report {n}.{i}","time":"2026-11-26T21:00:00Z"}}}}"#
            )
        })
        .collect();
    let body = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","));
    let tmp = inbox.join(format!(".{n:05}.geojson"));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, inbox.join(format!("{n:05}.geojson"))).unwrap();
}

/// Entities stored so far and how often each is stored, read the way any reader would while
/// the writers run (WAL lets it).
fn stored(db: &Path) -> BTreeMap<String, u32> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT entity, count(*) FROM observations WHERE entity LIKE 'drop/%' GROUP BY entity")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

fn spawn_ingest(bin: &str, config: &Path, db: &Path, duration: Option<&str>) -> Child {
    let mut cmd = Command::new(bin);
    cmd.arg("ingest")
        .arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(["--health-every", "1h"]);
    if let Some(d) = duration {
        cmd.args(["--duration", d]);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

#[test]
fn the_engine_killed_at_random_points_loses_and_doubles_nothing() {
    let trials: usize = std::env::var("CITYOPS_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let config = dir.path().join("feeds.toml");
    std::fs::write(&config, "[[feeds]]\nid = \"inbox\"\nlayer = \"alerts\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"file-drop\"\ndir = \"inbox\"\n").unwrap();
    let port = common::free_port();
    let _server = common::open311(port, &dir.path().join("open311"));
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        format!("[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = {{ env = \"CITYOPS_TEST_OPEN311_KEY\" }}\nretry_base_ms = 50\n"),
    )
    .unwrap();
    let db = dir.path().join("engine.db");
    let bin = env!("CARGO_BIN_EXE_cityops");
    let params = r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"crash"}"#;
    let seed = (std::process::id() as u64) ^ (chrono::Utc::now().timestamp_millis() as u64);
    eprintln!("crash harness: {trials} kills, seed {seed}");
    let mut rng = Rng(seed);
    let mut dropped = 0;
    let mut printed_keys = BTreeSet::new();
    let started = Instant::now();
    for trial in 0..trials {
        let mut ingest = spawn_ingest(bin, &config, &db, None);
        let mut dispatch = Command::new(bin)
            .args(["dispatch", "--backends"])
            .arg(&backends)
            .arg("--db")
            .arg(&db)
            .args([
                "--backend",
                "works",
                "--params",
                params,
                "--at",
                "24.9445,60.1709",
                "--count",
                "10",
            ])
            .env("CITYOPS_TEST_OPEN311_KEY", "k")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = dispatch.stdout.take().unwrap();
        let keys = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // Files keep arriving while the engine runs, a few at a time.
        let run_for = Duration::from_millis(150 + rng.next() % 1350);
        let until = Instant::now() + run_for;
        while Instant::now() < until {
            for _ in 0..1 + rng.next() % 3 {
                drop_file(&inbox, dropped);
                dropped += 1;
            }
            std::thread::sleep(Duration::from_millis(40 + rng.next() % 120));
        }
        // What a reader sees committed just before the kill is what must survive it.
        let before = if db.exists() { stored(&db) } else { BTreeMap::new() };
        ingest.kill().unwrap(); // SIGKILL
        dispatch.kill().unwrap();
        ingest.wait().unwrap();
        dispatch.wait().unwrap();
        printed_keys.extend(keys.join().unwrap());

        assert_eq!(integrity(&db), "ok", "trial {trial}: integrity check after the kill");
        let after = stored(&db);
        for (entity, n) in &after {
            assert_eq!(*n, 1, "trial {trial}: {entity} stored {n} times");
        }
        let lost: Vec<&String> = before.keys().filter(|e| !after.contains_key(*e)).collect();
        assert!(
            lost.is_empty(),
            "trial {trial}: committed before the kill, missing after it: {lost:?}"
        );
        if trial % 10 == 0 {
            eprintln!(
                "trial {trial}: killed after {run_for:?}; {} of {} dropped features stored",
                after.len(),
                dropped * FEATURES_PER_FILE
            );
        }
    }
    eprintln!("{trials} kills in {:?}; {dropped} files dropped", started.elapsed());

    // One clean run drains the folder; then the outbox delivers what is left.
    let mut last = spawn_ingest(bin, &config, &db, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&db).len() < dropped * FEATURES_PER_FILE && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Give the moves after the last commit a moment, then stop it (it is killed too: the
    // files it moved or left are checked below either way).
    std::thread::sleep(Duration::from_secs(2));
    last.kill().unwrap();
    last.wait().unwrap();
    let send = Command::new(bin)
        .args(["send", "--backends"])
        .arg(&backends)
        .arg("--db")
        .arg(&db)
        .args(["--timeout", "120"])
        .env("CITYOPS_TEST_OPEN311_KEY", "k")
        .status()
        .unwrap();
    assert!(send.success(), "cityops send failed");

    assert_eq!(integrity(&db), "ok");
    let all = stored(&db);
    let missing: Vec<String> = (0..dropped)
        .flat_map(|n| (0..FEATURES_PER_FILE).map(move |i| format!("drop/{n}/{i}")))
        .filter(|e| !all.contains_key(e))
        .collect();
    assert!(
        missing.is_empty(),
        "{} dropped features never stored, first {:?}",
        missing.len(),
        missing.first()
    );
    assert!(all.values().all(|n| *n == 1), "a feature stored twice");
    assert_eq!(all.len(), dropped * FEATURES_PER_FILE);
    // The folder is drained into processed/ (a file left by the final kill is one whose key is
    // stored: the next start moves it without storing it again).
    let processed = std::fs::read_dir(inbox.join("processed")).unwrap().count();
    eprintln!("{processed} of {dropped} files in processed/");

    let store = Store::open(&db).unwrap();
    let actions = store.actions(u32::MAX).unwrap();
    let committed: BTreeSet<String> = actions.iter().map(|a| a.key.clone()).collect();
    for k in &printed_keys {
        assert!(
            committed.contains(k),
            "action {k} was reported committed and is missing"
        );
    }
    assert!(
        actions.iter().all(|a| a.status == ActionStatus::Delivered),
        "every action delivered after the restarts"
    );
    let answer = common::http(port, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for e in answer.json().as_array().unwrap() {
        if let (Some(k), Some(_)) = (e["idempotency_key"].as_str(), e["created"].as_str()) {
            *created.entry(k.to_owned()).or_default() += 1;
        }
    }
    for k in &committed {
        assert_eq!(
            created.get(k),
            Some(&1),
            "action {k} created {:?} times on the server",
            created.get(k)
        );
    }
    assert!(
        created.keys().all(|k| committed.contains(k)),
        "the server holds an action that was never committed"
    );
    assert!(
        store.verify_audit().unwrap().is_ok(),
        "the audit chain survived the kills"
    );
    eprintln!(
        "{} actions committed, each created once; {} features stored once each",
        committed.len(),
        all.len()
    );
}
