//! A full disk and a read-only database, for real.
//!
//! The live engine's database sits on its own small tmpfs. A ballast file fills that disk while
//! a drop-folder feed keeps delivering: the engine must keep the new observations on the map,
//! tell the operator (the storage health in the diffs names the fault and counts what is held),
//! leave the dropped files where they are, and keep what is stored intact. When the ballast is
//! deleted, everything held is stored exactly once and the files move to `processed/`.
//!
//! A database on a read-only disk is refused at start with a message that names the file.
//!
//! Mounting needs root, which CI has (its setup installs Debian packages).
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_engine::dto::MapDiffDto;
use cityops_engine::LiveEngineConfig;
use cityops_engine::{Engine, EngineConfig};
use cityops_live::StorageHealthDto;

type Diffs = Arc<Mutex<Vec<MapDiffDto>>>;

/// A tmpfs of `size` mounted at `at`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn until<T>(diffs: &Diffs, what: &str, f: impl Fn(&[MapDiffDto]) -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f(&diffs.lock().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn storage(diffs: &[MapDiffDto]) -> Option<StorageHealthDto> {
    diffs.iter().rev().find_map(|d| d.storage.clone())
}

/// Drops `name` with `n` features whose ids start with `prefix`, written under a hidden name
/// and renamed, as a well-behaved writer does.
fn drop_file(inbox: &Path, name: &str, prefix: &str, n: usize) {
    let padding = "x".repeat(400);
    let features: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":"{prefix}/{i}","geometry":{{"type":"Point","coordinates":[24.94{i:03},60.17]}},"properties":{{"kind":"report.outage","severity":"minor","title":"{prefix} {i} {padding}","time":"{}"}}}}"#,
                chrono::Utc::now().to_rfc3339()
            )
        })
        .collect();
    let body = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","));
    std::fs::write(inbox.join(format!(".{name}")), body).unwrap();
    std::fs::rename(inbox.join(format!(".{name}")), inbox.join(name)).unwrap();
}

