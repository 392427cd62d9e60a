//! The [`Engine`] handle: one scenario replay (or live feeds on the wall clock, see
//! [`crate::live::LiveMode`]) driven by an async task, with subscribers that receive coalesced
//! picture diffs, and the offline map archives.
//!
//! The task owns the [`Replay`] (and so the SQLite connection); the handle talks to it through a
//! command channel, so no lock is held across an await and commands are applied in order.
//! Time comes from `tokio::time`, so tests can run the paced clock on a paused runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use cityops_core::dispatch::Place;
use cityops_core::model::GeoPoint;

use crate::dto::{
    ActionDto, ActionPreviewDto, ActionRequestDto, BackendDto, ChartDto, ExerciseDto, IncidentDetailDto, InjectDto, InjectRequestDto, LifecycleStatus, MapDiffDto, ObservationDto, OperatorDto, OperatorRole,
    OutboxDto, QuarantineDto, ScenarioDto,
};
use crate::error::EngineError;
use crate::incidents::DecisionOp;
use crate::live::{LiveEngineConfig, LiveMode, RETRY_STORE};
use cityops_outbox::{self as outbox, Outbox};
use crate::pipeline::Pipeline;
use crate::replay::Replay;
use crate::scenario::Scenario;
use cityops_store::Store;
use crate::tiles::MapArchives;

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

enum Command {
    Play,
    Pause,
    Speed(Option<f64>),
    Seek(i64),
    Subscribe(DiffSink),
    Observation(String, oneshot::Sender<Option<ObservationDto>>),
    Incident(IncidentRequest, oneshot::Sender<Result<IncidentReply, EngineError>>),
    Dispatch(DispatchRequest, oneshot::Sender<Result<DispatchReply, EngineError>>),
    Quarantine(Option<String>, oneshot::Sender<Result<QuarantineDto, EngineError>>),
    Report(Option<Vec<u8>>, oneshot::Sender<Result<String, EngineError>>),
    Kpi(oneshot::Sender<Result<Vec<ChartDto>, EngineError>>),
    Inject(InjectRequestDto, oneshot::Sender<Result<InjectDto, EngineError>>),
    Exercise(oneshot::Sender<Result<ExerciseDto, EngineError>>),
    TrainerView(bool),
    EndExercise { by: Option<String>, map_png: Option<Vec<u8>>, reply: oneshot::Sender<Result<String, EngineError>> },
}

/// An operator's request about actions, answered by the replay task (which knows the incident
/// and the operator) against the outbox.
#[derive(Debug, Clone)]
enum DispatchRequest {
    Preview(Box<ActionRequestDto>),
    Arm { token: String },
    Confirm { token: String },
    View,
    Retry(i64),
    Cancel(i64),
}

enum DispatchReply {
    Done,
    Armed(u8),
    Preview(Box<ActionPreviewDto>),
    Action(Box<ActionDto>),
    View(Box<OutboxDto>),
}

/// An operator's request about incidents, answered by the replay task.
#[derive(Debug, Clone)]
enum IncidentRequest {
    SignIn { name: String, role: OperatorRole, pin: Option<String> },
    AssignRole { name: String, role: OperatorRole, pin: Option<String> },
    Roster,
    SignOut,
    Operator,
    Detail(String),
    Transition { id: String, to: LifecycleStatus },
    Decide(DecisionOp),
    TickSop { id: String, step: u32, ticked: bool },
}

enum IncidentReply {
    Done,
    Roster(Vec<crate::dto::RosterEntryDto>),
    Operator(Option<OperatorDto>),
    Detail(Box<IncidentDetailDto>),
    Split(Option<String>),
}

/// A running engine. Dropping it stops its task.
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    scenario: ScenarioDto,
    maps: Arc<MapArchives>,
}

