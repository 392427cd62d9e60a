//! The dispatch outbox in the store: committed actions with the exact bytes they send, their
//! delivery attempts, and the audit entries both leave.
//!
//! Every change here is its own `synchronous=FULL` transaction that also appends to the audit
//! chain, so an action the operator saw committed survives `kill -9` and a power cut, and the
//! record of what was attempted is tamper-evident.

use cityops_core::dispatch::BackendKind;
use cityops_core::model::Millis;
use rusqlite::{params, OptionalExtension, Row};

use super::{AuditRecord, AuditTx, RunId, Store, StoreError, Vouch};
use cityops_dto::{ActionDto, ActionStatus, HeaderDto};

/// An action as the operator confirmed it, about to be committed.
#[derive(Debug, Clone)]
pub struct NewAction<'a> {
    pub key: &'a str,
    pub run: Option<RunId>,
    pub incident: Option<&'a str>,
    pub backend: &'a str,
    pub kind: BackendKind,
    pub summary: &'a str,
    pub destination: &'a str,
    pub headers: &'a [HeaderDto],
    pub body: &'a str,
    pub device: Option<&'a str>,
    pub exercise: bool,
    pub operator: &'a str,
    pub role: &'a str,
    pub wall_ms: Millis,
    pub scenario_ms: Option<Millis>,
}

/// A committed action, with what the sender needs to deliver it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub dto: ActionDto,
    pub headers: Vec<HeaderDto>,
    pub body: String,
    pub device: Option<String>,
    /// Attempts that the backend answered with a failure (the retry budget counts these).
    pub failures: u32,
}

/// What a dispatch worker of a site reported for an action (see `cityops-site`'s dispatch).
#[derive(Debug, Clone, PartialEq)]
pub enum SiteOutcome<'a> {
    Sending { worker: &'a str },
    Delivered { worker: &'a str, reference: &'a str },
    Sent { worker: &'a str, reference: &'a str },
    Retrying { worker: &'a str, reason: &'a str },
    Failed { worker: &'a str, reason: &'a str },
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// The backend confirmed it.
    Delivered { reference: String },
    /// Written to a backend that cannot confirm it; final like delivery.
    Sent { reference: String },
    /// Try again at `next_ms`; `counts` when the backend answered (a failure against the
    /// budget), not when it could not be reached at all.
    Retry {
        reason: String,
        next_ms: Millis,
        counts: bool,
    },
    /// Refused for good, or out of budget.
    Failed { reason: String },
}

const COLUMNS: &str = "id, key, incident, backend, kind, summary, destination, status, attempts, reference, remote_status, last_error, \
                       next_attempt_ms, created_wall_ms, operator, exercise, headers, body, device, failures, scenario_ms";

fn read_row(r: &Row<'_>) -> rusqlite::Result<(ActionDto, String, String, Option<String>, u32)> {
    let kind: String = r.get(4)?;
    let status: String = r.get(7)?;
    let status = ActionStatus::parse(&status).unwrap_or(ActionStatus::Failed);
    let next: Millis = r.get(12)?;
    Ok((
        ActionDto {
            id: r.get(0)?,
            key: r.get(1)?,
            incident: r.get(2)?,
            backend: r.get(3)?,
            kind: BackendKind::parse(&kind).unwrap_or(BackendKind::Webhook),
            summary: r.get(5)?,
            destination: r.get(6)?,
            status,
            attempts: r.get(8)?,
            reference: r.get(9)?,
            remote_status: r.get(10)?,
            last_error: r.get(11)?,
            next_attempt_ms: (status == ActionStatus::Queued && r.get::<_, u32>(8)? > 0).then_some(next),
            created_ms: r.get(13)?,
            scenario_ms: r.get(20)?,
            operator: r.get(14)?,
            exercise: r.get(15)?,
        },
        r.get(16)?,
        r.get(17)?,
        r.get(18)?,
        r.get(19)?,
    ))
}

