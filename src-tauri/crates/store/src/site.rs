//! What a workstation keeps of the site it follows: the run the site's streams are folded into,
//! the configuration the site published, every operations event applied with its outcome, and
//! the site's roster.
//!
//! **Exactly once.** An operations event's row is committed in the same transaction as its
//! effect (a lifecycle transition, a decision, a roster change): [`Store::with_site_event`]
//! hands the row to the next durable transaction. A refused event has no effect, and its row
//! (with the quarantine entry of a malformed one) is committed alone. Feed messages commit
//! their stream sequence as the run's frontier, with their observations. So after a crash the
//! follower resumes after [`Store::site_position`] and neither loses nor repeats anything.

use cityops_core::model::Millis;
use rusqlite::{params, OptionalExtension};

use super::{AuditTx, QuarantineEntry, RunId, Store, StoreError};

/// One applied operations event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteEventRow {
    /// The run it was applied to.
    pub run: RunId,
    /// Its sequence in the site's stream.
    pub seq: u64,
    /// The id its author gave it (its `Nats-Msg-Id`).
    pub event_id: String,
    /// What it asked for (`acknowledge`, `merge`, ...).
    pub kind: String,
    /// Who made it, and where.
    pub operator: String,
    pub workstation: String,
    /// The scenario time it was made at.
    pub at_ms: Millis,
    /// `accepted` or `refused`.
    pub outcome: String,
    /// Why it was refused (empty when accepted).
    pub reason: String,
}

/// A decision made at this workstation, committed and not yet acknowledged by the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDecision {
    /// Its id (its `Nats-Msg-Id`).
    pub event_id: String,
    pub subject: String,
    /// The event as published.
    pub payload: Vec<u8>,
    /// When it was made (this workstation's clock; shown, never used to order).
    pub wall_ms: Millis,
}

/// The run a site is folded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRun {
    pub run: RunId,
    /// The configuration the site published (JSON), once it has.
    pub config: Option<String>,
}

/// One operator of a site's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRosterEntry {
    pub name: String,
    pub role: String,
    /// An argon2id hash in PHC form.
    pub pin_hash: Option<String>,
}

pub(crate) fn insert_event(tx: &AuditTx<'_>, row: &SiteEventRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO site_events (seq, run, event_id, kind, operator, workstation, at_ms, outcome, reason) \
         VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            row.seq as i64,
            row.event_id,
            row.kind,
            row.operator,
            row.workstation,
            row.at_ms,
            row.outcome,
            row.reason,
            row.run
        ],
    )?;
    Ok(())
}

