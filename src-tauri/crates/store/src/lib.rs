//! The SQLite store: an append-only observation log, the quarantine of refused input, and the
//! runs that produced them.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: observations are written in group
//! commits (one transaction per batch), which survive an application crash (`kill -9`); a power
//! cut may lose the last batch, which the tape or feed can deliver again. The log is indexed by
//! arrival time per run (the replay picture), by layer and observed time, and by time bucket and
//! grid cell ("this area, this time window"); there is no R*Tree on the log because its insert
//! cost is about ten times a B-tree's (measured before the store was written: about 10,000 rows/s
//! into a 2-D R*Tree against 150,000-170,000 with the three B-tree indexes).

mod area;
mod audit;
mod calls;
mod exercise;
mod incidents;
mod migrations;
mod outbox;
mod quarantine;
mod report;
mod roster;
mod site;

pub use area::{AreaSummary, Sighting};
pub use audit::{
    advance_anchor, anchor_path, config_dir, read_anchor, Anchor, AnchorCheck, AuditError, AuditKey, AuditOutcome,
    AuditProblem, AuditReport, AuditTx, EntryFault, KeyPart, Vouch, ANCHOR_DIR, KEY_FILE, SCHEME_KEYED, SCHEME_PLAIN,
};
pub use calls::CallRow;
pub use exercise::InjectRow;
pub use incidents::{
    audit_hash, AuditEntry, AuditRecord, DecisionRow, IncidentWrite, NoteRow, OverrideRow, OwnerRow, SopTickRow,
    StoredIncident, StoredMember, TransitionRow, GENESIS,
};
pub use roster::{hash_pin, pin_matches_hash, role_needs_pin, RosterEntry, SignIn, LOCKOUT_MS, MAX_WRONG_PINS};
pub use site::{PendingDecision, SiteEventRow, SiteRosterEntry, SiteRun};

use std::path::Path;

use cityops_core::grid::{self, BBox};
use cityops_core::model::{GeoPoint, Layer, Millis, Observation, Severity};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

pub use migrations::SCHEMA_VERSION;
pub use outbox::{ActionRecord, ActionRow, AttemptEnd, NewAction, SiteOutcome};

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused something.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back (a newer or damaged database).
    #[error("corrupt row {row}: {reason}")]
    Corrupt {
        /// The row id.
        row: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A change the data does not allow (cancelling a delivered action, an unknown id).
    #[error("{0}")]
    Refused(String),
    /// The database file cannot be opened (for writing, or at all when opened read-only).
    #[error("cannot open the database {path}: {reason}")]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// Why, as the OS or SQLite said it.
        reason: String,
    },
    /// The audit key or an anchor could not be read or written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The database was written by a newer cityops.
    #[error("database schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// The version in the file.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}

impl StoreError {
    /// If the disk under the database refused (full, read-only, failing), what to tell the
    /// operator: such a failure passes once space or write access returns, unlike a bug.
    pub fn disk_fault(&self) -> Option<&'static str> {
        use rusqlite::ErrorCode;
        let StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) = self else {
            return None;
        };
        match e.code {
            ErrorCode::DiskFull => Some("the disk holding the database is full"),
            ErrorCode::ReadOnly => Some("the database is read-only (its file or its disk refuses writes)"),
            ErrorCode::SystemIoFailure => Some("the disk holding the database failed to write"),
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                Some("the database file cannot be opened for writing")
            }
            _ => None,
        }
    }
}

/// Why `path` cannot be written, as the OS says it (a read-only disk, a missing folder, no
/// permission), when SQLite's own message ("unable to open database file") would not say.
fn why_not_writable(path: &Path) -> Option<String> {
    let probe = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map(drop)
    } else {
        let probe = path.with_extension("write-probe");
        std::fs::File::create(&probe).map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
    };
    probe.err().map(|e| e.to_string())
}

