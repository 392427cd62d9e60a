//! The audit trail: a chain of entries sealed with a key kept outside the database, a head
//! anchored outside the database, and entries that vouch for the rows operators' actions wrote.
//!
//! Whoever holds only the database file can drop the triggers and change anything in it. Each
//! entry is sealed with HMAC-SHA256 under a key they do not have ([`KEY_FILE`] in the config
//! directory, [`config_dir`]), over its fields, the previous entry's seal and the database's
//! random id, so an edited entry cannot be sealed again. After every audited commit the head
//! (sequence and seal) is written to an anchor file in the same directory, named by the
//! database's id (so an evidence copy of the database finds its anchor): deleting the newest
//! entries leaves the anchor above the head, and rewriting the chain, keyed or with the plain
//! SHA-256 used before, changes the entry the anchor names. The entry of an audited write also
//! carries a digest of the row it wrote ([`Vouch`]), so editing an action's bytes, a transition,
//! a decision, a SOP tick, an inject or an operator's PIN hash is found by recomputing it.
//!
//! Entries written before the key existed are plain SHA-256 (`scheme` 'sha256', see
//! [`super::incidents::audit_hash`]); they still verify, and a trail of only such entries is
//! reported as not anchored. What this cannot see: a database rewritten wholesale into that
//! unkeyed form under a new id (it has no anchor to contradict it, and is reported as not
//! anchored), and deletions of the newest entries within the anchor's lag (one entry, after a
//! crash between a commit and its anchor write).

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::incidents::{audit_hash, AuditEntry, AuditRecord, GENESIS};
use super::{RunId, Store, StoreError};

/// The key's file in the config directory: 32 random bytes as hex, readable by its owner only.
pub const KEY_FILE: &str = "audit.key";

/// The folder of the anchors in the config directory: `<database id>.json` per database.
pub const ANCHOR_DIR: &str = "audit-anchors";

/// How entries written before the keyed MAC are sealed: SHA-256 of their fields.
pub const SCHEME_PLAIN: &str = "sha256";

/// How entries are sealed now: HMAC-SHA256 under the audit key.
pub const SCHEME_KEYED: &str = "hmac-sha256";

/// What a row digest stands for when the row does not exist (a future removal, such as an
/// operator taken off the roster, vouches for the row's absence).
const ABSENT: &str = "absent";

/// Problems past this many are counted, not listed, by the report's text.
const LISTED_PROBLEMS: usize = 50;

/// A failure around the audit key or the anchors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// None of the variables that locate the config directory is set.
    #[error("no config directory for the audit key: set CITYOPS_CONFIG_DIR, XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// The key file could not be read or created.
    #[error("audit key {path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file holds something other than 64 hex digits (its content is never shown).
    #[error("audit key {path} is not 64 hex digits")]
    MalformedKey {
        /// The key file.
        path: PathBuf,
    },
    /// An anchor file could not be read or written.
    #[error("audit anchor {path}: {source}")]
    Anchor {
        /// The anchor file (or its lock).
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An anchor file holds something other than an anchor.
    #[error("audit anchor {path} is unreadable: {reason}")]
    MalformedAnchor {
        /// The anchor file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The database's id is not what cityops writes (it names a file, so it is checked first).
    #[error("the database id {0:?} is not 32 hex digits")]
    BadDatabaseId(String),
    /// The database has no id (written before the keyed audit trail, or the row was removed).
    #[error("the database has no id")]
    NoDatabaseId,
}

/// The directory of cityops' own state outside any database: the audit key and the anchors.
/// It is `$CITYOPS_CONFIG_DIR` when set, else `$XDG_CONFIG_HOME/cityops` (when that is an
/// absolute path, as the XDG base directory specification requires), else
/// `$HOME/.config/cityops`. Empty variables count as unset.
pub fn config_dir() -> Result<PathBuf, AuditError> {
    config_dir_from(|name| std::env::var_os(name))
}

/// [`config_dir`] with the environment passed in, so the rule is tested without changing the
/// process's environment.
fn config_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, AuditError> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("CITYOPS_CONFIG_DIR") {
        return Ok(dir);
    }
    if let Some(xdg) = set("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("cityops"));
    }
    set("HOME")
        .map(|home| home.join(".config").join("cityops"))
        .ok_or(AuditError::NoConfigDir)
}

/// Creates a directory (and its parents) that only its owner can enter.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file only its owner can read.
fn private_file(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// The audit key. It is never logged or printed: its `Debug` shows nothing of it.
pub struct AuditKey {
    bytes: [u8; 32],
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(redacted)")
    }
}

impl AuditKey {
    /// The key in `dir`, if there is one. Verifying never creates a key: a missing key means
    /// the trail cannot be checked, not that a new one should start.
    pub fn load(dir: &Path) -> Result<Option<AuditKey>, AuditError> {
        let path = dir.join(KEY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AuditError::Key { path, source }),
        };
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(AuditError::MalformedKey { path: path.clone() })?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(&path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the audit key can be read by others than its owner; chmod 600 it");
            }
        }
        Ok(Some(AuditKey { bytes }))
    }

    /// The key in `dir`, created on first use (with `dir`, mode 0700, and the file, mode 0600).
    /// Processes that start at the same time agree on one key: each writes its candidate to a
    /// private temporary file and links it into place, which fails for all but the first.
    pub fn load_or_create(dir: &Path) -> Result<AuditKey, AuditError> {
        if let Some(key) = AuditKey::load(dir)? {
            return Ok(key);
        }
        let path = dir.join(KEY_FILE);
        let io = |source| AuditError::Key {
            path: path.clone(),
            source,
        };
        private_dir(dir).map_err(io)?;
        let candidate = dir.join(format!(
            ".{KEY_FILE}.{}.{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let written = (|| {
            let mut f = private_file(OpenOptions::new().write(true).create_new(true)).open(&candidate)?;
            f.write_all(format!("{}\n", hex::encode(rand::random::<[u8; 32]>())).as_bytes())?;
            f.sync_all()
        })();
        let linked = written.and_then(|()| std::fs::hard_link(&candidate, &path));
        let _ = std::fs::remove_file(&candidate);
        match linked {
            Ok(()) => {
                // The link must survive a power cut, or entries sealed with this key could not
                // be checked after it.
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
                tracing::info!(path = %path.display(), "created the audit key");
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        AuditKey::load(dir)?.ok_or_else(|| io(ErrorKind::NotFound.into()))
    }

    /// A key that lives as long as the process: an in-memory database cannot be checked by
    /// anyone else, so it needs no file.
    fn ephemeral() -> AuditKey {
        AuditKey { bytes: rand::random() }
    }

    fn seal(&self, canonical: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.bytes).expect("HMAC takes a key of any length");
        mac.update(canonical.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// What a keyed entry's MAC covers: a version tag, the database's id (so an entry cannot be
/// moved into another database), every field and the previous entry's seal.
fn keyed_canonical(database: &str, e: &AuditEntry) -> String {
    serde_json::json!([
        "cityops audit 1",
        database,
        e.seq,
        e.run,
        e.wall_ms,
        e.scenario_ms,
        e.operator,
        e.role,
        e.action,
        e.subject,
        e.detail,
        e.vouches,
        e.prev_hash
    ])
    .to_string()
}

/// The head of a chain as it stands outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The database's id.
    pub database: String,
    /// The newest anchored entry.
    pub seq: i64,
    /// Its seal.
    pub mac: String,
}

fn check_database_id(id: &str) -> Result<(), AuditError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(AuditError::BadDatabaseId(id.to_owned()))
    }
}

