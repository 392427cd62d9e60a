//! Versioned schema migrations, applied in order; `PRAGMA user_version` records the last one.
//! A migration is never edited once released: changes are new entries at the end.

use rusqlite::Connection;

use super::StoreError;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, the observation log and its three indexes, the quarantine.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        started_wall TEXT NOT NULL,
        ingested_seq INTEGER NOT NULL DEFAULT 0,
        ingested_until_ms INTEGER
    );
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        feed TEXT NOT NULL,
        seq INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        observed_ms INTEGER NOT NULL,
        layer TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity INTEGER NOT NULL,
        entity TEXT NOT NULL,
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        tbucket INTEGER NOT NULL,
        cell INTEGER NOT NULL,
        title TEXT NOT NULL,
        fields TEXT NOT NULL
    );
    CREATE INDEX observations_run_received ON observations(run, received_ms);
    CREATE INDEX observations_layer_observed ON observations(layer, observed_ms);
    CREATE INDEX observations_bucket_cell ON observations(tbucket, cell);
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        feed TEXT NOT NULL,
        seq INTEGER NOT NULL,
        place TEXT NOT NULL,
        reason TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        body BLOB NOT NULL
    );",
    // 2: incidents and the operators' workflow. `incidents` and `incident_members` hold the
    // correlator's current view of each run (rewritten as it changes); the other tables are
    // append-only records of what operators did, and `audit` chains every entry to the one
    // before by hash, with triggers that refuse to change or remove an entry.
    "CREATE TABLE incidents (
        run INTEGER NOT NULL REFERENCES runs(id),
        id TEXT NOT NULL,
        incident_type TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        severity INTEGER NOT NULL,
        opened_ms INTEGER NOT NULL,
        cleared_ms INTEGER,
        root_cause TEXT,
        root_cleared INTEGER NOT NULL,
        manual INTEGER NOT NULL,
        west REAL NOT NULL,
        south REAL NOT NULL,
        east REAL NOT NULL,
        north REAL NOT NULL,
        PRIMARY KEY (run, id)
    );
    CREATE TABLE incident_members (
        run INTEGER NOT NULL,
        incident TEXT NOT NULL,
        position INTEGER NOT NULL,
        entity TEXT NOT NULL,
        layer TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity INTEGER NOT NULL,
        rule TEXT NOT NULL,
        related TEXT,
        distance_m REAL NOT NULL,
        time_gap_s REAL NOT NULL,
        dependency_path TEXT NOT NULL,
        confidence REAL NOT NULL,
        explanation TEXT NOT NULL,
        duplicate_of TEXT,
        cleared INTEGER NOT NULL,
        PRIMARY KEY (run, incident, position),
        FOREIGN KEY (run, incident) REFERENCES incidents(run, id) ON DELETE CASCADE
    );
    CREATE TABLE incident_transitions (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        incident TEXT NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER NOT NULL
    );
    CREATE INDEX incident_transitions_run ON incident_transitions(run, incident);
    CREATE TABLE manual_decisions (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        position_ms INTEGER NOT NULL,
        operator TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        wall_ms INTEGER NOT NULL,
        action TEXT NOT NULL
    );
    CREATE TABLE sop_ticks (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        incident TEXT NOT NULL,
        step INTEGER NOT NULL,
        ticked INTEGER NOT NULL,
        operator TEXT NOT NULL,
        wall_ms INTEGER NOT NULL
    );
    CREATE TABLE operators (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        pin_salt TEXT,
        pin_hash TEXT,
        created_wall_ms INTEGER NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        run INTEGER,
        wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
    // 3: the dispatch outbox. `actions` holds each committed action with the exact bytes it
    // sends and where it stands; `action_attempts` every delivery attempt. Actions outlive runs:
    // a restart resumes what is still queued, whatever run committed it.
    "CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        run INTEGER,
        incident TEXT,
        backend TEXT NOT NULL,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        destination TEXT NOT NULL,
        headers TEXT NOT NULL,
        body TEXT NOT NULL,
        device TEXT,
        exercise INTEGER NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        created_wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        reference TEXT,
        remote_status TEXT,
        last_error TEXT,
        updated_wall_ms INTEGER NOT NULL
    );
    CREATE INDEX actions_pending ON actions(backend, status, id);
    CREATE TABLE action_attempts (
        id INTEGER PRIMARY KEY,
        action INTEGER NOT NULL REFERENCES actions(id),
        n INTEGER NOT NULL,
        started_wall_ms INTEGER NOT NULL,
        finished_wall_ms INTEGER,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    );",
    // 4: exercises. `injects` holds each trainer inject as the exact tape line it became (so
    // a run's injects can be written out as a tape); `runs.ended_ms` is the scenario time a
    // trainer ended the exercise at, after which the trainee's record is closed.
    "CREATE TABLE injects (
        run INTEGER NOT NULL REFERENCES runs(id),
        n INTEGER NOT NULL,
        inject TEXT NOT NULL,
        scenario_ms INTEGER NOT NULL,
        trainer TEXT NOT NULL,
        entity TEXT NOT NULL,
        title TEXT NOT NULL,
        line TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        PRIMARY KEY (run, n)
    );
    ALTER TABLE runs ADD COLUMN ended_ms INTEGER;
    ALTER TABLE runs ADD COLUMN ended_by TEXT;",
    // 5: sources delivered exactly once. A drop-folder file's key is committed in the same
    // transaction as its observations, and the file is moved away only after that commit; a
    // restart between the two finds the key and moves the file without ingesting it again.
    "CREATE TABLE delivered (
        feed TEXT NOT NULL,
        key TEXT NOT NULL,
        run INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (feed, key)
    );",
    // 6: the operator roster's wrong-PIN count and lock. PINs written from now on are argon2id
    // PHC strings in `pin_hash` with `pin_salt` NULL; a row with `pin_salt` holds a legacy
    // iterated SHA-256, rehashed at its next good sign-in.
    "ALTER TABLE operators ADD COLUMN failed_pins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE operators ADD COLUMN locked_until_ms INTEGER;",
    // 7: the audit trail's key and anchor (`store/audit.rs`). `meta` holds the database's
    // random id, which names its anchor file outside the database (a copy of the database finds
    // the same anchor) and is sealed into every keyed entry. `audit.scheme` says how an entry is
    // sealed: 'sha256' for the entries written before (plain SHA-256), 'hmac-sha256' under the
    // key; `audit.vouches` names the row an entry vouches for and the digest of its fields.
    "CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO meta (name, value) VALUES ('database_id', lower(hex(randomblob(16))));
    CREATE TRIGGER meta_id_no_update BEFORE UPDATE ON meta WHEN old.name = 'database_id' BEGIN SELECT RAISE(ABORT, 'the database id never changes'); END;
    CREATE TRIGGER meta_id_no_delete BEFORE DELETE ON meta WHEN old.name = 'database_id' BEGIN SELECT RAISE(ABORT, 'the database id never changes'); END;
    ALTER TABLE audit ADD COLUMN scheme TEXT NOT NULL DEFAULT 'sha256';
    ALTER TABLE audit ADD COLUMN vouches TEXT;",
    // 8: following a site (`store/site.rs`). `site_runs` names the run a site's streams are
    // folded into and the configuration the site published; `site_events` holds every
    // operations event applied, at its stream sequence, with its outcome (committed in the same
    // transaction as its effect, so a restart neither loses nor repeats one); `site_roster` is
    // the site's roster as its events built it; `site_pending` the decisions made here that
    // the site has not acknowledged yet (committed before they are published).
    "CREATE TABLE site_runs (
        run INTEGER PRIMARY KEY REFERENCES runs(id),
        site TEXT NOT NULL UNIQUE,
        config TEXT,
        config_seq INTEGER,
        time_ms INTEGER
    );
    CREATE TABLE site_pending (
        event_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        payload BLOB NOT NULL,
        wall_ms INTEGER NOT NULL
    );
    CREATE TABLE site_events (
        seq INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        operator TEXT NOT NULL,
        workstation TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE site_roster (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        pin_hash TEXT,
        seq INTEGER NOT NULL
    );",
    // 9: who owns an incident (an operator took it, or a supervisor gave it): every change,
    // oldest first; the latest per incident is its owner. Vouched for by the audit trail.
    "CREATE TABLE incident_owners (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        incident TEXT NOT NULL,
        owner TEXT NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER NOT NULL
    );",
    // 10: a site's actions: the stream sequence of the latest outcome a workstation applied to
    // each (an operator's retry names the failure it retries), and whether the followed site is
    // an exercise (its actions are recorded, never sent).
    "ALTER TABLE actions ADD COLUMN site_seq INTEGER;
    ALTER TABLE site_runs ADD COLUMN exercise INTEGER NOT NULL DEFAULT 0;",
    // 11: incident numbers (`HEL-2026-000123`); incidents written before have none until the
    // run is correlated again.
    "ALTER TABLE incidents ADD COLUMN number TEXT NOT NULL DEFAULT '';
    CREATE INDEX incidents_number ON incidents (number);",
    // 12: the incidents' narrative log: operators' notes, with who and when.
    "CREATE TABLE incident_notes (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        incident TEXT NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX incident_notes_run ON incident_notes (run, incident);",
    // 13: supervisors' overrides of required SOP steps: who resolved past which steps, and why.
    "CREATE TABLE incident_overrides (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        incident TEXT NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        scenario_ms INTEGER NOT NULL,
        steps TEXT NOT NULL,
        reason TEXT NOT NULL
    );",
    // 14: incidents operators entered by hand (a phone call, a radio report): who entered what,
    // kept as the exact tape line it became, like a trainer's inject.
    "CREATE TABLE operator_calls (
        run INTEGER NOT NULL REFERENCES runs(id),
        n INTEGER NOT NULL,
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        scenario_ms INTEGER NOT NULL,
        wall_ms INTEGER NOT NULL,
        entity TEXT NOT NULL,
        incident_type TEXT NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (run, n)
    );",
    // 15: what an observation covers when it is more than a point (a GeoJSON geometry; null for
    // points), so areas and lines are drawn as the feed gave them.
    "ALTER TABLE observations ADD COLUMN shape TEXT;",
    // 16: the place-and-time index also holds what "what happened here?" filters, counts and
    // orders by, so the window's question is answered from the index without reading rows.
    // It replaces the index of (tbucket, cell) alone, which it serves as well.
    "DROP INDEX observations_bucket_cell;
    CREATE INDEX observations_place ON observations(tbucket, cell, observed_ms, lon, lat, run, received_ms, layer, kind);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], each step in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "migrated database");
    }
    Ok(())
}
