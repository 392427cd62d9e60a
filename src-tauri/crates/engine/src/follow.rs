//! A workstation of a site: the site's stream (`cityops-site`) folded, in stream order, through
//! the same pipeline and incident desk as a replay, into the workstation's own SQLite cache.
//!
//! **Order.** Everything is applied in the order of the site's one stream, never by a wall
//! clock. The site's time is the latest arrival time or clock tick applied. Before an
//! operator's event is applied, the follower correlates every arrival second before the site's
//! time, so a decision lands at the same correlation position on every workstation. An arrival
//! behind what was already correlated (a second ingest node's message, late) rebuilds the
//! incidents from the checkpoint before it ([`Desk::added_at`]), as if it had come in time.
//! So workstations that applied the same stream positions hold the same observations,
//! incidents and decisions, whatever their pace, and the hashes of [`FollowSummary`] prove it.
//!
//! **Conflicts** are decided by that order: the first acknowledgement wins, and a later one is
//! refused with who and when ("already acknowledged by Aino at 21:13:05"); a merge into an
//! incident closed meanwhile is refused. Every event's outcome is kept with it
//! ([`cityops_store::SiteEventRow`]), so its author (`cityops act`) reads it back.
//!
//! **Offline.** A decision made here is committed to the cache first (`site_pending`), then
//! published with its id as `Nats-Msg-Id`; while the link is down it waits, and goes out when
//! the link returns. Feed messages commit their stream sequence with their observations, and
//! events with their effects: a restarted follower resumes after the last position it applied.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cityops_core::dispatch::BackendKind;
use cityops_core::model::Millis;
use cityops_core::tape::{self, TapeIssue, TapeLineError, TapeMessage};
use cityops_core::workflow::{LifecycleStatus, OperatorRole};
use cityops_live::pipeline::Pipeline;
use cityops_site::dispatch::{CancelRequest, OutcomeBy, SiteAction, WorkerOutcome, WorkerState};
use cityops_site::{Delivery, Op, OpEvent, Outgoing, Site, SiteConfig, SiteError, SiteId, Subject, Tick};
use cityops_store::{
    NewAction, PendingDecision, QuarantineEntry, RunId, SiteEventRow, SiteOutcome, SiteRosterEntry, Store,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::dto::{HeaderDto, OperatorDto};
use crate::error::EngineError;
use crate::incidents::{clock_time, DecisionOp, Desk};
use crate::replay::Replay;
use crate::scenario::Scenario;

/// Messages applied between two settles (flush and correlate) while catching up.
pub const SETTLE_EVERY: usize = 5_000;
/// How long the stream may stay quiet before the follower settles what it has.
pub const QUIET: Duration = Duration::from_millis(100);
/// The most a follower applies before it settles while messages keep coming, as a window's
/// engine task does: a steady feed is then committed and correlated within this of arriving,
/// not only when the feed pauses or [`SETTLE_EVERY`] messages have gathered.
pub const SETTLE_SLICE: Duration = Duration::from_millis(60);
/// How long after the site refused a publish (this user may not publish, say) the decisions
/// waiting here are offered again.
pub const REFUSED_PAUSE: Duration = Duration::from_secs(5);

/// Where a follower stands, and the hashes that prove two workstations agree.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FollowSummary {
    pub site: String,
    /// The last stream sequence applied.
    pub position: u64,
    /// The site's time: the latest arrival or clock tick applied.
    pub site_time_ms: Millis,
    /// Observations accepted, all layers.
    pub accepted: u64,
    /// Pieces of input refused and quarantined (feed messages, features, malformed events).
    pub rejected: u64,
    /// SHA-256 of the stored observation set (see `headless::observation_set_hash`).
    pub observation_set_hash: String,
    /// Incidents, and the SHA-256 of the incident set.
    pub incidents: u64,
    pub incident_set_hash: String,
    /// Operators' events applied, accepted and refused.
    pub events_accepted: u64,
    pub events_refused: u64,
    /// SHA-256 of every applied event with its outcome, in stream order, and of the
    /// operators' lifecycle transitions.
    pub decision_set_hash: String,
    /// Decisions made here that the site has not acknowledged yet.
    pub waiting: u64,
}

/// What became of an operator's event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventOutcome {
    pub event_id: String,
    /// `accepted`, `refused`, or `waiting` (committed here, not yet applied by the site).
    pub outcome: String,
    pub reason: String,
    /// Its stream sequence, once applied.
    pub seq: Option<u64>,
}

/// What a follower folds the site into: before the site's configuration arrived, a pipeline
/// with no feeds (feed messages are quarantined, roster events apply); after it, a live
/// [`Replay`] of the configuration (its pipeline, picture and incident desk), which is what the
/// engine shows in a window.
pub(crate) enum Cache<'a> {
    Waiting(&'a mut Pipeline),
    Ready(&'a mut Replay),
}

impl Cache<'_> {
    fn pipeline(&mut self) -> &mut Pipeline {
        match self {
            Cache::Waiting(p) => p,
            Cache::Ready(r) => r.live_parts().0,
        }
    }

    fn store(&self) -> &Store {
        match self {
            Cache::Waiting(p) => p.store(),
            Cache::Ready(r) => r.pipeline().store(),
        }
    }

    fn desk(&mut self) -> (Option<&mut Desk>, &Store) {
        match self {
            Cache::Waiting(p) => (None, p.store()),
            Cache::Ready(r) => {
                if r.desk().is_none() {
                    return (None, r.pipeline().store());
                }
                let (desk, store) = r.desk_mut().expect("the desk is there");
                (Some(desk), store)
            }
        }
    }
}

/// What the site sent that its follower's owner must act on.
pub(crate) enum Applied {
    /// Nothing more to do.
    Done,
    /// An operators' event, applied or refused.
    Event(SiteEventRow),
    /// The site's configuration, kept in the cache: build the replay it describes.
    Configured,
}

/// A follower's bookkeeping: where in the site's stream it stands and the site's time, apart
/// from the cache it folds into (owned by a [`Follower`], or by the engine's task in a window).
pub(crate) struct FollowState {
    site: SiteId,
    run: RunId,
    /// Feeds' mapping files resolve against the cache's folder.
    dir: PathBuf,
    config: Option<SiteConfig>,
    time_ms: Millis,
    position: u64,
    /// The position as of the last settle: what the cache holds committed and correlated.
    settled: u64,
    /// The earliest arrival applied behind the correlation since the last settle.
    late_from: Option<Millis>,
    unsettled: usize,
    /// Whether arrivals go onto the replay's picture: a window shows it; a headless follower
    /// reads the store instead, like `cityops replay` at full speed.
    picture: bool,
    /// Held while this follower owns the cache: one writer folds a cache at a time.
    _lock: File,
}