impl Engine {
    /// Loads the scenario, opens the store, starts a new run and spawns the replay task on the
    /// current tokio runtime. The clock starts paused at the scenario's start.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let mut scenario = Scenario::load(&config.scenario_dir)?;
        let store = Store::open(&config.db_path)?;
        let run = store.begin_run(&scenario.manifest.name, &chrono::Utc::now().to_rfc3339())?;
        tracing::info!(scenario = %scenario.manifest.name, run, db = %config.db_path.display(), "engine started");
        let dto = ScenarioDto::new(&scenario.manifest, scenario.end_ms());
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
        tokio::spawn(drive(replay, outbox, rx, None));
        Ok(Engine { commands: tx, scenario: dto, maps: Arc::new(MapArchives::new(config.maps_dir)) })
    }

    /// Starts live mode: the feeds of a configuration on the wall clock (see
    /// [`crate::live::LiveMode`]), on a new run, with the same diffs, incidents and commands as a
    /// replay except the clock controls. Actions go to the real backends.
    pub fn start_live(config: LiveEngineConfig) -> Result<Engine, EngineError> {
        let specs = match &config.backends {
            Some(path) => outbox::config::load(path)?,
            None => Vec::new(),
        };
        let outbox = Outbox::start(&config.db_path, specs, false)?;
        let (live, replay, dto) = LiveMode::start(&config, chrono::Utc::now().timestamp_millis())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(replay, outbox, rx, Some(live)));
        Ok(Engine { commands: tx, scenario: dto, maps: Arc::new(MapArchives::new(config.maps_dir)) })
    }

    /// The loaded scenario.
    pub fn scenario(&self) -> ScenarioDto {
        self.scenario.clone()
    }

    fn send(&self, c: Command) -> Result<(), EngineError> {
        self.commands.send(c).map_err(|_| EngineError::Stopped)
    }

    /// Refuses a clock control in live mode, where the clock is the wall clock.
    fn replay_only(&self, what: &str) -> Result<(), EngineError> {
        if self.scenario.live {
            return Err(EngineError::InvalidInput(format!("{what}: live mode follows the wall clock")));
        }
        Ok(())
    }

    /// Starts the clock.
    pub fn play(&self) -> Result<(), EngineError> {
        self.replay_only("play")?;
        self.send(Command::Play)
    }

    /// Stops the clock.
    pub fn pause(&self) -> Result<(), EngineError> {
        self.replay_only("pause")?;
        self.send(Command::Pause)
    }

    /// Sets the speed factor; `None` runs as fast as the pipeline goes.
    pub fn set_speed(&self, speed: Option<f64>) -> Result<(), EngineError> {
        self.replay_only("speed")?;
        if let Some(f) = speed {
            if !(f.is_finite() && f > 0.0 && f <= MAX_FACTOR) {
                return Err(EngineError::InvalidInput(format!("speed {f} (expected 0 < speed <= {MAX_FACTOR}, or max)")));
            }
        }
        self.send(Command::Speed(speed))
    }

    /// Moves the clock to scenario time `ms` and rebuilds the picture from the store.
    pub fn seek(&self, ms: i64) -> Result<(), EngineError> {
        self.replay_only("seek")?;
        self.send(Command::Seek(ms))
    }

    /// Sends the whole picture to `sink` now, then every diff until it returns false.
    pub fn subscribe(&self, sink: DiffSink) -> Result<(), EngineError> {
        self.send(Command::Subscribe(sink))
    }

    /// The current observation of an entity in the picture.
    pub async fn observation(&self, id: String) -> Result<ObservationDto, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Observation(id.clone(), tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?.ok_or_else(|| EngineError::NotFound(format!("observation {id:?}")))
    }

    async fn incident(&self, request: IncidentRequest) -> Result<IncidentReply, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Incident(request, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Signs an operator in; every incident action is recorded with their name and role.
    pub async fn sign_in(&self, name: String, role: OperatorRole, pin: Option<String>) -> Result<OperatorDto, EngineError> {
        match self.incident(IncidentRequest::SignIn { name, role, pin }).await? {
            IncidentReply::Operator(Some(op)) => Ok(op),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Gives an operator a role (and a PIN) in the roster; a signed-in supervisor's call.
    pub async fn assign_role(&self, name: String, role: OperatorRole, pin: Option<String>) -> Result<(), EngineError> {
        self.incident(IncidentRequest::AssignRole { name, role, pin }).await.map(|_| ())
    }

    /// The operator roster; a signed-in supervisor's view.
    pub async fn roster(&self) -> Result<Vec<crate::dto::RosterEntryDto>, EngineError> {
        match self.incident(IncidentRequest::Roster).await? {
            IncidentReply::Roster(r) => Ok(r),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Signs the operator out.
    pub async fn sign_out(&self) -> Result<(), EngineError> {
        self.incident(IncidentRequest::SignOut).await.map(|_| ())
    }

    /// The signed-in operator, if any.
    pub async fn operator(&self) -> Result<Option<OperatorDto>, EngineError> {
        match self.incident(IncidentRequest::Operator).await? {
            IncidentReply::Operator(op) => Ok(op),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Everything the detail view shows about one incident.
    pub async fn incident_detail(&self, id: String) -> Result<IncidentDetailDto, EngineError> {
        match self.incident(IncidentRequest::Detail(id)).await? {
            IncidentReply::Detail(d) => Ok(*d),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Moves an incident forward in its lifecycle.
    pub async fn incident_transition(&self, id: String, to: LifecycleStatus) -> Result<(), EngineError> {
        self.incident(IncidentRequest::Transition { id, to }).await.map(|_| ())
    }

    /// Merges incident `from` into `into`.
    pub async fn incident_merge(&self, into: String, from: String) -> Result<(), EngineError> {
        self.incident(IncidentRequest::Decide(DecisionOp::Merge { into, from })).await.map(|_| ())
    }

    /// Splits a member out of an incident; returns the new incident's id.
    pub async fn incident_split(&self, from: String, entity: String) -> Result<String, EngineError> {
        match self.incident(IncidentRequest::Decide(DecisionOp::Split { from, entity })).await? {
            IncidentReply::Split(Some(id)) => Ok(id),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Moves a member from one incident to another.
    pub async fn incident_reassign(&self, from: String, entity: String, to: String) -> Result<(), EngineError> {
        self.incident(IncidentRequest::Decide(DecisionOp::Reassign { from, entity, to })).await.map(|_| ())
    }

    /// Takes back the latest merge, split or reassignment.
    pub async fn incident_undo(&self) -> Result<(), EngineError> {
        self.incident(IncidentRequest::Decide(DecisionOp::Undo)).await.map(|_| ())
    }

    /// Ticks or unticks a step of an incident's SOP checklist.
    pub async fn incident_tick_sop(&self, id: String, step: u32, ticked: bool) -> Result<(), EngineError> {
        self.incident(IncidentRequest::TickSop { id, step, ticked }).await.map(|_| ())
    }

    async fn dispatch(&self, request: DispatchRequest) -> Result<DispatchReply, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Dispatch(request, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The configured backends.
    pub async fn backends(&self) -> Result<Vec<BackendDto>, EngineError> {
        Ok(self.outbox().await?.backends)
    }

    /// Renders exactly what an action will send, for the operator to confirm.
    pub async fn preview_action(&self, request: ActionRequestDto) -> Result<ActionPreviewDto, EngineError> {
        match self.dispatch(DispatchRequest::Preview(Box::new(request))).await? {
            DispatchReply::Preview(p) => Ok(*p),
            _ => Err(EngineError::Stopped),
        }
    }

    /// The first confirmation of a dangerous action; returns how many it needs in all. The
    /// engine counts confirmations itself: [`Engine::confirm_action`] commits such an action
    /// only after this.
    pub async fn arm_action(&self, token: String) -> Result<u8, EngineError> {
        match self.dispatch(DispatchRequest::Arm { token }).await? {
            DispatchReply::Armed(n) => Ok(n),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Commits a previewed action to the outbox; it is on disk when this returns.
    pub async fn confirm_action(&self, token: String) -> Result<ActionDto, EngineError> {
        match self.dispatch(DispatchRequest::Confirm { token }).await? {
            DispatchReply::Action(a) => Ok(*a),
            _ => Err(EngineError::Stopped),
        }
    }

    /// The outbox: recent actions, counts, backends.
    pub async fn outbox(&self) -> Result<OutboxDto, EngineError> {
        match self.dispatch(DispatchRequest::View).await? {
            DispatchReply::View(v) => Ok(*v),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Queues a failed action again.
    pub async fn retry_action(&self, id: i64) -> Result<(), EngineError> {
        self.dispatch(DispatchRequest::Retry(id)).await.map(|_| ())
    }

    /// Cancels a queued or failed action.
    pub async fn cancel_action(&self, id: i64) -> Result<(), EngineError> {
        self.dispatch(DispatchRequest::Cancel(id)).await.map(|_| ())
    }

    /// The quarantine of the current run, newest first, of one feed if given (see
    /// [`cityops_store::Store::quarantine_page`]).
    pub async fn quarantine(&self, feed: Option<String>) -> Result<QuarantineDto, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Quarantine(feed, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The after-action report of this run so far: score against the scenario's objectives,
    /// timeline and charts, as one HTML document (see [`crate::report`]), with the map image
    /// (a base64 PNG from the app's map) if given.
    pub async fn report(&self, map_png: Option<String>) -> Result<String, EngineError> {
        let png = map_png.as_deref().map(decode_png).transpose()?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Report(png, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The shift's KPI charts up to the clock (the report's charts, see [`crate::report::kpi`]).
    pub async fn kpi(&self) -> Result<Vec<ChartDto>, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Kpi(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// A trainer's inject at the clock's time (see [`Replay::inject`]).
    pub async fn inject(&self, request: InjectRequestDto) -> Result<InjectDto, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Inject(request, tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The exercise so far, for the trainer view: injects, live score, whether it ended.
    pub async fn exercise(&self) -> Result<ExerciseDto, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Exercise(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Notes that a trainer view is open (or closed): the clock then belongs to the trainer, and
    /// the trainee's window shows it without controls.
    pub fn set_trainer_view(&self, open: bool) -> Result<(), EngineError> {
        self.replay_only("trainer view")?;
        self.send(Command::TrainerView(open))
    }

    /// Ends the exercise (by the named trainer, or else the signed-in operator) and returns
    /// its after-action report, with the map image if given.
    pub async fn end_exercise(&self, by: Option<String>, map_png: Option<String>) -> Result<String, EngineError> {
        let map_png = map_png.as_deref().map(decode_png).transpose()?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::EndExercise { by, map_png, reply: tx })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The offline map archives.
    pub fn maps(&self) -> Arc<MapArchives> {
        self.maps.clone()
    }
}

/// Decodes a base64 PNG sent by the app, refusing anything that is not one.
fn decode_png(b64: &str) -> Result<Vec<u8>, EngineError> {
    use base64::Engine as _;
    // The app may send a data URL as the canvas gives it.
    let data = b64.strip_prefix("data:image/png;base64,").unwrap_or(b64);
    if data.len() > crate::report::MAX_MAP_PNG * 4 / 3 + 4 {
        return Err(EngineError::InvalidInput(format!("the map image is over {} bytes", crate::report::MAX_MAP_PNG)));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| EngineError::InvalidInput(format!("the map image is not base64: {e}")))?;
    crate::report::check_png(&bytes)?;
    Ok(bytes)
}

fn report_input<'a>(replay: &'a Replay, map_png: Option<&'a [u8]>) -> crate::report::ReportInput<'a> {
    crate::report::ReportInput { store: replay.pipeline().store(), run: replay.pipeline().run(), scenario: Some(replay.scenario()), versus: None, map_png }
}

/// The exercise so far: injects, the score against the objectives, the end.
fn exercise_view(replay: &mut Replay) -> Result<ExerciseDto, EngineError> {
    replay.flush()?;
    let store = replay.pipeline().store();
    let run = replay.pipeline().run();
    let objectives = &replay.scenario().manifest.objectives;
    let score = if objectives.is_empty() { None } else { Some(crate::dto::ScoreDto::from(&crate::training::score_run(store, run, objectives)?)) };
    let injects = store.injects(run)?.into_iter().map(InjectDto::from).collect();
    let (ended_ms, ended_by) = replay.ended().cloned().map_or((None, None), |(a, b)| (Some(a), Some(b)));
    Ok(ExerciseDto { injects, score, ended_ms, ended_by })
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

/// Answers one incident request against the replay's desk; wall time stamps operator actions.
fn answer(replay: &mut Replay, request: IncidentRequest) -> Result<IncidentReply, EngineError> {
    let now = replay.now_ms();
    let wall = chrono::Utc::now().timestamp_millis();
    // Without rules there is no desk, and so nobody signed in to it (live feeds without rules).
    if matches!(request, IncidentRequest::Operator) && replay.desk().is_none() {
        return Ok(IncidentReply::Operator(None));
    }
    if matches!(request, IncidentRequest::Transition { .. } | IncidentRequest::Decide(_) | IncidentRequest::TickSop { .. }) {
        replay.open_for_trainee()?;
    }
    let (desk, store) = replay.desk_mut().ok_or_else(|| EngineError::NotFound("incidents (the scenario names no rules file)".into()))?;
    let _span = tracing::info_span!("incident_request", request = ?request).entered();
    Ok(match request {
        IncidentRequest::SignIn { name, role, pin } => IncidentReply::Operator(Some(desk.sign_in(store, &name, role, pin.as_deref(), wall)?)),
        IncidentRequest::AssignRole { name, role, pin } => desk.assign_role(store, &name, role, pin.as_deref(), wall).map(|_| IncidentReply::Done)?,
        IncidentRequest::Roster => IncidentReply::Roster(desk.roster(store)?),
        IncidentRequest::SignOut => desk.sign_out(store, wall).map(|_| IncidentReply::Done)?,
        IncidentRequest::Operator => IncidentReply::Operator(desk.operator().cloned()),
        IncidentRequest::Detail(id) => IncidentReply::Detail(Box::new(desk.detail(&id)?)),
        IncidentRequest::Transition { id, to } => desk.transition(store, &id, to, wall, now).map(|_| IncidentReply::Done)?,
        IncidentRequest::Decide(op) => IncidentReply::Split(desk.decide(store, op, wall, now)?),
        IncidentRequest::TickSop { id, step, ticked } => desk.tick_sop(store, &id, step, ticked, wall, now).map(|_| IncidentReply::Done)?,
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
            None => GeoPoint { lon: (a.west + a.east) / 2.0, lat: (a.south + a.north) / 2.0 },
        };
        // A point-sized area is no polygon: CAP gets a circle around the point instead.
        let ring = (a.east - a.west > 1e-6 && a.north - a.south > 1e-6)
            .then(|| vec![[a.west, a.south], [a.east, a.south], [a.east, a.north], [a.west, a.north], [a.west, a.south]]);
        return Ok(Place { point, label: d.entry.title.clone(), area: ring });
    }
    let [lon, lat] = request.at.ok_or(cityops_core::dispatch::DispatchError::NoPlace)?;
    let point = GeoPoint::new(lon, lat).ok_or_else(|| EngineError::InvalidInput(format!("{lon},{lat} is not a valid position")))?;
    Ok(Place { point, label: format!("{lat:.5}, {lon:.5}"), area: None })
}

/// Answers one dispatch request. Actions need a signed-in operator, like every other operator
/// action; confirming one for an incident that nobody dispatched to yet marks it dispatched.
fn answer_dispatch(replay: &mut Replay, outbox: &mut Outbox, request: DispatchRequest) -> Result<DispatchReply, EngineError> {
    let now = replay.now_ms();
    let wall = chrono::Utc::now().timestamp_millis();
    let run = replay.pipeline().run();
    if !matches!(request, DispatchRequest::View) {
        replay.open_for_trainee()?;
    }
    let (desk, store) = replay.desk_mut().ok_or_else(|| EngineError::NotFound("incidents (the scenario names no rules file)".into()))?;
    if let DispatchRequest::View = request {
        return Ok(DispatchReply::View(Box::new(outbox.view()?)));
    }
    let operator = desk.operator().cloned().ok_or_else(|| EngineError::Forbidden("sign in first".into()))?;
    let _span = tracing::info_span!("dispatch_request", request = ?request, operator = %operator.name).entered();
    Ok(match request {
        DispatchRequest::View => unreachable!("answered above"),
        DispatchRequest::Preview(req) => {
            let place = place_of(desk, &req)?;
            DispatchReply::Preview(Box::new(outbox.preview(*req, &place, &operator, now)?))
        }
        DispatchRequest::Arm { token } => DispatchReply::Armed(outbox.arm(&token, &operator)?),
        DispatchRequest::Confirm { token } => {
            let action = outbox.confirm(&token, &operator, Some(run))?;
            if let Some(id) = &action.incident {
                if matches!(desk.status(id), LifecycleStatus::New | LifecycleStatus::Acknowledged) {
                    if let Err(e) = desk.transition(store, id, LifecycleStatus::Dispatched, wall, now) {
                        tracing::warn!(incident = %id, error = %e, "action sent but the incident could not be marked dispatched");
                    }
                }
            }
            DispatchReply::Action(Box::new(action))
        }
        DispatchRequest::Retry(id) => outbox.retry(id, &operator).map(|_| DispatchReply::Done)?,
        DispatchRequest::Cancel(id) => outbox.cancel(id, &operator).map(|_| DispatchReply::Done)?,
    })
}

/// The outbox view when it changed since the last diff.
fn outbox_change(outbox: &Outbox) -> Option<OutboxDto> {
    if !outbox.take_changed() {
        return None;
    }
    outbox.view().inspect_err(|e| tracing::error!(error = %e, "cannot read the outbox")).ok()
}

fn publish(sinks: &mut Vec<DiffSink>, diff: &MapDiffDto) {
    sinks.retain(|s| s(diff.clone()));
}

async fn drive(mut replay: Replay, mut outbox: Outbox, mut commands: mpsc::UnboundedReceiver<Command>, mut live: Option<LiveMode>) {
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
                    Command::Play => {
                        if replay.finished() {
                            // Playing a finished replay starts it over, as a trainer expects.
                            replay.seek(i64::MIN).map(|_| replay.playing = true)
                        } else {
                            replay.playing = true;
                            Ok(())
                        }
                    }
                    Command::Pause => { replay.playing = false; Ok(()) }
                    Command::Speed(s) => { replay.speed = s; Ok(()) }
                    Command::Seek(t) => replay.seek(t),
                    Command::TrainerView(open) => { replay.trainer_view = open; Ok(()) }
                    Command::Subscribe(sink) => {
                        let mut full = replay.take_diff(true);
                        full.outbox = outbox.view().ok();
                        if sink(full) { sinks.push(sink); }
                        last_clock = replay.clock();
                        continue;
                    }
                    Command::Dispatch(request, reply) => {
                        let view = matches!(request, DispatchRequest::View);
                        let _ = reply.send(answer_dispatch(&mut replay, &mut outbox, request));
                        if view { continue; }
                        Ok(())
                    }
                    Command::Incident(request, reply) => {
                        let changes = !matches!(request, IncidentRequest::Detail(_) | IncidentRequest::Operator);
                        let _ = reply.send(answer(&mut replay, request));
                        if !changes { continue; }
                        Ok(())
                    }
                    Command::Observation(id, reply) => {
                        let feed_name = |feed: &str| replay.scenario().manifest.feed(feed).map(|f| f.name.clone()).unwrap_or_default();
                        let found = replay.picture().get(&id).map(|o| ObservationDto::new(o, &feed_name(&o.feed)));
                        let _ = reply.send(found);
                        continue;
                    }
                    Command::Report(png, reply) => {
                        let _ = reply.send(replay.flush().map_err(EngineError::from).and_then(|_| crate::report::render(&report_input(&replay, png.as_deref()))));
                        continue;
                    }
                    Command::Kpi(reply) => {
                        let now = replay.now_ms();
                        let _ = reply.send(replay.flush().map_err(EngineError::from).and_then(|_| crate::report::kpi(&report_input(&replay, None), now)));
                        continue;
                    }
                    Command::Exercise(reply) => {
                        let _ = reply.send(exercise_view(&mut replay));
                        continue;
                    }
                    Command::Inject(request, reply) => {
                        let wall = chrono::Utc::now().timestamp_millis();
                        let _ = reply.send(replay.inject(&request.inject, request.lon, request.lat, &request.trainer, wall).map(InjectDto::from));
                        Ok(())
                    }
                    Command::EndExercise { by, map_png, reply } => {
                        let _ = reply.send(end_exercise(&mut replay, by, map_png.as_deref()));
                        Ok(())
                    }
                    Command::Quarantine(feed, reply) => {
                        let _ = reply.send(replay.quarantine(feed.as_deref()).map_err(EngineError::from));
                        continue;
                    }
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "replay command failed");
                }
                last_tick = Instant::now();
                let mut diff = replay.take_diff(false);
                diff.outbox = outbox_change(&outbox);
                last_clock = diff.clock.clone();
                publish(&mut sinks, &diff);
            }
            _ = ticker.tick() => {
                let elapsed = last_tick.elapsed();
                last_tick = Instant::now();
                if let Some(live) = &mut live {
                    if let Err(e) = live.pump(&mut replay, || chrono::Utc::now().timestamp_millis()) {
                        tracing::error!(error = %e, "live ingest failed");
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
                // Health is in a diff only when it changed (see `Replay::take_diff`), so a diff
                // carrying it goes out even when the clock rests (a replay waiting for the disk).
                if !diff.upserts.is_empty() || diff.reset || diff.clock != last_clock || diff.outbox.is_some() || diff.storage.is_some() || diff.feeds.is_some() {
                    last_clock = diff.clock.clone();
                    publish(&mut sinks, &diff);
                }
            }
        }
    }
    tracing::info!("engine stopped");
}
