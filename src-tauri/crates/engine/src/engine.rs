//! The [`Engine`] handle: one scenario replay (or live feeds on the wall clock, see
//! `live_mode`) driven by an async task, with subscribers that receive coalesced
//! picture diffs, and the offline map archives.
//!
//! The task owns the [`Replay`] (and so the SQLite connection); the handle talks to it through a
//! command channel, so no lock is held across an await and commands are applied in order. A
//! command is a closure run on the task's state; one that answers carries its own oneshot of
//! its own result type, so adding a request touches one `Engine` method and nothing else here.
//! Time comes from `tokio::time`, so tests can run the paced clock on a paused runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use cityops_core::dispatch::Place;
use cityops_core::grid::BBox;
use cityops_core::model::GeoPoint;

use crate::dto::{
    ActionDto, ActionPreviewDto, ActionRequestDto, AreaAnswerDto, AreaQueryDto, BackendDto, CallDto, ChartDto,
    ExerciseDto, IncidentDetailDto, IncidentTypeDto, InjectDto, InjectRequestDto, LifecycleStatus, MapDiffDto,
    NewIncidentDto, ObservationDto, OperatorDto, OperatorRole, OutboxDto, QuarantineDto, ScenarioDto,
};
use crate::error::EngineError;
use crate::follow;
use crate::incidents::DecisionOp;
use crate::live_mode::{LiveEngineConfig, LiveMode};
use crate::replay::Replay;
use crate::scenario::Scenario;
use crate::site_mode::{self, SharedSeat, SiteEngineConfig, SiteMode, TrainerSeat};
use crate::tiles::MapArchives;
use cityops_live::pipeline::Pipeline;
use cityops_live::RETRY_STORE;
use cityops_outbox::{self as outbox, Outbox};
use cityops_site::Op;
use cityops_store::Store;

/// How often the clock advances and diffs are published: at most one diff per tick.
pub const TICK: Duration = Duration::from_millis(100);
/// At full speed, how long one tick may spend ingesting before it publishes.
const MAX_SPEED_SLICE: Duration = Duration::from_millis(60);
/// How long the clock must rest after a command (a seek, while a trainer scrubs the timeline)
/// before the store's copy of the incidents is brought to the clock's time.
const WRITE_BEHIND_AFTER: Duration = Duration::from_millis(400);
/// How long one tick writes incidents behind a seek before it lets commands in again.
const WRITE_BEHIND_SLICE: Duration = Duration::from_millis(25);
/// The fastest paced speed accepted; faster than this is what "max" is for.
pub const MAX_FACTOR: f64 = 10_000.0;
/// How long an operator's request at a workstation of a site waits for its decision to come
/// back through the site's stream, to answer with its outcome; past it (the link is down) the
/// decision waits in the cache, and the header says so.
const SHARED_WAIT: Duration = Duration::from_secs(2);
/// The most observations a box's answer lists (all are counted): the newest, which the map
/// marks; more would only slow the window.
const AREA_LISTED: usize = 500;

/// Where an engine finds its inputs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The scenario folder to replay.
    pub scenario_dir: PathBuf,
    /// The SQLite database (created if missing).
    pub db_path: PathBuf,
    /// The folder of `<name>.mbtiles` basemap archives.
    pub maps_dir: PathBuf,
    /// The backends file (`fixtures/backends/README.md`); none means no actions can be sent.
    pub backends: Option<PathBuf>,
}

/// Receives diffs; returns false once the receiver is gone, to be dropped.
pub type DiffSink = Box<dyn Fn(MapDiffDto) -> bool + Send>;

/// Work for the replay task: it runs on the task's replay and outbox, after every command sent
/// before it. A request that answers sends its own typed result on its own oneshot (see
/// [`Engine::ask`]), so no request can be given another's kind of reply.
type Job = Box<dyn FnOnce(&mut Replay, &mut Outbox) -> Result<(), EngineError> + Send>;

enum Command {
    /// Work on the replay and the outbox; `effect` says whether subscribers get a diff after it.
    Run { effect: Effect, job: Job },
    /// A new subscriber: the whole picture now, then every diff.
    Subscribe(DiffSink),
}

/// Whether a command can change what subscribers see. A read is answered and nothing else
/// happens; after a write the task publishes a diff at once, so the UI sees its effect without
/// waiting for the next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Reads,
    Writes,
}

/// A running engine. Dropping it stops its task.
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    scenario: ScenarioDto,
    maps: Arc<MapArchives>,
    /// A trainer's window on an exercise site: the trainer's clock, and what wakes the
    /// engine's task to publish a change to it at once.
    trainer: Option<(SharedSeat, Arc<tokio::sync::Notify>)>,
}