/// Where the anchor of database `id` lives in config directory `dir`.
pub fn anchor_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(ANCHOR_DIR).join(format!("{id}.json"))
}

/// The anchor of database `id`, if it has one.
pub fn read_anchor(dir: &Path, id: &str) -> Result<Option<Anchor>, AuditError> {
    check_database_id(id)?;
    let path = anchor_path(dir, id);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AuditError::Anchor { path, source }),
    };
    let anchor: Anchor = serde_json::from_str(&text).map_err(|e| AuditError::MalformedAnchor {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if anchor.database != id {
        return Err(AuditError::MalformedAnchor {
            path,
            reason: format!("it names database {}", anchor.database),
        });
    }
    Ok(Some(anchor))
}

/// Moves the anchor of `anchor.database` forward to `anchor`, never backwards: several
/// connections and processes append to one chain and each anchors after its commit, so a
/// slower one may arrive with an older head. Read, compare and write happen under an OS lock
/// on a lock file beside the anchor (not the anchor itself, which the rename replaces), and
/// the new anchor is written to a temporary file and renamed over the old one, so a crash
/// leaves the old anchor or the new one. The anchor is not flushed on its own: that made a
/// durable commit 2.4 to 3 times as slow (BENCHMARKS.md), and an anchor that a power cut sets
/// back only lags, which verify accepts (the database's commit is on disk before its anchor
/// is written, so the anchor is never ahead of it). Returns whether it moved.
pub fn advance_anchor(dir: &Path, anchor: &Anchor) -> Result<bool, AuditError> {
    check_database_id(&anchor.database)?;
    let folder = dir.join(ANCHOR_DIR);
    let path = anchor_path(dir, &anchor.database);
    let io = |at: &Path| {
        let at = at.to_owned();
        move |source| AuditError::Anchor { path: at, source }
    };
    private_dir(&folder).map_err(io(&folder))?;
    let lock_path = folder.join(format!("{}.lock", anchor.database));
    let lock = private_file(OpenOptions::new().read(true).write(true).create(true).truncate(false))
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    match read_anchor(dir, &anchor.database) {
        Ok(Some(current)) if current.seq >= anchor.seq => return Ok(false),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "replacing an unreadable audit anchor"),
    }
    let temporary = folder.join(format!("{}.json.tmp", anchor.database));
    let text = serde_json::to_string(anchor).expect("an anchor serializes");
    (|| {
        let mut f = private_file(OpenOptions::new().write(true).create(true).truncate(true)).open(&temporary)?;
        f.write_all(text.as_bytes())
    })()
    .map_err(io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(io(&path))?;
    drop(lock);
    Ok(true)
}

/// A table whose rows the audit trail vouches for: the columns that identify a row and the
/// ones an audited write fixes. Columns that change on their own later (an action's status,
/// attempts, reference) are left out. A column added to one of these tables that an audited
/// write sets belongs in `columns`.
#[derive(Debug)]
struct VouchedTable {
    name: &'static str,
    key: &'static [&'static str],
    columns: &'static [&'static str],
    /// Keys only grow (ids, run and number), so a row newer than a vouched one must be vouched
    /// too, also in a database that has older, unkeyed rows.
    ordered: bool,
}

const ACTIONS: VouchedTable = VouchedTable {
    name: "actions",
    key: &["id"],
    columns: &[
        "key",
        "run",
        "incident",
        "backend",
        "kind",
        "summary",
        "destination",
        "headers",
        "body",
        "device",
        "exercise",
        "operator",
        "role",
        "created_wall_ms",
        "scenario_ms",
    ],
    ordered: true,
};
const TRANSITIONS: VouchedTable = VouchedTable {
    name: "incident_transitions",
    key: &["id"],
    columns: &[
        "run",
        "incident",
        "from_status",
        "to_status",
        "operator",
        "role",
        "wall_ms",
        "scenario_ms",
    ],
    ordered: true,
};
const DECISIONS: VouchedTable = VouchedTable {
    name: "manual_decisions",
    key: &["id"],
    columns: &["run", "position_ms", "operator", "at_ms", "wall_ms", "action"],
    ordered: true,
};
const SOP_TICKS: VouchedTable = VouchedTable {
    name: "sop_ticks",
    key: &["id"],
    columns: &["run", "incident", "step", "ticked", "operator", "wall_ms"],
    ordered: true,
};
const OWNERS: VouchedTable = VouchedTable {
    name: "incident_owners",
    key: &["id"],
    columns: &["run", "incident", "owner", "operator", "role", "wall_ms", "scenario_ms"],
    ordered: true,
};
const INJECTS: VouchedTable = VouchedTable {
    name: "injects",
    key: &["run", "n"],
    columns: &["inject", "scenario_ms", "trainer", "entity", "title", "line", "wall_ms"],
    ordered: true,
};
const NOTES: VouchedTable = VouchedTable {
    name: "incident_notes",
    key: &["id"],
    columns: &["run", "incident", "operator", "role", "wall_ms", "scenario_ms", "text"],
    ordered: true,
};
const OVERRIDES: VouchedTable = VouchedTable {
    name: "incident_overrides",
    key: &["id"],
    columns: &[
        "run",
        "incident",
        "operator",
        "role",
        "wall_ms",
        "scenario_ms",
        "steps",
        "reason",
    ],
    ordered: true,
};
const CALLS: VouchedTable = VouchedTable {
    name: "operator_calls",
    key: &["run", "n"],
    columns: &[
        "operator",
        "role",
        "scenario_ms",
        "wall_ms",
        "entity",
        "incident_type",
        "line",
    ],
    ordered: true,
};
const OPERATORS: VouchedTable = VouchedTable {
    name: "operators",
    key: &["name"],
    columns: &["role", "pin_salt", "pin_hash", "created_wall_ms"],
    ordered: false,
};

