//! The incident side of the store: the correlator's current incidents per run, and the
//! operators' records (lifecycle transitions, manual decisions, SOP ticks; sign-ins are in `roster`) with the
//! audit trail (`store/audit.rs`).
//!
//! Incidents are rewritten in group commits like the observation log. Every operator action is
//! its own transaction, committed with `synchronous=FULL`: an acknowledged alarm must survive a
//! power cut, not only an application crash.

use cityops_core::correlate::Incident;
use cityops_core::model::{Millis, Severity};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{RunId, Store, StoreError, Vouch};
use cityops_dto::AreaDto;

/// The `prev_hash` of the first audit entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub run: Option<RunId>,
    pub wall_ms: Millis,
    pub scenario_ms: Option<Millis>,
    pub operator: String,
    pub role: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// How it is sealed: `hmac-sha256` (keyed, see `store/audit.rs`) or `sha256` (before the key).
    pub scheme: String,
    /// The row it vouches for (table, key, digest of the vouched fields) as JSON, if any.
    pub vouches: Option<String>,
}

/// What an operator action appends to the audit trail (the store adds sequence and hashes).
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    pub run: Option<RunId>,
    pub wall_ms: Millis,
    pub scenario_ms: Option<Millis>,
    pub operator: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: String,
}

/// A lifecycle transition, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionRow {
    pub incident: String,
    pub from: String,
    pub to: String,
    pub operator: String,
    pub role: String,
    pub wall_ms: Millis,
    pub scenario_ms: Millis,
}

/// A change of an incident's owner, as stored: `operator` made it (the owner taking it, or a
/// supervisor giving it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRow {
    pub incident: String,
    pub owner: String,
    pub operator: String,
    pub role: String,
    pub wall_ms: Millis,
    pub scenario_ms: Millis,
}

/// A manual decision, as stored: `action` is the JSON of the engine's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub id: i64,
    pub position_ms: Millis,
    pub operator: String,
    pub at_ms: Millis,
    pub action: String,
}

/// A SOP step ticked or unticked, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopTickRow {
    pub incident: String,
    pub step: u32,
    pub ticked: bool,
    pub operator: String,
}

/// One note of an incident's narrative log, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteRow {
    pub incident: String,
    pub operator: String,
    pub role: String,
    /// Where in the scenario (or the shift) it was written.
    pub scenario_ms: Millis,
    pub text: String,
}

/// A supervisor's override of an incident's required SOP steps, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideRow {
    pub incident: String,
    pub operator: String,
    pub role: String,
    pub scenario_ms: Millis,
    /// The required steps left unticked, by number from 1 (`1, 7`).
    pub steps: String,
    /// Why the supervisor went past them.
    pub reason: String,
}

/// A stored member, for the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMember {
    pub entity: String,
    pub layer: String,
    pub kind: String,
    pub severity: String,
    pub rule: String,
    pub related: Option<String>,
    pub distance_m: f64,
    pub time_gap_s: f64,
    pub dependency_path: Vec<String>,
    pub confidence: f64,
    pub explanation: String,
    pub duplicate_of: Option<String>,
    pub cleared: bool,
}

/// A stored incident with its members, for the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredIncident {
    pub id: String,
    /// Its narrative log: the operators' notes, oldest first.
    pub notes: Vec<NoteRow>,
    /// The human number (`HEL-2026-000123`).
    pub number: String,
    pub incident_type: String,
    pub title: String,
    pub status: String,
    pub lifecycle: String,
    /// Who moved it out of `new` (acknowledging it, or skipping past that step), if anyone.
    pub acknowledged_by: Option<String>,
    /// Who owns it (took it, or was given it), if anyone.
    pub owner: Option<String>,
    pub severity: String,
    pub opened_ms: Millis,
    pub cleared_ms: Option<Millis>,
    pub root_cause: Option<String>,
    pub root_cleared: bool,
    pub manual: bool,
    pub area: [f64; 4],
    pub members: Vec<StoredMember>,
}

