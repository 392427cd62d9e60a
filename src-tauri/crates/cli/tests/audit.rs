//! The audit trail against someone who holds the database file but not the audit key: every
//! way of rewriting history the issue lists (deleting the newest entries, recomputing the
//! chain, editing the rows the trail vouches for) makes `cityops audit verify` exit 3 and say
//! what; a mistyped path and a missing key exit 1; a read-only evidence copy verifies intact.
//!
//! Databases are made by the real CLI (`cityops dispatch --no-send`) and by the store's own
//! API, with the key and anchors in a temporary config directory, so nothing here needs a peer
//! or touches the user's configuration.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cityops_store::{CallRow, DecisionRow, InjectRow, SignIn, SopTickRow, Store, TransitionRow};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_cityops");

/// A database folder and a config directory (key and anchors) in one temporary directory.
struct Site {
    tmp: tempfile::TempDir,
    data: PathBuf,
    db: PathBuf,
    config: PathBuf,
}

fn site() -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("c.db");
    let config = tmp.path().join("config");
    Site { data, db, config, tmp }
}

fn backends() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/backends/helsinki.toml")
}

/// Commits `count` crew requests through the CLI, without sending them.
fn dispatch(s: &Site, count: u32) {
    let params = r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"Feeder trip"}"#;
    let out = Command::new(BIN)
        .args(["dispatch", "--backends"])
        .arg(backends())
        .arg("--db")
        .arg(&s.db)
        .args([
            "--backend",
            "city-works",
            "--params",
            params,
            "--at",
            "24.9445,60.1709",
            "--count",
            &count.to_string(),
            "--no-send",
        ])
        .env("CITYOPS_CONFIG_DIR", &s.config)
        .env("CITYOPS_OPEN311_KEY", "test-key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dispatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cityops audit verify --db <db>` with the key and anchors in `config`.
fn verify(db: &Path, config: &Path) -> Output {
    Command::new(BIN)
        .args(["audit", "verify", "--db"])
        .arg(db)
        .env("CITYOPS_CONFIG_DIR", config)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code, showing what the command said when it is not the one expected.
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The store as the app writes it, with the key and anchors in the site's config directory.
fn writer(s: &Site) -> Store {
    Store::open(&s.db).unwrap().with_audit_dir(&s.config)
}

/// What operators do besides dispatching: a sign-in with a PIN, a transition, a manual
/// decision, a SOP tick and a trainer's inject, each with its audit entry.
fn operator_work(s: &Site) {
    let store = writer(s);
    store
        .roster_set("Aino", "supervisor", Some("2468"), "cityops roster add", "system", 500)
        .unwrap();
    assert_eq!(
        store.sign_in("Aino", "supervisor", Some("2468"), 1_000).unwrap(),
        SignIn::Accepted
    );
    let run = store.begin_run("helsinki-storm", "2026-11-27T10:00:00Z").unwrap();
    let t = TransitionRow {
        incident: "inc-1".into(),
        from: "new".into(),
        to: "acknowledged".into(),
        operator: "Aino".into(),
        role: "supervisor".into(),
        wall_ms: 2_000,
        scenario_ms: 60_000,
    };
    store.record_transition(run, &t).unwrap();
    let d = DecisionRow {
        id: 0,
        position_ms: 61_000,
        operator: "Aino".into(),
        at_ms: 61_000,
        action: r#"{"op":"split","member":"alarm/1"}"#.into(),
    };
    store.record_decision(run, &d, "supervisor", 3_000, "inc-1").unwrap();
    let tick = SopTickRow {
        incident: "inc-1".into(),
        step: 0,
        ticked: true,
        operator: "Aino".into(),
    };
    store.record_sop_tick(run, &tick, "supervisor", 4_000, 62_000).unwrap();
    let inject = InjectRow {
        n: 1,
        inject: "citizen-report".into(),
        scenario_ms: 63_000,
        trainer: "Tuomas".into(),
        entity: "inject/1".into(),
        title: "Smoke at the substation".into(),
        line: r#"{"t":63000,"feed":"inject.alerts","body":"{}"}"#.into(),
    };
    store.record_inject(run, &inject, 5_000).unwrap();
    let call = CallRow {
        n: 1,
        operator: "Aino".into(),
        role: "supervisor".into(),
        scenario_ms: 64_000,
        entity: "call/1".into(),
        incident_type: "obstruction".into(),
        line: r#"{"t":64000,"feed":"call.transport","body":"{}"}"#.into(),
    };
    store.record_call(run, &call, 6_000).unwrap();
}

/// Runs SQL on the database as an attacker with a SQLite shell would: the triggers that
/// refuse changes to the audit table go first.
fn tamper(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}"
    ))
    .unwrap();
}