impl Engine {
    /// Loads the scenario, opens the store, starts a new run and spawns the replay task on the
    /// current tokio runtime. The clock starts paused at the scenario's start.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let mut scenario = Scenario::load(&config.scenario_dir)?;
        let store = Store::open(&config.db_path)?;
        let run = store.begin_run(&scenario.manifest.name, &chrono::Utc::now().to_rfc3339())?;
        tracing::info!(scenario = %scenario.manifest.name, run, db = %config.db_path.display(), "engine started");
        let mut dto = ScenarioDto::new(&scenario.manifest, scenario.end_ms());
        dto.incident_types = scenario.rules.as_ref().map(IncidentTypeDto::all).unwrap_or_default();
        dto.zones = crate::dto::ZoneDto::all(&scenario.zones);
        // Trainers' injects arrive on built-in feeds, one per layer (see `cityops_core::inject`).
        scenario.manifest.feeds.extend(cityops_core::inject::feed_specs());
        let specs = match &config.backends {
            Some(path) => outbox::config::load(path)?,
            None => Vec::new(),
        };
        // A replayed scenario is an exercise: its actions are recorded, never sent.
        let outbox = Outbox::start(&config.db_path, specs, true)?;
        let pipeline = Pipeline::new(store, run, &scenario.manifest.feeds, &scenario.dir)?;
        let replay = Replay::new(scenario, pipeline);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(replay, outbox, rx, Source::Tape));
        Ok(Engine {
            commands: tx,
            scenario: dto,
            maps: Arc::new(MapArchives::new(config.maps_dir)),
            trainer: None,
        })
    }

    /// Starts live mode: the feeds of a configuration on the wall clock (see
    /// `live_mode`), on a new run, with the same diffs, incidents and commands as a
    /// replay except the clock controls. Actions go to the real backends.
    pub fn start_live(config: LiveEngineConfig) -> Result<Engine, EngineError> {
        let specs = match &config.backends {
            Some(path) => outbox::config::load(path)?,
            None => Vec::new(),
        };
        let outbox = Outbox::start(&config.db_path, specs, false)?;
        let (live, replay, dto) = LiveMode::start(&config, chrono::Utc::now().timestamp_millis())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(replay, outbox, rx, Source::Live(Box::new(live))));
        Ok(Engine {
            commands: tx,
            scenario: dto,
            maps: Arc::new(MapArchives::new(config.maps_dir)),
            trainer: None,
        })
    }

    /// Starts as a workstation of a site (see `site_mode`): the site's picture, incidents and
    /// decisions, folded into this workstation's cache; the operators' decisions go to the
    /// site. Actions go to the site too, where its dispatch workers send them to the real
    /// backends (never on an exercise site).
    pub async fn start_site(config: SiteEngineConfig) -> Result<Engine, EngineError> {
        let specs = match &config.backends {
            Some(path) => outbox::config::load(path)?,
            None => Vec::new(),
        };
        let (site, replay, dto) = SiteMode::start(&config, chrono::Utc::now().timestamp_millis()).await?;
        // The site's dispatch workers send what this workstation commits.
        let target = outbox::SiteTarget {
            site: config.site.parse()?,
            workstation: config.workstation.clone(),
        };
        let outbox = Outbox::for_site(&config.db_path, specs, site.exercise, target)?;
        let trainer = site.seat.clone().map(|s| (s, site.wake.clone()));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(replay, outbox, rx, Source::Site(Box::new(site))));
        Ok(Engine {
            commands: tx,
            scenario: dto,
            maps: Arc::new(MapArchives::new(config.maps_dir)),
            trainer,
        })
    }

    /// Answers an operator's request made at a workstation of a site once its decision came
    /// back through the site: `Ok` when applied (or still waiting for the link, which the
    /// header shows), the site's refusal otherwise. Elsewhere, `event` is `None`: done.
    async fn settled(&self, event: Option<String>) -> Result<(), EngineError> {
        let Some(id) = event else { return Ok(()) };
        let deadline = Instant::now() + SHARED_WAIT;
        loop {
            let asked = id.clone();
            let outcome = self
                .ask(Effect::Reads, move |replay, _| {
                    follow::outcome_in(replay.pipeline().store(), &asked)
                })
                .await?;
            match outcome {
                Some(o) if o.outcome == "accepted" => return Ok(()),
                Some(o) if o.outcome == "refused" => return Err(EngineError::Refused(o.reason)),
                _ if Instant::now() >= deadline => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The loaded scenario.
    pub fn scenario(&self) -> ScenarioDto {
        self.scenario.clone()
    }

    fn send(&self, c: Command) -> Result<(), EngineError> {
        self.commands.send(c).map_err(|_| EngineError::Stopped)
    }

    /// Runs `work` on the replay task, in order with every other command, and awaits its
    /// answer, which comes back on a oneshot of its own type.
    async fn ask<T: Send + 'static>(
        &self,
        effect: Effect,
        work: impl FnOnce(&mut Replay, &mut Outbox) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |replay, outbox| {
            // The caller may have stopped waiting; the work is done either way.
            let _ = tx.send(work(replay, outbox));
            Ok(())
        });
        self.send(Command::Run { effect, job })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Runs `work` on the replay task without waiting for it; the task logs its failure (the
    /// clock controls, which the UI follows through the diffs).
    fn tell(
        &self,
        work: impl FnOnce(&mut Replay) -> Result<(), EngineError> + Send + 'static,
    ) -> Result<(), EngineError> {
        self.send(Command::Run {
            effect: Effect::Writes,
            job: Box::new(move |replay, _| work(replay)),
        })
    }

    /// Runs a control of the trainer's clock, when this is a trainer's window on an exercise
    /// site (`None` otherwise): as the signed-in trainer, at once and in the order the window
    /// called, then wakes the engine's task to publish what it made.
    fn on_trainer_clock<T>(
        &self,
        control: impl FnOnce(&mut TrainerSeat, &str, Instant, i64) -> Result<T, EngineError>,
    ) -> Option<Result<T, EngineError>> {
        let (shared, wake) = self.trainer.as_ref()?;
        let mut seat = site_mode::seat(shared);
        let Some(trainer) = seat.trainer.clone() else {
            return Some(Err(EngineError::Forbidden(
                "sign in as the exercise's trainer to move its clock".into(),
            )));
        };
        let result = control(
            &mut seat,
            &trainer,
            Instant::now(),
            chrono::Utc::now().timestamp_millis(),
        );
        drop(seat);
        wake.notify_one();
        Some(result)
    }

    /// Refuses a clock control in live mode, where the clock is the wall clock.
    fn replay_only(&self, what: &str) -> Result<(), EngineError> {
        if self.scenario.live {
            return Err(EngineError::InvalidInput(format!(
                "{what}: live mode follows the wall clock"
            )));
        }
        Ok(())
    }

    /// Starts the clock.
    pub fn play(&self) -> Result<(), EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, wall| {
            s.clock.set_playing(who, true, now, wall);
            Ok(())
        }) {
            return r;
        }
        self.replay_only("play")?;
        self.tell(|replay| {
            if replay.finished() {
                // Playing a finished replay starts it over, as a trainer expects.
                replay.seek(i64::MIN)?;
            }
            replay.playing = true;
            Ok(())
        })
    }

    /// Stops the clock.
    pub fn pause(&self) -> Result<(), EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, wall| {
            s.clock.set_playing(who, false, now, wall);
            Ok(())
        }) {
            return r;
        }
        self.replay_only("pause")?;
        self.tell(|replay| {
            replay.playing = false;
            Ok(())
        })
    }

    /// Sets the speed factor; `None` runs as fast as the pipeline goes.
    pub fn set_speed(&self, speed: Option<f64>) -> Result<(), EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, wall| {
            let factor = speed.ok_or_else(|| {
                EngineError::InvalidInput("an exercise on a site runs at a factor of real time, not max".into())
            })?;
            s.clock.set_speed(who, factor, now, wall).map_err(refusal)?;
            Ok(())
        }) {
            return r;
        }
        self.replay_only("speed")?;
        if let Some(f) = speed {
            if !(f.is_finite() && f > 0.0 && f <= MAX_FACTOR) {
                return Err(EngineError::InvalidInput(format!(
                    "speed {f} (expected 0 < speed <= {MAX_FACTOR}, or max)"
                )));
            }
        }
        self.tell(move |replay| {
            replay.speed = speed;
            Ok(())
        })
    }

    /// Moves the clock to scenario time `ms` and rebuilds the picture from the store.
    pub fn seek(&self, ms: i64) -> Result<(), EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, wall| {
            s.clock.seek(who, ms, now, wall).map_err(refusal)?;
            Ok(())
        }) {
            return r;
        }
        self.replay_only("seek")?;
        self.tell(move |replay| Ok(replay.seek(ms)?))
    }

    /// Sends the whole picture to `sink` now, then every diff until it returns false.
    pub fn subscribe(&self, sink: DiffSink) -> Result<(), EngineError> {
        self.send(Command::Subscribe(sink))
    }

    /// The current observation of an entity in the picture.
    pub async fn observation(&self, id: String) -> Result<ObservationDto, EngineError> {
        self.ask(Effect::Reads, move |replay, _| {
            let o = replay
                .picture()
                .get(&id)
                .ok_or_else(|| EngineError::NotFound(format!("observation {id:?}")))?;
            let feed = replay
                .scenario()
                .manifest
                .feed(&o.feed)
                .map(|f| f.name.clone())
                .unwrap_or_default();
            Ok(ObservationDto::new(o, &feed))
        })
        .await
    }

    /// Signs an operator in; every incident action is recorded with their name and role.
    pub async fn sign_in(
        &self,
        name: String,
        role: OperatorRole,
        pin: Option<String>,
    ) -> Result<OperatorDto, EngineError> {
        self.ask(Effect::Writes, move |replay, _| {
            let shared = replay.site.is_some();
            if replay.site.as_ref().is_some_and(|l| l.read_only) {
                return Err(EngineError::Forbidden("nobody signs in at a wall display".into()));
            }
            on_desk(replay, "sign_in", Work::Desk, |desk, store, at| {
                if shared {
                    // The site's roster is the authority at a workstation of a site.
                    let has = follow::check_operator(store, name.trim(), pin.as_deref())?;
                    if has != role && role != OperatorRole::Operator {
                        return Err(EngineError::Forbidden(format!(
                            "{name} is a {} on the site's roster, not a {}",
                            has.as_str(),
                            role.as_str()
                        )));
                    }
                    let op = OperatorDto {
                        name: name.trim().to_owned(),
                        role,
                    };
                    desk.act_as(Some(op.clone()));
                    return Ok(op);
                }
                desk.sign_in(store, &name, role, pin.as_deref(), at.wall)
            })
        })
        .await
        .inspect(|op| {
            // The trainer's clock is the signed-in trainer's, and nobody else's.
            if let Some((shared, _)) = &self.trainer {
                site_mode::seat(shared).trainer = (op.role == OperatorRole::Trainer).then(|| op.name.clone());
            }
        })
    }

    /// Gives an operator a role (and a PIN) in the roster; a signed-in supervisor's call.
    pub async fn assign_role(&self, name: String, role: OperatorRole, pin: Option<String>) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    // The site's roster is the site's: the change is an event, which applies
                    // where the stream places it if its author is a supervisor there.
                    let (desk, _) = replay.desk_mut().ok_or_else(no_desk)?;
                    if desk.signed_in()?.role != OperatorRole::Supervisor {
                        return Err(EngineError::Forbidden("roles are assigned by a supervisor".into()));
                    }
                    if pin.is_none() && cityops_store::role_needs_pin(role.as_str()) {
                        return Err(EngineError::InvalidInput(format!("a {} needs a PIN", role.as_str())));
                    }
                    let pin_hash = pin.as_deref().map(cityops_store::hash_pin).transpose()?;
                    let op = Op::Role {
                        name,
                        role: role.as_str().to_owned(),
                        pin_hash,
                    };
                    return share(replay, op).map(Some);
                }
                on_desk(replay, "assign_role", Work::Desk, |desk, store, at| {
                    desk.assign_role(store, &name, role, pin.as_deref(), at.wall)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// The operator roster; a signed-in supervisor's view.
    pub async fn roster(&self) -> Result<Vec<crate::dto::RosterEntryDto>, EngineError> {
        // A read, but as before it is followed by a diff like every roster request.
        self.ask(Effect::Writes, |replay, _| {
            if replay.site.is_some() {
                // A workstation shows the site's roster, which its sign-ins check.
                let (desk, store) = replay.desk_mut().ok_or_else(no_desk)?;
                if desk.signed_in()?.role != OperatorRole::Supervisor {
                    return Err(EngineError::Forbidden("the roster is a supervisor's".into()));
                }
                return Ok(store
                    .site_roster()?
                    .into_iter()
                    .map(|e| crate::dto::RosterEntryDto {
                        role: OperatorRole::parse(&e.role).unwrap_or(OperatorRole::Operator),
                        name: e.name,
                        has_pin: e.pin_hash.is_some(),
                        locked_until_ms: None,
                    })
                    .collect());
            }
            on_desk(replay, "roster", Work::Desk, |desk, store, _| desk.roster(store))
        })
        .await
    }

    /// Signs the operator out.
    pub async fn sign_out(&self) -> Result<(), EngineError> {
        if let Some((shared, _)) = &self.trainer {
            site_mode::seat(shared).trainer = None;
        }
        self.ask(Effect::Writes, |replay, _| {
            on_desk(replay, "sign_out", Work::Desk, |desk, store, at| {
                desk.sign_out(store, at.wall)
            })
        })
        .await
    }

    /// The signed-in operator, if any.
    pub async fn operator(&self) -> Result<Option<OperatorDto>, EngineError> {
        self.ask(Effect::Reads, |replay, _| {
            // Without rules there is no desk, and so nobody signed in to it (live feeds without
            // rules).
            if replay.desk().is_none() {
                return Ok(None);
            }
            on_desk(replay, "operator", Work::Desk, |desk, _, _| {
                Ok(desk.operator().cloned())
            })
        })
        .await
    }

    /// Everything the detail view shows about one incident.
    pub async fn incident_detail(&self, id: String) -> Result<IncidentDetailDto, EngineError> {
        self.ask(Effect::Reads, move |replay, _| {
            on_desk(replay, "detail", Work::Desk, |desk, _, _| desk.detail(&id))
        })
        .await
    }

    /// Moves an incident forward in its lifecycle.
    pub async fn incident_transition(&self, id: String, to: LifecycleStatus) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    let op = Op::Transition {
                        incident: id,
                        to: to.as_str().to_owned(),
                    };
                    return share(replay, op).map(Some);
                }
                on_desk(replay, "transition", Work::Trainee, |desk, store, at| {
                    desk.transition(store, &id, to, at.wall, at.now)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// A supervisor resolves (or closes) an incident past its required SOP steps, for
    /// `reason`: recorded and audited beside the transition, and shown in the report.
    pub async fn incident_override(&self, id: String, to: LifecycleStatus, reason: String) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    let (desk, _) = replay.desk_mut().ok_or_else(no_desk)?;
                    if desk.signed_in()?.role != OperatorRole::Supervisor {
                        return Err(EngineError::Forbidden(
                            "only a supervisor may override required SOP steps".into(),
                        ));
                    }
                    let op = Op::Override {
                        incident: id,
                        to: to.as_str().to_owned(),
                        reason: reason.trim().to_owned(),
                    };
                    return share(replay, op).map(Some);
                }
                on_desk(replay, "override", Work::Trainee, |desk, store, at| {
                    desk.transition_with(store, &id, to, Some(&reason), at.wall, at.now)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// Says which incident the window has open (`None`: none), which a workstation of a site
    /// tells the other workstations; elsewhere it changes nothing.
    pub async fn look_at(&self, incident: Option<String>) -> Result<(), EngineError> {
        self.ask(Effect::Reads, move |replay, _| {
            if let Some(link) = replay.site.as_mut() {
                link.viewing = incident;
            }
            Ok(())
        })
        .await
    }

    /// Makes `owner` (the signed-in operator when `None`) the owner of an incident: an operator
    /// takes one nobody else owns; a supervisor takes any, or gives it.
    pub async fn incident_take(&self, id: String, owner: Option<String>) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    return share(replay, Op::Own { incident: id, owner }).map(Some);
                }
                on_desk(replay, "take", Work::Trainee, |desk, store, at| {
                    desk.take_ownership(store, &id, owner.as_deref(), at.wall, at.now)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// Merges incident `from` into `into`.
    pub async fn incident_merge(&self, into: String, from: String) -> Result<(), EngineError> {
        self.decide(DecisionOp::Merge { into, from }).await.map(|_| ())
    }

    /// Splits a member out of an incident; returns the new incident's id.
    pub async fn incident_split(&self, from: String, entity: String) -> Result<String, EngineError> {
        let what = format!("the incident split out of {from}");
        let origin = from.clone();
        // The correlator always makes an incident for a member it splits out. At a workstation
        // of a site the split applies when it comes back through the site, so the answer is the
        // incident it was split from.
        match self.decide(DecisionOp::Split { from, entity }).await? {
            Some(new) => Ok(new),
            None if self.scenario.live => Ok(origin),
            None => Err(EngineError::NotFound(what)),
        }
    }

    /// Moves a member from one incident to another.
    pub async fn incident_reassign(&self, from: String, entity: String, to: String) -> Result<(), EngineError> {
        self.decide(DecisionOp::Reassign { from, entity, to }).await.map(|_| ())
    }

    /// Takes back the latest merge, split or reassignment.
    pub async fn incident_undo(&self) -> Result<(), EngineError> {
        self.decide(DecisionOp::Undo).await.map(|_| ())
    }

    /// An operator's manual decision; answers the id of an incident it made.
    async fn decide(&self, op: DecisionOp) -> Result<Option<String>, EngineError> {
        let (new, shared) = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    return share(replay, shared_decision(op)).map(|id| (None, Some(id)));
                }
                on_desk(replay, "decide", Work::Trainee, |desk, store, at| {
                    desk.decide(store, op, at.wall, at.now)
                })
                .map(|new| (new, None))
            })
            .await?;
        self.settled(shared).await?;
        Ok(new)
    }

    /// Ticks or unticks a step of an incident's SOP checklist.
    pub async fn incident_tick_sop(&self, id: String, step: u32, ticked: bool) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    let op = Op::Sop {
                        incident: id,
                        step,
                        ticked,
                    };
                    return share(replay, op).map(Some);
                }
                on_desk(replay, "tick_sop", Work::Trainee, |desk, store, at| {
                    desk.tick_sop(store, &id, step, ticked, at.wall, at.now)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// Adds a note to an incident's narrative log as the signed-in operator; on a site, every
    /// workstation gets it.
    pub async fn incident_note(&self, id: String, text: String) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, _| {
                if replay.site.is_some() {
                    // Checked here too, so a note too long is refused before it is shared.
                    let op = Op::Note {
                        incident: id,
                        text: crate::incidents::note_text(&text)?.to_owned(),
                    };
                    return share(replay, op).map(Some);
                }
                on_desk(replay, "note", Work::Trainee, |desk, store, at| {
                    desk.add_note(store, &id, &text, at.wall, at.now)
                })
                .map(|()| None)
            })
            .await?;
        self.settled(shared).await
    }

    /// Enters a phone call or radio report as an incident (see `cityops_core::call`), as the
    /// signed-in operator at the clock's time. The incident opens once the correlator has
    /// passed that second; on a site, every workstation gets it where the stream places it.
    pub async fn new_incident(&self, request: NewIncidentDto) -> Result<CallDto, EngineError> {
        let (made, shared) = self
            .ask(Effect::Writes, move |replay, _| {
                let spec = request;
                if replay.site.is_some() {
                    // Checked here too, so a call the rules refuse is refused before it is shared.
                    replay.prepare_call(&spec, "", "", replay.now_ms())?;
                    let op = Op::Call {
                        incident_type: spec.incident_type,
                        layer: spec.layer,
                        severity: spec.severity,
                        description: spec.description,
                        lon: spec.lon,
                        lat: spec.lat,
                    };
                    return share(replay, op).map(|id| (CallDto { entity: None }, Some(id)));
                }
                let (now, wall) = (replay.now_ms(), chrono::Utc::now().timestamp_millis());
                let who = replay.desk().ok_or_else(no_desk)?.signed_in()?;
                let row = replay.call(&spec, &who.name, who.role.as_str(), now, wall)?;
                Ok((
                    CallDto {
                        entity: Some(row.entity),
                    },
                    None,
                ))
            })
            .await?;
        self.settled(shared).await?;
        Ok(made)
    }

    /// What happened in a box between two scenario times (see [`crate::area_query`]), up to the
    /// clock: what the operator has not reached yet stays out.
    pub async fn query_area(&self, q: AreaQueryDto) -> Result<AreaAnswerDto, EngineError> {
        let bbox = BBox::new(q.west, q.south, q.east, q.north).ok_or_else(|| {
            EngineError::InvalidInput(format!(
                "{},{},{},{} is not a box west,south,east,north in degrees",
                q.west, q.south, q.east, q.north
            ))
        })?;
        if q.from_ms > q.to_ms {
            return Err(EngineError::InvalidInput("the time range starts after it ends".into()));
        }
        self.ask(Effect::Reads, move |replay, _| {
            replay.flush()?;
            let now = replay.now_ms();
            let (store, run) = (replay.pipeline().store(), replay.pipeline().run());
            let summary = store.area_summary(run, bbox, (q.from_ms, q.to_ms.min(now)), now, q.layer, AREA_LISTED)?;
            Ok(crate::area_query::answer_dto(&summary, AREA_LISTED))
        })
        .await
    }

    /// The configured backends.
    pub async fn backends(&self) -> Result<Vec<BackendDto>, EngineError> {
        Ok(self.outbox().await?.backends)
    }

    /// Renders exactly what an action will send, for the operator to confirm.
    pub async fn preview_action(&self, request: ActionRequestDto) -> Result<ActionPreviewDto, EngineError> {
        self.ask(Effect::Writes, move |replay, outbox| {
            acting(replay, "preview", |a| {
                let place = place_of(a.desk, &request)?;
                Ok(outbox.preview(request, &place, &a.operator, a.at.now)?)
            })
        })
        .await
    }

    /// The first confirmation of a dangerous action; returns how many it needs in all. The
    /// engine counts confirmations itself: [`Engine::confirm_action`] commits such an action
    /// only after this.
    pub async fn arm_action(&self, token: String) -> Result<u8, EngineError> {
        self.ask(Effect::Writes, move |replay, outbox| {
            acting(replay, "arm", |a| Ok(outbox.arm(&token, &a.operator)?))
        })
        .await
    }

    /// Commits a previewed action to the outbox; it is on disk when this returns. Confirming
    /// one for an incident that nobody dispatched to yet marks it dispatched.
    pub async fn confirm_action(&self, token: String) -> Result<ActionDto, EngineError> {
        self.ask(Effect::Writes, move |replay, outbox| {
            let run = replay.pipeline().run();
            acting(replay, "confirm", |a| {
                let action = outbox.confirm(&token, &a.operator, Some(run))?;
                if let Some(link) = &a.site {
                    // Its message to the site waits with the decisions: publish it now.
                    link.wake.notify_one();
                }
                if let Some(id) = &action.incident {
                    if matches!(a.desk.status(id), LifecycleStatus::New | LifecycleStatus::Acknowledged) {
                        let marked = match &a.site {
                            Some(link) => {
                                let op = Op::Transition {
                                    incident: id.clone(),
                                    to: LifecycleStatus::Dispatched.as_str().to_owned(),
                                };
                                let shared = follow::commit_decision(a.store, &link.site, &a.operator.name, &link.workstation, op);
                                link.wake.notify_one();
                                shared.map(drop)
                            }
                            None => a.desk.transition(a.store, id, LifecycleStatus::Dispatched, a.at.wall, a.at.now),
                        };
                        if let Err(e) = marked {
                            tracing::warn!(incident = %id, error = %e, "action sent but the incident could not be marked dispatched");
                        }
                    }
                }
                Ok(action)
            })
        })
        .await
    }

    /// The outbox: recent actions, counts, backends.
    pub async fn outbox(&self) -> Result<OutboxDto, EngineError> {
        self.ask(Effect::Reads, |replay, outbox| {
            // Like every dispatch request, the view needs the desk (a scenario with rules).
            replay.desk_mut().ok_or_else(no_desk)?;
            Ok(outbox.view()?)
        })
        .await
    }

    /// Queues a failed action again.
    pub async fn retry_action(&self, id: i64) -> Result<(), EngineError> {
        self.ask(Effect::Writes, move |replay, outbox| {
            acting(replay, "retry", |a| {
                outbox.retry(id, &a.operator)?;
                if let Some(link) = &a.site {
                    link.wake.notify_one();
                }
                Ok(())
            })
        })
        .await
    }

    /// Cancels a queued or failed action. At a workstation of a site, answers once the site
    /// decided: refused when a dispatch worker took the action first.
    pub async fn cancel_action(&self, id: i64) -> Result<(), EngineError> {
        let shared = self
            .ask(Effect::Writes, move |replay, outbox| {
                acting(replay, "cancel", |a| {
                    let shared = outbox.cancel(id, &a.operator)?;
                    if let Some(link) = &a.site {
                        link.wake.notify_one();
                    }
                    Ok(shared)
                })
            })
            .await?;
        self.settled(shared).await
    }

    /// The quarantine of the current run, newest first, of one feed if given (see
    /// [`cityops_store::Store::quarantine_page`]).
    pub async fn quarantine(&self, feed: Option<String>) -> Result<QuarantineDto, EngineError> {
        self.ask(Effect::Reads, move |replay, _| Ok(replay.quarantine(feed.as_deref())?))
            .await
    }

    /// The after-action report of this run so far: score against the scenario's objectives,
    /// timeline and charts, as one HTML document (see [`crate::report`]), with the map image
    /// (a base64 PNG from the app's map) if given.
    pub async fn report(&self, map_png: Option<String>) -> Result<String, EngineError> {
        let png = map_png.as_deref().map(decode_png).transpose()?;
        let side_by_side = self.trainer.is_some();
        self.ask(Effect::Reads, move |replay, _| {
            replay.flush()?;
            // The trainer of a site scores each trainee on its roster side by side, as
            // `cityops report --operator` does; elsewhere one run is one column.
            let trainees = if side_by_side {
                site_trainees(replay.pipeline().store())?
            } else {
                Vec::new()
            };
            let mut input = report_input(replay, png.as_deref());
            input.trainees = &trainees;
            crate::report::render(&input)
        })
        .await
    }

    /// The shift's KPI charts up to the clock (the report's charts, see [`crate::report::kpi`]).
    pub async fn kpi(&self) -> Result<Vec<ChartDto>, EngineError> {
        self.ask(Effect::Reads, |replay, _| {
            let now = replay.now_ms();
            replay.flush()?;
            crate::report::kpi(&report_input(replay, None), now)
        })
        .await
    }

    /// A trainer's inject at the clock's time (see [`Replay::inject`]).
    pub async fn inject(&self, request: InjectRequestDto) -> Result<InjectDto, EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, _| {
            let placed = s
                .clock
                .inject(who, &request.inject, request.lon, request.lat, now)
                .map_err(refusal)?;
            let made = InjectDto {
                n: placed.n,
                inject: placed.inject,
                scenario_ms: placed.at_ms,
                trainer: who.to_owned(),
                entity: placed.entity,
                title: placed.title,
            };
            s.injects.push(made.clone());
            Ok(made)
        }) {
            return r;
        }
        self.ask(Effect::Writes, move |replay, _| {
            let wall = chrono::Utc::now().timestamp_millis();
            replay
                .inject(&request.inject, request.lon, request.lat, &request.trainer, wall)
                .map(InjectDto::from)
        })
        .await
    }

    /// The exercise so far, for the trainer view: injects, live score, whether it ended.
    pub async fn exercise(&self) -> Result<ExerciseDto, EngineError> {
        let mut view = self.ask(Effect::Reads, |replay, _| exercise_view(replay)).await?;
        if let Some((shared, _)) = &self.trainer {
            // A workstation's cache records no injects of its own: the trainer's window lists
            // those it made.
            view.injects = site_mode::seat(shared).injects.clone();
        }
        Ok(view)
    }

    /// Notes that a trainer view is open (or closed): the clock then belongs to the trainer, and
    /// the trainee's window shows it without controls.
    pub fn set_trainer_view(&self, open: bool) -> Result<(), EngineError> {
        if self.trainer.is_some() {
            // A trainer's window on a site is the trainer view from the start.
            return Ok(());
        }
        self.replay_only("trainer view")?;
        self.tell(move |replay| {
            replay.trainer_view = open;
            Ok(())
        })
    }

    /// Ends the exercise (by the named trainer, or else the signed-in operator) and returns
    /// its after-action report, with the map image if given.
    pub async fn end_exercise(&self, by: Option<String>, map_png: Option<String>) -> Result<String, EngineError> {
        if let Some(r) = self.on_trainer_clock(|s, who, now, wall| Ok(s.clock.end(who, now, wall))) {
            // The end is the site's event: every workstation ends where the stream places it,
            // and the report is written once it came back here.
            self.settled(Some(r?)).await?;
            return self.report(map_png).await;
        }
        let map_png = map_png.as_deref().map(decode_png).transpose()?;
        self.ask(Effect::Writes, move |replay, _| {
            end_exercise(replay, by, map_png.as_deref())
        })
        .await
    }

    /// The offline map archives.
    pub fn maps(&self) -> Arc<MapArchives> {
        self.maps.clone()
    }
}

