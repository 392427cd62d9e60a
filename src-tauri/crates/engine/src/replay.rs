//! The replay clock: moves scenario time forward, feeding tape messages through the pipeline as
//! their time comes, and keeps the picture of "now".
//!
//! Ingest only ever moves forward: the *frontier* is the time up to which the tape has been fed
//! into the store. Seeking rebuilds the picture from the store and never re-ingests; playing
//! again after a backward seek reads the store up to the frontier, then resumes ingesting.
//! [`Replay`] is synchronous and takes no clock: the caller says how far to advance, so the
//! async driver in the `engine` module and the tests decide the pacing.
//!
//! The clock also drives the incident [`Desk`]: after each step it correlates every arrival
//! second the clock has passed, reading them back from the store, and a seek rebuilds the
//! incidents at the new time from a checkpoint.

use cityops_core::model::{Layer, Millis};
use cityops_core::picture::Picture;

use crate::dto::{
    ClockDto, LayerAgeDto, MapDiffDto, MapFeatureDto, QuarantineDto, QUARANTINE_PAGE, QUARANTINE_PREVIEW_BYTES,
};
use crate::error::EngineError;
use crate::incidents::Desk;
use crate::scenario::Scenario;
use crate::timeline::PictureIndex;
use cityops_core::{call, inject, tape};
use cityops_live::pipeline::Pipeline;
use cityops_live::{FeedHealthDto, Health, StorageHealthDto};
use cityops_store::{CallRow, InjectRow, Store, StoreError};

/// The state of one scenario replay.
pub struct Replay {
    scenario: Scenario,
    pipeline: Pipeline,
    /// Index of the next tape message to ingest.
    next: usize,
    /// Scenario time up to which every message has been ingested.
    frontier_ms: Millis,
    now_ms: Millis,
    end_ms: Millis,
    picture: Picture,
    /// Where a seek finds the picture at its time. Live mode refuses seeks, so it is only
    /// kept up as a replay ingests (a seek would still catch it up with the whole log).
    index: PictureIndex,
    /// A read-only connection to the store, opened at the first seek, through which the
    /// picture is read while the desk correlates (`None` for an in-memory store).
    reader: Option<Store>,
    /// The incidents, when the scenario names correlation rules.
    desk: Option<Desk>,
    /// `None` runs as fast as the pipeline goes.
    pub speed: Option<f64>,
    /// Whether the clock runs.
    pub playing: bool,
    /// A trainer view is open: the clock is the trainer's.
    pub trainer_view: bool,
    /// In live mode, the feeds' health board and what the UI was last sent of it.
    live: Option<(Health, Option<Vec<FeedHealthDto>>, Option<StorageHealthDto>)>,
    /// In a replay, the store's health and what the UI was last sent of it, from the first time
    /// the disk refused a commit (before that, diffs say nothing of storage, as they never had
    /// anything to say).
    disk: Option<(Health, Option<StorageHealthDto>)>,
    /// When the exercise was ended and by whom; the trainee's record is closed after it.
    ended: Option<(Millis, String)>,
    /// A workstation of a site: operators' decisions go to the site, and apply when they come
    /// back through its stream (see `site_mode`).
    pub(crate) site: Option<crate::site_mode::SiteLink>,
}

/// `now` if it differs from what was `sent` last (or a `full` diff is wanted), remembered as sent.
fn unsent<T: PartialEq + Clone>(full: bool, sent: &mut Option<T>, now: T) -> Option<T> {
    (full || sent.as_ref() != Some(&now)).then(|| sent.insert(now).clone())
}

/// The incident desk of a scenario with rules, correlating from `start` up to `end_ms`.
fn desk_of(scenario: &Scenario, pipeline: &Pipeline, start: Millis, end_ms: Millis) -> Option<Desk> {
    scenario.rules.clone().map(|rules| {
        Desk::new(
            pipeline.run(),
            rules,
            scenario.assets.clone(),
            scenario.zones.clone(),
            start,
            end_ms,
        )
    })
}