/// A site with four dispatched actions and the operators' work, verified intact first.
fn worked_site() -> Site {
    let s = site();
    dispatch(&s, 2);
    operator_work(&s);
    dispatch(&s, 2);
    let ok = verify(&s.db, &s.config);
    assert_exit(&ok, 0);
    s
}

/// The newest entry's number, read with plain SQL.
fn head(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT max(seq) FROM audit", [], |r| r.get(0))
        .unwrap()
}

/// How many rows a table has, read with plain SQL.
fn rows(db: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn has_column(conn: &rusqlite::Connection, table: &str, column: &str) -> bool {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    let names: Vec<String> = stmt.query_map([], |r| r.get(1)).unwrap().map(Result::unwrap).collect();
    names.iter().any(|n| n == column)
}

/// Rewrites the whole chain with plain SHA-256 (the documented format before the keyed MAC:
/// SHA-256 of the JSON array of the entry's fields and the previous hash), as an attacker
/// with the source code and the file can; `downgrade` also marks every entry as unkeyed where
/// the schema records that.
fn recompute_plain_chain(db: &Path, downgrade: bool) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
        .unwrap();
    if downgrade && has_column(&conn, "audit", "scheme") {
        conn.execute("UPDATE audit SET scheme = 'sha256'", []).unwrap();
    }
    type Row = (
        i64,
        Option<i64>,
        i64,
        Option<i64>,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail FROM audit ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = "0".repeat(64);
    for (seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail) in rows {
        let canonical = serde_json::json!([
            seq,
            run,
            wall_ms,
            scenario_ms,
            operator,
            role,
            action,
            subject,
            detail,
            prev
        ]);
        let hash = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
        conn.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
}

/// Copies a folder's files into `to` (a new folder).
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Makes `dir` and its files read-only for everyone.
fn chmod_read_only(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::set_permissions(e.unwrap().path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

/// Runs `cityops audit verify` on an evidence copy with the key and anchors in `keys`. Root
/// ignores file modes, so under root the command runs as `nobody` (the keys handed to it), and
/// the read-only modes really refuse every write.
fn verify_as_reader(tmp: &Path, db: &Path, keys: &Path) -> Output {
    let probe = tmp.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--db"])
        .arg(db)
        .arg("--key-dir")
        .arg(keys)
        .env_remove("CITYOPS_CONFIG_DIR")
        .env("HOME", tmp);
    if root {
        const NOBODY: u32 = 65534;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in walk(keys) {
            std::os::unix::fs::chown(&e, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        use std::os::unix::process::CommandExt;
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.output().unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Copies a config directory (key and anchors) for a reader.
fn copy_config(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_config(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn an_untouched_trail_is_intact_keyed_and_anchored() {
    let s = site();
    dispatch(&s, 4);
    let ok = verify(&s.db, &s.config);
    assert_exit(&ok, 0);
    let text = stdout(&ok);
    let n = head(&s.db);
    assert!(text.starts_with(&format!("audit trail intact: {n} entries")), "{text}");
    assert!(text.contains(&format!("anchored at entry {n} (")), "{text}");
    // The four actions and the operator the command line signed in.
    assert_eq!((rows(&s.db, "actions"), rows(&s.db, "operators")), (4, 1));
    assert!(text.contains("5 rows cross-checked"), "{text}");
    let key = s.config.join("audit.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "the key is for its owner only"
    );
}

#[test]
fn concurrent_writers_leave_the_anchor_at_the_head() {
    let s = site();
    dispatch(&s, 1);
    let params = r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"Burst"}"#;
    let writers: Vec<_> = (0..3)
        .map(|_| {
            Command::new(BIN)
                .args(["dispatch", "--backends"])
                .arg(backends())
                .arg("--db")
                .arg(&s.db)
                .args([
                    "--backend",
                    "city-works",
                    "--params",
                    params,
                    "--at",
                    "24.9445,60.1709",
                    "--count",
                    "10",
                    "--no-send",
                ])
                .env("CITYOPS_CONFIG_DIR", &s.config)
                .env("CITYOPS_OPEN311_KEY", "test-key")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    let ok = verify(&s.db, &s.config);
    assert_exit(&ok, 0);
    assert_eq!(rows(&s.db, "actions"), 31);
    let n = head(&s.db);
    assert!(
        stdout(&ok).starts_with(&format!("audit trail intact: {n} entries")),
        "{}",
        stdout(&ok)
    );
    assert!(
        stdout(&ok).contains(&format!("anchored at entry {n} (")),
        "the anchor is at the head, not behind it: {}",
        stdout(&ok)
    );
}

#[test]
fn audit_verify_finds_a_tampered_entry() {
    let s = site();
    dispatch(&s, 4);
    assert_exit(&verify(&s.db, &s.config), 0);
    // Someone with the file removes the guard and rewrites history.
    tamper(&s.db, "UPDATE audit SET operator = 'mallory' WHERE seq = 3;");
    let bad = verify(&s.db, &s.config);
    assert_exit(&bad, 3);
    assert!(stdout(&bad).contains("entry 3:"), "{}", stdout(&bad));
}

#[test]
fn deleting_the_newest_entries_is_detected() {
    let s = site();
    dispatch(&s, 4);
    assert_exit(&verify(&s.db, &s.config), 0);
    let n = head(&s.db);
    tamper(&s.db, "DELETE FROM audit WHERE seq > 2;");
    let bad = verify(&s.db, &s.config);
    assert_exit(&bad, 3);
    assert!(
        stdout(&bad).contains(&format!("entries 3 to {n} are missing")),
        "{}",
        stdout(&bad)
    );
}

#[test]
fn recomputing_the_whole_chain_with_plain_sha256_is_detected() {
    let s = site();
    dispatch(&s, 4);
    assert_exit(&verify(&s.db, &s.config), 0);
    tamper(&s.db, "UPDATE audit SET operator = 'mallory' WHERE seq = 2;");
    recompute_plain_chain(&s.db, false);
    let bad = verify(&s.db, &s.config);
    assert_exit(&bad, 3);
    assert!(stdout(&bad).contains("entry 2:"), "{}", stdout(&bad));
}

#[test]
fn downgrading_the_chain_to_unkeyed_plain_sha256_is_detected_by_the_anchor() {
    let s = site();
    dispatch(&s, 4);
    assert_exit(&verify(&s.db, &s.config), 0);
    tamper(&s.db, "UPDATE audit SET operator = 'mallory' WHERE seq = 2;");
    recompute_plain_chain(&s.db, true);
    let bad = verify(&s.db, &s.config);
    assert_exit(&bad, 3);
    assert!(stdout(&bad).contains("anchor"), "{}", stdout(&bad));
}

/// Edits a worked site's database with `sql` and checks that verify exits 3 naming `named`.
fn tampering_is_named(sql: &str, named: &str) {
    let s = worked_site();
    tamper(&s.db, sql);
    let bad = verify(&s.db, &s.config);
    assert_exit(&bad, 3);
    assert!(stdout(&bad).contains(named), "{sql}: {}", stdout(&bad));
}

#[test]
fn editing_an_action_body_is_detected_and_named() {
    tampering_is_named(
        "UPDATE actions SET body = replace(body, 'Feeder', 'Fake') WHERE id = 3;",
        "actions row [3]",
    );
}

#[test]
fn editing_an_action_destination_is_detected_and_named() {
    tampering_is_named(
        "UPDATE actions SET destination = 'POST http://203.0.113.9/requests.json' WHERE id = 1;",
        "actions row [1]",
    );
}

#[test]
fn editing_a_transition_is_detected_and_named() {
    tampering_is_named(
        "UPDATE incident_transitions SET operator = 'Mikko' WHERE id = 1;",
        "incident_transitions row [1]",
    );
}

#[test]
fn editing_a_decision_is_detected_and_named() {
    tampering_is_named(
        "UPDATE manual_decisions SET action = '{\"op\":\"merge\"}' WHERE id = 1;",
        "manual_decisions row [1]",
    );
}

#[test]
fn editing_an_operator_pin_hash_is_detected_and_named() {
    // Mallory puts in the hash of a PIN she knows (any value will do for the check).
    tampering_is_named(
        "UPDATE operators SET pin_hash = lower(hex(randomblob(32))) WHERE name = 'Aino';",
        "operators row [\"Aino\"]",
    );
}

#[test]
fn editing_a_sop_tick_an_inject_or_a_call_is_detected_and_named() {
    for (sql, named) in [
        ("UPDATE sop_ticks SET ticked = 0 WHERE id = 1;", "sop_ticks row [1]"),
        (
            "UPDATE injects SET line = replace(line, '63000', '1000') WHERE n = 1;",
            "injects row [1,1]",
        ),
        (
            "UPDATE operator_calls SET operator = 'Mallory' WHERE n = 1;",
            "operator_calls row [1,1]",
        ),
    ] {
        tampering_is_named(sql, named);
    }
}

#[test]
fn a_row_added_or_removed_behind_the_trails_back_is_detected() {
    for (sql, named) in [
        (
            "INSERT INTO incident_transitions (run, incident, from_status, to_status, operator, role, wall_ms, scenario_ms) \
             VALUES (1, 'inc-1', 'acknowledged', 'closed', 'Aino', 'supervisor', 9000, 90000);",
            "incident_transitions row [2]",
        ),
        ("INSERT INTO operators (name, role, created_wall_ms) VALUES ('mallory', 'supervisor', 1);", "operators row [\"mallory\"]"),
        ("DELETE FROM manual_decisions WHERE id = 1;", "manual_decisions row [1]"),
    ] {
        tampering_is_named(sql, named);
    }
}

#[test]
fn a_mistyped_path_exits_1_and_creates_nothing() {
    let s = site();
    let typo = s.data.join("c.bd");
    let out = verify(&typo, &s.config);
    assert_exit(&out, 1);
    assert!(!typo.exists(), "verify created {}", typo.display());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("c.bd"),
        "the error names the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_keyed_trail_without_its_key_cannot_be_checked() {
    let s = worked_site();
    let elsewhere = s.tmp.path().join("other-config");
    let out = verify(&s.db, &elsewhere);
    assert_exit(&out, 1);
    assert!(!elsewhere.exists(), "verify never creates a key");
}

#[test]
fn a_read_only_evidence_copy_verifies_intact() {
    let s = worked_site();
    let evidence = s.tmp.path().join("evidence");
    copy_folder(&s.data, &evidence);
    chmod_read_only(&evidence);
    let before = listing(&evidence);
    let keys = s.tmp.path().join("evidence-keys");
    copy_config(&s.config, &keys);
    let out = verify_as_reader(s.tmp.path(), &evidence.join("c.db"), &keys);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!("audit trail intact: {} entries", head(&s.db))),
        "{}",
        stdout(&out)
    );
    assert_eq!(listing(&evidence), before, "verify left the evidence folder as it was");
}

#[test]
fn a_read_only_copy_taken_while_the_database_is_open_verifies_intact() {
    let s = site();
    dispatch(&s, 1);
    // The app is running: its connection is open and its latest commits are in the WAL.
    let store = writer(&s);
    for (i, name) in ["Aino", "Mikko", "Sari"].iter().enumerate() {
        store.sign_in(name, "operator", None, i as i64).unwrap();
    }
    assert!(
        std::fs::metadata(s.data.join("c.db-wal"))
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "the commits are in the WAL"
    );
    let n = head(&s.db);
    let evidence = s.tmp.path().join("evidence");
    copy_folder(&s.data, &evidence);
    chmod_read_only(&evidence);
    let keys = s.tmp.path().join("evidence-keys");
    copy_config(&s.config, &keys);
    let out = verify_as_reader(s.tmp.path(), &evidence.join("c.db"), &keys);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!("audit trail intact: {n} entries")),
        "{}",
        stdout(&out)
    );
    drop(store);
}