/// A workstation's cache following one site, without a window (`cityops follow`).
pub struct Follower {
    state: FollowState,
    cache: Owned,
    /// The operators' event applied last, for whoever watches outcomes as they come.
    last_event: Option<SiteEventRow>,
}

enum Owned {
    Waiting(Box<Pipeline>),
    Ready(Box<Replay>),
}

impl Owned {
    fn cache(&mut self) -> Cache<'_> {
        match self {
            Owned::Waiting(p) => Cache::Waiting(p),
            Owned::Ready(r) => Cache::Ready(r),
        }
    }
}

/// A message of the site's stream with its tape line decoded when it is a feed message:
/// decoding is the larger part of reading a message, so a reader decodes ahead on its own task
/// while the follower applies what came before ([`decode_ahead`]).
pub struct Decoded {
    pub delivery: Delivery,
    line: Option<Result<TapeMessage, TapeLineError>>,
}

impl Decoded {
    /// Decodes `delivery`'s tape line if it carries one.
    pub fn new(delivery: Delivery) -> Decoded {
        let line = (delivery.kind == Subject::Feed)
            .then(|| tape::parse_line_bytes(delivery.seq, &delivery.payload, cityops_decoders::MAX_BODY_BYTES));
        Decoded { delivery, line }
    }
}