impl Replay {
    /// A replay at the scenario's start, paused at 1x. Refused tape lines go to the quarantine.
    pub fn new(scenario: Scenario, mut pipeline: Pipeline) -> Replay {
        let start = scenario.manifest.start_ms;
        let file = scenario
            .tape_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        pipeline.quarantine_tape_issues(&file, &scenario.tape_issues, start);
        let end_ms = scenario.end_ms();
        let desk = desk_of(&scenario, &pipeline, start, end_ms);
        let index = PictureIndex::new(pipeline.run(), start);
        Replay {
            scenario,
            pipeline,
            next: 0,
            frontier_ms: start - 1,
            now_ms: start,
            end_ms,
            picture: Picture::new(),
            index,
            reader: None,
            desk,
            speed: Some(1.0),
            playing: false,
            trainer_view: false,
            live: None,
            disk: None,
            ended: None,
            site: None,
        }
    }

    /// A replay that follows live feeds instead of a tape (see `live_mode`, which drives it): the
    /// scenario has no messages, the clock is the wall time the engine passes to
    /// [`Replay::follow`], and the incident desk has no end to run up to.
    pub(crate) fn live(scenario: Scenario, pipeline: Pipeline, health: Health) -> Replay {
        let start = scenario.manifest.start_ms;
        let desk = desk_of(&scenario, &pipeline, start, Millis::MAX);
        let mut replay = Replay::new(
            Scenario {
                rules: None,
                ..scenario
            },
            pipeline,
        );
        replay.desk = desk;
        replay.playing = true;
        replay.live = Some((health, None, None));
        replay
    }

    /// Live mode on a resumed run: the picture as the store holds it at wall time `now`, and the
    /// desk's operators' work reloaded (it correlates the run again as the clock follows).
    pub(crate) fn resume_live(&mut self, now: Millis) -> Result<(), StoreError> {
        let (store, run) = (self.pipeline.store(), self.pipeline.run());
        let shown = store.picture_at(run, now)?;
        let entities = shown.len();
        self.picture.rebuild(shown);
        if let Some(desk) = &mut self.desk {
            desk.resume(store)?;
        }
        tracing::info!(run, entities, "live run resumed");
        Ok(())
    }

    /// True when the replay follows live feeds.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The pipeline and the picture, for live ingest to put messages through both.
    pub(crate) fn live_parts(&mut self) -> (&mut Pipeline, &mut Picture) {
        (&mut self.pipeline, &mut self.picture)
    }

    /// Live mode: the clock moves to wall time `now` (everything received so far is already
    /// ingested and on the picture), the pipeline commits, and the desk correlates the arrival
    /// seconds before `settled`.
    pub(crate) fn follow(&mut self, now: Millis, settled: Millis) -> Result<(), StoreError> {
        self.follow_clock(now);
        self.pipeline.flush()?;
        match &mut self.desk {
            Some(desk) => desk.correlate_to(self.pipeline.store(), settled),
            None => Ok(()),
        }
    }

    /// Live mode, while the store refuses commits: only the clock moves to wall time `now`.
    /// Correlation waits, since it reads what is committed and would pass over the held seconds.
    pub(crate) fn follow_clock(&mut self, now: Millis) {
        self.end_ms = self.end_ms.max(now);
        self.frontier_ms = self.frontier_ms.max(now);
        self.now_ms = self.now_ms.max(now);
    }

    /// The scenario being replayed.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The pipeline, for its store and statistics.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The incident desk, if the scenario correlates.
    pub fn desk(&self) -> Option<&Desk> {
        self.desk.as_ref()
    }

    /// The incident desk and the store it writes to, for operator actions.
    pub fn desk_mut(&mut self) -> Option<(&mut Desk, &cityops_store::Store)> {
        let store = self.pipeline.store();
        self.desk.as_mut().map(|d| (d, store))
    }

    /// Brings the incidents up to the clock (after the pipeline flushed).
    fn correlate(&mut self) -> Result<(), StoreError> {
        match &mut self.desk {
            Some(desk) => desk.correlate_to(self.pipeline.store(), self.now_ms),
            None => Ok(()),
        }
    }

    /// The current picture.
    pub fn picture(&self) -> &Picture {
        &self.picture
    }

    /// Brings the picture index up to the committed log (call after a flush). Past the
    /// scenario's end the frontier is an open bound, not a time to take snapshots up to.
    fn index_ingested(&mut self) -> Result<(), StoreError> {
        self.index
            .follow(self.pipeline.store(), self.frontier_ms.min(self.end_ms))
    }

