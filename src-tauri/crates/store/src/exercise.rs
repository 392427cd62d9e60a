//! What an exercise adds to a run: the trainer's injects, each kept as the exact tape line it
//! became, and the moment the exercise was ended. Both are written durably with their audit
//! entry, like every other operator record.

use cityops_core::model::Millis;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{AuditRecord, RunId, Store, StoreError, Vouch};
use cityops_dto::InjectDto;

/// One trainer inject, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectRow {
    /// Its number in the run, from 1 (also its sequence number on the inject feed).
    pub n: u64,
    /// The palette entry it was made from.
    pub inject: String,
    /// Scenario time it was made at.
    pub scenario_ms: Millis,
    /// Who made it.
    pub trainer: String,
    /// The entity it is about (a snapped asset, or `inject/<n>`).
    pub entity: String,
    /// The observation's title.
    pub title: String,
    /// The tape line it became (without the newline).
    pub line: String,
}

impl Store {
    /// Records an inject and its audit entry, durably, before it is ingested: a crash after
    /// this leaves the inject in the record, and its observation is ingested again from `line`
    /// only if the run is resumed, never silently lost.
    pub fn record_inject(&self, run: RunId, row: &InjectRow, wall_ms: Millis) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO injects (run, n, inject, scenario_ms, trainer, entity, title, line, wall_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![run, row.n as i64, row.inject, row.scenario_ms, row.trainer, row.entity, row.title, row.line, wall_ms],
            )?;
            let record = AuditRecord {
                run: Some(run),
                wall_ms,
                scenario_ms: Some(row.scenario_ms),
                operator: &row.trainer,
                role: "trainer",
                action: "inject",
                subject: &row.entity,
                detail: format!("{} ({})", row.title, row.inject),
            };
            Store::append_audit_vouching(tx, &record, Vouch::Inject(run, row.n))?;
            Ok(())
        })
    }

    /// A run's injects, in the order they were made.
    pub fn injects(&self, run: RunId) -> Result<Vec<InjectRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT n, inject, scenario_ms, trainer, entity, title, line FROM injects WHERE run = ?1 ORDER BY n",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(InjectRow {
                n: r.get::<_, i64>(0)? as u64,
                inject: r.get(1)?,
                scenario_ms: r.get(2)?,
                trainer: r.get(3)?,
                entity: r.get(4)?,
                title: r.get(5)?,
                line: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a run's exercise ended at scenario time `scenario_ms` by `by`, with its audit
    /// entry; a run is ended once, later calls change nothing and return the first end.
    pub fn end_exercise(
        &self,
        run: RunId,
        scenario_ms: Millis,
        by: &str,
        role: &str,
        wall_ms: Millis,
    ) -> Result<(Millis, String), StoreError> {
        if let Some(ended) = self.exercise_end(run)? {
            return Ok(ended);
        }
        self.durably(|tx| {
            tx.execute(
                "UPDATE runs SET ended_ms = ?2, ended_by = ?3 WHERE id = ?1",
                params![run, scenario_ms, by],
            )?;
            let record = AuditRecord {
                run: Some(run),
                wall_ms,
                scenario_ms: Some(scenario_ms),
                operator: by,
                role,
                action: "exercise_end",
                subject: "run",
                detail: String::new(),
            };
            Store::append_audit(tx, &record)?;
            Ok(())
        })?;
        Ok((scenario_ms, by.to_owned()))
    }

    /// When and by whom a run's exercise was ended, if it was.
    pub fn exercise_end(&self, run: RunId) -> Result<Option<(Millis, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT ended_ms, ended_by FROM runs WHERE id = ?1 AND ended_ms IS NOT NULL",
                [run],
                |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())),
            )
            .optional()?)
    }
}

impl From<InjectRow> for InjectDto {
    fn from(r: InjectRow) -> Self {
        InjectDto {
            n: r.n,
            inject: r.inject,
            scenario_ms: r.scenario_ms,
            trainer: r.trainer,
            entity: r.entity,
            title: r.title,
        }
    }
}