/// How often each entity with `prefix` is stored, read the way any other reader would.
fn stored(db: &Path, prefix: &str) -> Vec<u32> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT count(*) FROM observations WHERE entity LIKE ?1 || '/%' GROUP BY entity")
        .unwrap();
    let rows = stmt.query_map([prefix], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Writes into `disk` until it is full; returns the ballast's path.
fn fill(disk: &Path) -> PathBuf {
    let path = disk.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last partial chunk may have gone in; the next write fails for certain.
    assert!(
        f.write_all(&chunk).is_err() || f.sync_all().is_err(),
        "the disk is full"
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_ingest_in_memory_tells_the_operator_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let _mount = Tmpfs::mount(&disk, "size=4m");
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let feeds = dir.path().join("feeds.toml");
    std::fs::write(&feeds, "[[feeds]]\nid = \"inbox\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"file-drop\"\ndir = \"inbox\"\n").unwrap();
    let db = disk.join("live.db");
    let engine = Engine::start_live(LiveEngineConfig {
        feeds,
        db_path: db.clone(),
        maps_dir: common::repo().join("maps"),
        backends: None,
    })
    .unwrap();
    let diffs: Diffs = Arc::default();
    let sink = diffs.clone();
    engine
        .subscribe(Box::new(move |d| {
            sink.lock().unwrap().push(d);
            true
        }))
        .unwrap();

    // With room on the disk, a file is stored and moved.
    drop_file(&inbox, "before.geojson", "before", 20);
    until(&diffs, "the first file moved to processed/", |_| {
        inbox.join("processed/before.geojson").exists().then_some(())
    })
    .await;
    assert_eq!(stored(&db, "before"), vec![1; 20]);
    assert_eq!(
        storage(&diffs.lock().unwrap()).and_then(|s| s.fault),
        None,
        "no fault while there is room"
    );

    // The disk fills up; files keep arriving.
    let ballast = fill(&disk);
    for n in 0..12 {
        drop_file(&inbox, &format!("full-{n:02}.geojson"), &format!("full{n:02}"), 40);
    }
    let fault = until(&diffs, "the operator told the disk is full", |d| {
        storage(d).filter(|s| s.fault.is_some() && s.held > 0)
    })
    .await;
    assert!(
        fault
            .fault
            .as_deref()
            .unwrap()
            .contains("disk holding the database is full"),
        "{fault:?}"
    );
    assert_eq!(fault.path, db.to_str().unwrap(), "the message names the database");
    assert_eq!(fault.faults, 1);
    // What arrives still reaches the map; the files stay in the folder until they are stored.
    until(&diffs, "every held observation on the map", |d| {
        let shown: std::collections::HashSet<&str> = d
            .iter()
            .flat_map(|d| &d.upserts)
            .map(|u| u.id.as_str())
            .filter(|id| id.starts_with("full"))
            .collect();
        (shown.len() == 12 * 40).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = std::fs::read_dir(&inbox)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("full-"))
        .count();
    assert!(
        waiting > 0,
        "files whose observations are not stored stay in the folder"
    );
    // What was stored before is intact and readable.
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    assert_eq!(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    drop(conn);
    assert_eq!(stored(&db, "before"), vec![1; 20]);

    // Space returns: everything held is stored, once, and the fault clears.
    std::fs::remove_file(&ballast).unwrap();
    let cleared = until(&diffs, "the fault cleared", |d| {
        storage(d).filter(|s| s.fault.is_none())
    })
    .await;
    assert_eq!((cleared.held, cleared.faults), (0, 1));
    for n in 0..12 {
        let prefix = format!("full{n:02}");
        assert_eq!(stored(&db, &prefix), vec![1; 40], "{prefix} stored exactly once");
        until(&diffs, "the file moved", |_| {
            inbox
                .join(format!("processed/full-{n:02}.geojson"))
                .exists()
                .then_some(())
        })
        .await;
    }
    drop(engine);

    // A restart on the same database stores nothing twice.
    drop_file(&inbox, "after.geojson", "after", 5);
    let feeds = dir.path().join("feeds.toml");
    let engine = Engine::start_live(LiveEngineConfig {
        feeds,
        db_path: db.clone(),
        maps_dir: common::repo().join("maps"),
        backends: None,
    })
    .unwrap();
    for _ in 0..100 {
        if inbox.join("processed/after.geojson").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(engine);
    assert_eq!(stored(&db, "after"), vec![1; 5]);
    for n in 0..12 {
        assert_eq!(stored(&db, &format!("full{n:02}")), vec![1; 40]);
    }
}

/// A replay whose database disk fills up holds what it read, stops the clock where the disk
/// refused, tells the trainer why, and carries on by itself once there is room: the run ends
/// with every observation of the tape stored once and the scenario's incidents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_a_full_disk_waits_tells_the_operator_and_carries_on_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let _mount = Tmpfs::mount(&disk, "size=4m");
    let db = disk.join("replay.db");
    let config = EngineConfig {
        scenario_dir: common::repo().join("fixtures/scenarios/helsinki-storm"),
        db_path: db.clone(),
        maps_dir: common::repo().join("maps"),
        backends: None,
    };
    let engine = Engine::start(config).unwrap();
    let diffs: Diffs = Arc::default();
    let sink = diffs.clone();
    engine
        .subscribe(Box::new(move |d| {
            sink.lock().unwrap().push(d);
            true
        }))
        .unwrap();

    let ballast = fill(&disk);
    engine.set_speed(None).unwrap();
    engine.play().unwrap();
    let fault = until(&diffs, "the trainer told the disk is full", |d| {
        storage(d).filter(|s| s.fault.is_some())
    })
    .await;
    assert!(
        fault
            .fault
            .as_deref()
            .unwrap()
            .contains("disk holding the database is full"),
        "{fault:?}"
    );
    assert_eq!(fault.path, db.to_str().unwrap(), "the message names the database");
    assert!(fault.held > 0, "what the replay read waits in memory: {fault:?}");
    // The clock waits where the disk refused (still playing), and nothing ends early.
    let clock = |d: &Diffs| d.lock().unwrap().last().unwrap().clock.clone();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let waiting = clock(&diffs);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(clock(&diffs).now_ms, waiting.now_ms, "the clock waits for the disk");
    assert!(waiting.playing && !waiting.finished, "{waiting:?}");

    // Space returns: the replay carries on to the end, and the fault clears.
    std::fs::remove_file(&ballast).unwrap();
    let cleared = until(&diffs, "the fault cleared", |d| {
        storage(d).filter(|s| s.fault.is_none())
    })
    .await;
    assert_eq!((cleared.held, cleared.faults), (0, 1));
    until(&diffs, "the replay finished", |d| {
        d.last().filter(|d| d.clock.finished && !d.clock.playing).map(|_| ())
    })
    .await;
    drop(engine);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT feed || '/' || seq || '/' || idx) FROM observations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, distinct),
        (3546, 3546),
        "every observation of the tape stored once"
    );
    let incidents: i64 = conn
        .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(incidents, 5, "the scenario's incidents");
}

#[test]
fn a_database_on_a_read_only_disk_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("ro");
    let _mount = Tmpfs::mount(&disk, "size=1m,ro");
    let feeds = dir.path().join("feeds.toml");
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
    std::fs::write(&feeds, "[[feeds]]\nid = \"inbox\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"file-drop\"\ndir = \"inbox\"\n").unwrap();
    let db = disk.join("live.db");
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("ingest")
        .arg("--config")
        .arg(&feeds)
        .arg("--db")
        .arg(&db)
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a database that cannot be written is not accepted"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(db.to_str().unwrap()) && err.to_lowercase().contains("read-only"),
        "the error names the file and the cause: {err}"
    );
}