    /// Scenario time the picture shows.
    pub fn now_ms(&self) -> Millis {
        self.now_ms
    }

    /// True when the clock reached the end and the whole tape is ingested.
    pub fn finished(&self) -> bool {
        !self.is_live() && self.now_ms >= self.end_ms && self.next >= self.scenario.messages.len()
    }

    /// Ingests every message with time <= `t` that has not been ingested yet.
    fn ingest_until(&mut self, t: Millis, update_picture: bool) -> Result<(), StoreError> {
        while let Some(msg) = self.scenario.messages.get(self.next) {
            if msg.time_ms > t {
                break;
            }
            let picture = update_picture.then_some(&mut self.picture);
            self.pipeline.ingest(msg, picture)?;
            self.next += 1;
        }
        self.frontier_ms = self.frontier_ms.max(t);
        Ok(())
    }

    /// Moves the clock forward to `t` (clamped to the scenario end), updating the picture.
    pub fn advance_to(&mut self, t: Millis) -> Result<(), StoreError> {
        let t = t.min(self.end_ms);
        if t <= self.now_ms {
            return Ok(());
        }
        if self.now_ms < self.frontier_ms {
            // Already ingested: the store has it.
            let upto = t.min(self.frontier_ms);
            self.pipeline.flush()?;
            let seen = self
                .pipeline
                .store()
                .arrived_between(self.pipeline.run(), self.now_ms, upto)?;
            self.picture.apply(&seen);
        }
        if t > self.frontier_ms {
            self.ingest_until(t, true)?;
        }
        self.now_ms = t;
        self.pipeline.flush()?;
        self.index_ingested()?;
        self.correlate()
    }

    /// At full speed: moves the clock to the time of the message `budget` messages ahead (never
    /// splitting messages of the same time), or to the end.
    pub fn step_max(&mut self, budget: usize) -> Result<(), StoreError> {
        let msgs = &self.scenario.messages;
        let target = if self.now_ms < self.frontier_ms {
            self.frontier_ms
        } else if self.next < msgs.len() {
            msgs[(self.next + budget.max(1) - 1).min(msgs.len() - 1)].time_ms
        } else {
            self.end_ms
        };
        // Messages stamped before the clock's position (out-of-order lines) are ingested at once.
        self.advance_to(target.max(self.now_ms + 1))
    }

