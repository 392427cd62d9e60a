//! Site mode of the [`crate::Engine`]: a window on a workstation of a site (a control room's
//! shared state on NATS JetStream, see `cityops-site` and [`crate::follow`]).
//!
//! The site's stream is folded into the workstation's cache by the same [`FollowState`] as
//! `cityops follow`, onto a live [`Replay`] whose clock is the site's time, so the map, the
//! queue and the detail show what every workstation of the site shows. A link task owns the
//! connection: it connects (again and again while the site cannot be reached), reads the
//! stream in order from the cache's position and hands each message to the engine's task,
//! waking it at once, so a decision made at another workstation reaches this window within
//! milliseconds rather than at the next clock tick.
//!
//! An operator's decision here is committed to the cache and published; the desk changes only
//! when it comes back through the stream, in the site's order, like everyone else's. While the
//! link is down, decisions wait in the cache and the header says so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cityops_core::model::Millis;
use std::collections::HashMap;

use cityops_site::{
    Credentials, Outgoing, Presence, Seen, Site, SiteError, SiteId, Subject, PRESENCE_EVERY, PRESENCE_TTL,
};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use crate::dto::{IncidentTypeDto, PresenceDto, ScenarioDto, SiteStatusDto};
use crate::error::EngineError;
use crate::follow::{self, Applied, Cache, Decoded, FollowState, Follower};
use crate::replay::Replay;
use crate::scenario::Scenario;
use crate::trainer_clock::TrainerClock;

/// Where a workstation of a site finds its inputs.
#[derive(Debug, Clone)]
pub struct SiteEngineConfig {
    /// The NATS server(s) of the site (commas separate a cluster's nodes).
    pub nats: String,
    /// The site's id.
    pub site: String,
    /// This workstation's cache (created if missing).
    pub db_path: PathBuf,
    /// The folder of `<name>.mbtiles` basemap archives.
    pub maps_dir: PathBuf,
    /// The backends file operators' actions go to.
    pub backends: Option<PathBuf>,
    /// This workstation's name in the site.
    pub workstation: String,
    /// A wall display: it follows the site and makes no decisions (its NATS user may not
    /// publish either).
    pub read_only: bool,
    /// The trainer's machine of an exercise site: this scenario folder is published into the
    /// site on the trainer's clock, which this window controls (see [`TrainerSeat`]).
    pub train: Option<PathBuf>,
}

/// The trainer's clock of a trainer's window on an exercise site, shared by the engine's
/// handle (whose clock controls apply at once, in the order the window called them) and the
/// engine's task (which moves the clock and publishes what it made).
pub struct TrainerSeat {
    pub clock: TrainerClock,
    /// The trainer signed in at this window: the clock's controls are theirs.
    pub trainer: Option<String>,
    /// The injects made here, newest last.
    pub injects: Vec<crate::dto::InjectDto>,
}

pub(crate) type SharedSeat = Arc<std::sync::Mutex<TrainerSeat>>;

/// The seat, even after a panic elsewhere held its lock: the clock's state stays whole
/// because every change to it is made under the lock in one call.
pub(crate) fn seat(shared: &SharedSeat) -> std::sync::MutexGuard<'_, TrainerSeat> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a workstation of a site carries in its replay: who it is, to make decisions as.
#[derive(Debug, Clone)]
pub struct SiteLink {
    pub site: SiteId,
    pub workstation: String,
    /// Wakes the engine's task to publish a decision at once.
    pub wake: Arc<Notify>,
    /// A wall display, which makes no decisions.
    pub read_only: bool,
    /// The incident the window has open, for the site's presence.
    pub viewing: Option<String>,
}

/// How long a first start waits for the site's configuration.
const FIRST_CONFIG: Duration = Duration::from_secs(30);
/// The most one wake-up spends applying the site's messages before it publishes a diff.
const APPLY_SLICE: Duration = Duration::from_millis(60);
/// How often a connected workstation asks how far behind the stream it is.
const BEHIND_EVERY: Duration = Duration::from_secs(1);
/// How long a request to the site may hold the engine's task.
const REQUEST: Duration = Duration::from_millis(500);
/// Messages the link task may hand over ahead of the engine's task.
const QUEUE: usize = 4096;
/// How long the link task waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);
/// The most messages of the trainer's clock one wake-up publishes (a seek makes thousands).
const CLOCK_BATCH: usize = 2000;
/// How long publishing the trainer's clock may hold the engine's task.
const CLOCK_PUBLISH: Duration = Duration::from_secs(3);

