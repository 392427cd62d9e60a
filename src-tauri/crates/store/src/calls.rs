//! Incidents operators entered by hand (`cityops_core::call`): each kept as the exact tape line
//! it became, with who entered it, and written durably with its audit entry before the line is
//! ingested, so a crash never loses a call the operator saw accepted.

use cityops_core::model::Millis;
use rusqlite::params;

use super::{AuditRecord, RunId, Store, StoreError, Vouch};

/// One call, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// Its number in the run, from 1 (its entity is `call/<n>`, its line number `n`).
    pub n: u64,
    /// Who entered it.
    pub operator: String,
    /// Their role.
    pub role: String,
    /// Scenario time it was entered at.
    pub scenario_ms: Millis,
    /// The entity it became.
    pub entity: String,
    /// The incident type the operator chose.
    pub incident_type: String,
    /// The tape line it became (without the newline).
    pub line: String,
}

impl Store {
    /// Records a call and its audit entry, durably, before its line is ingested.
    pub fn record_call(&self, run: RunId, row: &CallRow, wall_ms: Millis) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO operator_calls (run, n, operator, role, scenario_ms, wall_ms, entity, incident_type, line) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run,
                    row.n as i64,
                    row.operator,
                    row.role,
                    row.scenario_ms,
                    wall_ms,
                    row.entity,
                    row.incident_type,
                    row.line
                ],
            )?;
            let record = AuditRecord {
                run: Some(run),
                wall_ms,
                scenario_ms: Some(row.scenario_ms),
                operator: &row.operator,
                role: &row.role,
                action: "call",
                subject: &row.entity,
                detail: row.incident_type.clone(),
            };
            Store::append_audit_vouching(tx, &record, Vouch::Call(run, row.n))?;
            Ok(())
        })
    }

    /// A run's calls, in the order they were entered.
    pub fn calls(&self, run: RunId) -> Result<Vec<CallRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT n, operator, role, scenario_ms, entity, incident_type, line FROM operator_calls \
             WHERE run = ?1 ORDER BY n",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(CallRow {
                n: r.get::<_, i64>(0)? as u64,
                operator: r.get(1)?,
                role: r.get(2)?,
                scenario_ms: r.get(3)?,
                entity: r.get(4)?,
                incident_type: r.get(5)?,
                line: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