    /// Puts the clock at `t` and rebuilds the picture from the store; ingests up to `t` first if
    /// the tape has not got that far.
    pub fn seek(&mut self, t: Millis) -> Result<(), StoreError> {
        let t = t.clamp(self.scenario.manifest.start_ms, self.end_ms);
        if t > self.frontier_ms {
            self.ingest_until(t, false)?;
        }
        self.pipeline.flush()?;
        if self.reader.is_none() {
            // Without a reader the seek still works, on one thread.
            self.reader = self.pipeline.store().reader().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no second connection to the store: the seek reads the picture and the incidents in turn");
                None
            });
        }
        let started = std::time::Instant::now();
        let settled = self.frontier_ms.min(self.end_ms);
        let (store, index, picture, desk) = (
            self.pipeline.store(),
            &mut self.index,
            &mut self.picture,
            &mut self.desk,
        );
        let seek_desk = |desk: &mut Option<Desk>| -> Result<f64, StoreError> {
            let started = std::time::Instant::now();
            if let Some(desk) = desk {
                desk.seek(store, t)?;
            }
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        // The picture and the incidents are independent: with a reader of its own, the picture
        // is read on a second thread while the desk correlates on this one.
        let (shown, incidents_ms) = match self.reader.take() {
            Some(reader) => std::thread::scope(|s| {
                let read = s.spawn(move || {
                    let shown = Self::picture_read(index, picture, &reader, settled, t);
                    (reader, shown)
                });
                let incidents = seek_desk(desk);
                let (reader, shown) = read.join().expect("the picture read does not panic");
                self.reader = Some(reader);
                (shown, incidents)
            }),
            None => {
                let shown = Self::picture_read(index, picture, store, settled, t);
                (shown, seek_desk(desk))
            }
        };
        let (indexed_ms, read_ms, entities) = shown?;
        let incidents_ms = incidents_ms?;
        self.now_ms = t;
        tracing::debug!(
            t,
            seek_ms = started.elapsed().as_secs_f64() * 1000.0,
            indexed_ms,
            read_ms,
            incidents_ms,
            entities,
            "seek"
        );
        Ok(())
    }

    /// The picture at `t` through the index (brought up to the ingested log first); returns
    /// the milliseconds the index and the read took and how many entities it shows.
    fn picture_read(
        index: &mut PictureIndex,
        picture: &mut Picture,
        store: &Store,
        settled: Millis,
        t: Millis,
    ) -> Result<(f64, f64, usize), StoreError> {
        let started = std::time::Instant::now();
        index.follow(store, settled)?;
        let indexed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let shown = index.picture_at(store, t)?;
        let entities = shown.len();
        crate::drop_aside(std::mem::take(picture));
        picture.rebuild(shown);
        Ok((
            indexed_ms,
            started.elapsed().as_secs_f64() * 1000.0 - indexed_ms,
            entities,
        ))
    }

    /// A trainer's inject: the scenario's palette entry `id` at the place picked, made now.
    /// It is recorded (with the exact tape line it became) before it goes through the
    /// pipeline like any tape message, onto the picture and, once the clock passes it, into
    /// the incidents. Refused in live mode, after the scenario's end and after the exercise
    /// ended.
    pub fn inject(
        &mut self,
        id: &str,
        lon: f64,
        lat: f64,
        trainer: &str,
        wall_ms: Millis,
    ) -> Result<InjectRow, EngineError> {
        if self.is_live() {
            return Err(EngineError::Forbidden(
                "injects are for exercises, not live feeds".into(),
            ));
        }
        self.open_for_trainee()?;
        if self.now_ms >= self.end_ms {
            return Err(EngineError::Forbidden(
                "the scenario is at its end: seek back to inject".into(),
            ));
        }
        let trainer = trainer.trim();
        if trainer.is_empty() {
            return Err(EngineError::InvalidInput("an inject needs the trainer's name".into()));
        }
        let spec = self
            .scenario
            .manifest
            .injects
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("inject {id:?} in the scenario's palette")))?;
        let (at, asset) = inject::place(spec, &self.scenario.assets, lon, lat)
            .map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        let run = self.pipeline.run();
        let n = self.pipeline.store().injects(run)?.len() as u64 + 1;
        let msg = inject::message(spec, n, self.now_ms, at, asset, trainer);
        let entity = inject::entity(spec, n, asset);
        let title = inject::title(spec, asset);
        let row = InjectRow {
            n,
            inject: spec.id.clone(),
            scenario_ms: self.now_ms,
            trainer: trainer.to_owned(),
            entity,
            title,
            line: tape::format_line(&msg),
        };
        self.pipeline.store().record_inject(run, &row, wall_ms)?;
        tracing::info!(inject = %row.inject, n, trainer, entity = %row.entity, at = self.now_ms, "trainer inject");
        // The inject lands behind the tape's frontier: the picture takes it now, and the store
        // keeps the frontier the tape reached.
        let outcome = self.pipeline.ingest_extra(&msg, Some(&mut self.picture))?;
        if !outcome.rejected.is_empty() {
            tracing::warn!(rejected = ?outcome.rejected, "an inject was refused by its feed's adapter");
        }
        self.pipeline.flush()?;
        if let Some(desk) = &mut self.desk {
            desk.added_at(self.pipeline.store(), self.now_ms)?;
        }
        Ok(row)
    }

    /// An operator's phone call or radio report entered as an incident (see
    /// `cityops_core::call`), made at scenario time `at_ms` by `operator`: recorded with its
    /// audit entry, durably, before it goes through the pipeline as the run's next call, onto
    /// the picture and, once the correlator passes its second, into an incident of the type
    /// chosen. Works in every mode; an exercise's calls close with it.
    pub fn call(
        &mut self,
        spec: &call::CallSpec,
        operator: &str,
        role: &str,
        at_ms: Millis,
        wall_ms: Millis,
    ) -> Result<CallRow, EngineError> {
        let (row, msg) = self.prepare_call(spec, operator, role, at_ms)?;
        self.pipeline.store().record_call(self.pipeline.run(), &row, wall_ms)?;
        self.ingest_call(&row, &msg)?;
        Ok(row)
    }

    /// Checks a call and makes its record and tape message, as the run's next call; nothing is
    /// written yet.
    pub(crate) fn prepare_call(
        &self,
        spec: &call::CallSpec,
        operator: &str,
        role: &str,
        at_ms: Millis,
    ) -> Result<(CallRow, tape::TapeMessage), EngineError> {
        self.open_for_trainee()?;
        // A call opens its incident once the clock passes its second, which a replay's clock
        // at its end never does.
        if !self.is_live() && self.now_ms >= self.end_ms {
            return Err(EngineError::Forbidden(
                "the scenario is at its end: seek back to enter a call".into(),
            ));
        }
        // The desk holds the rules (a live or site replay hands them over to it).
        let rules = self
            .desk
            .as_ref()
            .map(|d| d.correlator().rules())
            .ok_or_else(|| EngineError::NotFound("incident types (the scenario names no rules file)".into()))?;
        call::validate(spec, rules).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        let n = self.pipeline.store().calls(self.pipeline.run())?.len() as u64 + 1;
        let msg = call::message(spec, n, at_ms, operator);
        let row = CallRow {
            n,
            operator: operator.to_owned(),
            role: role.to_owned(),
            scenario_ms: at_ms,
            entity: call::entity(n),
            incident_type: spec.incident_type.clone(),
            line: tape::format_line(&msg),
        };
        Ok((row, msg))
    }

    /// Ingests a call recorded with [`Store::record_call`].
    pub(crate) fn ingest_call(&mut self, row: &CallRow, msg: &tape::TapeMessage) -> Result<(), EngineError> {
        tracing::info!(entity = %row.entity, incident_type = %row.incident_type, operator = %row.operator, at = row.scenario_ms, "operator call");
        // Like an inject, the call lands behind the feeds' frontier, which it must not move.
        let outcome = self.pipeline.ingest_extra(msg, Some(&mut self.picture))?;
        if !outcome.rejected.is_empty() {
            tracing::warn!(rejected = ?outcome.rejected, "a call was refused by its feed's adapter");
        }
        self.pipeline.flush()?;
        if let Some(desk) = &mut self.desk {
            desk.added_at(self.pipeline.store(), row.scenario_ms)?;
        }
        Ok(())
    }

    /// Ends the exercise at the clock's time (once; later calls return the first end): the clock
    /// stops and the trainee's record is closed, while the clock can still be moved for review.
    pub fn end_exercise(&mut self, by: &str, role: &str, wall_ms: Millis) -> Result<(Millis, String), EngineError> {
        if self.is_live() {
            return Err(EngineError::Forbidden("live work is not an exercise".into()));
        }
        self.playing = false;
        let ended = self
            .pipeline
            .store()
            .end_exercise(self.pipeline.run(), self.now_ms, by, role, wall_ms)?;
        tracing::info!(at = ended.0, by = %ended.1, "exercise ended");
        self.ended = Some(ended.clone());
        Ok(ended)
    }

    /// Notes an end made elsewhere: a trainer's on an exercise site, which every workstation
    /// of the site applies where the stream places it. The trainee's record closes here too.
    pub(crate) fn note_ended(&mut self, ended: (Millis, String)) {
        self.playing = false;
        self.ended = Some(ended);
    }

    /// When the exercise was ended, and by whom.
    pub fn ended(&self) -> Option<&(Millis, String)> {
        self.ended.as_ref()
    }

    /// Refuses what changes the trainee's record once the exercise has ended.
    pub fn open_for_trainee(&self) -> Result<(), EngineError> {
        match &self.ended {
            Some((at, _)) => Err(EngineError::Forbidden(format!(
                "the exercise ended at scenario time {}",
                crate::report::hhmm(*at)
            ))),
            None => Ok(()),
        }
    }

    /// Ingests whatever is left of the tape without updating the picture (headless replays).
    pub fn run_to_end(&mut self) -> Result<(), StoreError> {
        self.ingest_until(Millis::MAX, false)?;
        self.now_ms = self.end_ms;
        self.pipeline.flush()?;
        self.index_ingested()?;
        self.correlate()
    }

    /// The store refused a commit for `fault` (a full or read-only disk) at wall time `at`: the
    /// operator is told, with how much waits in memory, on the same board live mode uses.
    pub(crate) fn storage_refused(&mut self, fault: &str, at: Millis) {
        let (path, held) = (self.pipeline.store().path().to_owned(), self.pipeline.buffered());
        self.storage_board().storage_failed(&path, fault, held, at);
    }

    /// Tries again what a refused commit left undone: commits what the pipeline holds, then
    /// brings the picture index and the incidents up to the clock, as the step that failed
    /// would have. On success the operator is told everything is stored.
    pub(crate) fn retry_store(&mut self) -> Result<(), StoreError> {
        self.pipeline.flush()?;
        self.index_ingested()?;
        self.correlate()?;
        self.storage_board().storage_ok();
        Ok(())
    }

    fn storage_board(&mut self) -> &Health {
        match &mut self.live {
            Some((health, _, _)) => health,
            None => &self.disk.get_or_insert_with(|| (Health::default(), None)).0,
        }
    }

    /// Commits what the pipeline buffered and writes the incidents a seek left for later, so
    /// that store queries see everything ingested and the incidents at the clock's time.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.pipeline.flush()?;
        match &mut self.desk {
            Some(desk) => desk.write_behind(self.pipeline.store()),
            None => Ok(()),
        }
    }

    /// One step of [`Replay::flush`]'s incident writing (see [`Desk::write_behind_step`]),
    /// after committing what the pipeline buffered; returns whether more remains.
    pub fn write_behind_step(&mut self) -> Result<bool, StoreError> {
        self.pipeline.flush()?;
        match &mut self.desk {
            Some(desk) => desk.write_behind_step(self.pipeline.store()),
            None => Ok(false),
        }
    }

    /// The newest quarantine entries of this run (of one feed, if given), after committing
    /// what is buffered so that nothing refused so far is missing.
    pub fn quarantine(&mut self, feed: Option<&str>) -> Result<QuarantineDto, StoreError> {
        self.pipeline.flush()?;
        self.pipeline
            .store()
            .quarantine_page(self.pipeline.run(), feed, QUARANTINE_PAGE, QUARANTINE_PREVIEW_BYTES)
    }

    /// The clock as the UI shows it.
    pub fn clock(&self) -> ClockDto {
        ClockDto {
            start_ms: self.scenario.manifest.start_ms,
            end_ms: self.end_ms,
            now_ms: self.now_ms,
            playing: self.playing,
            speed: self.speed,
            ingested_until_ms: self.frontier_ms.clamp(self.scenario.manifest.start_ms, self.end_ms),
            finished: self.finished(),
            ended_ms: self.ended.as_ref().map(|e| e.0),
            trainer_view: self.trainer_view,
        }
    }

    /// What changed since the last diff (or everything, if `full`), with the clock.
    pub fn take_diff(&mut self, full: bool) -> MapDiffDto {
        let diff = self.picture.take_diff();
        let (reset, upserts) = if full {
            (true, self.picture.observations().map(MapFeatureDto::from).collect())
        } else {
            (diff.reset, diff.upserts.iter().map(MapFeatureDto::from).collect())
        };
        let mut counts = [0u32; 4];
        for o in self.picture.observations() {
            counts[Layer::ALL.iter().position(|l| *l == o.layer).unwrap_or(0)] += 1;
        }
        let layers = Layer::ALL
            .iter()
            .zip(counts)
            .map(|(l, count)| LayerAgeDto {
                layer: *l,
                newest_observed_ms: diff.newest.get(l).copied(),
                count,
            })
            .collect();
        let incidents = self.desk.as_mut().and_then(|d| d.take_diff(full));
        let now = self.now_ms;
        // Feed health goes out when it changed (its rate and stale flag move with the clock).
        let (feeds, storage) = match &mut self.live {
            Some((health, sent, sent_storage)) => (
                unsent(full, sent, health.snapshot(now)),
                unsent(full, sent_storage, health.storage()),
            ),
            None => (
                None,
                self.disk
                    .as_mut()
                    .and_then(|(health, sent)| unsent(full, sent, health.storage())),
            ),
        };
        MapDiffDto {
            reset,
            upserts,
            clock: self.clock(),
            layers,
            incidents,
            outbox: None,
            feeds,
            storage,
            site: None,
        }
    }
}
