//! Credentials live in the environment and nowhere else: with an Open311 API key and a webhook
//! signing secret set to canary values, actions are previewed, committed and delivered with the
//! most verbose logging, and then neither canary appears in the logs, the printed outbox, the
//! audit trail or any byte of the database files, while the servers did receive them (so the
//! canaries were really used).
// Some tests here are in the "peers" tier (`cargo test --features peers`); without it their
// helpers are unused.
#![cfg_attr(not(feature = "peers"), allow(dead_code, unused_imports))]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const KEY: &str = "canary-open311-key-5f1c0e";
const SECRET: &str = "canary-webhook-secret-9ad27b";

/// Every file of the database (the main file, the WAL, the shared memory), as bytes.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[cfg(feature = "peers")]
#[test]
fn credentials_reach_the_backends_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (p311, phook) = (common::free_port(), common::free_port());
    let _open311 = common::open311_with_key(p311, &dir.path().join("open311"), Some(KEY));
    let _hook = common::webhook(phook, &dir.path().join("webhook"), SECRET);
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        format!(
            "[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{p311}\"\napi_key = {{ env = \"CITYOPS_TEST_KEY\" }}\n\
             [[backends]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{phook}/hooks/notify\"\nsecret = {{ env = \"CITYOPS_TEST_SECRET\" }}\n"
        ),
    )
    .unwrap();
    let db = dir.path().join("c.db");
    let bin = env!("CARGO_BIN_EXE_cityops");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .arg("--backends")
            .arg(&backends)
            .arg("--db")
            .arg(&db)
            .env("CITYOPS_TEST_KEY", KEY)
            .env("CITYOPS_TEST_SECRET", SECRET)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cityops {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        [out.stdout, out.stderr].concat()
    };
    let mut printed = Vec::new();
    printed.extend(run(&[
        "dispatch",
        "--backend",
        "works",
        "--params",
        r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"crew"}"#,
        "--at",
        "24.9445,60.1709",
        "--count",
        "2",
    ]));
    printed.extend(run(&[
        "dispatch",
        "--backend",
        "hook",
        "--params",
        r#"{"kind":"notify","message":"substation down"}"#,
        "--at",
        "24.9445,60.1709",
        "--count",
        "2",
    ]));
    printed.extend(run(&["send", "--timeout", "60"]));
    for args in [vec!["outbox", "--json", "--db"], vec!["audit", "verify", "--db"]] {
        let out = Command::new(bin)
            .args(&args)
            .arg(&db)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(out.status.success());
        printed.extend([out.stdout, out.stderr].concat());
    }
    let outbox = String::from_utf8_lossy(&printed);
    assert!(
        outbox.contains("delivered"),
        "the actions were not delivered: {outbox:.2000}"
    );

    // The servers saw the credentials: the key in the request, the signature made with it.
    let log = common::http(p311, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
    assert_eq!(
        log.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["created"].is_string())
            .count(),
        2,
        "Open311 accepted both requests with the key"
    );
    let hooks = std::fs::read_to_string(dir.path().join("webhook/notify.ndjson")).unwrap_or_default();
    assert_eq!(
        hooks.lines().count(),
        2,
        "the webhook receiver checked both signatures: {hooks}"
    );

    for (what, canary) in [("API key", KEY), ("signing secret", SECRET)] {
        assert!(!contains(&printed, canary), "the {what} appears in the output or logs");
        assert!(
            !contains(&database_bytes(&db), canary),
            "the {what} is stored in the database"
        );
    }
}

const FEED_TOKEN: &str = "canary-feed-token-73be1d";

/// A polled feed's credential reaches its server and nothing else: not the recorded tape, the
/// quarantine (its answers are refused as garbage), the database or the most verbose logs.
#[test]
fn feed_credentials_stay_out_of_tapes_the_quarantine_and_logs() {
    let server = common::scripted::Scripted::start(|_, _| common::scripted::Answer::new(200, "this is not GeoJSON {"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            "[[feeds]]\nid = \"scada\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"http-poll\"\nurl = \"http://127.0.0.1:{}/feed\"\ninterval_s = 1\n\
             headers = {{ Authorization = {{ env = \"CITYOPS_TEST_FEED_TOKEN\" }} }}\n",
            server.port
        ),
    )
    .unwrap();
    let (tape, db) = (dir.path().join("tape.ndjson"), dir.path().join("rec.db"));
    let bin = env!("CARGO_BIN_EXE_cityops");
    let out = Command::new(bin)
        .args(["record", "--duration", "3s", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&tape)
        .arg("--db")
        .arg(&db)
        .env("CITYOPS_TEST_FEED_TOKEN", FEED_TOKEN)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut printed = [out.stdout, out.stderr].concat();
    let quarantine = Command::new(bin)
        .args(["quarantine", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(quarantine.status.success());
    assert!(
        String::from_utf8_lossy(&quarantine.stdout).contains("scada"),
        "the garbage was quarantined"
    );
    printed.extend([quarantine.stdout, quarantine.stderr].concat());
    assert!(
        server
            .received()
            .iter()
            .any(|r| r.header("authorization") == Some(FEED_TOKEN)),
        "the server got the credential"
    );
    let tape = std::fs::read(&tape).unwrap();
    assert!(!tape.is_empty(), "the answers were recorded");
    for (what, bytes) in [
        ("tape", &tape),
        ("output or logs", &printed),
        ("database", &database_bytes(&db)),
    ] {
        assert!(
            !contains(bytes, FEED_TOKEN),
            "the feed's credential appears in the {what}"
        );
    }
}