/// One incident to write: its row, and which of its member rows changed (by position).
#[derive(Debug, Clone)]
pub struct IncidentWrite<'a> {
    pub incident: &'a Incident,
    pub area: AreaDto,
    pub members: Vec<usize>,
}

fn status_name(i: &Incident) -> &'static str {
    match i.status {
        cityops_core::correlate::IncidentStatus::Open => "open",
        cityops_core::correlate::IncidentStatus::Cleared => "cleared",
        cityops_core::correlate::IncidentStatus::Merged { .. } => "merged",
    }
}

/// The hash of an audit entry: SHA-256 of its fields and the previous hash, as a JSON array, so
/// no field can be changed or an entry removed without breaking every later hash.
pub fn audit_hash(e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        e.seq,
        e.run,
        e.wall_ms,
        e.scenario_ms,
        e.operator,
        e.role,
        e.action,
        e.subject,
        e.detail,
        e.prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

impl Store {
    /// Updates the stored view of a run's incidents in one transaction (a group commit, like the
    /// observation log): everything is replaced when `reset`; otherwise each given incident's
    /// row, the member rows it names, and no rows past its member count.
    pub fn write_incidents(
        &self,
        run: RunId,
        reset: bool,
        incidents: &[IncidentWrite<'_>],
        removed: &[String],
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        if reset {
            tx.execute("DELETE FROM incident_members WHERE run = ?1", [run])?;
            tx.execute("DELETE FROM incidents WHERE run = ?1", [run])?;
        }
        {
            let mut del_members = tx.prepare_cached("DELETE FROM incident_members WHERE run = ?1 AND incident = ?2")?;
            let mut del = tx.prepare_cached("DELETE FROM incidents WHERE run = ?1 AND id = ?2")?;
            for id in removed {
                del_members.execute(params![run, id])?;
                del.execute(params![run, id])?;
            }
            let mut ins = tx.prepare_cached(
                // An upsert, not INSERT OR REPLACE: a replace deletes the row first, and the
                // delete would cascade to the member rows that did not change.
                "INSERT INTO incidents (run, id, incident_type, title, status, severity, opened_ms, cleared_ms, \
                 root_cause, root_cleared, manual, west, south, east, north, number) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
                 ON CONFLICT (run, id) DO UPDATE SET incident_type = excluded.incident_type, title = excluded.title, \
                 number = excluded.number, \
                 status = excluded.status, severity = excluded.severity, opened_ms = excluded.opened_ms, \
                 cleared_ms = excluded.cleared_ms, root_cause = excluded.root_cause, root_cleared = excluded.root_cleared, \
                 manual = excluded.manual, west = excluded.west, south = excluded.south, east = excluded.east, north = excluded.north",
            )?;
            let mut trim =
                tx.prepare_cached("DELETE FROM incident_members WHERE run = ?1 AND incident = ?2 AND position >= ?3")?;
            let mut member = tx.prepare_cached(
                "INSERT OR REPLACE INTO incident_members (run, incident, position, entity, layer, kind, severity, rule, related, \
                 distance_m, time_gap_s, dependency_path, confidence, explanation, duplicate_of, cleared) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for w in incidents {
                let (inc, area) = (w.incident, &w.area);
                let id = inc.id.as_str();
                trim.execute(params![run, id, inc.members.len() as i64])?;
                ins.execute(params![
                    run,
                    id,
                    inc.incident_type,
                    inc.title,
                    status_name(inc),
                    inc.severity.rank(),
                    inc.opened_ms,
                    inc.cleared_ms,
                    inc.root_cause,
                    inc.root_cleared,
                    inc.manual,
                    area.west,
                    area.south,
                    area.east,
                    area.north,
                    inc.number,
                ])?;
                for &i in &w.members {
                    let m = &inc.members[i];
                    let e = &m.explanation;
                    member.execute(params![
                        run,
                        id,
                        i as i64,
                        m.entity,
                        m.layer.as_str(),
                        m.kind,
                        m.severity.rank(),
                        m.rule,
                        e.related,
                        e.distance_m,
                        e.time_gap_s,
                        serde_json::to_string(&e.dependency_path).expect("strings serialize"),
                        e.confidence,
                        e.text,
                        m.duplicate_of,
                        m.cleared,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Appends a bare audit entry (a sign-out, say) as its own durable transaction.
    pub fn audit(&self, record: &AuditRecord<'_>) -> Result<AuditEntry, StoreError> {
        self.durably(|tx| Store::append_audit(tx, record))
    }

    /// Records a lifecycle transition and its audit entry, durably.
    pub fn record_transition(&self, run: RunId, t: &TransitionRow) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO incident_transitions (run, incident, from_status, to_status, operator, role, wall_ms, scenario_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![run, t.incident, t.from, t.to, t.operator, t.role, t.wall_ms, t.scenario_ms],
            )?;
            let id = tx.last_insert_rowid();
            let detail = format!("{} -> {}", t.from, t.to);
            let record = AuditRecord { run: Some(run), wall_ms: t.wall_ms, scenario_ms: Some(t.scenario_ms), operator: &t.operator, role: &t.role, action: "transition", subject: &t.incident, detail };
            Store::append_audit_vouching(tx, &record, Vouch::Transition(id))?;
            Ok(())
        })
    }

    /// Records a change of an incident's owner and its audit entry, durably.
    pub fn record_owner(&self, run: RunId, o: &OwnerRow) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO incident_owners (run, incident, owner, operator, role, wall_ms, scenario_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run, o.incident, o.owner, o.operator, o.role, o.wall_ms, o.scenario_ms],
            )?;
            let id = tx.last_insert_rowid();
            let detail = format!("owner {}", o.owner);
            let record = AuditRecord {
                run: Some(run),
                wall_ms: o.wall_ms,
                scenario_ms: Some(o.scenario_ms),
                operator: &o.operator,
                role: &o.role,
                action: "owner",
                subject: &o.incident,
                detail,
            };
            Store::append_audit_vouching(tx, &record, Vouch::Owner(id))?;
            Ok(())
        })
    }

    /// A run's changes of owners, oldest first.
    pub fn owners(&self, run: RunId) -> Result<Vec<OwnerRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT incident, owner, operator, role, wall_ms, scenario_ms FROM incident_owners WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(OwnerRow {
                incident: r.get(0)?,
                owner: r.get(1)?,
                operator: r.get(2)?,
                role: r.get(3)?,
                wall_ms: r.get(4)?,
                scenario_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a manual decision (merge, split, reassign, undo) and its audit entry, durably;
    /// returns its id.
    pub fn record_decision(
        &self,
        run: RunId,
        d: &DecisionRow,
        role: &str,
        wall_ms: Millis,
        subject: &str,
    ) -> Result<i64, StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO manual_decisions (run, position_ms, operator, at_ms, wall_ms, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run, d.position_ms, d.operator, d.at_ms, wall_ms, d.action],
            )?;
            let id = tx.last_insert_rowid();
            let record = AuditRecord { run: Some(run), wall_ms, scenario_ms: Some(d.at_ms), operator: &d.operator, role, action: "decision", subject, detail: d.action.clone() };
            Store::append_audit_vouching(tx, &record, Vouch::Decision(id))?;
            Ok(id)
        })
    }

    /// Records a SOP step ticked or unticked, and its audit entry, durably.
    pub fn record_sop_tick(
        &self,
        run: RunId,
        t: &SopTickRow,
        role: &str,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO sop_ticks (run, incident, step, ticked, operator, wall_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run, t.incident, t.step, t.ticked, t.operator, wall_ms],
            )?;
            let id = tx.last_insert_rowid();
            let detail = format!("step {} {}", t.step + 1, if t.ticked { "ticked" } else { "unticked" });
            let record = AuditRecord { run: Some(run), wall_ms, scenario_ms: Some(scenario_ms), operator: &t.operator, role, action: "sop", subject: &t.incident, detail };
            Store::append_audit_vouching(tx, &record, Vouch::SopTick(id))?;
            Ok(())
        })
    }

    /// Adds a note to an incident's narrative log, audited (the entry vouches for the note).
    pub fn record_note(&self, run: RunId, n: &NoteRow, wall_ms: Millis) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO incident_notes (run, incident, operator, role, wall_ms, scenario_ms, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run, n.incident, n.operator, n.role, wall_ms, n.scenario_ms, n.text],
            )?;
            let id = tx.last_insert_rowid();
            let record = AuditRecord {
                run: Some(run),
                wall_ms,
                scenario_ms: Some(n.scenario_ms),
                operator: &n.operator,
                role: &n.role,
                action: "note",
                subject: &n.incident,
                detail: n.text.clone(),
            };
            Store::append_audit_vouching(tx, &record, Vouch::Note(id))?;
            Ok(())
        })
    }

    /// Records a supervisor's override of required SOP steps, audited (the entry vouches for
    /// it).
    pub fn record_override(&self, run: RunId, o: &OverrideRow, wall_ms: Millis) -> Result<(), StoreError> {
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO incident_overrides (run, incident, operator, role, wall_ms, scenario_ms, steps, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run,
                    o.incident,
                    o.operator,
                    o.role,
                    wall_ms,
                    o.scenario_ms,
                    o.steps,
                    o.reason
                ],
            )?;
            let id = tx.last_insert_rowid();
            let record = AuditRecord {
                run: Some(run),
                wall_ms,
                scenario_ms: Some(o.scenario_ms),
                operator: &o.operator,
                role: &o.role,
                action: "override",
                subject: &o.incident,
                detail: format!("required steps {} unticked: {}", o.steps, o.reason),
            };
            Store::append_audit_vouching(tx, &record, Vouch::Override(id))?;
            Ok(())
        })
    }

    /// A run's overrides of required SOP steps, oldest first.
    pub fn overrides(&self, run: RunId) -> Result<Vec<OverrideRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT incident, operator, role, scenario_ms, steps, reason FROM incident_overrides WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(OverrideRow {
                incident: r.get(0)?,
                operator: r.get(1)?,
                role: r.get(2)?,
                scenario_ms: r.get(3)?,
                steps: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A run's notes, oldest first.
    pub fn notes(&self, run: RunId) -> Result<Vec<NoteRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT incident, operator, role, scenario_ms, text FROM incident_notes WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(NoteRow {
                incident: r.get(0)?,
                operator: r.get(1)?,
                role: r.get(2)?,
                scenario_ms: r.get(3)?,
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A run's lifecycle transitions, oldest first.
    pub fn transitions(&self, run: RunId) -> Result<Vec<TransitionRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT incident, from_status, to_status, operator, role, wall_ms, scenario_ms FROM incident_transitions WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(TransitionRow {
                incident: r.get(0)?,
                from: r.get(1)?,
                to: r.get(2)?,
                operator: r.get(3)?,
                role: r.get(4)?,
                wall_ms: r.get(5)?,
                scenario_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A run's manual decisions, in the order they were made.
    pub fn decisions(&self, run: RunId) -> Result<Vec<DecisionRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, position_ms, operator, at_ms, action FROM manual_decisions WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(DecisionRow {
                id: r.get(0)?,
                position_ms: r.get(1)?,
                operator: r.get(2)?,
                at_ms: r.get(3)?,
                action: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A run's SOP ticks, oldest first (the latest per step wins).
    pub fn sop_ticks(&self, run: RunId) -> Result<Vec<SopTickRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT incident, step, ticked, operator FROM sop_ticks WHERE run = ?1 ORDER BY id")?;
        let rows = stmt.query_map([run], |r| {
            Ok(SopTickRow {
                incident: r.get(0)?,
                step: r.get(1)?,
                ticked: r.get(2)?,
                operator: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The id of run `run`'s incident numbered `number` (`HEL-2026-000123`), if there is one.
    pub fn incident_by_number(&self, run: RunId, number: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM incidents WHERE run = ?1 AND number = ?2",
                params![run, number],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A run's stored incidents with their members and notes, most severe first, then oldest
    /// first.
    pub fn stored_incidents(&self, run: RunId) -> Result<Vec<StoredIncident>, StoreError> {
        let transitions = self.transitions(run)?;
        let mut acknowledged_by: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for t in &transitions {
            acknowledged_by.entry(&t.incident).or_insert(&t.operator);
        }
        let lifecycle: std::collections::HashMap<&str, &str> = transitions
            .iter()
            .map(|t| (t.incident.as_str(), t.to.as_str()))
            .collect();
        let owners = self.owners(run)?;
        let owner: std::collections::HashMap<&str, &str> =
            owners.iter().map(|o| (o.incident.as_str(), o.owner.as_str())).collect();
        let mut notes: std::collections::HashMap<String, Vec<NoteRow>> = std::collections::HashMap::new();
        for n in self.notes(run)? {
            notes.entry(n.incident.clone()).or_default().push(n);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, incident_type, title, status, severity, opened_ms, cleared_ms, root_cause, root_cleared, manual, west, south, east, north, number \
             FROM incidents WHERE run = ?1 ORDER BY severity DESC, opened_ms, id",
        )?;
        let sev = |rank: u8| {
            Severity::from_rank(rank)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| format!("rank {rank}"))
        };
        let mut out: Vec<StoredIncident> = stmt
            .query_map([run], |r| {
                let id: String = r.get(0)?;
                Ok(StoredIncident {
                    lifecycle: String::new(),
                    acknowledged_by: None,
                    owner: None,
                    incident_type: r.get(1)?,
                    title: r.get(2)?,
                    status: r.get(3)?,
                    severity: sev(r.get(4)?),
                    opened_ms: r.get(5)?,
                    cleared_ms: r.get(6)?,
                    root_cause: r.get(7)?,
                    root_cleared: r.get(8)?,
                    manual: r.get(9)?,
                    area: [r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?],
                    number: r.get(14)?,
                    members: Vec::new(),
                    notes: Vec::new(),
                    id,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut members = self.conn.prepare_cached(
            "SELECT entity, layer, kind, severity, rule, related, distance_m, time_gap_s, dependency_path, confidence, explanation, duplicate_of, cleared \
             FROM incident_members WHERE run = ?1 AND incident = ?2 ORDER BY position",
        )?;
        for inc in &mut out {
            inc.lifecycle = lifecycle.get(inc.id.as_str()).copied().unwrap_or("new").to_owned();
            inc.acknowledged_by = acknowledged_by.get(inc.id.as_str()).map(|s| (*s).to_owned());
            inc.owner = owner.get(inc.id.as_str()).map(|s| (*s).to_owned());
            inc.notes = notes.remove(&inc.id).unwrap_or_default();
            inc.members = members
                .query_map(params![run, inc.id], |r| {
                    let path: String = r.get(8)?;
                    Ok(StoredMember {
                        entity: r.get(0)?,
                        layer: r.get(1)?,
                        kind: r.get(2)?,
                        severity: sev(r.get(3)?),
                        rule: r.get(4)?,
                        related: r.get(5)?,
                        distance_m: r.get(6)?,
                        time_gap_s: r.get(7)?,
                        dependency_path: serde_json::from_str(&path).unwrap_or_default(),
                        confidence: r.get(9)?,
                        explanation: r.get(10)?,
                        duplicate_of: r.get(11)?,
                        cleared: r.get(12)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(out)
    }
}
