//! The incident desk: the [`Correlator`] of one run driven by the replay clock, the operators'
//! workflow around it (sign-in, lifecycle, SOP ticks, manual decisions), and what of it goes to
//! the store and to the UI.
//!
//! **Time.** The correlator is fed one arrival second at a time, from the store (which holds
//! everything ingested), once the clock has passed that second: at clock time `t` it has seen
//! every observation that arrived before the start of `t`'s second (all of them at the end of
//! the scenario). The state at `t` therefore depends only on `t`, never on the replay speed or
//! on how the clock got there.
//!
//! **Seeking** restores the latest checkpoint (a clone of the correlator) at or before the
//! target and correlates forward from the store. Checkpoints are spaced by the correlation
//! *work* between them, not by scenario time: one is taken at a whole minute once correlating
//! since the last one took [`CHECKPOINT_WORK`] (raised whenever there would be more than
//! [`MAX_CHECKPOINTS`], the closest ones then merged), because minutes differ: early in a day,
//! with every entity new, a minute can cost five times a later one. A seek's forward
//! correlation is thus bounded (by about twice the budget, as merging overshoots) wherever it
//! lands. The placement depends on how fast this machine correlated, never the result: the
//! state at a whole second is the same however it was reached.
//!
//! Manual decisions are part of that history: each is applied at the clock position it was made
//! at, so seeking back before a merge shows the incidents unmerged, and playing past it merges
//! them again. Lifecycle and SOP ticks belong to the operators, not to the tape: they
//! stay as they are when the clock moves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cityops_core::assets::AssetIndex;
use cityops_core::correlate::{
    ChangeKind, Correlator, Incident, IncidentChange, IncidentId, IncidentStatus, ManualAction, ManualError, Membership,
};
use cityops_core::model::{Layer, Millis, Observation};
use cityops_core::rules::Rules;
use cityops_core::workflow::{self, TransitionRefusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dto::{
    AreaDto, IncidentDetailDto, IncidentEntryDto, IncidentsDiffDto, LayerGroupDto, LifecycleStatus, MemberDto,
    OperatorDto, OperatorRole, SopStepDto, TimelineEntryDto,
};
use crate::error::EngineError;
use cityops_store::{
    AuditRecord, DecisionRow, IncidentWrite, NoteRow, OverrideRow, OwnerRow, RunId, SignIn, SopTickRow, Store,
    StoreError, TransitionRow,
};

/// The longest note an operator may add, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// A note's text as it is kept (trimmed), or why it cannot be one.
pub fn note_text(text: &str) -> Result<&str, EngineError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(EngineError::InvalidInput(format!(
            "a note is 1 to {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(text)
}

/// Checkpoints fall on whole minutes of scenario time.
pub const CHECKPOINT_MS: Millis = 60_000;
/// Correlation time between two checkpoints, at first.
pub const CHECKPOINT_WORK: Duration = Duration::from_millis(10);
/// Checkpoints kept at most (besides the empty state). A seek correlates forward from the
/// nearest one, so more of them make seeks faster; since checkpoints share unchanged incidents,
/// each costs mainly its indexes over open incidents (about 13 MB with 35,000 incidents).
pub const MAX_CHECKPOINTS: usize = 96;

/// Incidents written (or removed) per step of the write-behind: a few milliseconds of work.
pub const WRITE_BEHIND_STEP: usize = 500;

/// Where correlation starts: before any observation a tape can hold.
const BEFORE: Millis = i64::MIN / 4;

/// What an operator decided, as replayed on seeks and stored in `manual_decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum DecisionOp {
    /// Move every member of `from` into `into`.
    Merge { into: String, from: String },
    /// Move one member out of `from` into an incident of its own.
    Split { from: String, entity: String },
    /// Move one member from `from` to `to`.
    Reassign { from: String, entity: String, to: String },
    /// Take back the latest decision still in effect.
    Undo,
}

impl DecisionOp {
    fn subject(&self) -> &str {
        match self {
            DecisionOp::Merge { into, .. } => into,
            DecisionOp::Split { from, .. } | DecisionOp::Reassign { from, .. } => from,
            DecisionOp::Undo => "-",
        }
    }
}

#[derive(Debug, Clone)]
struct Decision {
    position_ms: Millis,
    operator: String,
    at_ms: Millis,
    op: DecisionOp,
}

/// A kept state of the correlator, and the correlation time it took from the checkpoint before.
struct Checkpoint {
    state: Corr,
    work: Duration,
}

/// The correlator and how far it has been fed.
#[derive(Debug, Clone)]
struct Corr {
    correlator: Correlator,
    /// Every observation that arrived before this has been correlated (a whole second).
    upto_ms: Millis,
    /// Decisions of the log applied so far.
    applied: usize,
}

#[derive(Debug, Clone, Default)]
struct Lifecycle {
    status: Option<LifecycleStatus>,
    acknowledged_by: Option<String>,
    /// Who owns it: took it, or was given it by a supervisor.
    owner: Option<String>,
    history: Vec<TransitionRow>,
}

/// One run's incidents and the operators' work on them.
pub struct Desk {
    run: RunId,
    start_floor: Millis,
    end_ms: Millis,
    state: Corr,
    checkpoints: BTreeMap<Millis, Checkpoint>,
    /// Correlation time between checkpoints now ([`CHECKPOINT_WORK`], raised by a quarter each
    /// time there are too many).
    budget: Duration,
    /// Correlation time spent since the state left its checkpoint.
    work_since: Duration,
    decisions: Vec<Decision>,
    lifecycle: HashMap<String, Lifecycle>,
    sop: HashMap<String, BTreeMap<u32, String>>,
    /// Each incident's narrative log, oldest first.
    notes: HashMap<String, Vec<NoteRow>>,
    /// Supervisors' overrides of required SOP steps, by incident.
    overrides: HashMap<String, Vec<OverrideRow>>,
    /// Incidents the queue has been told escalated, and the correlator time last checked: an
    /// escalation comes with time, not with a change, so the queue is told when it happens.
    escalated: BTreeSet<String>,
    escalation_checked_ms: Millis,
    operator: Option<OperatorDto>,
    /// For the UI: what changed since the last diff.
    ui_dirty: BTreeSet<String>,
    ui_reset: bool,
    /// For the store: what changed since the last write.
    db_dirty: BTreeSet<String>,
    db_removed: BTreeSet<String>,
    db_reset: bool,
    /// While the state and the store's copy are compared after a [`Desk::db_reset`], a step
    /// at a time: the last incident id compared (`None` before the first).
    resync: Option<Option<IncidentId>>,
    /// Each incident as last written, so a change rewrites only the member rows that changed
    /// rather than all of a large incident's, and a seek rewrites only the incidents that
    /// differ at the new time rather than all of them.
    written: BTreeMap<String, Arc<Incident>>,
    /// The observations read back for correlation, kept between reads so that its memory is
    /// reused instead of grown afresh (and cleared by the kernel) every time.
    scratch: Vec<Observation>,
}

fn queued(inc: &Incident) -> bool {
    !matches!(inc.status, IncidentStatus::Merged { .. })
}

/// The bounding box of the members still a problem, or of all members once none is.
fn area(inc: &Incident) -> AreaDto {
    let open: Vec<&Membership> = inc.members.iter().map(Arc::as_ref).filter(|m| !m.cleared).collect();
    let pick: Vec<&Membership> = if open.is_empty() {
        inc.members.iter().map(Arc::as_ref).collect()
    } else {
        open
    };
    let mut a = AreaDto {
        west: f64::MAX,
        south: f64::MAX,
        east: f64::MIN,
        north: f64::MIN,
    };
    for m in pick {
        a.west = a.west.min(m.position.lon);
        a.east = a.east.max(m.position.lon);
        a.south = a.south.min(m.position.lat);
        a.north = a.north.max(m.position.lat);
    }
    if a.west > a.east {
        a = AreaDto {
            west: 0.0,
            south: 0.0,
            east: 0.0,
            north: 0.0,
        };
    }
    a
}

/// A scenario time as the operators read it on the app's clock: `21:13:05`, local time.
pub fn clock_time(ms: Millis) -> String {
    // Helsinki is the demo's city; the app and the report show its local time.
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default() + chrono::Duration::hours(2);
    t.format("%H:%M:%S").to_string()
}

/// The hash of an incident set: SHA-256 of the incidents (ids, members, explanations) as JSON in
/// id order, so two runs that agree on every incident agree on the hash.
pub fn incident_set_hash<'a>(incidents: impl Iterator<Item = &'a Incident>) -> String {
    let all: Vec<&Incident> = incidents.collect();
    hex::encode(Sha256::digest(serde_json::to_vec(&all).expect("incidents serialize")))
}

impl Desk {
    /// A desk for `run` with no incidents, for a scenario running from `start_ms` to `end_ms`.
    pub fn new(
        run: RunId,
        rules: Rules,
        assets: AssetIndex,
        zones: cityops_core::zones::Zones,
        start_ms: Millis,
        end_ms: Millis,
    ) -> Desk {
        let state = Corr {
            correlator: Correlator::new(rules, assets).with_zones(zones),
            upto_ms: BEFORE,
            applied: 0,
        };
        let mut checkpoints = BTreeMap::new();
        checkpoints.insert(
            BEFORE,
            Checkpoint {
                state: state.clone(),
                work: Duration::ZERO,
            },
        );
        Desk {
            run,
            start_floor: start_ms.div_euclid(1000) * 1000,
            end_ms,
            state,
            checkpoints,
            budget: CHECKPOINT_WORK,
            work_since: Duration::ZERO,
            decisions: Vec::new(),
            lifecycle: HashMap::new(),
            sop: HashMap::new(),
            notes: HashMap::new(),
            overrides: HashMap::new(),
            escalated: BTreeSet::new(),
            escalation_checked_ms: Millis::MIN,
            operator: None,
            ui_dirty: BTreeSet::new(),
            ui_reset: true,
            db_dirty: BTreeSet::new(),
            db_removed: BTreeSet::new(),
            db_reset: false,
            resync: None,
            written: BTreeMap::new(),
            scratch: Vec::new(),
        }
    }

    /// Picks up a run that was interrupted (the app restarted): the operators' lifecycle
    /// transitions, SOP ticks and manual decisions come back from the store, and the store's
    /// incidents are cleared, to be rewritten as the desk correlates the run's observations
    /// again. The incidents come out as they were, since correlation is deterministic and the
    /// decisions are replayed at their positions.
    pub fn resume(&mut self, store: &Store) -> Result<(), StoreError> {
        for tr in store.transitions(self.run)? {
            let to = LifecycleStatus::parse(&tr.to);
            let l = self.lifecycle.entry(tr.incident.clone()).or_default();
            if let Some(to) = to {
                l.status = Some(to);
                if to.rank() >= LifecycleStatus::Acknowledged.rank() {
                    l.acknowledged_by.get_or_insert_with(|| tr.operator.clone());
                }
            }
            l.history.push(tr);
        }
        for o in store.owners(self.run)? {
            self.lifecycle.entry(o.incident).or_default().owner = Some(o.owner);
        }
        for n in store.notes(self.run)? {
            self.notes.entry(n.incident.clone()).or_default().push(n);
        }
        for o in store.overrides(self.run)? {
            self.overrides.entry(o.incident.clone()).or_default().push(o);
        }
        for t in store.sop_ticks(self.run)? {
            let steps = self.sop.entry(t.incident).or_default();
            if t.ticked {
                steps.insert(t.step, t.operator);
            } else {
                steps.remove(&t.step);
            }
        }
        for d in store.decisions(self.run)? {
            match serde_json::from_str::<DecisionOp>(&d.action) {
                Ok(op) => self.decisions.push(Decision {
                    position_ms: d.position_ms,
                    operator: d.operator,
                    at_ms: d.at_ms,
                    op,
                }),
                Err(e) => {
                    tracing::error!(decision = d.id, error = %e, "a stored decision cannot be read; it is left out")
                }
            }
        }
        store.write_incidents(self.run, true, &[], &[])?;
        self.written.clear();
        tracing::info!(
            run = self.run,
            transitions = self.lifecycle.len(),
            decisions = self.decisions.len(),
            "incident desk resumed"
        );
        Ok(())
    }

    /// Every observation that arrived before this time has been correlated (a whole second).
    pub fn correlated_upto(&self) -> Millis {
        self.state.upto_ms
    }

    /// The correlator as of the clock.
    pub fn correlator(&self) -> &Correlator {
        &self.state.correlator
    }

    /// The hash of the current incident set.
    pub fn incident_set_hash(&self) -> String {
        incident_set_hash(self.state.correlator.incidents())
    }

    /// The signed-in operator.
    pub fn operator(&self) -> Option<&OperatorDto> {
        self.operator.as_ref()
    }

    /// How far correlation has to go at clock time `t`.
    fn limit_for(&self, t: Millis) -> Millis {
        if t >= self.end_ms {
            (self.end_ms.div_euclid(1000) + 1) * 1000
        } else {
            t.div_euclid(1000) * 1000
        }
    }

    fn note(&mut self, changes: Vec<IncidentChange>) {
        for c in changes {
            let id = c.id.0.to_string();
            if c.kind == ChangeKind::Removed {
                self.db_dirty.remove(&id);
                self.db_removed.insert(id.clone());
            } else {
                self.db_removed.remove(&id);
                self.db_dirty.insert(id.clone());
            }
            self.ui_dirty.insert(id);
        }
    }

    /// Brings correlation up to clock time `t` (never backwards: see [`Desk::seek`]) and writes
    /// what changed to the store.
    pub fn correlate_to(&mut self, store: &Store, t: Millis) -> Result<(), StoreError> {
        let limit = self.limit_for(t);
        if limit > self.state.upto_ms {
            self.advance(store, limit)?;
        }
        self.persist(store)
    }

    /// Rebuilds correlation at clock time `t` from the nearest checkpoint and the store. The
    /// store's copy of the incidents follows with [`Desk::write_behind`].
    pub fn seek(&mut self, store: &Store, t: Millis) -> Result<(), StoreError> {
        let started = Instant::now();
        let limit = self.limit_for(t);
        // The nearest checkpoint at or before the target: behind the clock, or ahead of it when
        // the tape was correlated that far before (a forward seek then skips the hours between).
        let (&at, _) = self
            .checkpoints
            .range(..=limit)
            .next_back()
            .expect("the empty state is always a checkpoint");
        if limit < self.state.upto_ms || at > self.state.upto_ms {
            let cp = &self.checkpoints[&at];
            crate::drop_aside(std::mem::replace(&mut self.state, cp.state.clone()));
            self.work_since = Duration::ZERO;
            self.ui_reset = true;
            self.db_reset = true;
            tracing::debug!(
                from = self.state.upto_ms,
                to = limit,
                "incidents rebuilt from a checkpoint"
            );
        }
        let restored = started.elapsed().as_secs_f64() * 1000.0;
        let from = self.state.upto_ms;
        if limit > self.state.upto_ms {
            self.advance(store, limit)?;
        }
        tracing::debug!(
            restored,
            advanced_ms = started.elapsed().as_secs_f64() * 1000.0 - restored,
            forward_s = (limit - from) / 1000,
            "incident seek"
        );
        Ok(())
    }

    /// Writes to the store what changed since it was last written. A seek leaves this for
    /// later, because bringing the store's copy of thousands of incidents to a new time costs
    /// more than the seek itself, and a trainer scrubbing the timeline seeks again before it
    /// would matter: the engine calls this when the clock has rested, and before anything
    /// reads the incidents from the store (the replay's `flush`).
    pub fn write_behind(&mut self, store: &Store) -> Result<(), StoreError> {
        self.persist(store)
    }

    /// One step of [`Desk::write_behind`]: at most [`WRITE_BEHIND_STEP`] incidents written or
    /// removed, in one transaction. Returns whether more remains. The engine writes behind a
    /// step at a time, so that a command arriving meanwhile (the trainer seeking again) waits
    /// for one step instead of the whole write.
    pub fn write_behind_step(&mut self, store: &Store) -> Result<bool, StoreError> {
        self.persist_upto(store, WRITE_BEHIND_STEP)
    }

    /// Observations were added to the store at arrival time `t` behind the tape (a trainer's
    /// inject): checkpoints after `t` no longer hold, and correlation that already went past `t`
    /// is rebuilt from the one before it, so the incidents are those a replay with the inject
    /// on its tape would give.
    pub fn added_at(&mut self, store: &Store, t: Millis) -> Result<(), StoreError> {
        // A checkpoint at `k` holds the arrivals before `k`.
        self.checkpoints.retain(|k, _| *k <= t);
        if self.state.upto_ms > t {
            let upto = self.state.upto_ms;
            let (_, cp) = self
                .checkpoints
                .range(..=t)
                .next_back()
                .expect("the empty state is always a checkpoint");
            self.state = cp.state.clone();
            self.work_since = Duration::ZERO;
            self.ui_reset = true;
            self.db_reset = true;
            self.advance(store, upto)?;
        }
        self.persist(store)
    }

    fn advance(&mut self, store: &Store, limit: Millis) -> Result<(), StoreError> {
        self.apply_due_decisions();
        while self.state.upto_ms < limit {
            let upto = self.state.upto_ms;
            let boundary = upto.max(self.start_floor).div_euclid(CHECKPOINT_MS) * CHECKPOINT_MS + CHECKPOINT_MS;
            let decision = self
                .decisions
                .get(self.state.applied)
                .map(|d| d.position_ms)
                .filter(|p| *p > upto);
            let stop = [Some(limit), Some(boundary), decision]
                .into_iter()
                .flatten()
                .min()
                .expect("limit is some");
            let started = Instant::now();
            let mut arrived = std::mem::take(&mut self.scratch);
            store.arrived_between_into(self.run, upto - 1, stop - 1, &mut arrived)?;
            // One arrival second at a time, in order. The store's order is arrival order but
            // for a trainer's inject, which can arrive behind the tape: only then is there
            // anything to sort, and a stable sort keeps each second's observations in the
            // store's order.
            let second = |o: &Observation| o.received_ms.div_euclid(1000);
            if !arrived.is_sorted_by_key(second) {
                arrived.sort_by_key(second);
            }
            for batch in arrived.chunk_by_mut(|a, b| second(a) == second(b)) {
                let changes = self.state.correlator.ingest_second(second(&batch[0]), batch);
                self.note(changes);
            }
            arrived.clear();
            self.scratch = arrived;
            // An empty second lets time-driven changes (escalation, expiring reports) happen.
            let changes = self.state.correlator.ingest_second(stop.div_euclid(1000) - 1, &mut []);
            self.note(changes);
            self.work_since += started.elapsed();
            self.state.upto_ms = stop;
            self.apply_due_decisions();
            // Behind a checkpoint already kept (correlating forward after a seek back), the
            // road ahead is covered: a clone here would only cost the seek.
            let covered = self.checkpoints.range(stop..).next().is_some();
            if stop == boundary && self.work_since >= self.budget && !covered {
                self.checkpoint();
            }
        }
        Ok(())
    }

    /// Keeps the current state as a checkpoint; when there are too many, raises the budget and
    /// merges neighbours (in time order) until each kept one stands a budget of work after the
    /// one before it.
    fn checkpoint(&mut self) {
        self.checkpoints.insert(
            self.state.upto_ms,
            Checkpoint {
                state: self.state.clone(),
                work: self.work_since,
            },
        );
        self.work_since = Duration::ZERO;
        while self.checkpoints.len() > MAX_CHECKPOINTS + 1 {
            // A quarter more, not twice: merging then keeps about four fifths of them, so the
            // budget stays close to what the memory allows. When every checkpoint stands more
            // than the new budget apart, nothing merges and the budget rises again.
            self.budget = self.budget * 5 / 4;
            let keys: Vec<Millis> = self.checkpoints.keys().copied().filter(|k| *k != BEFORE).collect();
            let mut carried = Duration::ZERO;
            for k in keys {
                let cp = self.checkpoints.get_mut(&k).expect("listed above");
                carried += cp.work;
                if carried >= self.budget {
                    cp.work = carried;
                    carried = Duration::ZERO;
                } else {
                    self.checkpoints.remove(&k);
                }
            }
            // What trails the last kept checkpoint leads up to the state (which is, but after a
            // seek back, at the newest checkpoint), so it counts towards the next one.
            self.work_since += carried;
            tracing::debug!(
                budget_ms = self.budget.as_millis() as u64,
                kept = self.checkpoints.len(),
                "incident checkpoints thinned"
            );
        }
    }

    fn apply_due_decisions(&mut self) {
        while let Some(d) = self.decisions.get(self.state.applied).cloned() {
            if d.position_ms > self.state.upto_ms {
                break;
            }
            self.state.applied += 1;
            match self.apply(&d) {
                Ok((_, changes)) => self.note(changes),
                // A decision made after a seek can take away what a later one needs; that later
                // one then no longer applies, the same way every time.
                Err(e) => tracing::warn!(error = %e, op = ?d.op, "a recorded decision no longer applies"),
            }
        }
    }

    fn apply(&mut self, d: &Decision) -> Result<(Option<String>, Vec<IncidentChange>), ManualError> {
        let c = &mut self.state.correlator;
        let id = |s: &str| IncidentId::from(s);
        match &d.op {
            DecisionOp::Merge { into, from } => {
                c.merge(&id(into), &id(from), &d.operator, d.at_ms).map(|ch| (None, ch))
            }
            DecisionOp::Split { from, entity } => c
                .split(&id(from), entity, &d.operator, d.at_ms)
                .map(|(new, ch)| (Some(new.0.to_string()), ch)),
            DecisionOp::Reassign { from, entity, to } => c
                .reassign(&id(from), entity, &id(to), &d.operator, d.at_ms)
                .map(|ch| (None, ch)),
            DecisionOp::Undo => c.undo().map(|(_, ch)| (None, ch)),
        }
    }

    fn persist(&mut self, store: &Store) -> Result<(), StoreError> {
        self.persist_upto(store, usize::MAX).map(|_| ())
    }

    /// Writes at most `limit` of the incidents that changed and removes at most `limit` of the
    /// gone ones; returns whether more remains. Each incident is written whole, so the store's
    /// copy between two steps holds every incident either as it was or as it is now.
    pub fn persist_upto(&mut self, store: &Store, limit: usize) -> Result<bool, StoreError> {
        let started = Instant::now();
        if self.db_reset {
            // The state was replaced (a seek, a rebuilt checkpoint): the store holds `written`,
            // so what differs from it is what to write, however far the clock moved. The two
            // are compared in id order, `limit` incidents a step, from the start again when
            // the state is replaced again midway.
            self.resync = Some(None);
            self.db_reset = false;
        }
        if let Some(from) = self.resync.take() {
            self.resync = self.compare_some(from, limit);
        }
        if self.db_dirty.is_empty() && self.db_removed.is_empty() {
            return Ok(self.resync.is_some());
        }
        let c = &self.state.correlator;
        let dirty: Vec<String> = self.db_dirty.iter().take(limit).cloned().collect();
        let changed: Vec<&Arc<Incident>> = dirty
            .iter()
            .filter_map(|id| c.shared_incident(&IncidentId::from(id.as_str())))
            .collect();
        let writes: Vec<IncidentWrite<'_>> = changed
            .iter()
            .map(|inc| {
                let before = self
                    .written
                    .get(inc.id.as_str())
                    .map(|w| w.members.as_slice())
                    .unwrap_or_default();
                let members = (0..inc.members.len())
                    .filter(|i| before.get(*i) != Some(&inc.members[*i]))
                    .collect();
                IncidentWrite {
                    incident: inc,
                    area: area(inc),
                    members,
                }
            })
            .collect();
        let removed: Vec<String> = self.db_removed.iter().take(limit).cloned().collect();
        let prepared_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Taken off the sets only once written: a refused write is tried again next time.
        store.write_incidents(self.run, false, &writes, &removed)?;
        let written_ms = started.elapsed().as_secs_f64() * 1000.0 - prepared_ms;
        tracing::debug!(
            writes = writes.len(),
            removed = removed.len(),
            prepared_ms,
            written_ms,
            "incidents persisted"
        );
        for inc in changed {
            self.written.insert(inc.id.0.to_string(), Arc::clone(inc));
        }
        for id in &removed {
            self.written.remove(id);
        }
        if dirty.len() == self.db_dirty.len() {
            self.db_dirty.clear();
        } else {
            for id in &dirty {
                self.db_dirty.remove(id);
            }
        }
        if removed.len() == self.db_removed.len() {
            self.db_removed.clear();
        } else {
            for id in &removed {
                self.db_removed.remove(id);
            }
        }
        Ok(self.resync.is_some() || !self.db_dirty.is_empty() || !self.db_removed.is_empty())
    }

    /// Compares up to `limit` incident ids after `from` (in id order, over the state and
    /// `written` together), marking those that differ to be written and those gone to be
    /// removed; returns where to go on, `None` at the end.
    fn compare_some(&mut self, from: Option<IncidentId>, limit: usize) -> Option<Option<IncidentId>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let c = &self.state.correlator;
        let mut now = c.shared_incidents_after(from.as_ref()).peekable();
        let mut was = match &from {
            Some(id) => self.written.range::<str, _>((Excluded(id.as_str()), Unbounded)),
            None => self.written.range::<String, _>(..),
        }
        .peekable();
        let mut last = from;
        for _ in 0..limit {
            let (id, differs) = match (now.peek(), was.peek()) {
                (None, None) => return None,
                (Some(i), Some((w, before))) if i.id.as_str() == w.as_str() => {
                    // An incident no change touched since it was written is the very same
                    // allocation: only the others are compared field by field.
                    let differs = !Arc::ptr_eq(before, i) && ***before != ***i;
                    let id = i.id.clone();
                    now.next();
                    was.next();
                    (id, Some(differs))
                }
                (Some(i), Some((w, _))) if i.id.as_str() > w.as_str() => {
                    let id = IncidentId::from(w.as_str());
                    was.next();
                    (id, None)
                }
                (Some(i), _) => {
                    let id = i.id.clone();
                    now.next();
                    (id, Some(true))
                }
                (None, Some((w, _))) => {
                    let id = IncidentId::from(w.as_str());
                    was.next();
                    (id, None)
                }
            };
            match differs {
                Some(true) => {
                    self.db_removed.remove(id.as_str());
                    self.db_dirty.insert(id.0.to_string());
                }
                Some(false) => {}
                None => {
                    self.db_dirty.remove(id.as_str());
                    self.db_removed.insert(id.0.to_string());
                }
            }
            last = Some(id);
        }
        Some(last)
    }

    pub(crate) fn signed_in(&self) -> Result<OperatorDto, EngineError> {
        self.operator.clone().ok_or_else(|| {
            EngineError::Forbidden("sign in first: every incident action is recorded with the operator's name".into())
        })
    }

    /// Acts as `op` from now on (nobody, when `None`), on an authority other than this desk's
    /// roster: a site's roster, which vouched for the operator signing in here or for the
    /// author of an event made at another workstation. Returns who acted before, to give the
    /// desk back to.
    pub fn act_as(&mut self, op: Option<OperatorDto>) -> Option<OperatorDto> {
        std::mem::replace(&mut self.operator, op)
    }

    /// The latest lifecycle transition of an incident, if it had any.
    pub fn last_transition(&self, id: &str) -> Option<&TransitionRow> {
        self.lifecycle.get(id).and_then(|l| l.history.last())
    }

    /// Signs an operator in on the roster's authority (see [`Store::sign_in`]): the role must
    /// be the roster's (or plain operator), and a PIN the roster holds must be given.
    pub fn sign_in(
        &mut self,
        store: &Store,
        name: &str,
        role: OperatorRole,
        pin: Option<&str>,
        wall_ms: Millis,
    ) -> Result<OperatorDto, EngineError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(EngineError::InvalidInput(
                "an operator name is 1 to 64 printable characters".into(),
            ));
        }
        if pin.is_some_and(|p| p.chars().count() > 64) {
            return Err(EngineError::InvalidInput("a PIN is at most 64 characters".into()));
        }
        match store.sign_in(name, role.as_str(), pin, wall_ms)? {
            SignIn::Accepted => {
                tracing::info!(operator = name, role = role.as_str(), "signed in");
                let op = OperatorDto {
                    name: name.to_owned(),
                    role,
                };
                self.operator = Some(op.clone());
                Ok(op)
            }
            refused => {
                tracing::warn!(operator = name, role = role.as_str(), outcome = ?refused, "sign-in refused");
                Err(EngineError::Forbidden(sign_in_refusal(name, role, &refused)))
            }
        }
    }

    /// The roster, for a signed-in supervisor.
    pub fn roster(&self, store: &Store) -> Result<Vec<crate::dto::RosterEntryDto>, EngineError> {
        if self.signed_in()?.role != OperatorRole::Supervisor {
            return Err(EngineError::Forbidden("the roster is a supervisor's".into()));
        }
        Ok(store
            .roster()?
            .into_iter()
            .map(|e| crate::dto::RosterEntryDto {
                role: OperatorRole::parse(&e.role).unwrap_or(OperatorRole::Operator),
                name: e.name,
                has_pin: e.has_pin,
                locked_until_ms: e.locked_until_ms,
            })
            .collect())
    }

    /// Gives `name` a role (and a PIN) in the roster; only a signed-in supervisor may.
    pub fn assign_role(
        &self,
        store: &Store,
        name: &str,
        role: OperatorRole,
        pin: Option<&str>,
        wall_ms: Millis,
    ) -> Result<(), EngineError> {
        let by = self.signed_in()?;
        if by.role != OperatorRole::Supervisor {
            return Err(EngineError::Forbidden("roles are assigned by a supervisor".into()));
        }
        store.roster_set(name, role.as_str(), pin, &by.name, by.role.as_str(), wall_ms)?;
        tracing::info!(operator = name, role = role.as_str(), by = %by.name, "role assigned");
        Ok(())
    }

    /// Signs the operator out.
    pub fn sign_out(&mut self, store: &Store, wall_ms: Millis) -> Result<(), EngineError> {
        if let Some(op) = self.operator.take() {
            let r = AuditRecord {
                run: Some(self.run),
                wall_ms,
                scenario_ms: None,
                operator: &op.name,
                role: op.role.as_str(),
                action: "sign_out",
                subject: &op.name,
                detail: String::new(),
            };
            store.audit(&r)?;
        }
        Ok(())
    }

    fn incident(&self, id: &str) -> Result<&Incident, EngineError> {
        let inc = self
            .state
            .correlator
            .incident(&IncidentId::from(id))
            .ok_or_else(|| EngineError::NotFound(format!("incident {id:?}")))?;
        if !queued(inc) {
            return Err(EngineError::InvalidInput(format!(
                "incident {} was merged into another",
                inc.number
            )));
        }
        Ok(inc)
    }

    /// An incident as operators name it, by its number (its id when there is no such incident):
    /// what a refusal says must be what the queue shows.
    pub fn named(&self, id: &str) -> String {
        self.state
            .correlator
            .incident(&IncidentId::from(id))
            .map_or_else(|| id.to_owned(), |i| i.number.clone())
    }

    /// The operators' status of an incident.
    pub fn status(&self, id: &str) -> LifecycleStatus {
        self.lifecycle
            .get(id)
            .and_then(|l| l.status)
            .unwrap_or(LifecycleStatus::New)
    }

    /// Moves an incident forward in its lifecycle (a step may be skipped; closing needs a
    /// supervisor or trainer), stamped with the operator, wall time and scenario time.
    pub fn transition(
        &mut self,
        store: &Store,
        id: &str,
        to: LifecycleStatus,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), EngineError> {
        self.transition_with(store, id, to, None, wall_ms, scenario_ms)
    }

    /// The required SOP steps of an incident still unticked, by number from 1, with their text.
    fn unticked_required(&self, inc: &Incident) -> Vec<(u32, String)> {
        let ticks = self.sop.get(inc.id.as_str());
        self.state
            .correlator
            .incident_type(inc)
            .map(|t| t.sop.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(i, step)| step.required && !ticks.is_some_and(|t| t.contains_key(&(*i as u32))))
            .map(|(i, step)| (i as u32 + 1, step.text.clone()))
            .collect()
    }

    /// Moves an incident's lifecycle forward, as [`Desk::transition`]. Resolving (or closing)
    /// with required SOP steps unticked is refused and names them, unless a supervisor gives
    /// `override_reason`: the override is then recorded and audited beside the transition.
    pub fn transition_with(
        &mut self,
        store: &Store,
        id: &str,
        to: LifecycleStatus,
        override_reason: Option<&str>,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), EngineError> {
        let op = self.signed_in()?.clone();
        let inc = self.incident(id)?;
        let from = self.status(id);
        workflow::check_transition(id, from, to, op.role).map_err(|refusal| match refusal {
            TransitionRefusal::NotForward { .. } => EngineError::InvalidInput(refusal.to_string()),
            TransitionRefusal::CloseNeedsSupervisor => EngineError::Forbidden(refusal.to_string()),
        })?;
        let finishing = to.rank() >= LifecycleStatus::Resolved.rank() && from.rank() < LifecycleStatus::Resolved.rank();
        let missing = if finishing {
            self.unticked_required(inc)
        } else {
            Vec::new()
        };
        if !missing.is_empty() {
            let named = inc.number.clone();
            let list = missing
                .iter()
                .map(|(n, text)| format!("{n} ({text})"))
                .collect::<Vec<_>>()
                .join(", ");
            let Some(reason) = override_reason.map(str::trim).filter(|r| !r.is_empty()) else {
                return Err(EngineError::InvalidInput(format!(
                    "incident {named} cannot be {}: required SOP steps not ticked: {list}; a supervisor may override with a reason",
                    to.as_str()
                )));
            };
            if op.role != OperatorRole::Supervisor {
                return Err(EngineError::Forbidden(
                    "only a supervisor may override required SOP steps".into(),
                ));
            }
            if reason.chars().count() > MAX_NOTE_CHARS {
                return Err(EngineError::InvalidInput(format!(
                    "an override's reason is at most {MAX_NOTE_CHARS} characters"
                )));
            }
            let row = OverrideRow {
                incident: id.to_owned(),
                operator: op.name.clone(),
                role: op.role.as_str().to_owned(),
                scenario_ms,
                steps: missing
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: reason.to_owned(),
            };
            store.record_override(self.run, &row, wall_ms)?;
            tracing::info!(incident = id, by = %op.name, steps = %row.steps, "required SOP steps overridden");
            self.overrides.entry(id.to_owned()).or_default().push(row);
        }
        let row = TransitionRow {
            incident: id.to_owned(),
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
            operator: op.name.clone(),
            role: op.role.as_str().to_owned(),
            wall_ms,
            scenario_ms,
        };
        store.record_transition(self.run, &row)?;
        tracing::info!(incident = id, operator = %op.name, from = from.as_str(), to = to.as_str(), "incident transition");
        let l = self.lifecycle.entry(id.to_owned()).or_default();
        l.status = Some(to);
        if workflow::acknowledges(to, l.acknowledged_by.is_some()) {
            l.acknowledged_by.get_or_insert_with(|| op.name.clone());
        }
        l.history.push(row);
        self.ui_dirty.insert(id.to_owned());
        Ok(())
    }

    /// Makes `owner` (the signed-in operator when `None`) the owner of an incident, Genetec's
    /// "take ownership": an operator takes an incident nobody else owns; a supervisor may take
    /// any, or give it to someone else. Audited.
    pub fn take_ownership(
        &mut self,
        store: &Store,
        id: &str,
        owner: Option<&str>,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), EngineError> {
        let op = self.signed_in()?.clone();
        self.incident(id)?;
        let owner = owner.map(str::trim).unwrap_or(&op.name);
        if owner.is_empty() || owner.chars().count() > 64 || owner.chars().any(char::is_control) {
            return Err(EngineError::InvalidInput(
                "an owner's name is 1 to 64 printable characters".into(),
            ));
        }
        let supervisor = op.role == OperatorRole::Supervisor;
        if owner != op.name && !supervisor {
            return Err(EngineError::Forbidden("ownership is given by a supervisor".into()));
        }
        let current = self.lifecycle.get(id).and_then(|l| l.owner.clone());
        match current.as_deref() {
            Some(c) if c == owner => {
                return Err(EngineError::InvalidInput(format!(
                    "incident {} is {owner}'s already",
                    self.named(id)
                )));
            }
            Some(c) if !supervisor => {
                return Err(EngineError::InvalidInput(format!(
                    "incident {} is {c}'s: a supervisor may give it to you",
                    self.named(id)
                )));
            }
            _ => {}
        }
        let row = OwnerRow {
            incident: id.to_owned(),
            owner: owner.to_owned(),
            operator: op.name.clone(),
            role: op.role.as_str().to_owned(),
            wall_ms,
            scenario_ms,
        };
        store.record_owner(self.run, &row)?;
        tracing::info!(incident = id, owner, by = %op.name, "incident owner");
        self.lifecycle.entry(id.to_owned()).or_default().owner = Some(row.owner);
        self.ui_dirty.insert(id.to_owned());
        Ok(())
    }

    /// Adds a note to an incident's narrative log (a phone call, what a crew said on the
    /// radio), with who and when. Audited.
    pub fn add_note(
        &mut self,
        store: &Store,
        id: &str,
        text: &str,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), EngineError> {
        let op = self.signed_in()?.clone();
        self.incident(id)?;
        let text = note_text(text)?;
        let row = NoteRow {
            incident: id.to_owned(),
            operator: op.name.clone(),
            role: op.role.as_str().to_owned(),
            scenario_ms,
            text: text.to_owned(),
        };
        store.record_note(self.run, &row, wall_ms)?;
        tracing::info!(incident = id, by = %op.name, "note");
        self.notes.entry(id.to_owned()).or_default().push(row);
        self.ui_dirty.insert(id.to_owned());
        Ok(())
    }

    /// Ticks or unticks a step of an incident's SOP checklist.
    pub fn tick_sop(
        &mut self,
        store: &Store,
        id: &str,
        step: u32,
        ticked: bool,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<(), EngineError> {
        let op = self.signed_in()?;
        let inc = self.incident(id)?;
        let steps = self
            .state
            .correlator
            .incident_type(inc)
            .map(|t| t.sop.len())
            .unwrap_or(0);
        if step as usize >= steps {
            return Err(EngineError::InvalidInput(format!(
                "incident {} has {steps} SOP steps; there is no step {}",
                self.named(id),
                step + 1
            )));
        }
        store.record_sop_tick(
            self.run,
            &SopTickRow {
                incident: id.to_owned(),
                step,
                ticked,
                operator: op.name.clone(),
            },
            op.role.as_str(),
            wall_ms,
            scenario_ms,
        )?;
        let steps = self.sop.entry(id.to_owned()).or_default();
        if ticked {
            steps.insert(step, op.name);
        } else {
            steps.remove(&step);
        }
        self.ui_dirty.insert(id.to_owned());
        Ok(())
    }

    /// Applies and records an operator's merge, split, reassignment or undo at clock time
    /// `scenario_ms`; returns the new incident of a split.
    pub fn decide(
        &mut self,
        store: &Store,
        op: DecisionOp,
        wall_ms: Millis,
        scenario_ms: Millis,
    ) -> Result<Option<String>, EngineError> {
        let who = self.signed_in()?;
        // An incident someone closed takes nothing more in: its record is final.
        if let DecisionOp::Merge { into, .. } | DecisionOp::Reassign { to: into, .. } = &op {
            if let Some(closed) = self
                .last_transition(into)
                .filter(|t| t.to == LifecycleStatus::Closed.as_str())
            {
                return Err(EngineError::InvalidInput(format!(
                    "incident {} was closed by {} at {}; nothing more can join it",
                    self.named(into),
                    closed.operator,
                    clock_time(closed.scenario_ms)
                )));
            }
        }
        let d = Decision {
            position_ms: self.state.upto_ms,
            operator: who.name.clone(),
            at_ms: scenario_ms,
            op,
        };
        let (new, changes) = self.apply(&d)?;
        let action = serde_json::to_string(&d.op).expect("decisions serialize");
        let row = DecisionRow {
            id: 0,
            position_ms: d.position_ms,
            operator: d.operator.clone(),
            at_ms: d.at_ms,
            action,
        };
        store.record_decision(self.run, &row, who.role.as_str(), wall_ms, d.op.subject())?;
        tracing::info!(operator = %who.name, op = ?d.op, "manual decision");
        // The decision takes effect at this clock position: later checkpoints no longer hold.
        let p = d.position_ms;
        self.checkpoints.retain(|k, _| *k < p);
        self.decisions.insert(self.state.applied, d);
        self.state.applied += 1;
        self.note(changes);
        self.persist(store)?;
        Ok(new)
    }

    /// True when some decision can be taken back.
    pub fn can_undo(&self) -> bool {
        self.state.correlator.decisions().next().is_some()
    }

    fn entry(&self, inc: &Incident) -> IncidentEntryDto {
        let mut layers: Vec<Layer> = inc
            .members
            .iter()
            .map(|m| m.layer)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        layers.sort_by_key(|l| Layer::ALL.iter().position(|x| x == l));
        let l = self.lifecycle.get(inc.id.as_str());
        IncidentEntryDto {
            id: inc.id.0.to_string(),
            number: inc.number.clone(),
            title: inc.title.clone(),
            incident_type: inc.incident_type.clone(),
            severity: inc.severity,
            status: self.status(&inc.id.0),
            active: inc.is_open(),
            opened_ms: inc.opened_ms,
            cleared_ms: inc.cleared_ms,
            members: inc.members.len() as u32,
            open_members: inc.members.iter().filter(|m| !m.cleared).count() as u32,
            layers,
            root_cause: inc.root_cause.clone(),
            root_cleared: inc.root_cleared,
            manual: inc.manual,
            area: area(inc),
            acknowledged_by: l.and_then(|l| l.acknowledged_by.clone()),
            owner: l.and_then(|l| l.owner.clone()),
            escalated_ms: self.escalated_ms(inc),
        }
    }

    /// When an incident escalates if nobody acknowledges it: its opening plus the rules' limit
    /// for its severity (none for a severity the rules do not name).
    fn escalates_at(&self, inc: &Incident) -> Option<Millis> {
        let limit = self.state.correlator.rules().unacknowledged_s.get(&inc.severity)?;
        Some(inc.opened_ms + limit * 1000)
    }

    /// When the incident escalated, while it is escalated: still a problem, still unacknowledged,
    /// and past its limit at the correlator's time (the scenario clock, so exercises see it too).
    fn escalated_ms(&self, inc: &Incident) -> Option<Millis> {
        let at = self.escalates_at(inc)?;
        let waiting = inc.is_open() && self.status(&inc.id.0) == LifecycleStatus::New;
        (waiting && self.state.correlator.now_ms() >= at).then_some(at)
    }

    /// Marks for the queue the incidents that escalated since the last look.
    fn mark_escalations(&mut self) {
        let now = self.state.correlator.now_ms();
        if now == self.escalation_checked_ms {
            return;
        }
        self.escalation_checked_ms = now;
        let newly: Vec<String> = self
            .state
            .correlator
            .open_incidents()
            .filter(|i| self.escalated_ms(i).is_some() && !self.escalated.contains(i.id.as_str()))
            .map(|i| i.id.0.to_string())
            .collect();
        for id in newly {
            tracing::info!(incident = %id, "escalated: nobody acknowledged it in time");
            self.escalated.insert(id.clone());
            self.ui_dirty.insert(id);
        }
    }

    /// The queue changes since the last call, or the whole queue when `full`.
    pub fn take_diff(&mut self, full: bool) -> Option<IncidentsDiffDto> {
        if full || self.ui_reset {
            // After a seek the escalations are those at the new time.
            self.escalated.clear();
            self.escalation_checked_ms = Millis::MIN;
        }
        self.mark_escalations();
        let c = &self.state.correlator;
        let out = if full || self.ui_reset {
            Some(IncidentsDiffDto {
                reset: true,
                upserts: c.incidents().filter(|i| queued(i)).map(|i| self.entry(i)).collect(),
                removed: Vec::new(),
            })
        } else if self.ui_dirty.is_empty() {
            None
        } else {
            let mut d = IncidentsDiffDto {
                reset: false,
                upserts: Vec::new(),
                removed: Vec::new(),
            };
            for id in &self.ui_dirty {
                match c.incident(&IncidentId::from(id.as_str())) {
                    Some(i) if queued(i) => d.upserts.push(self.entry(i)),
                    _ => d.removed.push(id.clone()),
                }
            }
            Some(d)
        };
        self.ui_dirty.clear();
        self.ui_reset = false;
        out
    }

    fn member_dto(inc: &Incident, m: &Membership) -> MemberDto {
        let e = &m.explanation;
        MemberDto {
            entity: m.entity.clone(),
            layer: m.layer,
            kind: m.kind.clone(),
            severity: m.severity,
            lon: m.position.lon,
            lat: m.position.lat,
            observed_ms: m.observed_ms,
            reports: m.reports,
            rule: m.rule.clone(),
            confidence: e.confidence,
            explanation: e.text.clone(),
            distance_m: e.distance_m,
            time_gap_s: e.time_gap_s,
            dependency_path: e.dependency_path.clone(),
            duplicate_of: m.duplicate_of.clone(),
            cleared: m.cleared,
            root: inc.root_cause.as_deref() == Some(m.entity.as_str()),
        }
    }

    /// Everything the detail view shows about an incident.
    pub fn detail(&self, id: &str) -> Result<IncidentDetailDto, EngineError> {
        let inc = self.incident(id)?;
        let groups: Vec<LayerGroupDto> = Layer::ALL
            .iter()
            .filter_map(|layer| {
                let mut members: Vec<MemberDto> = inc
                    .members
                    .iter()
                    .filter(|m| m.layer == *layer)
                    .map(|m| Desk::member_dto(inc, m))
                    .collect();
                members.sort_by_key(|m| !m.root);
                (!members.is_empty()).then_some(LayerGroupDto { layer: *layer, members })
            })
            .collect();
        let root = inc.root().map(|m| Desk::member_dto(inc, m));
        let mut timeline = Vec::new();
        let mut entry = |at_ms: Millis, kind: &str, text: String, operator: Option<String>| {
            timeline.push(TimelineEntryDto {
                at_ms,
                kind: kind.into(),
                text,
                operator,
            })
        };
        if let Some(r) = inc.root() {
            entry(inc.opened_ms, "opened", format!("Opened: {}", r.explanation.text), None);
        }
        for layer in Layer::ALL {
            let of_layer: Vec<&Membership> = inc
                .members
                .iter()
                .map(Arc::as_ref)
                .filter(|m| m.layer == layer && inc.root_cause.as_deref() != Some(m.entity.as_str()))
                .collect();
            if let Some(first) = of_layer.iter().min_by_key(|m| m.observed_ms) {
                let more = of_layer.len() - 1;
                let tail = if more > 0 {
                    format!(" ({more} more {layer} members followed)")
                } else {
                    String::new()
                };
                entry(
                    first.observed_ms,
                    "joined",
                    format!("First {layer} member: {}{tail}", first.explanation.text),
                    None,
                );
            }
        }
        if let Some(t) = inc.root().filter(|r| r.cleared).and_then(|r| r.cleared_ms) {
            let open = inc.members.iter().filter(|m| !m.cleared).count();
            entry(
                t,
                "cleared",
                format!("The root cause cleared; {open} members are still a problem of their own"),
                None,
            );
        }
        if let Some(t) = inc.cleared_ms {
            entry(t, "cleared", "Every member cleared".into(), None);
        }
        for d in self.state.correlator.decisions() {
            let (text, mine) = match &d.action {
                ManualAction::Merge { into, from } => (
                    format!("{} merged {from} into {into}", d.operator),
                    into == &inc.id || from == &inc.id,
                ),
                ManualAction::Split { from, entity, new } => (
                    format!("{} split {entity} out of {from} into {new}", d.operator),
                    from == &inc.id || new == &inc.id,
                ),
                ManualAction::Reassign { from, entity, to } => (
                    format!("{} moved {entity} from {from} to {to}", d.operator),
                    from == &inc.id || to == &inc.id,
                ),
            };
            if mine {
                entry(d.at_ms, "manual", text, Some(d.operator.clone()));
            }
        }
        if let Some(l) = self.lifecycle.get(id) {
            for t in &l.history {
                entry(
                    t.scenario_ms,
                    "lifecycle",
                    format!("{} by {} ({})", capitalise(&t.to), t.operator, t.role),
                    Some(t.operator.clone()),
                );
            }
        }
        for n in self.notes.get(id).into_iter().flatten() {
            entry(n.scenario_ms, "note", n.text.clone(), Some(n.operator.clone()));
        }
        for o in self.overrides.get(id).into_iter().flatten() {
            entry(
                o.scenario_ms,
                "override",
                format!("{} overrode required SOP steps {}: {}", o.operator, o.steps, o.reason),
                Some(o.operator.clone()),
            );
        }
        timeline.sort_by_key(|t| t.at_ms);
        let ticks = self.sop.get(id);
        let sop = self
            .state
            .correlator
            .incident_type(inc)
            .map(|t| t.sop.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let by = ticks.and_then(|t| t.get(&(i as u32))).cloned();
                let due_ms = step.within_s.map(|s| inc.opened_ms + s * 1000);
                SopStepDto {
                    index: i as u32,
                    text: step.text.clone(),
                    ticked: by.is_some(),
                    overdue: by.is_none() && due_ms.is_some_and(|d| self.state.correlator.now_ms() > d),
                    by,
                    required: step.required,
                    due_ms,
                }
            })
            .collect();
        Ok(IncidentDetailDto {
            entry: self.entry(inc),
            root,
            groups,
            timeline,
            sop,
            can_undo: self.can_undo(),
        })
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// What a refused sign-in tells the person at the keyboard.
pub fn sign_in_refusal(name: &str, role: OperatorRole, outcome: &SignIn) -> String {
    match outcome {
        SignIn::Accepted => String::new(),
        SignIn::WrongPin { left } => format!(
            "wrong PIN for {name} ({left} more before the name is locked for {} minutes)",
            cityops_store::LOCKOUT_MS / 60_000
        ),
        SignIn::Locked { until_ms } => {
            let until = chrono::DateTime::from_timestamp_millis(*until_ms)
                .map(|t| t.format("%H:%M:%S UTC").to_string())
                .unwrap_or_default();
            format!(
                "{name} is locked until {until} after {} wrong PINs",
                cityops_store::MAX_WRONG_PINS
            )
        }
        SignIn::RoleRefused { has: None } => {
            format!("{name} is not in the roster as {}: a supervisor assigns that role (the first one with `cityops roster add`)", role.as_str())
        }
        SignIn::RoleRefused { has: Some(has) } => format!(
            "the roster has {name} as {has}, not {}: a supervisor assigns roles",
            role.as_str()
        ),
        SignIn::PinRequired => format!("{name} signs in with a PIN as {}", role.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However unevenly the minutes cost, the desk keeps at most [`MAX_CHECKPOINTS`] besides
    /// the empty state, loses no work in merging (every checkpoint's work plus what the state
    /// carries adds up to all the work done), and ends with kept checkpoints at least a budget
    /// of work apart.
    #[test]
    fn checkpoints_merge_by_work_and_stay_bounded() {
        let rules = Rules::parse(include_str!("../../../../fixtures/rules/default.toml")).unwrap();
        let mut desk = Desk::new(1, rules, AssetIndex::default(), Default::default(), 0, Millis::MAX);
        let mut total = Duration::ZERO;
        for minute in 1..=3_000u64 {
            desk.state.upto_ms = minute as Millis * CHECKPOINT_MS;
            // The first hours cost five times the rest, as in the generated benchmark day.
            let work = Duration::from_millis(if minute < 120 { 50 } else { 10 } + minute % 7);
            desk.work_since += work;
            total += work;
            if desk.work_since >= desk.budget {
                desk.checkpoint();
            }
            assert!(
                desk.checkpoints.len() <= MAX_CHECKPOINTS + 1,
                "{} checkpoints at minute {minute}",
                desk.checkpoints.len()
            );
        }
        assert!(desk.checkpoints.contains_key(&BEFORE));
        assert_eq!(
            desk.checkpoints.values().map(|c| c.work).sum::<Duration>() + desk.work_since,
            total
        );
        assert!(desk.budget > CHECKPOINT_WORK, "the budget rose as the run grew");
        let kept: Vec<Duration> = desk
            .checkpoints
            .iter()
            .filter(|(k, _)| **k != BEFORE)
            .map(|(_, c)| c.work)
            .collect();
        assert!(
            kept.len() > MAX_CHECKPOINTS / 2,
            "merging kept {} of {MAX_CHECKPOINTS}",
            kept.len()
        );
        // The early, expensive hours hold more checkpoints per minute than the cheap ones.
        let early = desk
            .checkpoints
            .keys()
            .filter(|k| **k != BEFORE && **k < 120 * CHECKPOINT_MS)
            .count();
        let late = desk
            .checkpoints
            .keys()
            .filter(|k| **k >= 2_880 * CHECKPOINT_MS - 120 * CHECKPOINT_MS)
            .count();
        assert!(
            early > late,
            "{early} checkpoints in the first two hours, {late} in the last two"
        );
    }
}