fn to_row(t: (ActionDto, String, String, Option<String>, u32)) -> Result<ActionRow, StoreError> {
    let (dto, headers, body, device, failures) = t;
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt {
        row: dto.id,
        reason: format!("action headers: {e}"),
    })?;
    Ok(ActionRow {
        dto,
        headers: headers
            .into_iter()
            .map(|(name, value)| HeaderDto { name, value })
            .collect(),
        body,
        device,
        failures,
    })
}

/// Why an action in `status` can no longer be cancelled, if it cannot: only a waiting one
/// (queued, or failed) can.
fn too_late_to_cancel(status: &str, reference: Option<&str>) -> Option<String> {
    match status {
        "queued" | "failed" => None,
        "sending" => Some("too late to cancel: a dispatch worker is already sending it".into()),
        s => {
            let reference = reference.map(|r| format!(" ({r})")).unwrap_or_default();
            Some(format!("too late to cancel: it is {s}{reference}"))
        }
    }
}

/// Inserts a committed action, queued, with its audit entry, in `tx`.
fn insert_action(tx: &AuditTx<'_>, a: &NewAction<'_>) -> Result<i64, StoreError> {
    let headers: Vec<(&str, &str)> = a.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
    let headers = serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO actions (key, run, incident, backend, kind, summary, destination, headers, body, device, exercise, operator, role, \
         created_wall_ms, scenario_ms, status, next_attempt_ms, updated_wall_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'queued', ?14, ?14)",
    )?
    .execute(params![
        a.key,
        a.run,
        a.incident,
        a.backend,
        a.kind.as_str(),
        a.summary,
        a.destination,
        headers,
        a.body,
        a.device,
        a.exercise,
        a.operator,
        a.role,
        a.wall_ms,
        a.scenario_ms
    ])?;
    let id = tx.last_insert_rowid();
    let detail =
        serde_json::json!({ "key": a.key, "backend": a.backend, "summary": a.summary, "exercise": a.exercise })
            .to_string();
    let subject = a.incident.unwrap_or(a.key);
    let record = AuditRecord {
        run: a.run,
        wall_ms: a.wall_ms,
        scenario_ms: a.scenario_ms,
        operator: a.operator,
        role: a.role,
        action: "dispatch",
        subject,
        detail,
    };
    Store::append_audit_vouching(tx, &record, Vouch::Action(id))?;
    Ok(id)
}

impl Store {
    /// Commits a confirmed action, queued for delivery now, and audits it. When this returns,
    /// the action is on disk: a crash after it loses nothing.
    pub fn commit_action(&self, a: &NewAction<'_>) -> Result<i64, StoreError> {
        self.durably(|tx| insert_action(tx, a))
    }

    /// Commits an action made at a workstation of a site, and in the same transaction the
    /// message that publishes it to the site (`site_pending`): a crash cannot leave an action
    /// committed here that the site never hears of.
    pub fn commit_site_action(
        &self,
        a: &NewAction<'_>,
        message_id: &str,
        subject: &str,
        payload: &[u8],
    ) -> Result<i64, StoreError> {
        self.durably(|tx| {
            let id = insert_action(tx, a)?;
            tx.execute(
                "INSERT OR IGNORE INTO site_pending (event_id, subject, payload, wall_ms) VALUES (?1, ?2, ?3, ?4)",
                params![message_id, subject, payload, a.wall_ms],
            )?;
            Ok(id)
        })
    }