/// The trainer's clock refused a control: the trainer asked for something it cannot do.
fn refusal(e: crate::trainer_clock::ClockRefusal) -> EngineError {
    EngineError::InvalidInput(e.to_string())
}

/// Decodes a base64 PNG sent by the app, refusing anything that is not one.
fn decode_png(b64: &str) -> Result<Vec<u8>, EngineError> {
    use base64::Engine as _;
    // The app may send a data URL as the canvas gives it.
    let data = b64.strip_prefix("data:image/png;base64,").unwrap_or(b64);
    if data.len() > crate::report::MAX_MAP_PNG * 4 / 3 + 4 {
        return Err(EngineError::InvalidInput(format!(
            "the map image is over {} bytes",
            crate::report::MAX_MAP_PNG
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| EngineError::InvalidInput(format!("the map image is not base64: {e}")))?;
    crate::report::check_png(&bytes)?;
    Ok(bytes)
}

fn report_input<'a>(replay: &'a Replay, map_png: Option<&'a [u8]>) -> crate::report::ReportInput<'a> {
    crate::report::ReportInput {
        store: replay.pipeline().store(),
        run: replay.pipeline().run(),
        scenario: Some(replay.scenario()),
        versus: None,
        trainees: &[],
        teams: &[],
        map_png,
    }
}

/// The trainees of an exercise site: its roster's operators, by name.
fn site_trainees(store: &Store) -> Result<Vec<String>, EngineError> {
    let mut names: Vec<String> = store
        .site_roster()?
        .into_iter()
        .filter(|e| e.role == OperatorRole::Operator.as_str())
        .map(|e| e.name)
        .collect();
    names.sort();
    Ok(names)
}

/// The exercise so far: injects, the score against the objectives, the end.
fn exercise_view(replay: &mut Replay) -> Result<ExerciseDto, EngineError> {
    replay.flush()?;
    let store = replay.pipeline().store();
    let run = replay.pipeline().run();
    let objectives = &replay.scenario().manifest.objectives;
    let score = if objectives.is_empty() {
        None
    } else {
        let scoring = crate::training::Scoring {
            objectives,
            // The desk holds the rules (a site's replay hands them over to it).
            rules: replay.desk().map(|d| d.correlator().rules()),
            until_ms: replay.now_ms(),
        };
        Some(crate::dto::ScoreDto::from(&crate::training::score_run(
            store, run, scoring,
        )?))
    };
    let injects = store.injects(run)?.into_iter().map(InjectDto::from).collect();
    let (ended_ms, ended_by) = replay
        .ended()
        .cloned()
        .map_or((None, None), |(a, b)| (Some(a), Some(b)));
    Ok(ExerciseDto {
        injects,
        score,
        ended_ms,
        ended_by,
    })
}

/// Ends the exercise and writes its report.
fn end_exercise(replay: &mut Replay, by: Option<String>, map_png: Option<&[u8]>) -> Result<String, EngineError> {
    let operator = replay.desk().and_then(|d| d.operator()).cloned();
    let (name, role) = match (by.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()), &operator) {
        (Some(b), _) => (b, "trainer"),
        (None, Some(op)) => (op.name.clone(), op.role.as_str()),
        (None, None) => return Err(EngineError::Forbidden("sign in first".into())),
    };
    replay.end_exercise(&name, role, chrono::Utc::now().timestamp_millis())?;
    replay.flush()?;
    crate::report::render(&report_input(replay, map_png))
}

/// The clock's time (where an action sits in the scenario) and the wall's (when the operator
/// took it) of an operator's request.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    now: i64,
    wall: i64,
}

/// What an operator's request may do once the exercise has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Sign-ins, the roster and reads stay open.
    Desk,
    /// The trainee's record (lifecycle, decisions, SOP ticks, actions) closes with the exercise.
    Trainee,
}