/// A path as the path of a SQLite `file:` URI: bytes other than unreserved characters and `/`
/// are percent-encoded, so `?`, `#` and `%` in a folder name stay part of the path.
fn uri_path(path: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The id of one run: one replay of a scenario, or one live ingest session.
pub type RunId = i64;

/// One refused piece of input, kept so the operator can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// The feed it came from (or `tape` for a line that named no feed).
    pub feed: String,
    /// The message sequence number (tape line).
    pub seq: u64,
    /// Where in the message, for example `features[3].properties.kind`.
    pub place: String,
    /// Why it was refused.
    pub reason: String,
    /// When it arrived.
    pub received_ms: Millis,
    /// The raw input, for inspection.
    pub body: Vec<u8>,
}

/// Observation counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Observations per layer.
    pub per_layer: Vec<(Layer, u64)>,
    /// Quarantined pieces.
    pub quarantined: u64,
}

/// An open database.
pub struct Store {
    conn: Connection,
    /// Opened with `open_durable`: every commit is already `synchronous=FULL`.
    full: bool,
    /// Where the audit key and anchors are (`store/audit.rs`).
    audit: audit::AuditSetup,
    /// A site's operations event whose effect is being recorded: the next durable transaction
    /// commits its row with the effect (`store/site.rs`).
    site_event: std::cell::RefCell<Option<site::SiteEventRow>>,
}

/// SQLite's page cache per connection, KiB (its default is 2 MiB).
const CACHE_KIB: i64 = 32 * 1024;

const OBS_COLUMNS: &str =
    "id, feed, seq, idx, received_ms, observed_ms, layer, kind, severity, entity, lon, lat, title, fields, shape";