    /// Commits a message to the site about an existing action (an operator's retry or
    /// cancellation), after checking that the action is `from` one of the given states here.
    /// Returns the action's key and the sequence of the latest site outcome applied to it.
    pub fn commit_site_change(
        &self,
        id: i64,
        from: &[&str],
        done: &str,
        message: impl FnOnce(&str, Option<u64>) -> (String, String, Vec<u8>),
        wall_ms: Millis,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            let found: Option<(String, String, Option<i64>)> = tx
                .query_row("SELECT status, key, site_seq FROM actions WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((status, key, seq)) = found else {
                return Err(StoreError::Refused(format!("action {id} does not exist")));
            };
            if done == "cancelled" {
                if let Some(reason) = too_late_to_cancel(&status, None) {
                    return Err(StoreError::Refused(reason));
                }
            }
            if !from.contains(&status.as_str()) {
                return Err(StoreError::Refused(format!(
                    "action {id} is {status}; only {} actions can be {done}",
                    from.join(" or ")
                )));
            }
            let (message_id, subject, payload) = message(&key, seq.map(|s| s as u64));
            tx.execute(
                "INSERT OR IGNORE INTO site_pending (event_id, subject, payload, wall_ms) VALUES (?1, ?2, ?3, ?4)",
                params![message_id, subject, payload, wall_ms],
            )?;
            Ok(())
        })
    }

    /// Applies an action read from the site's stream at `seq`: a new one is committed here
    /// (queued: a dispatch worker sends it), one committed here already is left as it is, and
    /// an operator's retry of the failure at `retry_of` queues it again. True if it changed.
    pub fn apply_site_action(&self, a: &NewAction<'_>, retry_of: Option<u64>, seq: u64) -> Result<bool, StoreError> {
        self.durably(|tx| {
            let found: Option<(i64, String, Option<i64>)> = tx
                .query_row("SELECT id, status, site_seq FROM actions WHERE key = ?1", [a.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            match (found, retry_of) {
                (None, _) => {
                    let id = insert_action(tx, a)?;
                    tx.execute("UPDATE actions SET site_seq = ?2 WHERE id = ?1", params![id, seq as i64])?;
                    Ok(true)
                }
                (Some((id, status, site_seq)), Some(failed)) if status == "failed" && site_seq == Some(failed as i64) => {
                    tx.execute(
                        "UPDATE actions SET status = 'queued', failures = 0, site_seq = ?2, updated_wall_ms = ?3 WHERE id = ?1",
                        params![id, seq as i64, a.wall_ms],
                    )?;
                    let record = AuditRecord { run: None, wall_ms: a.wall_ms, scenario_ms: None, operator: a.operator, role: a.role, action: "retry", subject: a.key, detail: "was failed".into() };
                    Store::append_audit(tx, &record)?;
                    Ok(true)
                }
                (Some((id, _, None)), None) => {
                    // Committed here: the stream's copy gives it its place in the site.
                    tx.execute("UPDATE actions SET site_seq = ?2 WHERE id = ?1", params![id, seq as i64])?;
                    Ok(false)
                }
                _ => Ok(false),
            }
        })
    }

    /// Applies a dispatch worker's outcome read from the site's stream at `seq` to the action
    /// with `key`; false if this cache has no such action.
    pub fn apply_site_outcome(
        &self,
        key: &str,
        outcome: &SiteOutcome<'_>,
        seq: u64,
        wall_ms: Millis,
    ) -> Result<bool, StoreError> {
        self.durably(|tx| {
            let sql = match outcome {
                SiteOutcome::Sending { .. } => "UPDATE actions SET status = 'sending', attempts = attempts + 1, site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
                SiteOutcome::Delivered { .. } => "UPDATE actions SET status = 'delivered', reference = ?4, last_error = NULL, site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
                SiteOutcome::Sent { .. } => "UPDATE actions SET status = 'sent', reference = ?4, last_error = NULL, site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
                SiteOutcome::Retrying { .. } => "UPDATE actions SET status = 'queued', last_error = ?4, site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
                SiteOutcome::Failed { .. } => "UPDATE actions SET status = 'failed', last_error = ?4, site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
            };
            let (text, audit) = match outcome {
                SiteOutcome::Sending { worker } => (*worker, None),
                SiteOutcome::Delivered { worker, reference } => (*reference, Some((*worker, "delivered"))),
                SiteOutcome::Sent { worker, reference } => (*reference, Some((*worker, "sent"))),
                SiteOutcome::Retrying { reason, .. } => (*reason, None),
                SiteOutcome::Failed { worker, reason } => (*reason, Some((*worker, "failed"))),
            };
            let n = match outcome {
                SiteOutcome::Sending { .. } => tx.execute(sql, params![key, seq as i64, wall_ms])?,
                _ => tx.execute(sql, params![key, seq as i64, wall_ms, text])?,
            };
            if n == 0 {
                return Ok(false);
            }
            if let Some((worker, what)) = audit {
                let record = AuditRecord { run: None, wall_ms, scenario_ms: None, operator: worker, role: "dispatch worker", action: what, subject: key, detail: text.to_owned() };
                Store::append_audit(tx, &record)?;
            }
            Ok(true)
        })
    }

    /// Applies an operator's cancellation read from the site's stream at `seq`: it stands if
    /// the action waits (queued, or failed), and is refused ([`StoreError::Refused`], nothing
    /// written) otherwise: a dispatch worker took it first.
    pub fn apply_site_cancel(&self, key: &str, operator: &str, seq: u64, wall_ms: Millis) -> Result<(), StoreError> {
        self.durably(|tx| {
            let found: Option<(String, Option<String>)> = tx
                .query_row("SELECT status, reference FROM actions WHERE key = ?1", [key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (status, reference) =
                found.ok_or_else(|| StoreError::Refused(format!("no action {key} on this site")))?;
            if let Some(reason) = too_late_to_cancel(&status, reference.as_deref()) {
                return Err(StoreError::Refused(reason));
            }
            tx.execute(
                "UPDATE actions SET status = 'cancelled', site_seq = ?2, updated_wall_ms = ?3 WHERE key = ?1",
                params![key, seq as i64, wall_ms],
            )?;
            let record = AuditRecord {
                run: None,
                wall_ms,
                scenario_ms: None,
                operator,
                role: "operator",
                action: "cancel",
                subject: key,
                detail: format!("was {status}"),
            };
            Store::append_audit(tx, &record)?;
            Ok(())
        })
    }

    /// One action.
    pub fn action(&self, id: i64) -> Result<Option<ActionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM actions WHERE id = ?1");
        let row = self.conn.query_row(&sql, [id], read_row).optional()?;
        row.map(to_row).transpose()
    }

    /// The most recent actions, newest first.
    pub fn actions(&self, limit: u32) -> Result<Vec<ActionDto>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM actions ORDER BY id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([limit], read_row)?;
        Ok(rows.map(|r| r.map(|t| t.0)).collect::<Result<_, _>>()?)
    }

    /// Counts of queued (or in flight) and failed actions.
    pub fn action_counts(&self) -> Result<(u32, u32), StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(SUM(status IN ('queued', 'sending')), 0), COALESCE(SUM(status = 'failed'), 0) FROM actions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The next action of a backend in one mode (live or exercise), in commit order: the oldest
    /// one still queued or sending. Later ones wait behind it, so a backend receives its
    /// actions in the order they were committed. A sender never sees the other mode's actions:
    /// an exercise sender cannot record a real action as delivered, nor a live one send an
    /// exercise.
    pub fn head_action(&self, backend: &str, exercise: bool) -> Result<Option<ActionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM actions WHERE backend = ?1 AND exercise = ?2 AND status IN ('queued', 'sending') ORDER BY id LIMIT 1");
        let row = self
            .conn
            .query_row(&sql, params![backend, exercise], read_row)
            .optional()?;
        row.map(to_row).transpose()
    }

    /// How many live (not exercise) actions wait to be sent: queued, or left in flight.
    pub fn waiting_live_actions(&self) -> Result<u32, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM actions WHERE exercise = 0 AND status IN ('queued', 'sending')",
            [],
            |r| r.get(0),
        )?)
    }

    /// Puts actions a crash left `sending` back in the queue; their open attempt is closed as
    /// interrupted. Re-sending them is safe because the backend sees the same idempotency key.
    pub fn resume_interrupted_actions(&self, wall_ms: Millis) -> Result<u32, StoreError> {
        self.durably(|tx| {
            tx.execute(
                "UPDATE action_attempts SET finished_wall_ms = ?1, outcome = 'interrupted', detail = 'the application stopped during the attempt' \
                 WHERE finished_wall_ms IS NULL",
                [wall_ms],
            )?;
            let n = tx.execute("UPDATE actions SET status = 'queued', updated_wall_ms = ?1 WHERE status = 'sending'", [wall_ms])?;
            Ok(n as u32)
        })
    }

    /// Marks an action as being sent and opens its attempt; returns the attempt's id, or `None`
    /// when the action is no longer queued as the sender read it (an operator cancelled it, or
    /// another attempt took it, between the read and now): then nothing may be sent.
    pub fn start_attempt(&self, action: &ActionRow, wall_ms: Millis) -> Result<Option<i64>, StoreError> {
        let n = action.dto.attempts + 1;
        self.durably(|tx| {
            // Conditional on the status and attempt count the sender read, inside the write
            // lock: a cancel that committed after the read makes this change nothing.
            let changed = tx.execute(
                "UPDATE actions SET status = 'sending', attempts = ?2, updated_wall_ms = ?3 WHERE id = ?1 AND status = 'queued' AND attempts = ?4",
                params![action.dto.id, n, wall_ms, action.dto.attempts],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO action_attempts (action, n, started_wall_ms, outcome, detail) VALUES (?1, ?2, ?3, 'open', '')",
                params![action.dto.id, n, wall_ms],
            )?;
            let attempt = tx.last_insert_rowid();
            let record = AuditRecord {
                run: None,
                wall_ms,
                scenario_ms: None,
                operator: "outbox",
                role: "system",
                action: "attempt",
                subject: &action.dto.key,
                detail: format!("attempt {n} to {}", action.dto.destination),
            };
            Store::append_audit(tx, &record)?;
            Ok(Some(attempt))
        })
    }

    /// Closes an attempt and moves the action on.
    pub fn finish_attempt(
        &self,
        action: &ActionRow,
        attempt: i64,
        end: &AttemptEnd,
        wall_ms: Millis,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            let (outcome, detail, audit) = match end {
                AttemptEnd::Delivered { reference } => {
                    tx.execute(
                        "UPDATE actions SET status = 'delivered', reference = ?2, last_error = NULL, updated_wall_ms = ?3 WHERE id = ?1",
                        params![action.dto.id, reference, wall_ms],
                    )?;
                    ("delivered", reference.clone(), "delivered")
                }
                AttemptEnd::Sent { reference } => {
                    tx.execute(
                        "UPDATE actions SET status = 'sent', reference = ?2, last_error = NULL, updated_wall_ms = ?3 WHERE id = ?1",
                        params![action.dto.id, reference, wall_ms],
                    )?;
                    ("sent", reference.clone(), "sent")
                }
                AttemptEnd::Retry { reason, next_ms, counts } => {
                    tx.execute(
                        "UPDATE actions SET status = 'queued', last_error = ?2, next_attempt_ms = ?3, failures = failures + ?4, updated_wall_ms = ?5 \
                         WHERE id = ?1",
                        params![action.dto.id, reason, next_ms, u32::from(*counts), wall_ms],
                    )?;
                    (if *counts { "retry" } else { "unreachable" }, reason.clone(), "retry")
                }
                AttemptEnd::Failed { reason } => {
                    tx.execute(
                        "UPDATE actions SET status = 'failed', last_error = ?2, updated_wall_ms = ?3 WHERE id = ?1",
                        params![action.dto.id, reason, wall_ms],
                    )?;
                    ("failed", reason.clone(), "failed")
                }
            };
            tx.execute("UPDATE action_attempts SET finished_wall_ms = ?2, outcome = ?3, detail = ?4 WHERE id = ?1", params![attempt, wall_ms, outcome, detail])?;
            let record = AuditRecord { run: None, wall_ms, scenario_ms: None, operator: "outbox", role: "system", action: audit, subject: &action.dto.key, detail };
            Store::append_audit(tx, &record)?;
            Ok(())
        })
    }

    /// Puts a failed action back in the queue (operator's decision), with a fresh budget.
    pub fn retry_action(&self, id: i64, operator: &str, role: &str, wall_ms: Millis) -> Result<(), StoreError> {
        self.operator_change(id, operator, role, wall_ms, ("retry", "retried"), &["failed"], "UPDATE actions SET status = 'queued', failures = 0, next_attempt_ms = ?2, updated_wall_ms = ?2 WHERE id = ?1")
    }

    /// Cancels an action that has not been delivered and is not in flight.
    pub fn cancel_action(&self, id: i64, operator: &str, role: &str, wall_ms: Millis) -> Result<(), StoreError> {
        self.operator_change(
            id,
            operator,
            role,
            wall_ms,
            ("cancel", "cancelled"),
            &["queued", "failed"],
            "UPDATE actions SET status = 'cancelled', updated_wall_ms = ?2 WHERE id = ?1",
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn operator_change(
        &self,
        id: i64,
        operator: &str,
        role: &str,
        wall_ms: Millis,
        // The audit trail's name of the change, and the word an operator reads in a refusal.
        (what, done): (&str, &str),
        from: &[&str],
        sql: &str,
    ) -> Result<(), StoreError> {
        self.durably(|tx| {
            let found: Option<(String, String)> = tx
                .query_row("SELECT status, key FROM actions WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((status, key)) = found else {
                return Err(StoreError::Refused(format!("action {id} does not exist")));
            };
            if !from.contains(&status.as_str()) {
                return Err(StoreError::Refused(format!(
                    "action {id} is {status}; only {} actions can be {done}",
                    from.join(" or ")
                )));
            }
            tx.execute(sql, params![id, wall_ms])?;
            let record = AuditRecord {
                run: None,
                wall_ms,
                scenario_ms: None,
                operator,
                role,
                action: what,
                subject: &key,
                detail: format!("was {status}"),
            };
            Store::append_audit(tx, &record)?;
            Ok(())
        })
    }

    /// Records the backend's own status of a delivered action (Open311 `open`/`closed`).
    pub fn set_remote_status(&self, id: i64, status: &str, wall_ms: Millis) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE actions SET remote_status = ?2, updated_wall_ms = ?3 WHERE id = ?1 AND remote_status IS NOT ?2",
            params![id, status, wall_ms],
        )?;
        Ok(n > 0)
    }

    /// Delivered actions of a backend whose remote status may still change.
    pub fn open_remote_actions(&self, backend: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, reference FROM actions WHERE backend = ?1 AND status = 'delivered' AND reference IS NOT NULL \
             AND (remote_status IS NULL OR remote_status != 'closed') ORDER BY id",
        )?;
        let rows = stmt.query_map([backend], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every attempt of an action: `(n, outcome, detail)`.
    pub fn attempts(&self, action: i64) -> Result<Vec<(u32, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT n, outcome, detail FROM action_attempts WHERE action = ?1 ORDER BY id")?;
        let rows = stmt.query_map([action], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// An action as exercise scoring reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    pub incident: Option<String>,
    pub kind: BackendKind,
    pub body: String,
    pub scenario_ms: Option<Millis>,
    pub operator: String,
    pub summary: String,
}

impl Store {
    /// The actions committed during a run, in commit order.
    pub fn actions_of_run(&self, run: RunId) -> Result<Vec<ActionRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT incident, kind, body, scenario_ms, operator, summary FROM actions WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run], |r| {
            let kind: String = r.get(1)?;
            Ok(ActionRecord {
                incident: r.get(0)?,
                kind: BackendKind::parse(&kind).unwrap_or(BackendKind::Webhook),
                body: r.get(2)?,
                scenario_ms: r.get(3)?,
                operator: r.get(4)?,
                summary: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