fn no_desk() -> EngineError {
    EngineError::NotFound("incidents (the scenario names no rules file)".into())
}

/// Runs an operator's request `name` against the replay's desk; wall time stamps operator
/// actions.
fn on_desk<T>(
    replay: &mut Replay,
    name: &'static str,
    work: Work,
    f: impl FnOnce(&mut crate::incidents::Desk, &Store, Stamp) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let at = Stamp {
        now: replay.now_ms(),
        wall: chrono::Utc::now().timestamp_millis(),
    };
    if work == Work::Trainee {
        replay.open_for_trainee()?;
    }
    let (desk, store) = replay.desk_mut().ok_or_else(no_desk)?;
    let _span = tracing::info_span!("incident_request", request = name).entered();
    f(desk, store, at)
}

/// What a dispatch request acts with: the desk, its store, the signed-in operator and the time.
struct Acting<'a> {
    desk: &'a mut crate::incidents::Desk,
    store: &'a Store,
    operator: OperatorDto,
    at: Stamp,
    /// At a workstation of a site, where the incident's lifecycle is the site's.
    site: Option<crate::site_mode::SiteLink>,
}

/// Commits an operator's decision at a workstation of a site: into the cache, to be published
/// at once (the engine's task is woken); it applies when it comes back through the site's
/// stream. Returns its id.
fn share(replay: &mut Replay, op: Op) -> Result<String, EngineError> {
    let link = replay
        .site
        .clone()
        .expect("only a workstation of a site shares decisions");
    if link.read_only {
        return Err(EngineError::Forbidden(
            "a wall display follows the site and makes no decisions".into(),
        ));
    }
    replay.open_for_trainee()?;
    let (desk, store) = replay.desk_mut().ok_or_else(no_desk)?;
    let who = desk.signed_in()?;
    let event = follow::commit_decision(store, &link.site, &who.name, &link.workstation, op)?;
    link.wake.notify_one();
    Ok(event.id)
}

