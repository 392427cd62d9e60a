//! `cityops audit verify` against what an auditor meets: a tampered trail exits 3 and says
//! where, a mistyped path exits 1 and creates nothing, and a read-only evidence copy verifies
//! intact.
//!
//! Databases are made by the real CLI (`cityops dispatch --no-send`) and by the store's own
//! API, so nothing here needs a peer.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cityops_engine::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_cityops");

/// A database folder in a temporary directory.
struct Site {
    tmp: tempfile::TempDir,
    data: PathBuf,
    db: PathBuf,
}

fn site() -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("c.db");
    Site { data, db, tmp }
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
        .args(["--backend", "city-works", "--params", params, "--at", "24.9445,60.1709", "--count", &count.to_string(), "--no-send"])
        .env("CITYOPS_OPEN311_KEY", "test-key")
        .output()
        .unwrap();
    assert!(out.status.success(), "dispatch: {}", String::from_utf8_lossy(&out.stderr));
}

/// `cityops audit verify --db <db>`.
fn verify(db: &Path) -> Output {
    Command::new(BIN).args(["audit", "verify", "--db"]).arg(db).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code, showing what the command said when it is not the one expected.
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), String::from_utf8_lossy(&o.stderr));
}

/// Runs SQL on the database as an attacker with a SQLite shell would: the triggers that
/// refuse changes to the audit table go first.
fn tamper(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}")).unwrap();
}

/// The newest entry's number, read with plain SQL.
fn head(db: &Path) -> i64 {
    rusqlite::Connection::open(db).unwrap().query_row("SELECT max(seq) FROM audit", [], |r| r.get(0)).unwrap()
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
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())).collect();
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

/// Runs `cityops audit verify` on an evidence copy. Root ignores file modes, so under root the
/// command runs as `nobody`, and the read-only modes really refuse every write.
fn verify_as_reader(tmp: &Path, db: &Path) -> Output {
    let probe = tmp.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--db"]).arg(db).env("HOME", tmp);
    if root {
        const NOBODY: u32 = 65534;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        use std::os::unix::process::CommandExt;
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.output().unwrap()
}

#[test]
fn audit_verify_finds_a_tampered_entry() {
    let s = site();
    dispatch(&s, 4);
    assert_exit(&verify(&s.db), 0);
    // Someone with the file removes the guard and rewrites history.
    tamper(&s.db, "UPDATE audit SET operator = 'mallory' WHERE seq = 3;");
    let bad = verify(&s.db);
    assert_exit(&bad, 3);
    assert!(stdout(&bad).contains("entry 3"), "{}", stdout(&bad));
}

#[test]
fn a_mistyped_path_exits_1_and_creates_nothing() {
    let s = site();
    let typo = s.data.join("c.bd");
    let out = verify(&typo);
    assert_exit(&out, 1);
    assert!(!typo.exists(), "verify created {}", typo.display());
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.bd"), "the error names the file: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_read_only_evidence_copy_verifies_intact() {
    let s = site();
    dispatch(&s, 4);
    let evidence = s.tmp.path().join("evidence");
    copy_folder(&s.data, &evidence);
    chmod_read_only(&evidence);
    let before = listing(&evidence);
    let out = verify_as_reader(s.tmp.path(), &evidence.join("c.db"));
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with(&format!("audit trail intact: {} entries", head(&s.db))), "{}", stdout(&out));
    assert_eq!(listing(&evidence), before, "verify left the evidence folder as it was");
}

#[test]
fn a_read_only_copy_taken_while_the_database_is_open_verifies_intact() {
    let s = site();
    dispatch(&s, 1);
    // The app is running: its connection is open and its latest commits are in the WAL.
    let store = Store::open(&s.db).unwrap();
    for (i, name) in ["Aino", "Mikko", "Sari"].iter().enumerate() {
        store.sign_in(name, "operator", None, i as i64).unwrap();
    }
    assert!(std::fs::metadata(s.data.join("c.db-wal")).map(|m| m.len() > 0).unwrap_or(false), "the commits are in the WAL");
    let n = head(&s.db);
    let evidence = s.tmp.path().join("evidence");
    copy_folder(&s.data, &evidence);
    chmod_read_only(&evidence);
    let out = verify_as_reader(s.tmp.path(), &evidence.join("c.db"));
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with(&format!("audit trail intact: {n} entries")), "{}", stdout(&out));
    drop(store);
}
