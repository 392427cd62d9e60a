//! Versioned schema migrations, applied in order; `PRAGMA user_version` records the last one.
//! A migration is never edited once released: changes are new entries at the end.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], each step in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: current, supported: SCHEMA_VERSION });
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