/// A desk decision as a site's event.
fn shared_decision(op: DecisionOp) -> Op {
    match op {
        DecisionOp::Merge { into, from } => Op::Merge { into, from },
        DecisionOp::Split { from, entity } => Op::Split { from, entity },
        DecisionOp::Reassign { from, entity, to } => Op::Reassign { from, entity, to },
        DecisionOp::Undo => Op::Undo,
    }
}

/// Runs the dispatch request `name`. Actions need a signed-in operator, like every other
/// operator action, and close with the exercise.
fn acting<T>(
    replay: &mut Replay,
    name: &'static str,
    f: impl FnOnce(Acting<'_>) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let at = Stamp {
        now: replay.now_ms(),
        wall: chrono::Utc::now().timestamp_millis(),
    };
    replay.open_for_trainee()?;
    let site = replay.site.clone();
    let (desk, store) = replay.desk_mut().ok_or_else(no_desk)?;
    let operator = desk
        .operator()
        .cloned()
        .ok_or_else(|| EngineError::Forbidden("sign in first".into()))?;
    let _span = tracing::info_span!("dispatch_request", request = name, operator = %operator.name).entered();
    f(Acting {
        desk,
        store,
        operator,
        at,
        site,
    })
}

/// Where an action applies: the incident's root cause (or the middle of its area) and its area,
/// else the point picked on the map.
fn place_of(desk: &crate::incidents::Desk, request: &ActionRequestDto) -> Result<Place, EngineError> {
    if let Some(id) = &request.incident {
        let d = desk.detail(id)?;
        let a = d.entry.area;
        let point = match &d.root {
            Some(r) => GeoPoint { lon: r.lon, lat: r.lat },
            None => GeoPoint {
                lon: (a.west + a.east) / 2.0,
                lat: (a.south + a.north) / 2.0,
            },
        };
        // A point-sized area is no polygon: CAP gets a circle around the point instead.
        let ring = (a.east - a.west > 1e-6 && a.north - a.south > 1e-6).then(|| {
            vec![
                [a.west, a.south],
                [a.east, a.south],
                [a.east, a.north],
                [a.west, a.north],
                [a.west, a.south],
            ]
        });
        return Ok(Place {
            point,
            label: d.entry.title.clone(),
            area: ring,
        });
    }
    let [lon, lat] = request.at.ok_or(cityops_core::dispatch::DispatchError::NoPlace)?;
    let point = GeoPoint::new(lon, lat)
        .ok_or_else(|| EngineError::InvalidInput(format!("{lon},{lat} is not a valid position")))?;
    Ok(Place {
        point,
        label: format!("{lat:.5}, {lon:.5}"),
        area: None,
    })
}