const VOUCHED: [&VouchedTable; 10] = [
    &ACTIONS,
    &TRANSITIONS,
    &DECISIONS,
    &SOP_TICKS,
    &OWNERS,
    &INJECTS,
    &OPERATORS,
    &NOTES,
    &OVERRIDES,
    &CALLS,
];

/// One value of a row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyPart {
    /// An id or number.
    Int(i64),
    /// A name.
    Text(String),
}

impl rusqlite::ToSql for KeyPart {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            KeyPart::Int(i) => i.to_sql(),
            KeyPart::Text(s) => s.to_sql(),
        }
    }
}

/// The row an audited write wrote, which its entry vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouch<'a> {
    /// An action, by id.
    Action(i64),
    /// A lifecycle transition, by id.
    Transition(i64),
    /// A manual decision, by id.
    Decision(i64),
    /// A SOP tick, by id.
    SopTick(i64),
    /// A change of an incident's owner, by id.
    Owner(i64),
    /// A note in an incident's narrative log, by id.
    Note(i64),
    /// A supervisor's override of required SOP steps, by id.
    Override(i64),
    /// A trainer's inject, by run and number.
    Inject(RunId, u64),
    /// An incident an operator entered by hand, by run and number.
    Call(RunId, u64),
    /// An operator, by name.
    Operator(&'a str),
}

impl Vouch<'_> {
    fn table(&self) -> &'static VouchedTable {
        match self {
            Vouch::Action(_) => &ACTIONS,
            Vouch::Transition(_) => &TRANSITIONS,
            Vouch::Decision(_) => &DECISIONS,
            Vouch::SopTick(_) => &SOP_TICKS,
            Vouch::Owner(_) => &OWNERS,
            Vouch::Note(_) => &NOTES,
            Vouch::Override(_) => &OVERRIDES,
            Vouch::Inject(..) => &INJECTS,
            Vouch::Call(..) => &CALLS,
            Vouch::Operator(_) => &OPERATORS,
        }
    }

    fn key(&self) -> Vec<KeyPart> {
        match *self {
            Vouch::Action(id)
            | Vouch::Transition(id)
            | Vouch::Decision(id)
            | Vouch::SopTick(id)
            | Vouch::Owner(id)
            | Vouch::Note(id)
            | Vouch::Override(id) => {
                vec![KeyPart::Int(id)]
            }
            Vouch::Inject(run, n) | Vouch::Call(run, n) => vec![KeyPart::Int(run), KeyPart::Int(n as i64)],
            Vouch::Operator(name) => vec![KeyPart::Text(name.to_owned())],
        }
    }
}

/// What an entry's `vouches` column holds.
#[derive(Debug, Serialize, Deserialize)]
struct Vouched {
    table: String,
    key: Vec<KeyPart>,
    sha256: String,
}

/// SHA-256 of a row's vouched fields: the table's name, then each key and vouched column's
/// name and value, every value tagged with its SQLite type and every string and blob with its
/// length, so no two different rows give the same bytes. `None` when the row does not exist.
fn row_digest(conn: &Connection, table: &VouchedTable, key: &[KeyPart]) -> Result<Option<String>, StoreError> {
    if key.len() != table.key.len() {
        return Ok(None);
    }
    let wanted: Vec<&str> = table.key.iter().chain(table.columns).copied().collect();
    let filter: Vec<String> = table
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ?{}", i + 1))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        wanted.join(", "),
        table.name,
        filter.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let digest = stmt
        .query_row(rusqlite::params_from_iter(key), |row| {
            let mut h = Sha256::new();
            feed(&mut h, ValueRef::Text(table.name.as_bytes()));
            for (i, column) in wanted.iter().enumerate() {
                feed(&mut h, ValueRef::Text(column.as_bytes()));
                feed(&mut h, row.get_ref(i)?);
            }
            Ok(hex::encode(h.finalize()))
        })
        .optional()?;
    Ok(digest)
}

fn feed(h: &mut Sha256, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.update([0]),
        ValueRef::Integer(i) => {
            h.update([1]);
            h.update(i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            h.update([2]);
            h.update(f.to_bits().to_be_bytes());
        }
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            h.update([if matches!(v, ValueRef::Text(_)) { 3 } else { 4 }]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
    }
}

/// Where a store finds its audit key and anchors, and the key and database id once read.
#[derive(Default)]
pub(super) struct AuditSetup {
    /// Set by [`Store::with_audit_dir`]; otherwise [`config_dir`] at first use.
    dir: Option<PathBuf>,
    key: OnceCell<AuditKey>,
    database: OnceCell<String>,
}

impl AuditSetup {
    fn dir(&self) -> Result<PathBuf, AuditError> {
        match &self.dir {
            Some(dir) => Ok(dir.clone()),
            None => config_dir(),
        }
    }

    /// The key to seal with, created on first use; an in-memory database without a directory
    /// of its own gets a key that lives with the process.
    fn sealing_key(&self, in_memory: bool) -> Result<&AuditKey, AuditError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = if in_memory && self.dir.is_none() {
            AuditKey::ephemeral()
        } else {
            AuditKey::load_or_create(&self.dir()?)?
        };
        Ok(self.key.get_or_init(|| key))
    }

    /// The key to check with, if there is one; never creates it.
    fn checking_key(&self) -> Result<Option<&AuditKey>, AuditError> {
        if let Some(key) = self.key.get() {
            return Ok(Some(key));
        }
        Ok(AuditKey::load(&self.dir()?)?.map(|key| self.key.get_or_init(|| key)))
    }
}

/// The entry a durable transaction appended last, to anchor once it is committed.
#[derive(Debug, Clone)]
struct Head {
    database: String,
    seq: i64,
    mac: String,
}

/// A durable transaction (see [`Store::durably`]): a [`Transaction`] that also remembers the
/// audit entry it appended, so that entry becomes the anchor once the commit is on disk.
pub struct AuditTx<'a> {
    tx: Transaction<'a>,
    store: &'a Store,
    head: Cell<Option<Head>>,
}

impl<'a> Deref for AuditTx<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        &self.tx
    }
}

impl Store {
    /// Keeps the audit key and anchors in `dir` instead of the config directory: for tests,
    /// and for `cityops audit verify --key-dir`.
    pub fn with_audit_dir(mut self, dir: impl Into<PathBuf>) -> Store {
        self.audit = AuditSetup {
            dir: Some(dir.into()),
            ..AuditSetup::default()
        };
        self
    }