/// What the link task tells the engine's task.
enum Link {
    /// Another workstation said its presence (or this one's came back).
    Presence(Seen),
    Connected(Arc<Site>),
    /// A message, decoded on the link's task (see [`Decoded`]).
    Message(Decoded),
    Lost(String),
}

/// A running workstation of a site; dropping it stops its link.
pub(crate) struct SiteMode {
    state: FollowState,
    link: mpsc::Receiver<Link>,
    task: tokio::task::JoinHandle<()>,
    site: Option<Arc<Site>>,
    pub(crate) wake: Arc<Notify>,
    status: SiteStatusDto,
    sent: Option<SiteStatusDto>,
    last_seq: u64,
    asked_behind: Option<Instant>,
    /// The site refused a publish: not before this again.
    publish_after: Option<Instant>,
    /// What this workstation says of itself (the presence task says it again and again).
    own: watch::Sender<Presence>,
    /// The last presence said by each workstation, with when the server stored it.
    others: HashMap<String, Seen>,
    presence_task: tokio::task::JoinHandle<()>,
    /// The site is an exercise: its actions are recorded, never sent.
    pub(crate) exercise: bool,
    /// This is the trainer's window: the trainer's clock.
    pub(crate) seat: Option<SharedSeat>,
    /// The site refused the trainer's clock: not before this again.
    clock_after: Option<Instant>,
}