/// The outbox view when it changed since the last diff.
fn outbox_change(outbox: &Outbox) -> Option<OutboxDto> {
    if !outbox.take_changed() {
        return None;
    }
    outbox
        .view()
        .inspect_err(|e| tracing::error!(error = %e, "cannot read the outbox"))
        .ok()
}

fn publish(sinks: &mut Vec<DiffSink>, diff: &MapDiffDto) {
    sinks.retain(|s| s(diff.clone()));
}

/// What moves the engine's clock and brings it input.
enum Source {
    /// The scenario's tape, on the replay clock.
    Tape,
    /// Live feeds, on the wall clock.
    Live(Box<LiveMode>),
    /// A site's stream, on the site's time.
    Site(Box<SiteMode>),
}

impl Source {
    /// The site's status for a diff, when it changed (always when `full`).
    fn site_status(&mut self, full: bool) -> Option<crate::dto::SiteStatusDto> {
        match self {
            Source::Site(site) => site.status_change(full),
            _ => None,
        }
    }
}

/// Whether a tick's diff says anything the UI does not know yet. Every part but the clock is
/// in a diff only when it changed (see `Replay::take_diff`), so a diff carrying one goes out
/// even when the clock rests: a replay waiting for the disk, or a site whose time stands
/// still while another workstation's decision changes an incident (dropping that diff would
/// lose the change, since taking the diff cleared it).
fn carries_news(diff: &MapDiffDto, last_clock: &crate::dto::ClockDto) -> bool {
    diff.reset
        || !diff.upserts.is_empty()
        || diff.clock != *last_clock
        || diff.incidents.is_some()
        || diff.outbox.is_some()
        || diff.storage.is_some()
        || diff.feeds.is_some()
        || diff.site.is_some()
}