    /// The database's random id, which names its anchor (`None` in a database older than the
    /// keyed audit trail).
    pub fn database_id(&self) -> Result<Option<String>, StoreError> {
        if !self.has_table("meta")? {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'database_id'", [], |r| r.get(0))
            .optional()?)
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([name])?)
    }

    fn has_column(&self, table: &str, column: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, column])?)
    }

    /// Runs one operator action in its own transaction with `synchronous=FULL`, then goes back
    /// to the group-commit setting. The transaction takes the write lock before it reads
    /// (`BEGIN IMMEDIATE`), so connections that append to the audit chain at the same time (the
    /// engine's and the outbox senders') queue instead of forking the chain. Once the commit is
    /// on disk, the entry it appended becomes the chain's anchor; an anchor that cannot be
    /// written is logged and does not undo the commit (the anchor then lags, which `verify`
    /// accepts).
    pub(super) fn durably<T>(&self, f: impl FnOnce(&AuditTx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if !self.full {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = (|| -> Result<(T, Option<Head>), StoreError> {
            let tx = AuditTx {
                tx: Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?,
                store: self,
                head: Cell::new(None),
            };
            let out = f(&tx)?;
            if let Some(row) = self.site_event.take() {
                crate::site::insert_event(&tx, &row)?;
            }
            let AuditTx { tx, head, .. } = tx;
            tx.commit()?;
            Ok((out, head.into_inner()))
        })();
        if !self.full {
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let (out, head) = result?;
        if let Some(head) = head {
            self.anchor(head);
        }
        Ok(out)
    }

    fn anchor(&self, head: Head) {
        // Nobody else can open an in-memory database, so there is nothing to anchor it for.
        if self.path().is_empty() {
            return;
        }
        let seq = head.seq;
        let anchor = Anchor {
            database: head.database,
            seq,
            mac: head.mac,
        };
        if let Err(e) = self.audit.dir().and_then(|dir| advance_anchor(&dir, &anchor)) {
            tracing::warn!(error = %e, seq, "could not anchor the audit chain's head outside the database");
        }
    }

    /// Appends an entry to the audit chain, sealed with the audit key.
    pub(super) fn append_audit(tx: &AuditTx<'_>, r: &AuditRecord<'_>) -> Result<AuditEntry, StoreError> {
        Store::append_sealed(tx, r, None)
    }

    /// Appends an entry that vouches for the row `vouch` names, as the transaction left it.
    pub(super) fn append_audit_vouching(
        tx: &AuditTx<'_>,
        r: &AuditRecord<'_>,
        vouch: Vouch<'_>,
    ) -> Result<AuditEntry, StoreError> {
        Store::append_sealed(tx, r, Some(vouch))
    }

    /// Appends the entry of a change to operator `name` (created, its role or PIN changed,
    /// removed), vouching for the operator's row as the transaction left it. Every write to
    /// `operators` goes through here, so verify can tell an edited PIN hash from a real change.
    pub(super) fn append_audit_for_operator(
        tx: &AuditTx<'_>,
        r: &AuditRecord<'_>,
        name: &str,
    ) -> Result<AuditEntry, StoreError> {
        Store::append_sealed(tx, r, Some(Vouch::Operator(name)))
    }

    fn append_sealed(
        tx: &AuditTx<'_>,
        r: &AuditRecord<'_>,
        vouch: Option<Vouch<'_>>,
    ) -> Result<AuditEntry, StoreError> {
        let store = tx.store;
        let key = store.audit.sealing_key(store.path().is_empty())?;
        let database = match store.audit.database.get() {
            Some(id) => id.clone(),
            None => {
                let id: String = tx
                    .query_row("SELECT value FROM meta WHERE name = 'database_id'", [], |r| r.get(0))
                    .optional()?
                    .ok_or(AuditError::NoDatabaseId)?;
                check_database_id(&id)?;
                store.audit.database.get_or_init(|| id).clone()
            }
        };
        let last: Option<(i64, String)> = tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let (seq, prev_hash) = last.map(|(s, h)| (s + 1, h)).unwrap_or((1, GENESIS.to_owned()));
        let vouches = match vouch {
            None => None,
            Some(v) => {
                let (table, key) = (v.table(), v.key());
                let sha256 = row_digest(tx, table, &key)?.unwrap_or_else(|| ABSENT.to_owned());
                Some(
                    serde_json::to_string(&Vouched {
                        table: table.name.to_owned(),
                        key,
                        sha256,
                    })
                    .expect("a vouch serializes"),
                )
            }
        };
        let mut e = AuditEntry {
            seq,
            run: r.run,
            wall_ms: r.wall_ms,
            scenario_ms: r.scenario_ms,
            operator: r.operator.to_owned(),
            role: r.role.to_owned(),
            action: r.action.to_owned(),
            subject: r.subject.to_owned(),
            detail: r.detail.clone(),
            prev_hash,
            hash: String::new(),
            scheme: SCHEME_KEYED.to_owned(),
            vouches,
        };
        e.hash = key.seal(&keyed_canonical(&database, &e));
        tx.prepare_cached(
            "INSERT INTO audit (seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail, prev_hash, hash, scheme, vouches) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![e.seq, e.run, e.wall_ms, e.scenario_ms, e.operator, e.role, e.action, e.subject, e.detail, e.prev_hash, e.hash, e.scheme, e.vouches])?;
        tx.head.set(Some(Head {
            database,
            seq: e.seq,
            mac: e.hash.clone(),
        }));
        Ok(e)
    }

    /// The whole audit trail, oldest first (in a database older than the keyed audit trail,
    /// every entry is plain SHA-256).
    pub fn audit_trail(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let keyed = self.has_column("audit", "scheme")?;
        let sql = if keyed {
            "SELECT seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail, prev_hash, hash, scheme, vouches FROM audit ORDER BY seq"
        } else {
            "SELECT seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail, prev_hash, hash, 'sha256', NULL FROM audit ORDER BY seq"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                run: r.get(1)?,
                wall_ms: r.get(2)?,
                scenario_ms: r.get(3)?,
                operator: r.get(4)?,
                role: r.get(5)?,
                action: r.get(6)?,
                subject: r.get(7)?,
                detail: r.get(8)?,
                prev_hash: r.get(9)?,
                hash: r.get(10)?,
                scheme: r.get(11)?,
                vouches: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Checks the audit trail as far as it can: every entry's seal against its fields and the
    /// entry before it, the anchor outside the database against the head, and every row the
    /// trail vouches for against its digest. Reads only; never creates a key or an anchor.
    pub fn check_audit(&self) -> Result<AuditReport, StoreError> {
        let trail = self.audit_trail()?;
        let database = self.database_id()?;
        let in_memory = self.path().is_empty();
        let keyed = trail.iter().filter(|e| e.scheme == SCHEME_KEYED).count() as u64;
        let mut report = AuditReport {
            entries: trail.len() as u64,
            keyed,
            database_id: database.clone(),
            anchor: AnchorCheck::NotApplicable,
            rows_checked: 0,
            rows_unvouched: 0,
            problems: Vec::new(),
            incomplete: Vec::new(),
        };
        let key = if keyed == 0 {
            None
        } else {
            match self.audit.checking_key() {
                Ok(Some(key)) => Some(key),
                Ok(None) => {
                    let dir = self
                        .audit
                        .dir()
                        .map(|d| d.join(KEY_FILE).display().to_string())
                        .unwrap_or_default();
                    report.incomplete.push(format!("no audit key at {dir}, so no MAC was checked: entries sealed with a key are checked with that key (--key-dir)"));
                    None
                }
                Err(e) => {
                    report.incomplete.push(format!("{e}, so no MAC was checked"));
                    None
                }
            }
        };
        if keyed > 0 && database.is_none() {
            report.problems.push(AuditProblem::NoDatabaseId);
        }
        check_chain(&trail, key.zip(database.as_deref()), &mut report.problems);
        if !in_memory {
            self.check_anchor(&trail, database.as_deref(), &mut report);
        }
        if self.has_column("audit", "vouches")? {
            self.check_rows(&trail, &mut report)?;
        }
        Ok(report)
    }

    fn check_anchor(&self, trail: &[AuditEntry], database: Option<&str>, report: &mut AuditReport) {
        let keyed = report.keyed > 0;
        let Some(id) = database else {
            report.anchor = AnchorCheck::Unkeyed;
            return;
        };
        let dir = match self.audit.dir() {
            Ok(dir) => dir,
            Err(e) => {
                report.incomplete.push(e.to_string());
                return;
            }
        };
        let path = anchor_path(&dir, id);
        let head = trail.last().map(|e| e.seq).unwrap_or(0);
        match read_anchor(&dir, id) {
            Err(e) => report.incomplete.push(e.to_string()),
            Ok(None) if keyed => {
                report.incomplete.push(format!(
                    "no anchor for this database at {}: the newest entries cannot be vouched for",
                    path.display()
                ));
                report.anchor = AnchorCheck::Missing { path };
            }
            Ok(None) => report.anchor = AnchorCheck::Unkeyed,
            Ok(Some(a)) if a.seq > head => report.problems.push(AuditProblem::Deleted {
                from: head + 1,
                to: a.seq,
            }),
            Ok(Some(a)) => match trail.iter().find(|e| e.seq == a.seq) {
                Some(e) if e.hash == a.mac => report.anchor = AnchorCheck::Matched { seq: a.seq, head, path },
                _ => report.problems.push(AuditProblem::AnchorMismatch { seq: a.seq }),
            },
        }
    }

    fn check_rows(&self, trail: &[AuditEntry], report: &mut AuditReport) -> Result<(), StoreError> {
        // The latest keyed entry per row wins: an operator's row changes with each sign-in.
        let mut vouched: BTreeMap<(&'static str, Vec<KeyPart>), (i64, String)> = BTreeMap::new();
        for e in trail.iter().filter(|e| e.scheme == SCHEME_KEYED) {
            let Some(text) = &e.vouches else { continue };
            match serde_json::from_str::<Vouched>(text) {
                Ok(v) => match VOUCHED.iter().find(|t| t.name == v.table) {
                    Some(t) => {
                        vouched.insert((t.name, v.key), (e.seq, v.sha256));
                    }
                    None => report.problems.push(AuditProblem::Entry {
                        seq: e.seq,
                        fault: EntryFault::Vouch,
                    }),
                },
                Err(_) => report.problems.push(AuditProblem::Entry {
                    seq: e.seq,
                    fault: EntryFault::Vouch,
                }),
            }
        }
        for ((name, key), (seq, digest)) in &vouched {
            let table = VOUCHED
                .iter()
                .find(|t| t.name == *name)
                .expect("only known tables are collected");
            let now = if self.has_table(name)? {
                row_digest(&self.conn, table, key)?
            } else {
                None
            };
            let shown = serde_json::to_string(key).expect("a key serializes");
            match now {
                Some(d) if d == *digest => report.rows_checked += 1,
                None if digest == ABSENT => report.rows_checked += 1,
                Some(_) => report.problems.push(AuditProblem::RowChanged {
                    seq: *seq,
                    table: name,
                    key: shown,
                }),
                None => report.problems.push(AuditProblem::RowMissing {
                    seq: *seq,
                    table: name,
                    key: shown,
                }),
            }
        }
        // Rows no entry vouches for: in a trail that was keyed from its first entry every row
        // needs one; in an older database, rows older than the first vouched one of their table
        // were written before and are only counted.
        let born_keyed = trail.first().is_none_or(|e| e.scheme == SCHEME_KEYED);
        for table in VOUCHED {
            if !self.has_table(table.name)? {
                continue;
            }
            let first_vouched = vouched.keys().filter(|(n, _)| *n == table.name).map(|(_, k)| k).min();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                table.key.join(", "),
                table.name,
                table.key.join(", ")
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let keys = stmt.query_map([], |row| {
                (0..table.key.len())
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Integer(n) => KeyPart::Int(n),
                            other => KeyPart::Text(
                                String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
                            ),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<KeyPart>>>()
            })?;
            for key in keys {
                let key = key?;
                if vouched.contains_key(&(table.name, key.clone())) {
                    continue;
                }
                let newer = table.ordered && first_vouched.is_some_and(|first| key > *first);
                if born_keyed || newer {
                    report.problems.push(AuditProblem::RowUnvouched {
                        table: table.name,
                        key: serde_json::to_string(&key).expect("a key serializes"),
                    });
                } else {
                    report.rows_unvouched += 1;
                }
            }
        }
        Ok(())
    }

    /// Checks the chain and the rows with this store's key and anchors: the number of entries,
    /// or the first entry found wrong. Kept for callers that only need a yes or no; see
    /// [`Store::check_audit`] for what is wrong and whether the head is anchored.
    pub fn verify_audit(&self) -> Result<Result<u64, i64>, StoreError> {
        let report = self.check_audit()?;
        Ok(report.first_wrong_entry().map_or(Ok(report.entries), Err))
    }
}

/// Checks every entry on its own (so one edit is reported once, at the entry edited): it
/// follows the one before it, and its seal matches its fields. `key` is the key and database
/// id for keyed entries, when the key is at hand.
fn check_chain(trail: &[AuditEntry], key: Option<(&AuditKey, &str)>, problems: &mut Vec<AuditProblem>) {
    let mut prev: (i64, &str) = (0, GENESIS);
    let mut seen_keyed = false;
    for e in trail {
        let fault = if e.seq != prev.0 + 1 {
            Some(EntryFault::Sequence { after: prev.0 })
        } else if e.prev_hash != prev.1 {
            Some(EntryFault::PrevHash)
        } else {
            match e.scheme.as_str() {
                SCHEME_PLAIN if seen_keyed => Some(EntryFault::UnkeyedAfterKeyed),
                SCHEME_PLAIN => (audit_hash(e) != e.hash).then_some(EntryFault::Hash),
                SCHEME_KEYED => key.and_then(|(key, database)| {
                    (key.seal(&keyed_canonical(database, e)) != e.hash).then_some(EntryFault::Mac)
                }),
                _ => Some(EntryFault::Scheme),
            }
        };
        seen_keyed |= e.scheme == SCHEME_KEYED;
        if let Some(fault) = fault {
            problems.push(AuditProblem::Entry { seq: e.seq, fault });
        }
        prev = (e.seq, &e.hash);
    }
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryFault {
    /// It does not come right after the entry before it (`after`).
    Sequence {
        /// The sequence number of the entry before it.
        after: i64,
    },
    /// Its previous hash is not the entry before it's.
    PrevHash,
    /// A plain SHA-256 entry whose hash does not match its fields.
    Hash,
    /// A keyed entry whose MAC does not match its fields.
    Mac,
    /// A plain SHA-256 entry after keyed ones: nothing writes those any more.
    UnkeyedAfterKeyed,
    /// A scheme this build does not know.
    Scheme,
    /// Its `vouches` column is not a row this build knows.
    Vouch,
}

/// One sign of tampering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProblem {
    /// An entry was changed, removed from the middle, or sealed without the key.
    Entry {
        /// The entry.
        seq: i64,
        /// What is wrong with it.
        fault: EntryFault,
    },
    /// The anchor names entries past the database's newest: they were deleted.
    Deleted {
        /// The first missing entry.
        from: i64,
        /// The anchored entry.
        to: i64,
    },
    /// The entry the anchor names is not the one in the database: the chain was rewritten.
    AnchorMismatch {
        /// The anchored entry.
        seq: i64,
    },
    /// Keyed entries, but the database's id is gone (it is part of every keyed MAC).
    NoDatabaseId,
    /// A row differs from what its entry vouched for.
    RowChanged {
        /// The entry that vouched for it last.
        seq: i64,
        /// Its table.
        table: &'static str,
        /// Its key, as JSON.
        key: String,
    },
    /// A row an entry vouched for is gone.
    RowMissing {
        /// The entry that vouched for it last.
        seq: i64,
        /// Its table.
        table: &'static str,
        /// Its key, as JSON.
        key: String,
    },
    /// A row no entry vouches for, where every row has one.
    RowUnvouched {
        /// Its table.
        table: &'static str,
        /// Its key, as JSON.
        key: String,
    },
}

impl AuditProblem {
    /// The entry it points at, if it points at one.
    pub fn seq(&self) -> Option<i64> {
        match self {
            AuditProblem::Entry { seq, .. }
            | AuditProblem::AnchorMismatch { seq }
            | AuditProblem::RowChanged { seq, .. }
            | AuditProblem::RowMissing { seq, .. } => Some(*seq),
            AuditProblem::Deleted { from, .. } => Some(*from),
            AuditProblem::NoDatabaseId | AuditProblem::RowUnvouched { .. } => None,
        }
    }
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditProblem::Entry { seq, fault } => match fault {
                EntryFault::Sequence { after } => write!(f, "entry {seq}: it follows entry {after} (entries between them are missing, or it was renumbered)"),
                EntryFault::PrevHash => write!(f, "entry {seq}: it does not chain to the entry before it (its previous hash differs)"),
                EntryFault::Hash => write!(f, "entry {seq}: its hash does not match its fields and the entry before it"),
                EntryFault::Mac => write!(f, "entry {seq}: its MAC does not match its fields and the entry before it (changed, or sealed without the key)"),
                EntryFault::UnkeyedAfterKeyed => write!(f, "entry {seq}: it is plain SHA-256 after keyed entries, which nothing writes"),
                EntryFault::Scheme => write!(f, "entry {seq}: its scheme is unknown"),
                EntryFault::Vouch => write!(f, "entry {seq}: the row it vouches for is unreadable"),
            },
            AuditProblem::Deleted { from, to } if from == to => {
                write!(f, "entry {to} is missing: the anchor outside the database names it, the database ends before it (the newest entry was deleted)")
            }
            AuditProblem::Deleted { from, to } => {
                write!(f, "entries {from} to {to} are missing: the anchor outside the database names entry {to}, the database ends at entry {} (the newest entries were deleted)", from - 1)
            }
            AuditProblem::AnchorMismatch { seq } => write!(f, "entry {seq}: it is not the entry the anchor outside the database names (the chain was rewritten)"),
            AuditProblem::NoDatabaseId => write!(f, "the database's id is gone, and every keyed entry is sealed with it"),
            AuditProblem::RowChanged { seq, table, key } => write!(f, "{table} row {key}: changed since entry {seq} vouched for it"),
            AuditProblem::RowMissing { seq, table, key } => write!(f, "{table} row {key}: deleted, although entry {seq} vouched for it"),
            AuditProblem::RowUnvouched { table, key } => write!(f, "{table} row {key}: no audit entry vouches for it (added behind the trail's back)"),
        }
    }
}

/// Where the chain's head stands against its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The anchor names entry `seq` and it matches; `head` is the newest entry (the anchor
    /// lags when a process stopped between a commit and its anchor write).
    Matched {
        /// The anchored entry.
        seq: i64,
        /// The newest entry.
        head: i64,
        /// The anchor file.
        path: PathBuf,
    },
    /// No keyed entries and no anchor: a trail written before keyed audit.
    Unkeyed,
    /// Keyed entries but no anchor in the key directory.
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Not checked (an in-memory database, or the check could not get that far).
    NotApplicable,
}

/// What [`Store::check_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries in the trail.
    pub entries: u64,
    /// How many of them are sealed with the key.
    pub keyed: u64,
    /// The database's id, which names its anchor.
    pub database_id: Option<String>,
    /// The head against the anchor.
    pub anchor: AnchorCheck,
    /// Rows whose digest matched the entry that vouched for them.
    pub rows_checked: u64,
    /// Rows written before keyed audit, which no entry vouches for.
    pub rows_unvouched: u64,
    /// Every sign of tampering found.
    pub problems: Vec<AuditProblem>,
    /// Why parts of the check could not be done (no key, no anchor).
    pub incomplete: Vec<String>,
}

/// The verdict of a check, as `cityops audit verify` exits with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Everything checked and nothing wrong (exit 0).
    Intact,
    /// Signs of tampering (exit 3).
    Tampered,
    /// Nothing wrong found, but not everything could be checked (exit 1).
    Incomplete,
}

impl AuditReport {
    /// Tampered if anything is wrong, else incomplete if something could not be checked.
    pub fn outcome(&self) -> AuditOutcome {
        if !self.problems.is_empty() {
            AuditOutcome::Tampered
        } else if !self.incomplete.is_empty() {
            AuditOutcome::Incomplete
        } else {
            AuditOutcome::Intact
        }
    }

    /// The first entry found wrong (a row without any entry counts as one past the newest).
    pub fn first_wrong_entry(&self) -> Option<i64> {
        self.problems
            .iter()
            .map(|p| p.seq().unwrap_or(self.entries as i64 + 1))
            .min()
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries;
        match self.outcome() {
            AuditOutcome::Tampered => write!(
                f,
                "audit trail TAMPERED: {} problems in {n} entries",
                self.problems.len()
            )?,
            AuditOutcome::Incomplete => write!(
                f,
                "audit trail not fully checked: {n} entries, nothing wrong in what was checked"
            )?,
            AuditOutcome::Intact => write!(f, "audit trail intact: {n} entries")?,
        }
        let unkeyed = n - self.keyed;
        if self.keyed == 0 {
            if n > 0 {
                write!(f, ", unkeyed (plain SHA-256, written before keyed audit)")?;
            }
        } else if unkeyed > 0 {
            write!(
                f,
                ", {} sealed with the key (HMAC-SHA256) after {unkeyed} unkeyed ones written before keyed audit",
                self.keyed
            )?;
        } else {
            write!(f, ", sealed with the key (HMAC-SHA256)")?;
        }
        match &self.anchor {
            AnchorCheck::Matched { seq, head, path } if seq == head => {
                write!(f, "; anchored at entry {seq} ({})", path.display())?
            }
            AnchorCheck::Matched { seq, head, path } => write!(
                f,
                "; anchored at entry {seq} of {head} ({}; an anchor lags after a crash)",
                path.display()
            )?,
            AnchorCheck::Unkeyed => write!(f, "; not anchored")?,
            AnchorCheck::Missing { path } => write!(f, "; no anchor at {}", path.display())?,
            AnchorCheck::NotApplicable => {}
        }
        if self.keyed > 0 {
            write!(f, "; {} rows cross-checked", self.rows_checked)?;
            if self.rows_unvouched > 0 {
                write!(f, ", {} older rows not", self.rows_unvouched)?;
            }
        } else if n > 0 {
            write!(f, "; rows not cross-checked")?;
        }
        for why in &self.incomplete {
            write!(f, "\n  not checked: {why}")?;
        }
        for p in self.problems.iter().take(LISTED_PROBLEMS) {
            write!(f, "\n  {p}")?;
        }
        if self.problems.len() > LISTED_PROBLEMS {
            write!(f, "\n  and {} more", self.problems.len() - LISTED_PROBLEMS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::SignIn;
    use super::*;

    #[test]
    fn the_config_dir_is_cityops_own_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        const ALL: &[(&str, &str)] = &[
            ("CITYOPS_CONFIG_DIR", "/srv/cityops"),
            ("XDG_CONFIG_HOME", "/home/a/.cfg"),
            ("HOME", "/home/a"),
        ];
        assert_eq!(config_dir_from(env(ALL)).unwrap(), PathBuf::from("/srv/cityops"));
        assert_eq!(
            config_dir_from(env(&ALL[1..])).unwrap(),
            PathBuf::from("/home/a/.cfg/cityops")
        );
        assert_eq!(
            config_dir_from(env(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/home/a")])).unwrap(),
            PathBuf::from("/home/a/.config/cityops")
        );
        assert_eq!(
            config_dir_from(env(&[("CITYOPS_CONFIG_DIR", ""), ("HOME", "/home/a")])).unwrap(),
            PathBuf::from("/home/a/.config/cityops")
        );
        assert!(matches!(config_dir_from(env(&[])), Err(AuditError::NoConfigDir)));
    }

    #[test]
    fn the_key_is_created_once_private_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("cfg");
        assert!(AuditKey::load(&keys).unwrap().is_none());
        let a = AuditKey::load_or_create(&keys).unwrap();
        let b = AuditKey::load_or_create(&keys).unwrap();
        assert_eq!(a.bytes, b.bytes, "a second use reads the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(keys.join(KEY_FILE)).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let text = std::fs::read_to_string(keys.join(KEY_FILE)).unwrap();
        assert!(!format!("{a:?}").contains(text.trim()), "Debug shows the key");
        assert_eq!(
            std::fs::read_dir(&keys).unwrap().count(),
            1,
            "no candidate file is left behind"
        );
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("cfg");
        let found: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| AuditKey::load_or_create(&keys).unwrap().bytes))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(found.iter().all(|k| *k == found[0]), "threads created different keys");
    }

    #[test]
    fn the_anchor_never_moves_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let at = |seq: i64| Anchor {
            database: id.into(),
            seq,
            mac: format!("mac{seq}"),
        };
        assert!(advance_anchor(dir.path(), &at(5)).unwrap());
        assert!(!advance_anchor(dir.path(), &at(3)).unwrap());
        assert!(!advance_anchor(dir.path(), &at(5)).unwrap());
        assert_eq!(read_anchor(dir.path(), id).unwrap(), Some(at(5)));
        assert!(advance_anchor(dir.path(), &at(6)).unwrap());
        assert_eq!(read_anchor(dir.path(), id).unwrap(), Some(at(6)));
    }

    #[test]
    fn an_anchor_is_never_named_by_anything_but_a_database_id() {
        let dir = tempfile::tempdir().unwrap();
        let bad = Anchor {
            database: "../../escape".into(),
            seq: 1,
            mac: String::new(),
        };
        assert!(matches!(
            advance_anchor(dir.path(), &bad),
            Err(AuditError::BadDatabaseId(_))
        ));
        assert!(matches!(
            read_anchor(dir.path(), "../x"),
            Err(AuditError::BadDatabaseId(_))
        ));
    }

    /// A database as cityops wrote it before the keyed MAC (every migration before the one that
    /// brought it), with three sign-ins chained with plain SHA-256; returns its schema version.
    fn unkeyed_database(path: &Path) -> i64 {
        let migrations = super::super::migrations::MIGRATIONS;
        let before = migrations
            .iter()
            .position(|m| m.contains("CREATE TABLE meta"))
            .expect("the keyed audit's migration");
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        for sql in &migrations[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before as i64).unwrap();
        let mut prev = GENESIS.to_owned();
        for (i, name) in ["Aino", "Mikko", "Sari"].into_iter().enumerate() {
            let seq = i as i64 + 1;
            conn.execute(
                "INSERT INTO operators (name, role, created_wall_ms) VALUES (?1, 'operator', ?2)",
                params![name, seq],
            )
            .unwrap();
            let mut e = AuditEntry {
                seq,
                run: None,
                wall_ms: seq,
                scenario_ms: None,
                operator: name.into(),
                role: "operator".into(),
                action: "sign_in".into(),
                subject: name.into(),
                detail: String::new(),
                prev_hash: prev.clone(),
                hash: String::new(),
                scheme: SCHEME_PLAIN.into(),
                vouches: None,
            };
            e.hash = audit_hash(&e);
            conn.execute(
                "INSERT INTO audit (seq, run, wall_ms, scenario_ms, operator, role, action, subject, detail, prev_hash, hash) VALUES (?1, NULL, ?2, NULL, ?3, 'operator', 'sign_in', ?3, '', ?4, ?5)",
                params![seq, seq, name, e.prev_hash, e.hash],
            )
            .unwrap();
            prev = e.hash;
        }
        before as i64
    }

    #[test]
    fn a_trail_written_before_the_key_verifies_as_before_and_carries_on_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db");
        let keys = dir.path().join("cfg");
        let version = unkeyed_database(&db);

        let old = Store::open_read_only(&db).unwrap().with_audit_dir(&keys);
        let report = old.check_audit().unwrap();
        assert_eq!(report.outcome(), AuditOutcome::Intact, "{report}");
        assert_eq!(
            (report.entries, report.keyed, &report.anchor),
            (3, 0, &AnchorCheck::Unkeyed)
        );
        assert!(
            report.to_string().starts_with("audit trail intact: 3 entries, unkeyed"),
            "{report}"
        );
        assert!(report.to_string().contains("not anchored"), "{report}");
        assert_eq!(old.schema_version().unwrap(), version, "verifying does not migrate");
        assert!(!keys.exists(), "verifying creates no key");
        drop(old);

        // The new code opens it (migrating it) and the next sign-in is keyed and anchored.
        let store = Store::open(&db).unwrap().with_audit_dir(&keys);
        assert_eq!(store.sign_in("Aino", "operator", None, 10).unwrap(), SignIn::Accepted);
        let report = store.check_audit().unwrap();
        assert_eq!(report.outcome(), AuditOutcome::Intact, "{report}");
        assert_eq!((report.entries, report.keyed), (4, 1));
        assert!(
            matches!(report.anchor, AnchorCheck::Matched { seq: 4, head: 4, .. }),
            "{report}"
        );
        assert_eq!(
            (report.rows_checked, report.rows_unvouched),
            (1, 2),
            "Aino's row is vouched for, the others are older"
        );

        // The older entries are still checked, and nothing may follow the keyed ones unkeyed.
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'x' WHERE seq = 2;")
            .unwrap();
        assert_eq!(
            store.check_audit().unwrap().problems,
            vec![AuditProblem::Entry {
                seq: 2,
                fault: EntryFault::Hash
            }]
        );
        conn.execute("UPDATE audit SET detail = '' WHERE seq = 2", []).unwrap();
        let head = store.audit_trail().unwrap().pop().unwrap();
        let mut forged = AuditEntry {
            seq: 5,
            run: None,
            wall_ms: 11,
            scenario_ms: None,
            operator: "Aino".into(),
            role: "operator".into(),
            action: "sign_out".into(),
            subject: "Aino".into(),
            detail: String::new(),
            prev_hash: head.hash,
            hash: String::new(),
            scheme: SCHEME_PLAIN.into(),
            vouches: None,
        };
        forged.hash = audit_hash(&forged);
        conn.execute(
            "INSERT INTO audit (seq, wall_ms, operator, role, action, subject, detail, prev_hash, hash) VALUES (5, 11, 'Aino', 'operator', 'sign_out', 'Aino', '', ?1, ?2)",
            params![forged.prev_hash, forged.hash],
        )
        .unwrap();
        assert_eq!(
            store.check_audit().unwrap().problems,
            vec![AuditProblem::Entry {
                seq: 5,
                fault: EntryFault::UnkeyedAfterKeyed
            }]
        );
    }

    #[test]
    fn an_in_memory_store_seals_with_a_key_of_its_own_and_anchors_nothing() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            store.sign_in("Aino", "operator", Some("1357"), 1).unwrap(),
            SignIn::Accepted
        );
        assert_eq!(
            store.sign_in("Aino", "operator", Some("1357"), 2).unwrap(),
            SignIn::Accepted
        );
        let report = store.check_audit().unwrap();
        assert_eq!(report.outcome(), AuditOutcome::Intact, "{report}");
        assert_eq!(
            (report.entries, report.keyed, report.rows_checked, &report.anchor),
            (2, 2, 1, &AnchorCheck::NotApplicable)
        );
        store
            .conn
            .execute("UPDATE operators SET role = 'trainer' WHERE name = 'Aino'", [])
            .unwrap();
        assert_eq!(
            store.verify_audit().unwrap(),
            Err(2),
            "the latest sign-in vouched for the row"
        );
    }

    #[test]
    fn racing_writers_leave_the_anchor_at_the_newest_head() {
        let dir = tempfile::tempdir().unwrap();
        let id = "00000000000000000000000000000001";
        std::thread::scope(|s| {
            for t in 0..4_i64 {
                let dir = dir.path();
                s.spawn(move || {
                    for i in 0..50 {
                        let seq = 1 + i * 4 + t;
                        advance_anchor(
                            dir,
                            &Anchor {
                                database: id.into(),
                                seq,
                                mac: format!("m{seq}"),
                            },
                        )
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(read_anchor(dir.path(), id).unwrap().map(|a| a.seq), Some(200));
    }
}