impl SiteMode {
    /// Opens the cache, connects, and on a first start (a cache without the site's
    /// configuration) waits for the configuration, since there is no map to show before it.
    /// A cache that has it starts even when the site cannot be reached: offline is normal.
    pub(crate) async fn start(
        config: &SiteEngineConfig,
        now: Millis,
    ) -> Result<(SiteMode, Replay, ScenarioDto), EngineError> {
        let id: SiteId = config.site.parse()?;
        let train = match &config.train {
            Some(dir) => Some((Scenario::load(dir)?, Scenario::site_config(dir)?)),
            None => None,
        };
        let mut follower = Follower::open(&config.db_path, id.clone())?;
        let first = match Site::connect(&config.nats, id.clone(), Credentials::from_env()).await {
            Ok(site) => Some(Arc::new(site)),
            Err(e @ SiteError::Credentials { .. }) => return Err(e.into()),
            Err(e) if !follower.configured() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "the site cannot be reached; starting from the cache");
                None
            }
        };
        if let (Some((_, site_config)), Some(site)) = (&train, &first) {
            // The trainer's machine brings the exercise's configuration, as `cityops train`.
            if !site.exercise().await? {
                return Err(EngineError::Forbidden(format!(
                    "site {id} is live: a trainer drives an exercise site (cityops site init --site ID --exercise)"
                )));
            }
            site.publish([Outgoing::config(&id, site_config)]).await?;
        }
        if let (false, Some(site)) = (follower.configured(), &first) {
            let wait = follow::follow_until(site, &mut follower, Follower::configured);
            tokio::time::timeout(FIRST_CONFIG, wait).await.map_err(|_| {
                EngineError::InvalidInput(format!(
                    "site {id} has published no configuration within {FIRST_CONFIG:?}: publish a scenario into it (`cityops publish`)"
                ))
            })??;
        }
        // Whether the site is an exercise, as the site says, or as this cache last heard it.
        let exercise = match &first {
            Some(site) => {
                let exercise = site.exercise().await?;
                follower.store().set_site_exercise(id.as_str(), exercise)?;
                exercise
            }
            None => follower.store().site_exercise(id.as_str())?,
        };
        // A trainer started again resumes the clock where the site's time is.
        let at = follow::site_time_in(follower.store(), &id)?;
        let seat = train.map(|(scenario, _)| {
            let at = at.unwrap_or(scenario.manifest.start_ms);
            let mut clock = TrainerClock::new(id.clone(), scenario, &config.workstation, at);
            clock.note_position(follower.position());
            Arc::new(std::sync::Mutex::new(TrainerSeat {
                clock,
                trainer: None,
                injects: Vec::new(),
            }))
        });
        let (state, mut replay) = follower
            .into_parts()
            .ok_or_else(|| EngineError::InvalidInput(format!("site {id} has no configuration yet")))?;
        let wake = Arc::new(Notify::new());
        replay.site = Some(SiteLink {
            site: id.clone(),
            workstation: config.workstation.clone(),
            wake: wake.clone(),
            read_only: config.read_only,
            viewing: None,
        });
        let mut dto = ScenarioDto::new(&replay.scenario().manifest, now);
        dto.live = true;
        dto.site = Some(id.to_string());
        dto.exercise_site = exercise;
        dto.incident_types = replay
            .desk()
            .map(|d| IncidentTypeDto::all(d.correlator().rules()))
            .unwrap_or_default();
        dto.zones = crate::dto::ZoneDto::all(&replay.scenario().zones);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (own, own_rx) = watch::channel(Presence {
            workstation: config.workstation.clone(),
            operator: None,
            incident: None,
        });
        let presence_task = tokio::spawn(presence(
            config.nats.clone(),
            id.clone(),
            (!config.read_only).then_some(own_rx),
            tx.clone(),
            wake.clone(),
        ));
        let task = tokio::spawn(link(
            config.nats.clone(),
            id.clone(),
            first.clone(),
            state.position(),
            tx,
            wake.clone(),
        ));
        let waiting = replay.pipeline().store().site_pending()?.len() as u64;
        let status = SiteStatusDto {
            site: id.to_string(),
            workstation: config.workstation.clone(),
            connected: first.is_some(),
            offline_since_ms: first.is_none().then_some(now),
            behind: 0,
            waiting,
            refused: None,
            presence: Vec::new(),
        };
        tracing::info!(site = %id, workstation = %config.workstation, position = state.position(), "workstation of a site started");
        Ok((
            SiteMode {
                state,
                link: rx,
                task,
                site: None,
                wake,
                status,
                sent: None,
                last_seq: 0,
                asked_behind: None,
                publish_after: None,
                own,
                others: HashMap::new(),
                presence_task,
                exercise,
                seat,
                clock_after: None,
            },
            replay,
            dto,
        ))
    }

    /// Applies what the link delivered (for at most [`APPLY_SLICE`]), publishes the decisions
    /// waiting here while the link holds, and brings the status up to date. True when an
    /// action or an action's outcome was applied (the outbox changed).
    pub(crate) async fn pump(&mut self, replay: &mut Replay) -> Result<bool, EngineError> {
        let mut acted = false;
        let deadline = Instant::now() + APPLY_SLICE;
        while Instant::now() < deadline {
            let Ok(link) = self.link.try_recv() else { break };
            match link {
                Link::Presence(seen) => {
                    self.others.insert(seen.presence.workstation.clone(), seen);
                }
                Link::Connected(site) => {
                    self.site = Some(site);
                    self.status.connected = true;
                    self.status.offline_since_ms = None;
                }
                Link::Lost(reason) => {
                    tracing::warn!(site = %self.state.site(), %reason, "the link to the site is down");
                    self.status.connected = false;
                    self.status
                        .offline_since_ms
                        .get_or_insert_with(|| chrono::Utc::now().timestamp_millis());
                }
                Link::Message(d) => {
                    acted |= matches!(d.delivery.kind, Subject::Action | Subject::Outcome);
                    let mut cache = Cache::Ready(replay);
                    if let Applied::Event(row) = self.state.apply(&mut cache, d)? {
                        // The author of a decision sees what became of it.
                        if row.workstation == self.status.workstation {
                            self.status.refused = (row.outcome == "refused").then(|| row.reason.clone());
                        }
                    }
                }
            }
        }
        self.state.settle(&mut Cache::Ready(replay))?;
        if !self.link.is_empty() {
            // More is queued than one slice applies: come back at once.
            self.wake.notify_one();
        }
        if let Some(site) = self.site.clone() {
            let connected = site.connected();
            if connected != self.status.connected {
                self.status.connected = connected;
                self.status.offline_since_ms = (!connected).then(|| chrono::Utc::now().timestamp_millis());
            }
            let waiting = replay.pipeline().store().site_pending()?;
            let may_publish = self.publish_after.is_none_or(|t| Instant::now() >= t);
            if connected && may_publish && !waiting.is_empty() {
                if let Ok((sent, refused)) =
                    tokio::time::timeout(REQUEST, follow::publish_decisions(&site, waiting)).await
                {
                    for id in &sent {
                        replay.pipeline().store().remove_site_pending(id)?;
                    }
                    if let Some(e) = refused {
                        self.status.refused = Some(e.to_string());
                        self.publish_after = Some(Instant::now() + follow::REFUSED_PAUSE);
                    }
                } else {
                    self.publish_after = Some(Instant::now() + follow::REFUSED_PAUSE);
                }
            }
            if connected && self.asked_behind.is_none_or(|t| t.elapsed() >= BEHIND_EVERY) {
                self.asked_behind = Some(Instant::now());
                if let Ok(Ok(last)) = tokio::time::timeout(REQUEST, site.last_seq()).await {
                    self.last_seq = last;
                }
            }
        }
        self.run_clock(replay).await;
        self.say_presence(replay);
        self.status.behind = self.last_seq.saturating_sub(self.state.position());
        self.status.waiting = replay.pipeline().store().site_pending()?.len() as u64;
        Ok(acted)
    }

    /// Moves the trainer's clock (when this is the trainer's window) and publishes what it
    /// made; while the site cannot be reached the clock stands, and what waits stays queued.
    async fn run_clock(&mut self, replay: &mut Replay) {
        let Some(shared) = self.seat.clone() else { return };
        let now = Instant::now();
        let may = self.clock_after.is_none_or(|t| now >= t);
        let site = self.site.clone().filter(|s| may && s.connected());
        let out = {
            let mut seat = seat(&shared);
            let clock = &mut seat.clock;
            let state = clock.state();
            replay.playing = state.playing;
            replay.speed = Some(state.speed);
            if site.is_none() {
                clock.hold(now);
                return;
            }
            clock.advance(now);
            clock.note_position(self.last_seq.max(self.state.position()));
            let mut out = clock.take_queue();
            if out.len() > CLOCK_BATCH {
                clock.requeue(out.split_off(CLOCK_BATCH));
            }
            out
        };
        let Some(site) = site else { return };
        if out.is_empty() {
            return;
        }
        let sent = tokio::time::timeout(CLOCK_PUBLISH, site.publish(out.iter().cloned())).await;
        if !matches!(sent, Ok(Ok(_))) {
            // Sent again with the same ids, which the stream keeps one of, after a pause.
            tracing::warn!(
                messages = out.len(),
                "the site did not take the trainer's clock; trying again"
            );
            seat(&shared).clock.requeue(out);
            self.clock_after = Some(now + follow::REFUSED_PAUSE);
            return;
        }
        if seat(&shared).clock.state().queued > 0 {
            // A seek made more than one batch: the rest goes at once, not at the next tick.
            self.wake.notify_one();
        }
    }

    /// Brings what this workstation says of itself up to date (who is signed in, what is
    /// open), and the others' presence in the status: those said within the TTL, by this
    /// machine's clock against the server's stamp (a control room keeps its clocks in step).
    fn say_presence(&mut self, replay: &Replay) {
        let operator = replay.desk().and_then(|d| d.operator()).map(|o| o.name.clone());
        let incident = replay.site.as_ref().and_then(|l| l.viewing.clone());
        self.own.send_if_modified(|p| {
            let changed = p.operator != operator || p.incident != incident;
            (p.operator, p.incident) = (operator, incident);
            changed
        });
        let now = chrono::Utc::now().timestamp_millis();
        let ttl = PRESENCE_TTL.as_millis() as i64;
        self.others.retain(|_, s| now - s.stored_ms < ttl);
        let mut presence: Vec<PresenceDto> = self
            .others
            .values()
            .filter(|s| s.presence.workstation != self.status.workstation)
            .map(|s| PresenceDto {
                workstation: s.presence.workstation.clone(),
                operator: s.presence.operator.clone(),
                incident: s.presence.incident.clone(),
            })
            .collect();
        presence.sort_by(|a, b| a.workstation.cmp(&b.workstation));
        self.status.presence = presence;
    }

    /// The status when it changed since last sent (or always, when `full`).
    pub(crate) fn status_change(&mut self, full: bool) -> Option<SiteStatusDto> {
        (full || self.sent.as_ref() != Some(&self.status)).then(|| {
            self.sent = Some(self.status.clone());
            self.status.clone()
        })
    }
}