/// Waits for the site's link to deliver, or forever without a site.
async fn woken(wake: &Option<Arc<tokio::sync::Notify>>) {
    match wake {
        Some(w) => w.notified().await,
        None => std::future::pending().await,
    }
}

async fn drive(
    mut replay: Replay,
    mut outbox: Outbox,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut source: Source,
) {
    let wake = match &source {
        Source::Site(site) => Some(site.wake.clone()),
        _ => None,
    };
    let mut sinks: Vec<DiffSink> = Vec::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = Instant::now();
    let mut last_command = Instant::now();
    let mut last_clock = replay.clock();
    // When the disk last refused a step of the replay (full or read-only), until a retry goes
    // through.
    let mut refused: Option<Instant> = None;
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                last_command = Instant::now();
                let result = match command {
                    Command::Subscribe(sink) => {
                        let mut full = replay.take_diff(true);
                        full.outbox = outbox.view().ok();
                        full.site = source.site_status(true);
                        if sink(full) { sinks.push(sink); }
                        last_clock = replay.clock();
                        continue;
                    }
                    Command::Run { effect, job } => {
                        let result = job(&mut replay, &mut outbox);
                        if effect == Effect::Reads { continue; }
                        result
                    }
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "replay command failed");
                }
                last_tick = Instant::now();
                let mut diff = replay.take_diff(false);
                diff.outbox = outbox_change(&outbox);
                diff.site = source.site_status(false);
                last_clock = diff.clock.clone();
                publish(&mut sinks, &diff);
            }
            _ = woken(&wake) => {
                // The site's link delivered (or a decision made here waits to go out): apply
                // it now rather than at the next tick, which is what a decision made at
                // another workstation takes to show here.
                if let Source::Site(site) = &mut source {
                    match site.pump(&mut replay).await {
                        Ok(true) => outbox.touch(),
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "applying the site's stream failed"),
                    }
                }
                let mut diff = replay.take_diff(false);
                diff.outbox = outbox_change(&outbox);
                diff.site = source.site_status(false);
                last_clock = diff.clock.clone();
                publish(&mut sinks, &diff);
            }
            _ = ticker.tick() => {
                let elapsed = last_tick.elapsed();
                last_tick = Instant::now();
                if let Source::Live(live) = &mut source {
                    if let Err(e) = live.pump(&mut replay, || chrono::Utc::now().timestamp_millis()) {
                        tracing::error!(error = %e, "live ingest failed");
                    }
                } else if let Source::Site(site) = &mut source {
                    match site.pump(&mut replay).await {
                        Ok(true) => outbox.touch(),
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "applying the site's stream failed"),
                    }
                } else if replay.playing {
                    // A step the disk refused is tried again (what it left undone, not more
                    // of the tape) every `RETRY_STORE`; the clock moves on once it went through,
                    // so a trainer who frees space sees the replay carry on by itself.
                    let result = match (refused, replay.speed) {
                        (Some(at), _) if at.elapsed() < RETRY_STORE => Ok(()),
                        (Some(_), _) => replay.retry_store().map(|()| refused = None),
                        (None, None) => {
                            let deadline = Instant::now() + MAX_SPEED_SLICE;
                            let mut r = Ok(());
                            while r.is_ok() && !replay.finished() {
                                r = replay.step_max(500);
                                if Instant::now() >= deadline { break; }
                            }
                            r
                        }
                        (None, Some(f)) => {
                            let dt = (elapsed.as_secs_f64() * 1000.0 * f).round() as i64;
                            replay.advance_to(replay.now_ms() + dt)
                        }
                    };
                    if let Err(e) = result {
                        match e.disk_fault() {
                            Some(fault) => {
                                if refused.is_none() {
                                    tracing::error!(error = %e, "the store refuses commits; the replay holds what it read and waits for the disk");
                                }
                                refused = Some(Instant::now());
                                replay.storage_refused(fault, chrono::Utc::now().timestamp_millis());
                            }
                            None => {
                                tracing::error!(error = %e, "replay failed; pausing");
                                replay.playing = false;
                            }
                        }
                    }
                    if replay.finished() && refused.is_none() {
                        replay.playing = false;
                    }
                } else if last_command.elapsed() >= WRITE_BEHIND_AFTER {
                    // The clock rests: the store's copy of the incidents catches up with a seek,
                    // in steps for at most a slice per tick, so that a command waits for one
                    // step at most (the whole write takes hundreds of milliseconds).
                    let deadline = Instant::now() + WRITE_BEHIND_SLICE;
                    loop {
                        match replay.write_behind_step() {
                            Ok(true) if Instant::now() < deadline => {}
                            Ok(_) => break,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot write the incidents after a seek");
                                break;
                            }
                        }
                    }
                }
                let mut diff = replay.take_diff(false);
                diff.outbox = outbox_change(&outbox);
                diff.site = source.site_status(false);
                if carries_news(&diff, &last_clock) {
                    last_clock = diff.clock.clone();
                    publish(&mut sinks, &diff);
                }
            }
        }
    }
    tracing::info!("engine stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resting_diff() -> MapDiffDto {
        serde_json::from_value(serde_json::json!({
            "reset": false, "upserts": [], "layers": [],
            "clock": {
                "startMs": 0, "endMs": 10, "nowMs": 5, "playing": false, "speed": 1.0,
                "ingestedUntilMs": 5, "finished": false, "endedMs": null, "trainerView": false
            },
            "incidents": null, "outbox": null, "feeds": null, "storage": null, "site": null
        }))
        .unwrap()
    }

    #[test]
    fn a_tick_sends_an_incident_change_while_the_clock_rests() {
        let quiet = resting_diff();
        let clock = quiet.clock.clone();
        assert!(!carries_news(&quiet, &clock), "nothing changed: nothing to send");
        let mut changed = resting_diff();
        changed.incidents = Some(crate::dto::IncidentsDiffDto {
            reset: false,
            upserts: Vec::new(),
            removed: vec!["inc/a".into()],
        });
        assert!(
            carries_news(&changed, &clock),
            "an incident changed on a site whose time stands still"
        );
        let mut moved = resting_diff();
        moved.clock.now_ms = 6;
        assert!(carries_news(&moved, &clock));
    }
}