/// Reads `reader` on a task of its own, decoding each message as it comes, into a channel of
/// at most `AHEAD` messages; the channel ends where the reader ends or fails (the error is the
/// last item).
pub fn decode_ahead(mut reader: cityops_site::Reader) -> (mpsc::Receiver<Result<Decoded, SiteError>>, AbortOnDrop) {
    let (tx, rx) = mpsc::channel(AHEAD);
    let task = tokio::spawn(async move {
        while let Some(item) = reader.next().await {
            let failed = item.is_err();
            if tx.send(item.map(Decoded::new)).await.is_err() || failed {
                break;
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// How many decoded messages a reader may hold ahead of the follower.
const AHEAD: usize = 1024;

/// A task stopped when this is dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An error that names the cache.
fn cache_error(db: &Path, reason: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidInput(format!("cache {}: {reason}", db.display()))
}

/// The lock file of a cache: held by the process that folds the site into it.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".follow.lock");
    PathBuf::from(p)
}

impl FollowState {
    /// Opens (or creates) the cache at `db` following `site`: the bookkeeping, the store, and
    /// the configuration it keeps. Refused when another process follows this cache (see
    /// [`lock_path`]) or the cache follows another site.
    fn open(db: &Path, site: SiteId) -> Result<(FollowState, Store), EngineError> {
        let lock_file = lock_path(db);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_file)
            .map_err(|source| EngineError::Io {
                path: lock_file.clone(),
                source,
            })?;
        if lock.try_lock().is_err() {
            return Err(cache_error(db, "another process follows this cache"));
        }
        let store = Store::open(db)?;
        if let Some(other) = store.followed_site()? {
            if other != site.as_str() {
                return Err(cache_error(db, format!("it follows site {other}, not {site}")));
            }
        }
        let (run, config) = match store.site_run(site.as_str())? {
            Some(r) => (r.run, r.config),
            None => (
                store.begin_site_run(site.as_str(), &chrono::Utc::now().to_rfc3339())?,
                None,
            ),
        };
        let position = store.site_position(run)?;
        let (_, arrived) = store.frontier(run)?;
        let time_ms = arrived.max(store.site_time(run)?).unwrap_or(Millis::MIN);
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let config: Option<SiteConfig> = config
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| cache_error(db, format!("the stored site configuration cannot be read: {e}")))?;
        let state = FollowState {
            site,
            run,
            dir,
            config,
            time_ms,
            position,
            settled: position,
            late_from: None,
            unsettled: 0,
            picture: false,
            _lock: lock,
        };
        Ok((state, store))
    }

    /// The live replay of the site's configuration over `store`, picking up what the cache
    /// holds (the picture at the site's time, the operators' decisions).
    fn replay(&self, store: Store) -> Result<Replay, EngineError> {
        let config = self.config.as_ref().expect("a replay is built from a configuration");
        let scenario = Scenario::from_site(&self.dir, self.site.as_str(), config)?;
        let pipeline = Pipeline::new(store, self.run, &scenario.manifest.feeds, &self.dir)?;
        let mut replay = Replay::live(scenario, pipeline, cityops_live::Health::default());
        replay.resume_live(self.time_ms.max(replay.now_ms()))?;
        if let Some(ended) = replay.pipeline().store().exercise_end(self.run)? {
            replay.note_ended(ended);
        }
        Ok(replay)
    }

    /// Applies one message of the site's stream. Nothing a message holds fails the follower:
    /// what cannot be applied is quarantined or refused with its reason. An `Err` is the cache
    /// failing; the follower then stops, and resumes from the cache when restarted.
    pub(crate) fn apply(&mut self, cache: &mut Cache<'_>, decoded: Decoded) -> Result<Applied, EngineError> {
        let d = &decoded.delivery;
        if d.seq <= self.position {
            return Ok(Applied::Done);
        }
        let mut applied = Applied::Done;
        match d.kind {
            Subject::Feed => {
                let line = decoded
                    .line
                    .unwrap_or_else(|| tape::parse_line_bytes(d.seq, &d.payload, cityops_decoders::MAX_BODY_BYTES));
                self.apply_feed(cache, d, line)?
            }
            Subject::Clock => match serde_json::from_slice::<Tick>(&d.payload) {
                Ok(t) => {
                    self.time_ms = self.time_ms.max(t.time_ms);
                    cache.store().set_site_time(self.run, self.time_ms)?;
                }
                Err(e) => self.quarantine(cache, d, format!("not a clock tick: {e}"))?,
            },
            Subject::Config => {
                if self.apply_config(cache, d)? {
                    applied = Applied::Configured;
                }
            }
            Subject::Ops => {
                if let Some(row) = self.apply_event(cache, d)? {
                    applied = Applied::Event(row);
                }
            }
            Subject::Action => self.apply_action(cache, d)?,
            Subject::Outcome => {
                if let Some(row) = self.apply_outcome(cache, d)? {
                    applied = Applied::Event(row);
                }
            }
            Subject::Other => self.quarantine(cache, d, "not a subject of cityops".into())?,
        }
        self.position = d.seq;
        self.unsettled += 1;
        if self.unsettled >= SETTLE_EVERY {
            self.settle(cache)?;
        }
        Ok(applied)
    }

    fn apply_feed(
        &mut self,
        cache: &mut Cache<'_>,
        d: &Delivery,
        line: Result<TapeMessage, TapeLineError>,
    ) -> Result<(), EngineError> {
        match line {
            Ok(msg) => {
                if let (Some(desk), _) = cache.desk() {
                    if msg.time_ms < desk.correlated_upto() {
                        self.late_from = Some(self.late_from.map_or(msg.time_ms, |t| t.min(msg.time_ms)));
                    }
                }
                self.time_ms = self.time_ms.max(msg.time_ms);
                match cache {
                    Cache::Waiting(p) => p.ingest(&msg, None)?,
                    Cache::Ready(r) => {
                        let (pipeline, picture) = r.live_parts();
                        pipeline.ingest(&msg, self.picture.then_some(picture))?
                    }
                };
            }
            Err(e) => {
                let issue = TapeIssue { line: d.seq, reason: e };
                let at = self.time_ms;
                cache.pipeline().quarantine_tape_issues(&d.subject, &[issue], at);
            }
        }
        Ok(())
    }

    /// Keeps the site's first configuration (true: the owner builds its replay now); a
    /// different one later is quarantined.
    fn apply_config(&mut self, cache: &mut Cache<'_>, d: &Delivery) -> Result<bool, EngineError> {
        let config: SiteConfig = match serde_json::from_slice(&d.payload) {
            Ok(c) => c,
            Err(e) => {
                self.quarantine(cache, d, format!("not a site configuration: {e}"))?;
                return Ok(false);
            }
        };
        if self.config.as_ref() == Some(&config) {
            return Ok(false);
        }
        if self.config.is_some() {
            self.quarantine(
                cache,
                d,
                "the site published a different configuration; this workstation keeps the one it follows \
                 (follow the new one with a new cache)"
                    .into(),
            )?;
            return Ok(false);
        }
        // The configuration must be usable before it is kept.
        if let Err(e) = Scenario::from_site(&self.dir, self.site.as_str(), &config) {
            self.quarantine(cache, d, format!("the site's configuration is refused: {e}"))?;
            return Ok(false);
        }
        self.settle(cache)?;
        let text = serde_json::to_string(&config).expect("a configuration serializes");
        cache.store().set_site_config(self.run, &text, d.seq)?;
        self.config = Some(config);
        tracing::info!(site = %self.site, seq = d.seq, "site configuration applied");
        Ok(true)
    }

    /// Quarantines a message that cannot be applied, naming its subject and sequence.
    fn quarantine(&mut self, cache: &mut Cache<'_>, d: &Delivery, reason: String) -> Result<(), EngineError> {
        tracing::warn!(site = %self.site, seq = d.seq, subject = %d.subject, %reason, "refused a site message");
        let at = self.time_ms;
        cache.pipeline().quarantine_transport_failure(
            &format!("site:{}", self.site),
            &format!("{}#{}: {reason}", d.subject, d.seq),
            at,
            d.payload.to_vec(),
        )?;
        Ok(())
    }

    /// Commits what is buffered and correlates every arrival second before the site's time
    /// (moving the replay's clock there).
    pub(crate) fn settle(&mut self, cache: &mut Cache<'_>) -> Result<(), EngineError> {
        cache.pipeline().flush()?;
        if let Cache::Ready(replay) = cache {
            if let Some(t) = self.late_from.take() {
                if let Some((desk, store)) = replay.desk_mut() {
                    desk.added_at(store, t)?;
                }
            }
            // Before the first arrival or tick the site has no time, and nothing to correlate.
            if self.time_ms > Millis::MIN {
                replay.follow(self.time_ms, self.time_ms)?;
            }
        }
        self.unsettled = 0;
        self.settled = self.position;
        Ok(())
    }

    fn apply_event(&mut self, cache: &mut Cache<'_>, d: &Delivery) -> Result<Option<SiteEventRow>, EngineError> {
        self.settle(cache)?;
        let event = match read_event(&d.payload) {
            // The subject is what the server's permissions vouch for (only the administration
            // publishes on `ops.roster`), so an event's kind must be its subject's.
            Ok(e) if d.subject != self.site.ops_subject(e.op.kind()) => {
                let row = self.row(d.seq, e.id.clone(), "?", &e.operator, &e.workstation);
                let reason = format!("a {} event on subject {}", e.op.kind(), d.subject);
                return self.refuse(cache, d, row, reason, true).map(Some);
            }
            Ok(e) => e,
            Err((id, reason)) => {
                let row = self.row(d.seq, id.unwrap_or_else(|| format!("malformed-{}", d.seq)), "?", "", "");
                return self.refuse(cache, d, row, reason, true).map(Some);
            }
        };
        let store = cache.store();
        if let Some(first) = store.site_event(&event.id)? {
            tracing::debug!(id = %event.id, first = first.seq, "an event applied before, published again");
            return Ok(None);
        }
        let mut row = self.row(
            d.seq,
            event.id.clone(),
            event.op.kind(),
            &event.operator,
            &event.workstation,
        );
        row.at_ms = event.at_ms;
        if let Op::Roster { name, role, pin_hash } | Op::Role { name, role, pin_hash } = &event.op {
            // The administration's changes (`cityops roster add --nats`) carry the authority of
            // the NATS user allowed to publish them (fixtures/nats); a workstation's need a
            // supervisor, judged by the roster as it stands at this point of the stream, so a
            // supervisor demoted meanwhile changes nothing, on every workstation alike.
            if matches!(event.op, Op::Role { .. }) {
                let author = store.site_roster()?.into_iter().find(|e| e.name == event.operator);
                let refusal = match author.as_ref().map(|a| a.role.as_str()) {
                    Some("supervisor") => None,
                    Some(other) => Some(format!(
                        "the site's roster is changed by a supervisor; {} is {other}",
                        event.operator
                    )),
                    None => Some(format!("operator {:?} is not on the site's roster", event.operator)),
                };
                if let Some(reason) = refusal {
                    return self.refuse(cache, d, row, reason, false).map(Some);
                }
            }
            if role != cityops_site::REMOVED && OperatorRole::parse(role).is_none() {
                return self
                    .refuse(cache, d, row, format!("unknown role {role:?}"), true)
                    .map(Some);
            }
            if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                let reason = "an operator name is 1 to 64 printable characters".into();
                return self.refuse(cache, d, row, reason, true).map(Some);
            }
            let name = name.trim();
            let (r, _) = if role == cityops_site::REMOVED {
                store.with_site_event(row.clone(), || store.remove_site_roster(name))
            } else {
                let entry = SiteRosterEntry {
                    name: name.to_owned(),
                    role: role.clone(),
                    pin_hash: pin_hash.clone(),
                };
                store.with_site_event(row.clone(), || store.set_site_roster(&entry, d.seq))
            };
            r?;
            return Ok(Some(row));
        }
        let Some(who) = store.site_roster()?.into_iter().find(|e| e.name == event.operator) else {
            let reason = format!("operator {:?} is not on the site's roster", event.operator);
            return self.refuse(cache, d, row, reason, true).map(Some);
        };
        let role = OperatorRole::parse(&who.role).unwrap_or(OperatorRole::Operator);
        let run = self.run;
        if let Op::Clock { .. } | Op::End = &event.op {
            // The trainer's: recorded (the clock), or ending every workstation's exercise.
            if !matches!(role, OperatorRole::Trainer | OperatorRole::Supervisor) {
                let reason = format!("the exercise's clock is a trainer's; {} is {}", who.name, who.role);
                return self.refuse(cache, d, row, reason, false).map(Some);
            }
            if !store.site_exercise(self.site.as_str())? {
                let reason = "this site is live, not an exercise (site init --exercise)".to_owned();
                return self.refuse(cache, d, row, reason, false).map(Some);
            }
            if matches!(event.op, Op::End) {
                let wall = event.wall_ms;
                let (r, committed) = store.with_site_event(row.clone(), || {
                    store.end_exercise(run, event.at_ms, &who.name, role.as_str(), wall)
                });
                let ended = r?;
                if !committed {
                    // Ended before: the first end stands, and this one is recorded beside it.
                    store.record_site_event(&row, None)?;
                }
                if let Cache::Ready(replay) = cache {
                    replay.note_ended(ended);
                }
            } else {
                store.record_site_event(&row, None)?;
            }
            return Ok(Some(row));
        }
        if let Op::Call {
            incident_type,
            layer,
            severity,
            description,
            lon,
            lat,
        } = &event.op
        {
            let spec = cityops_core::call::CallSpec {
                incident_type: incident_type.clone(),
                layer: *layer,
                severity: *severity,
                description: description.clone(),
                lon: *lon,
                lat: *lat,
            };
            return self.apply_call(cache, d, row, &spec, &who.name, role, &event);
        }
        let (desk, store) = cache.desk();
        let Some(desk) = desk else {
            let reason = "the site has no correlation rules (or no configuration yet), so no incidents to act on";
            return self.refuse(cache, d, row, reason.into(), false).map(Some);
        };
        let (result, committed) = store.with_site_event(row.clone(), || apply_op(desk, store, &who, role, &event));
        match result {
            Ok(()) if committed => Ok(Some(row)),
            Ok(()) => {
                // An effect with nothing durable to write: the row is committed alone.
                store.record_site_event(&row, None)?;
                Ok(Some(row))
            }
            Err(EngineError::Store(e)) => Err(EngineError::Store(e)),
            Err(e) => {
                let reason = match &e {
                    EngineError::InvalidInput(m) => m.clone(),
                    other => other.to_string(),
                };
                self.refuse(cache, d, row, reason, false).map(Some)
            }
        }
    }

    /// An operator's call: recorded (with the event's row, in one transaction) as this run's
    /// next call and ingested like a feed message, so every workstation numbers it alike.
    #[allow(clippy::too_many_arguments)]
    fn apply_call(
        &mut self,
        cache: &mut Cache<'_>,
        d: &Delivery,
        row: SiteEventRow,
        spec: &cityops_core::call::CallSpec,
        who: &str,
        role: OperatorRole,
        event: &OpEvent,
    ) -> Result<Option<SiteEventRow>, EngineError> {
        let Cache::Ready(replay) = cache else {
            let reason = "the site has no configuration yet, so no incident types".to_owned();
            return self.refuse(cache, d, row, reason, false).map(Some);
        };
        let (call, msg) = match replay.prepare_call(spec, who, role.as_str(), event.at_ms) {
            Ok(made) => made,
            Err(EngineError::Store(e)) => return Err(EngineError::Store(e)),
            Err(e) => {
                let reason = match &e {
                    EngineError::InvalidInput(m) => m.clone(),
                    other => other.to_string(),
                };
                return self.refuse(cache, d, row, reason, false).map(Some);
            }
        };
        let store = replay.pipeline().store();
        let run = replay.pipeline().run();
        let (recorded, _) = store.with_site_event(row.clone(), || store.record_call(run, &call, event.wall_ms));
        recorded?;
        replay.ingest_call(&call, &msg)?;
        Ok(Some(row))
    }

    /// An action committed at a workstation of the site: this cache's outbox shows it (a
    /// dispatch worker sends it), or queues it again when it is an operator's retry.
    fn apply_action(&mut self, cache: &mut Cache<'_>, d: &Delivery) -> Result<(), EngineError> {
        let a: SiteAction = match serde_json::from_slice(&d.payload) {
            Ok(a) => a,
            Err(e) => return self.quarantine(cache, d, format!("not an action: {e}")),
        };
        let Some(kind) = BackendKind::parse(&a.kind) else {
            return self.quarantine(
                cache,
                d,
                format!("an action for an unknown kind of backend {:?}", a.kind),
            );
        };
        if d.subject != self.site.action_subject(&a.key) {
            return self.quarantine(cache, d, format!("action {} on subject {}", a.key, d.subject));
        }
        let headers: Vec<HeaderDto> = a
            .headers
            .iter()
            .map(|(name, value)| HeaderDto {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let new = NewAction {
            key: &a.key,
            run: Some(self.run),
            incident: a.incident.as_deref(),
            backend: &a.backend,
            kind,
            summary: &a.summary,
            destination: &a.destination,
            headers: &headers,
            body: &a.body,
            device: a.device.as_deref(),
            exercise: a.exercise,
            operator: &a.operator,
            role: &a.role,
            wall_ms: a.wall_ms,
            scenario_ms: a.scenario_ms,
        };
        cache.store().apply_site_action(&new, a.retry_of, d.seq)?;
        Ok(())
    }

    /// A dispatch worker's outcome, or an operator's cancellation (an event whose outcome its
    /// author reads back: refused when a worker took the action first).
    fn apply_outcome(&mut self, cache: &mut Cache<'_>, d: &Delivery) -> Result<Option<SiteEventRow>, EngineError> {
        let wall_ms = chrono::Utc::now().timestamp_millis();
        match self.site.outcome_by(&d.subject) {
            Some(OutcomeBy::Worker) => {
                let o: WorkerOutcome = match serde_json::from_slice(&d.payload) {
                    Ok(o) => o,
                    Err(e) => {
                        self.quarantine(cache, d, format!("not a dispatch worker's outcome: {e}"))?;
                        return Ok(None);
                    }
                };
                if self.site.outcome_subject(&o.key, OutcomeBy::Worker) != d.subject {
                    self.quarantine(cache, d, format!("an outcome of {} on subject {}", o.key, d.subject))?;
                    return Ok(None);
                }
                let worker = o.worker.as_str();
                let outcome = match &o.state {
                    WorkerState::Sending { .. } => SiteOutcome::Sending { worker },
                    WorkerState::Delivered { reference } => SiteOutcome::Delivered { worker, reference },
                    WorkerState::Sent { reference } => SiteOutcome::Sent { worker, reference },
                    WorkerState::Retrying { reason, .. } => SiteOutcome::Retrying { worker, reason },
                    WorkerState::Failed { reason } => SiteOutcome::Failed { worker, reason },
                };
                cache.store().apply_site_outcome(&o.key, &outcome, d.seq, wall_ms)?;
                Ok(None)
            }
            Some(OutcomeBy::Cancel) => {
                let c: CancelRequest = match serde_json::from_slice(&d.payload) {
                    Ok(c) => c,
                    Err(e) => {
                        let row = self.row(d.seq, format!("malformed-{}", d.seq), "cancel", "", "");
                        return self
                            .refuse(cache, d, row, format!("not a cancellation: {e}"), true)
                            .map(Some);
                    }
                };
                let store = cache.store();
                if store.site_event(&c.id)?.is_some() {
                    return Ok(None);
                }
                let row = self.row(d.seq, c.id.clone(), "cancel", &c.operator, &c.workstation);
                if self.site.outcome_subject(&c.key, OutcomeBy::Cancel) != d.subject {
                    let reason = format!("a cancellation of {} on subject {}", c.key, d.subject);
                    return self.refuse(cache, d, row, reason, true).map(Some);
                }
                if !store.site_roster()?.iter().any(|e| e.name == c.operator) {
                    let reason = format!("operator {:?} is not on the site's roster", c.operator);
                    return self.refuse(cache, d, row, reason, true).map(Some);
                }
                let (result, _) = store.with_site_event(row.clone(), || {
                    store.apply_site_cancel(&c.key, &c.operator, d.seq, wall_ms)
                });
                match result {
                    Ok(()) => Ok(Some(row)),
                    Err(cityops_store::StoreError::Refused(reason)) => {
                        self.refuse(cache, d, row, reason, false).map(Some)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            None => {
                self.quarantine(cache, d, "not a subject of cityops".into())?;
                Ok(None)
            }
        }
    }

    fn row(&self, seq: u64, event_id: String, kind: &str, operator: &str, workstation: &str) -> SiteEventRow {
        SiteEventRow {
            run: self.run,
            seq,
            event_id,
            kind: kind.to_owned(),
            operator: operator.to_owned(),
            workstation: workstation.to_owned(),
            at_ms: self.time_ms,
            outcome: "accepted".into(),
            reason: String::new(),
        }
    }

    /// Records a refused event; a `malformed` one (not an event, an unknown operator) also goes
    /// to the quarantine, where the operator sees it beside refused feed input.
    fn refuse(
        &mut self,
        cache: &mut Cache<'_>,
        d: &Delivery,
        mut row: SiteEventRow,
        reason: String,
        malformed: bool,
    ) -> Result<SiteEventRow, EngineError> {
        tracing::warn!(site = %self.site, seq = d.seq, id = %row.event_id, %reason, "refused an operators' event");
        row.outcome = "refused".into();
        row.reason = reason.clone();
        let q = malformed.then(|| QuarantineEntry {
            feed: format!("site:{}", self.site),
            seq: d.seq,
            place: d.subject.clone(),
            reason,
            received_ms: self.time_ms,
            body: d.payload.to_vec(),
        });
        cache.store().record_site_event(&row, q.as_ref())?;
        Ok(row)
    }

    /// The site followed.
    pub(crate) fn site(&self) -> &SiteId {
        &self.site
    }

    /// The last stream sequence applied.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Where the follower stands, with the hashes.
    fn summary(&self, cache: &mut Cache<'_>) -> Result<FollowSummary, EngineError> {
        let (desk, store) = cache.desk();
        let counts = store.counts(self.run)?;
        let (observation_set_hash, accepted) = crate::headless::observation_set_hash(store, self.run)?;
        let events = store.site_events(self.run)?;
        let mut h = Sha256::new();
        for e in &events {
            h.update(format!("{}\t{}\t{}\t{}\n", e.seq, e.event_id, e.outcome, e.reason));
        }
        for t in store.transitions(self.run)? {
            h.update(format!(
                "{}\t{}\t{}\t{}\t{}\n",
                t.incident, t.from, t.to, t.operator, t.scenario_ms
            ));
        }
        for o in store.owners(self.run)? {
            h.update(format!(
                "owner\t{}\t{}\t{}\t{}\n",
                o.incident, o.owner, o.operator, o.scenario_ms
            ));
        }
        Ok(FollowSummary {
            site: self.site.to_string(),
            position: self.position,
            site_time_ms: self.time_ms,
            accepted,
            rejected: counts.quarantined,
            observation_set_hash,
            incidents: desk
                .as_ref()
                .map(|d| d.correlator().incidents().count() as u64)
                .unwrap_or(0),
            incident_set_hash: desk.as_ref().map(|d| d.incident_set_hash()).unwrap_or_default(),
            events_accepted: events.iter().filter(|e| e.outcome == "accepted").count() as u64,
            events_refused: events.iter().filter(|e| e.outcome != "accepted").count() as u64,
            decision_set_hash: hex::encode(h.finalize()),
            waiting: store.site_pending()?.len() as u64,
        })
    }
}

/// Applies an operator's decision to the desk as `who` (whom the site's roster vouched for),
/// then gives the desk back to whoever is signed in at this workstation: a decision made
/// elsewhere must never become this workstation's operator.
fn apply_op(
    desk: &mut Desk,
    store: &Store,
    who: &SiteRosterEntry,
    role: OperatorRole,
    event: &OpEvent,
) -> Result<(), EngineError> {
    let here = desk.act_as(Some(OperatorDto {
        name: who.name.clone(),
        role,
    }));
    let result = apply_op_as(desk, store, event);
    desk.act_as(here);
    result
}

fn apply_op_as(desk: &mut Desk, store: &Store, event: &OpEvent) -> Result<(), EngineError> {
    let (wall, at) = (event.wall_ms, event.at_ms);
    let decide = |desk: &mut Desk, op| desk.decide(store, op, wall, at).map(drop);
    match &event.op {
        Op::Transition { incident, to } | Op::Override { incident, to, .. } => {
            let reason = match &event.op {
                Op::Override { reason, .. } => Some(reason.as_str()),
                _ => None,
            };
            let to = LifecycleStatus::parse(to)
                .ok_or_else(|| EngineError::InvalidInput(format!("unknown status {to:?}")))?;
            let now = desk.status(incident);
            if to.rank() <= now.rank() {
                if let Some(t) = desk.last_transition(incident) {
                    return Err(EngineError::InvalidInput(format!(
                        "incident {} is already {} by {} at {}",
                        desk.named(incident),
                        now.as_str(),
                        t.operator,
                        clock_time(t.scenario_ms)
                    )));
                }
            }
            desk.transition_with(store, incident, to, reason, wall, at)
        }
        Op::Sop { incident, step, ticked } => desk.tick_sop(store, incident, *step, *ticked, wall, at),
        Op::Own { incident, owner } => desk.take_ownership(store, incident, owner.as_deref(), wall, at),
        Op::Note { incident, text } => desk.add_note(store, incident, text, wall, at),
        Op::Merge { into, from } => decide(
            desk,
            DecisionOp::Merge {
                into: into.clone(),
                from: from.clone(),
            },
        ),
        Op::Split { from, entity } => decide(
            desk,
            DecisionOp::Split {
                from: from.clone(),
                entity: entity.clone(),
            },
        ),
        Op::Reassign { from, entity, to } => decide(
            desk,
            DecisionOp::Reassign {
                from: from.clone(),
                entity: entity.clone(),
                to: to.clone(),
            },
        ),
        Op::Undo => decide(desk, DecisionOp::Undo),
        Op::Roster { .. } | Op::Role { .. } | Op::Clock { .. } | Op::End | Op::Call { .. } => Err(
            EngineError::InvalidInput("a roster change is not an incident decision".into()),
        ),
    }
}

impl Follower {
    /// Opens (or creates) the cache at `db` following `site`, resuming after the last position
    /// it applied. Refused when another process follows this cache (see [`lock_path`]) or the
    /// cache follows another site.
    pub fn open(db: &Path, site: SiteId) -> Result<Follower, EngineError> {
        let (state, store) = FollowState::open(db, site)?;
        let cache = match &state.config {
            Some(_) => Owned::Ready(Box::new(state.replay(store)?)),
            None => Owned::Waiting(Box::new(Pipeline::new(store, state.run, &[], &state.dir)?)),
        };
        let mut f = Follower {
            state,
            cache,
            last_event: None,
        };
        f.settle()?;
        tracing::info!(site = %f.state.site, position = f.state.position, "following a site");
        Ok(f)
    }

    /// The cache.
    pub fn store(&self) -> &Store {
        match &self.cache {
            Owned::Waiting(p) => p.store(),
            Owned::Ready(r) => r.pipeline().store(),
        }
    }

    /// The site followed.
    pub fn site(&self) -> &SiteId {
        &self.state.site
    }

    /// The last stream sequence applied.
    pub fn position(&self) -> u64 {
        self.state.position
    }

    /// The last stream sequence committed and correlated (see [`Follower::settle`]).
    pub fn settled_position(&self) -> u64 {
        self.state.settled
    }

    /// The site's time.
    pub fn site_time_ms(&self) -> Millis {
        self.state.time_ms
    }

    /// The incident desk, once the site's configuration named rules.
    pub fn desk(&self) -> Option<&Desk> {
        match &self.cache {
            Owned::Waiting(_) => None,
            Owned::Ready(r) => r.desk(),
        }
    }

    /// True once the site's configuration arrived.
    pub fn configured(&self) -> bool {
        matches!(self.cache, Owned::Ready(_))
    }

    /// Applies one message of the site's stream (see [`FollowState::apply`]); returns the
    /// outcome of an operators' event.
    pub fn apply(&mut self, d: Decoded) -> Result<Option<SiteEventRow>, EngineError> {
        let mut cache = self.cache.cache();
        let applied = self.state.apply(&mut cache, d)?;
        Ok(match applied {
            Applied::Done => None,
            Applied::Event(row) => {
                self.last_event = Some(row.clone());
                Some(row)
            }
            Applied::Configured => {
                let Owned::Waiting(p) = std::mem::replace(&mut self.cache, Owned::Waiting(Box::new(placeholder()?)))
                else {
                    // A configured follower keeps its configuration: apply_config said so.
                    return Ok(None);
                };
                self.cache = Owned::Ready(Box::new(self.state.replay(p.into_store())?));
                None
            }
        })
    }

    /// The operators' event applied last (accepted or refused).
    pub fn last_event(&self) -> Option<&SiteEventRow> {
        self.last_event.as_ref()
    }

    /// Commits what is buffered and correlates every arrival second before the site's time.
    pub fn settle(&mut self) -> Result<(), EngineError> {
        let mut cache = self.cache.cache();
        self.state.settle(&mut cache)
    }

    /// The outcome of an event, if this cache has applied it or holds it waiting.
    pub fn outcome(&self, event_id: &str) -> Result<Option<EventOutcome>, EngineError> {
        outcome_in(self.store(), event_id)
    }

    /// Where the follower stands, with the hashes.
    pub fn summary(&mut self) -> Result<FollowSummary, EngineError> {
        let mut cache = self.cache.cache();
        self.state.summary(&mut cache)
    }

    /// Hands the cache over to the engine's task once configured: the bookkeeping and the
    /// replay a window shows; `None` while the site has published no configuration.
    pub(crate) fn into_parts(self) -> Option<(FollowState, Replay)> {
        match self.cache {
            Owned::Ready(r) => {
                let mut state = self.state;
                state.picture = true;
                Some((state, *r))
            }
            Owned::Waiting(_) => None,
        }
    }
}

/// A pipeline that holds nothing, to stand in while a real one is moved out.
fn placeholder() -> Result<Pipeline, EngineError> {
    Ok(Pipeline::new(Store::open_in_memory()?, 0, &[], Path::new("."))?)
}

/// Reads an operations event; a refusal says why, with the event's id when it has one.
fn read_event(payload: &[u8]) -> Result<OpEvent, (Option<String>, String)> {
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| (None, format!("not JSON: {e}")))?;
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned);
    match value.get("kind").and_then(|k| k.as_str()) {
        None => return Err((id, "no kind".into())),
        Some(k) if !Op::KINDS.contains(&k) => return Err((id, format!("unknown kind {k:?}"))),
        Some(_) => {}
    }
    let event: OpEvent =
        serde_json::from_value(value).map_err(|e| (id.clone(), format!("not an operations event: {e}")))?;
    if id.is_none() {
        return Err((None, "an event id is 1 to 200 characters".into()));
    }
    Ok(event)
}

/// The site's time as a cache holds it: the latest arrival or clock tick it applied.
pub fn site_time_in(store: &Store, site: &SiteId) -> Result<Option<Millis>, EngineError> {
    let Some(r) = store.site_run(site.as_str())? else {
        return Ok(None);
    };
    let (_, arrived) = store.frontier(r.run)?;
    Ok(arrived.max(store.site_time(r.run)?))
}

/// The site's roster vouches for `name` (with `pin`, when the roster holds one for them or
/// their role needs one): their role, or why not.
pub fn check_operator(store: &Store, name: &str, pin: Option<&str>) -> Result<OperatorRole, EngineError> {
    let Some(entry) = store.site_roster()?.into_iter().find(|e| e.name == name) else {
        return Err(EngineError::Forbidden(format!(
            "{name} is not on the site's roster: a supervisor adds them (`cityops roster add {name} --role ROLE --nats URL --site ID`)"
        )));
    };
    let role = OperatorRole::parse(&entry.role).unwrap_or(OperatorRole::Operator);
    match (&entry.pin_hash, pin) {
        (Some(hash), Some(pin)) if cityops_store::pin_matches_hash(hash, pin) => Ok(role),
        (Some(_), Some(_)) => Err(EngineError::Forbidden(format!("wrong PIN for {name}"))),
        (Some(_), None) => Err(EngineError::Forbidden(format!(
            "{name} has a PIN: give it (--pin-env VAR)"
        ))),
        (None, _) if cityops_store::role_needs_pin(&entry.role) => Err(EngineError::Forbidden(format!(
            "{name} is a {} without a PIN on the site's roster: a supervisor sets one",
            entry.role
        ))),
        (None, _) => Ok(role),
    }
}

/// Commits a decision made at this workstation into its cache, to be published by
/// [`publish_waiting`] (now, or when the link returns): returns the event. It is made at the
/// site's time as the cache holds it.
pub fn commit_decision(
    store: &Store,
    site: &SiteId,
    operator: &str,
    workstation: &str,
    op: Op,
) -> Result<OpEvent, EngineError> {
    let wall_ms = chrono::Utc::now().timestamp_millis();
    let event = OpEvent {
        id: format!("{workstation}-{wall_ms}-{:016x}", rand::random::<u64>()),
        operator: operator.to_owned(),
        workstation: workstation.to_owned(),
        at_ms: site_time_in(store, site)?.unwrap_or(0),
        wall_ms,
        op,
    };
    let out = Outgoing::event(site, &event);
    store.add_site_pending(&out.id, &out.subject, &out.payload, wall_ms)?;
    Ok(event)
}

/// The outcome of an event in a cache: applied (accepted or refused), or waiting to be published.
pub fn outcome_in(store: &Store, event_id: &str) -> Result<Option<EventOutcome>, EngineError> {
    if let Some(row) = store.site_event(event_id)? {
        return Ok(Some(EventOutcome {
            event_id: row.event_id,
            outcome: row.outcome,
            reason: row.reason,
            seq: Some(row.seq),
        }));
    }
    let waiting = store.site_pending()?.iter().any(|p| p.event_id == event_id);
    Ok(waiting.then(|| EventOutcome {
        event_id: event_id.to_owned(),
        outcome: "waiting".into(),
        reason: String::new(),
        seq: None,
    }))
}

/// Publishes decisions made here, oldest first, while the link holds; returns the ids that
/// went out and the site's refusal if one stopped it (what it stopped stays waiting, in order).
/// Holds no store across its waits, so the engine's task can run it.
pub async fn publish_decisions(site: &Site, waiting: Vec<PendingDecision>) -> (Vec<String>, Option<SiteError>) {
    let mut sent = Vec::new();
    for p in waiting {
        if !site.connected() {
            break;
        }
        let out = Outgoing {
            subject: p.subject,
            id: p.event_id,
            payload: p.payload,
        };
        match site.publish_batch(std::slice::from_ref(&out)).await {
            Ok(_) => sent.push(out.id),
            Err(e) => {
                tracing::warn!(id = %out.id, error = %e, "a decision waits: the site did not take it");
                return (sent, Some(e));
            }
        }
    }
    (sent, None)
}

/// [`publish_decisions`] of what waits in `store`, taking what went out off the list.
pub async fn publish_waiting(site: &Site, store: &Store) -> Result<(usize, Option<SiteError>), EngineError> {
    let (sent, refused) = publish_decisions(site, store.site_pending()?).await;
    for id in &sent {
        store.remove_site_pending(id)?;
    }
    Ok((sent.len(), refused))
}

/// Follows the site into `f` until `done` says so (checked after each message and whenever
/// the stream is quiet), publishing the decisions waiting here whenever the link holds.
pub async fn follow_until(
    site: &Site,
    f: &mut Follower,
    mut done: impl FnMut(&Follower) -> bool,
) -> Result<(), EngineError> {
    // Whether the site is an exercise decides what a trainer's events may do here.
    let exercise = site.exercise().await?;
    f.store().set_site_exercise(site.id().as_str(), exercise)?;
    // After the site refused a publish, the waiting decisions are offered again only later.
    let (_, refused) = publish_waiting(site, f.store()).await?;
    let mut publish_after = next_offer(refused);
    if done(f) {
        f.settle()?;
        return Ok(());
    }
    let (mut reader, mut _decoding) = decode_ahead(site.read_after(f.position()).await?);
    let mut settled_at = tokio::time::Instant::now();
    loop {
        // While something applied is not settled yet, wait for more only until the slice ends:
        // a steady feed is then settled every slice, as a window's engine task does
        // (`site_mode`'s pump), not after every message (each settle commits and correlates,
        // which would cost more than the messages) nor only when the feed pauses.
        let unsettled = f.settled_position() < f.position();
        let wait = if unsettled {
            SETTLE_SLICE.saturating_sub(settled_at.elapsed())
        } else {
            QUIET
        };
        match tokio::time::timeout(wait, reader.recv()).await {
            Ok(Some(Ok(d))) => {
                f.apply(d)?;
                if settled_at.elapsed() >= SETTLE_SLICE {
                    f.settle()?;
                    settled_at = tokio::time::Instant::now();
                }
            }
            Ok(Some(Err(e))) => {
                // The client reconnects by itself; read again from what was applied.
                tracing::warn!(error = %e, "reading the site again");
                f.settle()?;
                (reader, _decoding) = read_again(site, f.position()).await;
            }
            Ok(None) => break,
            Err(_) => {
                f.settle()?;
                settled_at = tokio::time::Instant::now();
                if tokio::time::Instant::now() >= publish_after {
                    let (_, refused) = publish_waiting(site, f.store()).await?;
                    publish_after = next_offer(refused);
                }
            }
        }
        if done(f) {
            break;
        }
    }
    f.settle()?;
    Ok(())
}

/// Reads the site again after `position` once it answers. The connection to a server may hold
/// while the site's stream is out of reach (a leaf node whose link to the hub is cut), and that
/// can last minutes: the follower keeps what it has and waits, instead of giving up.
async fn read_again(site: &Site, position: u64) -> (mpsc::Receiver<Result<Decoded, SiteError>>, AbortOnDrop) {
    loop {
        tokio::time::sleep(QUIET).await;
        match site.read_after(position).await {
            Ok(reader) => return decode_ahead(reader),
            Err(e) => tracing::warn!(error = %e, "the site cannot be read; trying again"),
        }
    }
}

/// When to offer the waiting decisions again: at once, or after [`REFUSED_PAUSE`] when the
/// site refused one.
fn next_offer(refused: Option<SiteError>) -> tokio::time::Instant {
    match refused {
        Some(e) => {
            tracing::warn!(error = %e, "the site refused a decision made here; it waits");
            tokio::time::Instant::now() + REFUSED_PAUSE
        }
        None => tokio::time::Instant::now(),
    }
}

/// Follows the site until everything published before the call is applied.
pub async fn follow_until_idle(site: &Site, f: &mut Follower) -> Result<FollowSummary, EngineError> {
    publish_waiting(site, f.store()).await?;
    let target = site.last_seq().await?;
    follow_until(site, f, |f| f.position() >= target).await?;
    f.summary()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn event(id: &str, operator: &str, workstation: &str, op: Op) -> OpEvent {
        OpEvent {
            id: id.into(),
            operator: operator.into(),
            workstation: workstation.into(),
            at_ms: 0,
            wall_ms: 0,
            op,
        }
    }

    /// A workstation applies every workstation's decisions as their authors; the operator
    /// signed in here must stay who acts here, or this workstation's next decision would go
    /// out in another operator's name.
    #[test]
    fn another_workstations_decision_leaves_this_ones_operator_signed_in() {
        let dir = tempfile::tempdir().unwrap();
        let site: SiteId = "hel".parse().unwrap();
        let mut f = Follower::open(&dir.path().join("ws-a.db"), site.clone()).unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm");
        let mut out = vec![Outgoing::config(&site, &Scenario::site_config(&demo).unwrap())];
        for name in ["Aino", "Bo"] {
            let roster = Op::Roster {
                name: name.into(),
                role: "operator".into(),
                pin_hash: None,
            };
            out.push(Outgoing::event(
                &site,
                &event(&format!("roster-{name}"), "admin", "vm", roster),
            ));
        }
        out.extend(
            Scenario::load(&demo)
                .unwrap()
                .messages
                .iter()
                .map(|m| Outgoing::tape_line(&site, m)),
        );
        for (i, o) in out.into_iter().enumerate() {
            let d = Delivery {
                seq: i as u64 + 1,
                kind: site.kind_of(&o.subject),
                subject: o.subject,
                payload: o.payload.into(),
            };
            f.apply(Decoded::new(d)).unwrap();
        }
        f.settle().unwrap();
        let Owned::Ready(replay) = &mut f.cache else {
            panic!("the site's configuration was applied")
        };
        let (desk, _) = replay.desk_mut().unwrap();
        let aino = OperatorDto {
            name: "Aino".into(),
            role: OperatorRole::Operator,
        };
        desk.act_as(Some(aino.clone()));
        let incident = desk.correlator().incidents().next().unwrap().id.0.to_string();

        let note = Op::Note {
            incident,
            text: "crew on the way".into(),
        };
        let o = Outgoing::event(&site, &event("note-1", "Bo", "ws-b", note));
        let d = Delivery {
            seq: 10_000,
            kind: site.kind_of(&o.subject),
            subject: o.subject,
            payload: o.payload.into(),
        };
        let applied = f.apply(Decoded::new(d)).unwrap().unwrap();
        assert_eq!(
            (applied.outcome.as_str(), applied.operator.as_str()),
            ("accepted", "Bo"),
            "{}",
            applied.reason
        );
        assert_eq!(f.desk().unwrap().operator(), Some(&aino), "Aino is still who acts here");
    }

    /// Applies `out` to a fresh cache at `db`, numbering the messages from 1.
    fn follow_all(db: &Path, site: &SiteId, out: &[Outgoing]) -> (Follower, Vec<SiteEventRow>) {
        let mut f = Follower::open(db, site.clone()).unwrap();
        let mut events = Vec::new();
        for (i, o) in out.iter().enumerate() {
            let d = Delivery {
                seq: i as u64 + 1,
                kind: site.kind_of(&o.subject),
                subject: o.subject.clone(),
                payload: o.payload.clone().into(),
            };
            if let Some(row) = f.apply(Decoded::new(d)).unwrap() {
                events.push(row);
            }
        }
        f.settle().unwrap();
        (f, events)
    }

    /// A call entered at one workstation becomes the same incident, with the same number, on
    /// every workstation; one the rules cannot open is refused with the reason on all alike.
    #[test]
    fn an_operators_call_opens_the_same_incident_on_every_workstation() {
        let dir = tempfile::tempdir().unwrap();
        let site: SiteId = "hel".parse().unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm");
        let scenario = Scenario::load(&demo).unwrap();
        let mut out = vec![Outgoing::config(&site, &Scenario::site_config(&demo).unwrap())];
        let roster = Op::Roster {
            name: "Aino".into(),
            role: "operator".into(),
            pin_hash: None,
        };
        out.push(Outgoing::event(&site, &event("roster-Aino", "admin", "vm", roster)));
        let (head, tail) = scenario.messages.split_at(scenario.messages.len() / 2);
        out.extend(head.iter().map(|m| Outgoing::tape_line(&site, m)));
        let call = |id: &str, incident_type: &str| {
            let mut e = event(
                id,
                "Aino",
                "ws-a",
                Op::Call {
                    incident_type: incident_type.into(),
                    layer: cityops_core::model::Layer::Transport,
                    severity: cityops_core::model::Severity::Severe,
                    description: "Tree across the tram tracks by the opera".into(),
                    lon: 24.9301,
                    lat: 60.1815,
                },
            );
            e.at_ms = head.last().unwrap().time_ms;
            Outgoing::event(&site, &e)
        };
        out.push(call("call-1", "obstruction"));
        out.push(call("call-2", "alien_landing"));
        out.extend(tail.iter().map(|m| Outgoing::tape_line(&site, m)));
        let mut seen = Vec::new();
        for ws in ["ws-a.db", "ws-b.db"] {
            let (f, events) = follow_all(&dir.path().join(ws), &site, &out);
            let outcomes: Vec<_> = events
                .iter()
                .filter(|e| e.kind == "call")
                .map(|e| (e.outcome.clone(), e.reason.clone()))
                .collect();
            assert_eq!(outcomes[0].0, "accepted", "{outcomes:?}");
            assert_eq!(outcomes[1].0, "refused");
            assert!(outcomes[1].1.contains("alien_landing"), "{outcomes:?}");
            let desk = f.desk().unwrap();
            let inc = desk
                .correlator()
                .incidents()
                .find(|i| i.root_cause.as_deref() == Some("call/1"))
                .expect("the call opened an incident");
            seen.push((inc.number.clone(), inc.title.clone(), inc.incident_type.clone()));
            let calls = f.store().calls(f.state.run).unwrap();
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].operator, "Aino");
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0].2, "obstruction");
    }
}