impl Drop for SiteMode {
    fn drop(&mut self) {
        self.task.abort();
        self.presence_task.abort();
    }
}

/// The presence task: on a connection of its own, says this workstation's presence whenever
/// it changes and every [`PRESENCE_EVERY`] (not at all for a wall display, whose NATS user may
/// not), and hands every workstation's presence to the engine's task as it is said.
async fn presence(
    url: String,
    id: SiteId,
    mut own: Option<watch::Receiver<Presence>>,
    tx: mpsc::Sender<Link>,
    wake: Arc<Notify>,
) {
    loop {
        let site = match Site::connect(&url, id.clone(), Credentials::from_env()).await {
            Ok(s) => s,
            Err(_) => {
                // The link task says the site is unreachable; this one only tries again.
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        let reason = match site.watch_presence().await {
            Ok(mut seen) => {
                let mut every = tokio::time::interval(PRESENCE_EVERY);
                loop {
                    tokio::select! {
                        s = seen.next() => match s {
                            Some(s) => {
                                if tx.send(Link::Presence(s)).await.is_err() {
                                    return;
                                }
                                wake.notify_one();
                            }
                            None => break "the presence watch ended".to_owned(),
                        },
                        _ = every.tick(), if own.is_some() => {
                            let p = own.as_ref().map(|o| o.borrow().clone());
                            if let Some(Err(e)) = match &p { Some(p) => Some(site.announce(p).await), None => None } {
                                tracing::debug!(error = %e, "cannot say this workstation's presence");
                            }
                        }
                        changed = async { own.as_mut().expect("guarded").changed().await }, if own.is_some() => {
                            if changed.is_err() {
                                return;
                            }
                            let p = own.as_ref().map(|o| o.borrow().clone());
                            if let Some(p) = p {
                                if let Err(e) = site.announce(&p).await {
                                    tracing::debug!(error = %e, "cannot say this workstation's presence");
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        tracing::debug!(site = %id, %reason, "watching the site's presence again");
        tokio::time::sleep(RECONNECT).await;
    }
}

/// The link task: connects (again while the site cannot be reached), then reads the stream in
/// order after `position` and hands every message over, waking the engine's task.
async fn link(
    url: String,
    id: SiteId,
    mut site: Option<Arc<Site>>,
    mut position: u64,
    tx: mpsc::Sender<Link>,
    wake: Arc<Notify>,
) {
    loop {
        let current = match site.take() {
            Some(s) => s,
            None => match Site::connect(&url, id.clone(), Credentials::from_env()).await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    if tx.send(Link::Lost(e.to_string())).await.is_err() {
                        return;
                    }
                    wake.notify_one();
                    tokio::time::sleep(RECONNECT).await;
                    continue;
                }
            },
        };
        if tx.send(Link::Connected(current.clone())).await.is_err() {
            return;
        }
        wake.notify_one();
        let reason = match current.read_after(position).await {
            Ok(mut reader) => loop {
                match reader.next().await {
                    Some(Ok(d)) => {
                        position = d.seq;
                        if tx.send(Link::Message(Decoded::new(d))).await.is_err() {
                            return;
                        }
                        wake.notify_one();
                    }
                    Some(Err(e)) => break e.to_string(),
                    None => break "the stream's consumer ended".to_owned(),
                }
            },
            Err(e) => e.to_string(),
        };
        // The client reconnects by itself; this reads again from where the last message left.
        tracing::warn!(site = %id, %reason, "reading the site again");
        site = current.connected().then_some(current);
        if tx.send(Link::Lost(reason)).await.is_err() {
            return;
        }
        wake.notify_one();
        tokio::time::sleep(RECONNECT).await;
    }
}