impl Store {
    /// Opens (creating if needed) and migrates a database file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let opened = Connection::open(path).and_then(|conn| {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            Ok(conn)
        });
        let refused = |e: rusqlite::Error| StoreError::Open {
            path: path.to_owned(),
            reason: why_not_writable(path).unwrap_or_else(|| e.to_string()),
        };
        Store::init(opened.map_err(refused)?).map_err(|e| match e {
            StoreError::Sqlite(e) => refused(e),
            other => other,
        })
    }

    /// Opens a database for operators' actions only: every commit waits for the disk
    /// (`synchronous=FULL`), so none has to switch the setting back and forth. The outbox
    /// commits actions on such a connection.
    pub fn open_durable(path: &Path) -> Result<Store, StoreError> {
        let mut store = Store::open(path)?;
        store.conn.pragma_update(None, "synchronous", "FULL")?;
        store.full = true;
        Ok(store)
    }

    /// A second, read-only connection to an open database file (`None` for an in-memory
    /// one, which no other connection can see). A seek reads the picture through it on one
    /// core while the incidents are rebuilt through the writer's connection on the other;
    /// WAL lets both read at once and shows the reader every commit made before it begins.
    pub fn reader(&self) -> Result<Option<Store>, StoreError> {
        let path = self.path();
        if path.is_empty() {
            return Ok(None);
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        rusqlite::vtab::array::load_module(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Some(Store {
            conn,
            full: false,
            audit: Default::default(),
            site_event: Default::default(),
        }))
    }

    /// Opens an existing database for reading only, without migrating it or creating anything
    /// beside it, for `cityops audit verify` on a live database or an evidence copy on read-only
    /// storage. A missing file is an error, not a new database. Without a write-ahead log to
    /// read, the file is opened `immutable` (no locks, no `-shm` to create, so a read-only
    /// folder works); with one, it is opened read-only and SQLite reads the log through its
    /// `-shm` file, which must exist or be creatable.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let refused = |reason: String| StoreError::Open {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| refused(e.to_string()))?;
        if !meta.is_file() {
            return Err(refused("not a file".into()));
        }
        let absolute = std::fs::canonicalize(path).map_err(|e| refused(e.to_string()))?;
        let beside = |suffix: &str| {
            let mut p = absolute.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        let has_wal = std::fs::metadata(beside("-wal")).is_ok_and(|m| m.len() > 0);
        let uri = format!(
            "file:{}?mode=ro{}",
            uri_path(&absolute),
            if has_wal { "" } else { "&immutable=1" }
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let explain = |e: rusqlite::Error| {
            if has_wal && !beside("-shm").exists() {
                refused(format!("{e}; it has a write-ahead log (-wal) but no -shm file beside it, and its folder refuses to create one: copy the -shm file with it, or the folder to writable storage"))
            } else {
                refused(e.to_string())
            }
        };
        let conn = Connection::open_with_flags(&uri, flags).map_err(explain)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Reading the schema version makes SQLite read the file, so a file that is not a
        // database fails here, with its name.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(explain)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            conn,
            full: false,
            audit: Default::default(),
            site_event: Default::default(),
        })
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // `rarray(?)`: a list of row ids as one parameter (the picture's rows at a seek).
        rusqlite::vtab::array::load_module(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn,
            full: false,
            audit: Default::default(),
            site_event: Default::default(),
        })
    }

    /// The database file (empty for an in-memory store).
    pub fn path(&self) -> &str {
        self.conn.path().unwrap_or_default()
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Starts a new run of the named scenario (or live configuration).
    pub fn begin_run(&self, source: &str, started_wall: &str) -> Result<RunId, StoreError> {
        self.conn.execute(
            "INSERT INTO runs (source, started_wall, ingested_seq, ingested_until_ms) VALUES (?1, ?2, 0, NULL)",
            params![source, started_wall],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The newest run of a source (a scenario's name, `live:<config path>`), if any.
    pub fn latest_run_of(&self, source: &str) -> Result<Option<RunId>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT max(id) FROM runs WHERE source = ?1", [source], |r| r.get(0))?)
    }

    /// The newest run, if any.
    pub fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        Ok(self.conn.query_row("SELECT max(id) FROM runs", [], |r| r.get(0))?)
    }

    /// How far a run has been ingested: the last message sequence and its arrival time.
    pub fn frontier(&self, run: RunId) -> Result<(u64, Option<Millis>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT ingested_seq, ingested_until_ms FROM runs WHERE id = ?1",
            [run],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )?)
    }

    /// Appends a batch in one transaction (a group commit), together with the run's new
    /// frontier, so that after a crash the frontier and the log always agree.
    pub fn append(
        &mut self,
        run: RunId,
        observations: &[Observation],
        quarantine: &[QuarantineEntry],
        frontier: (u64, Millis),
    ) -> Result<(), StoreError> {
        self.append_delivered(run, observations, quarantine, &[], frontier)
    }

    /// [`Store::append`], also marking the sources `delivered` (feed, key) in the same
    /// transaction: either the observations and the marks are stored, or neither.
    pub fn append_delivered(
        &mut self,
        run: RunId,
        observations: &[Observation],
        quarantine: &[QuarantineEntry],
        delivered: &[(String, String)],
        frontier: (u64, Millis),
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut mark = tx.prepare_cached("INSERT OR IGNORE INTO delivered (feed, key, run) VALUES (?1, ?2, ?3)")?;
            for (feed, key) in delivered {
                mark.execute(params![feed, key, run])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO observations (run, feed, seq, idx, received_ms, observed_ms, layer, kind, severity, \
                 entity, lon, lat, tbucket, cell, title, fields, shape) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            for o in observations {
                let fields = serde_json::to_string(&o.fields).expect("a JSON map always serializes");
                let shape = o
                    .shape
                    .as_ref()
                    .map(|s| serde_json::to_string(s).expect("a shape always serializes"));
                ins.execute(params![
                    run,
                    o.feed,
                    o.seq as i64,
                    o.idx,
                    o.received_ms,
                    o.observed_ms,
                    o.layer.as_str(),
                    o.kind,
                    o.severity.rank(),
                    o.entity,
                    o.position.lon,
                    o.position.lat,
                    grid::bucket(o.observed_ms),
                    grid::cell(o.position),
                    o.title,
                    fields,
                    shape,
                ])?;
            }
            let mut q = tx.prepare_cached(
                "INSERT INTO quarantine (run, feed, seq, place, reason, received_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in quarantine {
                q.execute(params![
                    run,
                    e.feed,
                    e.seq as i64,
                    e.place,
                    e.reason,
                    e.received_ms,
                    e.body
                ])?;
            }
            tx.execute(
                "UPDATE runs SET ingested_seq = max(ingested_seq, ?2), ingested_until_ms = max(coalesce(ingested_until_ms, ?3), ?3) WHERE id = ?1",
                params![run, frontier.0 as i64, frontier.1],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn read(row: &Row<'_>) -> Result<Observation, StoreError> {
        let id: i64 = row.get(0)?;
        let corrupt = |reason: String| StoreError::Corrupt { row: id, reason };
        let layer: String = row.get(6)?;
        let severity: u8 = row.get(8)?;
        let fields: String = row.get(13)?;
        let shape: Option<String> = row.get(14)?;
        Ok(Observation {
            feed: row.get(1)?,
            seq: row.get::<_, i64>(2)? as u64,
            idx: row.get(3)?,
            received_ms: row.get(4)?,
            observed_ms: row.get(5)?,
            layer: layer
                .parse()
                .map_err(|e: cityops_core::model::UnknownLayer| corrupt(e.to_string()))?,
            kind: row.get(7)?,
            severity: Severity::from_rank(severity).ok_or_else(|| corrupt(format!("severity {severity}")))?,
            entity: row.get(9)?,
            position: GeoPoint {
                lon: row.get(10)?,
                lat: row.get(11)?,
            },
            title: row.get(12)?,
            fields: serde_json::from_str(&fields).map_err(|e| corrupt(format!("fields: {e}")))?,
            shape: shape
                .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(format!("shape: {e}"))))
                .transpose()?,
        })
    }

    fn collect(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Observation>, StoreError> {
        let mut out = Vec::new();
        self.collect_into(sql, params, &mut out)?;
        Ok(out)
    }

    fn collect_into(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        out: &mut Vec<Observation>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            out.push(Store::read(row)?);
        }
        Ok(())
    }

    /// True when a source with this key was committed for `feed` (by any run).
    pub fn is_delivered(&self, feed: &str, key: &str) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM delivered WHERE feed = ?1 AND key = ?2")?;
        Ok(stmt.exists(params![feed, key])?)
    }

    /// The picture at `t`: the latest observation of every entity that had arrived by then,
    /// in arrival order.
    pub fn picture_at(&self, run: RunId, t: Millis) -> Result<Vec<Observation>, StoreError> {
        // SQLite returns the bare columns of the row holding max(id) in each group, i.e. the
        // entity's last arrival.
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM (SELECT max(id) AS last FROM observations \
             WHERE run = ?1 AND received_ms <= ?2 GROUP BY entity) JOIN observations ON id = last ORDER BY id"
        );
        self.collect(&sql, params![run, t])
    }

    /// Every row of the run inserted after row `after_id`, as (id, entity, arrival time), in
    /// insert order: how the picture index (the engine's `timeline`) keeps up with the log. (The
    /// unary `+` keeps SQLite on the row id range instead of the run's whole arrival index.)
    pub fn rows_after(&self, run: RunId, after_id: i64) -> Result<Vec<(i64, String, Millis)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, entity, received_ms FROM observations WHERE id > ?2 AND +run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![run, after_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The (id, entity) of every row that arrived in `(after, until]`.
    pub fn arrival_ids_between(
        &self,
        run: RunId,
        after: Millis,
        until: Millis,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, entity FROM observations WHERE run = ?1 AND received_ms > ?2 AND received_ms <= ?3",
        )?;
        let rows = stmt.query_map(params![run, after, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The observations with these row ids, in id order (ids not in the log are skipped).
    pub fn observations_by_id(&self, ids: &[i64]) -> Result<Vec<Observation>, StoreError> {
        let sql = format!("SELECT {OBS_COLUMNS} FROM observations WHERE id IN rarray(?1) ORDER BY id");
        let ids: std::rc::Rc<Vec<rusqlite::types::Value>> =
            std::rc::Rc::new(ids.iter().copied().map(rusqlite::types::Value::from).collect());
        self.collect(&sql, params![ids])
    }

    /// Observations that arrived in `(after, until]`, in arrival order.
    pub fn arrived_between(&self, run: RunId, after: Millis, until: Millis) -> Result<Vec<Observation>, StoreError> {
        let mut out = Vec::new();
        self.arrived_between_into(run, after, until, &mut out)?;
        Ok(out)
    }

    /// [`Store::arrived_between`] appended to `out`, whose memory a caller reading often keeps.
    pub fn arrived_between_into(
        &self,
        run: RunId,
        after: Millis,
        until: Millis,
        out: &mut Vec<Observation>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM observations WHERE run = ?1 AND received_ms > ?2 AND received_ms <= ?3 ORDER BY id"
        );
        self.collect_into(&sql, params![run, after, until], out)
    }

    /// The latest observation of one entity that had arrived by `t`.
    pub fn entity_at(&self, run: RunId, entity: &str, t: Millis) -> Result<Option<Observation>, StoreError> {
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM observations WHERE run = ?1 AND entity = ?2 AND received_ms <= ?3 \
             ORDER BY received_ms DESC, id DESC LIMIT 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let row = stmt
            .query_row(params![run, entity, t], |r| Ok(Store::read(r)))
            .optional()?;
        row.transpose()
    }

    /// Visits every observation of a run in arrival order.
    pub fn for_each(&self, run: RunId, mut f: impl FnMut(&Observation)) -> Result<(), StoreError> {
        let sql = format!("SELECT {OBS_COLUMNS} FROM observations WHERE run = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([run])?;
        while let Some(row) = rows.next()? {
            f(&Store::read(row)?);
        }
        Ok(())
    }

    /// Observations observed in `[from, to]` inside `area`, of run `run` (of any run when
    /// `None`), through the time-bucket and grid-cell index: one range scan per bucket and
    /// cell row.
    pub fn in_area(
        &self,
        run: Option<RunId>,
        area: BBox,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Observation>, StoreError> {
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM observations WHERE tbucket = ?1 AND cell BETWEEN ?2 AND ?3 \
             AND observed_ms BETWEEN ?4 AND ?5 AND (?6 IS NULL OR run = ?6) ORDER BY id"
        );
        let mut out = Vec::new();
        for bucket in grid::bucket(from)..=grid::bucket(to) {
            for (lo, hi) in area.cell_rows() {
                out.extend(
                    self.collect(&sql, params![bucket, lo, hi, from, to, run])?
                        .into_iter()
                        .filter(|o| area.contains(o.position)),
                );
            }
        }
        Ok(out)
    }

    /// The same question as [`Store::in_area`] answered by reading every row of the run, without
    /// the place-and-time index: the reference the benchmark measures the index against.
    pub fn in_area_scan(
        &self,
        run: RunId,
        area: BBox,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Observation>, StoreError> {
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM observations NOT INDEXED WHERE run = ?1 AND observed_ms BETWEEN ?2 AND ?3 \
             AND lon BETWEEN ?4 AND ?5 AND lat BETWEEN ?6 AND ?7 ORDER BY id"
        );
        self.collect(
            &sql,
            params![run, from, to, area.min.lon, area.max.lon, area.min.lat, area.max.lat],
        )
    }

    /// The quarantine of a run, oldest first.
    pub fn quarantine(&self, run: RunId) -> Result<Vec<QuarantineEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT feed, seq, place, reason, received_ms, body FROM quarantine WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(QuarantineEntry {
                feed: r.get(0)?,
                seq: r.get::<_, i64>(1)? as u64,
                place: r.get(2)?,
                reason: r.get(3)?,
                received_ms: r.get(4)?,
                body: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts per layer and of the quarantine for a run.
    pub fn counts(&self, run: RunId) -> Result<RunCounts, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT layer, count(*) FROM observations WHERE run = ?1 GROUP BY layer")?;
        let mut per_layer: Vec<(Layer, u64)> = Layer::ALL.iter().map(|l| (*l, 0)).collect();
        let rows = stmt.query_map([run], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (layer, n) = row?;
            if let Some(slot) = per_layer.iter_mut().find(|(l, _)| l.as_str() == layer) {
                slot.1 = n as u64;
            }
        }
        let quarantined: i64 = self
            .conn
            .query_row("SELECT count(*) FROM quarantine WHERE run = ?1", [run], |r| r.get(0))?;
        Ok(RunCounts {
            per_layer,
            quarantined: quarantined as u64,
        })
    }
}

#[cfg(test)]
mod tests;