impl Store {
    /// The run following `site`, if this database follows it.
    pub fn site_run(&self, site: &str) -> Result<Option<SiteRun>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT run, config FROM site_runs WHERE site = ?1", [site], |r| {
                Ok(SiteRun {
                    run: r.get(0)?,
                    config: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// The site this database follows, if any (a database follows one site).
    pub fn followed_site(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT site FROM site_runs ORDER BY run LIMIT 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Starts following `site` in a new run.
    pub fn begin_site_run(&self, site: &str, started_wall: &str) -> Result<RunId, StoreError> {
        let run = self.begin_run(&format!("site:{site}"), started_wall)?;
        self.conn
            .execute("INSERT INTO site_runs (run, site) VALUES (?1, ?2)", params![run, site])?;
        Ok(run)
    }

    /// Keeps the configuration the site published at stream sequence `seq`.
    pub fn set_site_config(&self, run: RunId, config: &str, seq: u64) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "UPDATE site_runs SET config = ?2, config_seq = ?3 WHERE run = ?1",
                params![run, config, seq as i64],
            )?;
            Ok(())
        })
    }

    /// The last stream sequence this database has applied for `run`: feed messages commit it
    /// as the run's frontier, operations events, the configuration and actions with their rows.
    pub fn site_position(&self, run: RunId) -> Result<u64, StoreError> {
        let (fed, _) = self.frontier(run)?;
        let evented: Option<i64> =
            self.conn
                .query_row("SELECT max(seq) FROM site_events WHERE run = ?1", [run], |r| r.get(0))?;
        let configured: Option<i64> =
            self.conn
                .query_row("SELECT config_seq FROM site_runs WHERE run = ?1", [run], |r| r.get(0))?;
        // Actions and their outcomes commit their sequence with the action.
        let acted: Option<i64> = self
            .conn
            .query_row("SELECT max(site_seq) FROM actions", [], |r| r.get(0))?;
        Ok(fed
            .max(evented.unwrap_or(0) as u64)
            .max(configured.unwrap_or(0) as u64)
            .max(acted.unwrap_or(0) as u64))
    }

    /// Runs `f` (which records an event's effect through a durable transaction) with `row` to
    /// be committed in that same transaction. Returns `f`'s result and whether the row was
    /// committed; when it was not (`f` refused before writing anything), the caller records the
    /// refusal with [`Store::record_site_event`].
    pub fn with_site_event<T, E>(&self, row: SiteEventRow, f: impl FnOnce() -> Result<T, E>) -> (Result<T, E>, bool) {
        *self.site_event.borrow_mut() = Some(row);
        let out = f();
        let left = self.site_event.borrow_mut().take();
        (out, left.is_none())
    }

    /// Records an event that changed nothing (refused, or a note whose audit entry is its
    /// effect), with the quarantine entry of a malformed one, in one durable transaction.
    pub fn record_site_event(
        &self,
        row: &SiteEventRow,
        quarantine: Option<&QuarantineEntry>,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            insert_event(tx, row)?;
            if let Some(e) = quarantine {
                tx.execute(
                    "INSERT INTO quarantine (run, feed, seq, place, reason, received_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![row.run, e.feed, e.seq as i64, e.place, e.reason, e.received_ms, e.body],
                )?;
            }
            Ok(())
        })
    }

    /// The applied event with this id, if any.
    pub fn site_event(&self, event_id: &str) -> Result<Option<SiteEventRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, event_id, kind, operator, workstation, at_ms, outcome, reason, run FROM site_events WHERE event_id = ?1",
        )?;
        Ok(stmt.query_row([event_id], read_event).optional()?)
    }

    /// Every applied event of `run`, in stream order.
    pub fn site_events(&self, run: RunId) -> Result<Vec<SiteEventRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, event_id, kind, operator, workstation, at_ms, outcome, reason, run FROM site_events WHERE run = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([run], read_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets an operator of the site's roster, in the transaction that commits the roster
    /// event's row (see [`Store::with_site_event`]).
    pub fn set_site_roster(&self, entry: &SiteRosterEntry, seq: u64) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO site_roster (name, role, pin_hash, seq) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET role = excluded.role, pin_hash = excluded.pin_hash, seq = excluded.seq",
                params![entry.name, entry.role, entry.pin_hash, seq as i64],
            )?;
            Ok(())
        })
    }

    /// Takes an operator off the site's roster, in the transaction that commits the roster
    /// event's row (see [`Store::with_site_event`]).
    pub fn remove_site_roster(&self, name: &str) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute("DELETE FROM site_roster WHERE name = ?1", params![name])?;
            Ok(())
        })
    }

    /// Keeps the site's clock (the latest tick applied); arrivals keep theirs as the run's
    /// frontier. Ticks only move forward, so one kept ahead of the position is harmless: the
    /// tick is read again and changes nothing.
    pub fn set_site_time(&self, run: RunId, time_ms: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE site_runs SET time_ms = max(coalesce(time_ms, ?2), ?2) WHERE run = ?1",
            params![run, time_ms],
        )?;
        Ok(())
    }

    /// The site's clock as kept by [`Store::set_site_time`].
    pub fn site_time(&self, run: RunId) -> Result<Option<Millis>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT time_ms FROM site_runs WHERE run = ?1", [run], |r| r.get(0))?)
    }

    /// Commits a decision made here before it is published, so that it survives a crash and
    /// goes out when the link returns.
    pub fn add_site_pending(
        &self,
        event_id: &str,
        subject: &str,
        payload: &[u8],
        wall_ms: Millis,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO site_pending (event_id, subject, payload, wall_ms) VALUES (?1, ?2, ?3, ?4)",
                params![event_id, subject, payload, wall_ms],
            )?;
            Ok(())
        })
    }

    /// The decisions waiting to be published, oldest first.
    pub fn site_pending(&self) -> Result<Vec<PendingDecision>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT event_id, subject, payload, wall_ms FROM site_pending ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingDecision {
                event_id: r.get(0)?,
                subject: r.get(1)?,
                payload: r.get(2)?,
                wall_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A waiting decision was acknowledged by the site.
    pub fn remove_site_pending(&self, event_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM site_pending WHERE event_id = ?1", [event_id])?;
        Ok(())
    }

    /// Records whether the followed site is an exercise (its actions are recorded, never
    /// sent), as the site said when this workstation last reached it.
    pub fn set_site_exercise(&self, site: &str, exercise: bool) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE site_runs SET exercise = ?2 WHERE site = ?1",
            params![site, exercise],
        )?;
        Ok(())
    }

    /// Whether the followed site is an exercise, as last recorded.
    pub fn site_exercise(&self, site: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT exercise FROM site_runs WHERE site = ?1", [site], |r| r.get(0))
            .optional()?
            .unwrap_or(false))
    }

    /// The site's roster, by name.
    pub fn site_roster(&self) -> Result<Vec<SiteRosterEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, role, pin_hash FROM site_roster ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(SiteRosterEntry {
                name: r.get(0)?,
                role: r.get(1)?,
                pin_hash: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn read_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<SiteEventRow> {
    Ok(SiteEventRow {
        seq: r.get::<_, i64>(0)? as u64,
        event_id: r.get(1)?,
        kind: r.get(2)?,
        operator: r.get(3)?,
        workstation: r.get(4)?,
        at_ms: r.get(5)?,
        outcome: r.get(6)?,
        reason: r.get(7)?,
        run: r.get(8)?,
    })
}
