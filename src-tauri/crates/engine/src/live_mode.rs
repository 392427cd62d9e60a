//! Live mode of the [`crate::Engine`]: the feeds of a configuration instead of a tape.
//!
//! The transports and the ingest are the ones `cityops ingest` runs ([`cityops_live::spawn_transports`],
//! [`cityops_live::Ingest`]), so a live message takes exactly the path a tape line takes: it becomes a
//! `TapeMessage`, goes through its feed's adapter and the [`Pipeline`](cityops_live::pipeline::Pipeline), and lands on the same
//! picture of a [`Replay`]. The difference is only the clock: the engine passes in wall time,
//! and the incident desk correlates arrival seconds once wall time has passed them (reading
//! them back from the store, as in a replay).

use std::path::PathBuf;
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_core::scenario::Manifest;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::dto::{IncidentTypeDto, ScenarioDto};
use crate::error::EngineError;
use crate::replay::Replay;
use crate::scenario::{load_assets_and_rules, load_zones, Scenario};
use cityops_live::config::LiveConfig;
use cityops_live::{
    held_on_disk_fault, open_pipeline, spawn_transports, Health, Incoming, Ingest, StoreWatch, Transports,
    MAX_HELD_ROWS,
};
use cityops_store::Store;

/// How long after the end of an arrival second the desk correlates it. A transport stamps a
/// message when it arrives and only then queues it for ingest, so a message stamped just before
/// a second ended can reach the ingest a little later; waiting one second lets it join its
/// second instead of missing correlation. Observations reach the map at once regardless.
pub const SETTLE_MS: Millis = 1_000;
/// The most one clock tick spends ingesting before it publishes, so a burst cannot freeze the
/// map; what is left waits in the channel for the next tick.
const INGEST_SLICE: Duration = Duration::from_millis(60);

/// Where a live engine finds its inputs.
#[derive(Debug, Clone)]
pub struct LiveEngineConfig {
    /// The feed configuration (`fixtures/feeds/README.md`).
    pub feeds: PathBuf,
    /// The SQLite database (created if missing); each start is a new run.
    pub db_path: PathBuf,
    /// The folder of `<name>.mbtiles` basemap archives.
    pub maps_dir: PathBuf,
    /// The backends file operators' actions go to (`fixtures/backends/README.md`); live, they
    /// are really sent.
    pub backends: Option<PathBuf>,
}

/// The running feeds of a live engine; dropping it stops their transports.
pub(crate) struct LiveMode {
    transports: Transports,
    /// The first message of a backlog a tick left for the next one: its arrival time bounds
    /// what the desk may correlate, since everything behind it arrived no earlier.
    held: Option<Incoming>,
    /// The most one tick spends ingesting ([`INGEST_SLICE`]).
    slice: Duration,
    ingest: Ingest,
    /// The feeds' and the store's health board (the one the replay publishes).
    health: Health,
    /// Whether the disk refuses commits, and when to try again.
    store_watch: StoreWatch,
    stop: watch::Sender<bool>,
}

impl LiveMode {
    /// Reads the configuration, opens the store on a new run and starts every feed's transport
    /// on the current runtime. `now` is the wall time the live clock starts at.
    pub(crate) fn start(
        config: &LiveEngineConfig,
        now: Millis,
    ) -> Result<(LiveMode, Replay, ScenarioDto), EngineError> {
        let live = LiveConfig::load(&config.feeds).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        let base = live.base_dir();
        let (assets, rules) = load_assets_and_rules(&base, live.assets.as_deref(), live.rules.as_deref())?;
        let rules_path = base.join(live.rules.as_deref().unwrap_or_default());
        let zones = load_zones(&base, live.zones.as_deref(), rules.as_ref(), &rules_path)?;
        let (pipeline, resumed) = open_pipeline(&live, Store::open(&config.db_path)?, true)?;
        let run = pipeline.run();
        // A resumed run's clock starts where its first message arrived.
        let start_ms = if resumed {
            pipeline.store().arrival_span(run)?.map_or(now, |s| s.0.min(now))
        } else {
            now
        };
        let manifest = Manifest {
            name: live.name.clone(),
            description: format!("Live feeds of {}", live.path.display()),
            map: live.map.clone(),
            start_ms,
            end_ms: None,
            tape: String::new(),
            assets: live.assets.clone(),
            rules: live.rules.clone(),
            zones: live.zones.clone(),
            view: live.view,
            feeds: live.feeds.iter().map(|f| f.spec.clone()).collect(),
            // Live work has no exercise objectives.
            objectives: Vec::new(),
            injects: Vec::new(),
        };
        let mut dto = ScenarioDto::new(&manifest, now);
        dto.live = true;
        dto.incident_types = rules.as_ref().map(IncidentTypeDto::all).unwrap_or_default();
        dto.zones = crate::dto::ZoneDto::all(&zones);
        let scenario = Scenario {
            dir: base,
            manifest,
            tape_path: PathBuf::new(),
            messages: Vec::new(),
            tape_issues: Vec::new(),
            assets,
            rules,
            zones,
        };
        tracing::info!(config = %live.path.display(), run, resumed, db = %config.db_path.display(), feeds = live.feeds.len(), "live engine started");
        let health = Health::default();
        let mut ingest = Ingest::new(&live, None, health.clone())?;
        let seq = pipeline.store().frontier(run)?.0;
        ingest.continue_after(seq);
        let (stop, stop_rx) = watch::channel(false);
        let transports = spawn_transports(&live, &health, stop_rx);
        let mut replay = Replay::live(scenario, pipeline, health.clone());
        if resumed {
            replay.resume_live(now)?;
        }
        Ok((
            LiveMode {
                transports,
                held: None,
                slice: INGEST_SLICE,
                ingest,
                health,
                store_watch: StoreWatch::default(),
                stop,
            },
            replay,
            dto,
        ))
    }

    /// One clock tick: puts what the transports delivered through the pipeline onto the
    /// picture, then moves the clock to wall time `now` (read after the drain). A backlog left
    /// for the next tick holds correlation back to its first arrival time.
    ///
    /// A full or read-only disk does not fail the tick: what arrives stays on the map and in
    /// memory (up to [`MAX_HELD_ROWS`], then the transports wait), the fault goes on the health
    /// board for the operator, and the commit is tried again every [`RETRY_STORE`](cityops_live::RETRY_STORE).
    pub(crate) fn pump(&mut self, replay: &mut Replay, now: impl FnOnce() -> Millis) -> Result<(), EngineError> {
        let deadline = Instant::now() + self.slice;
        let (pipeline, picture) = replay.live_parts();
        // Empty or disconnected (every transport ended): nothing more this tick.
        while let Some(incoming) = self.held.take().or_else(|| self.transports.rx.try_recv().ok()) {
            if Instant::now() >= deadline || (pipeline.refusing() && pipeline.buffered() >= MAX_HELD_ROWS) {
                self.held = Some(incoming);
                break;
            }
            held_on_disk_fault(self.ingest.handle(incoming, pipeline, Some(picture)))?;
        }
        let now = now();
        let settled = (now - SETTLE_MS).min(self.held.as_ref().map_or(Millis::MAX, Incoming::arrived_ms));
        if self.store_watch.waiting() {
            replay.follow_clock(now);
            return Ok(());
        }
        let followed = replay.follow(now, settled).map_err(cityops_live::LiveError::from);
        if self
            .store_watch
            .settle(followed, replay.pipeline(), &self.health, now)?
        {
            // The pipeline committed: drop-folder files now stored can leave their folder.
            self.ingest.settle();
        }
        Ok(())
    }
}

impl Drop for LiveMode {
    fn drop(&mut self) {
        // Transports wait on this signal; a dropped sender alone would not stop them cleanly.
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_live::DropFile;
    use tokio::sync::mpsc;

    /// A live engine on one drop-folder feed, with the demo's rules and assets, whose channel
    /// the test feeds instead of the transports.
    fn live(dir: &std::path::Path) -> (LiveMode, Replay, mpsc::Sender<Incoming>) {
        live_at(dir, 1_000_000)
    }

    /// The same, started at wall time `now`.
    fn live_at(dir: &std::path::Path, now: Millis) -> (LiveMode, Replay, mpsc::Sender<Incoming>) {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let config = format!(
            "rules = \"{}\"\nassets = \"{}\"\n[[feeds]]\nid = \"scada\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"file-drop\"\ndir = \"inbox\"\n",
            repo.join("fixtures/rules/default.toml").display(),
            repo.join("fixtures/scenarios/helsinki-storm/assets.geojson").display(),
        );
        std::fs::create_dir_all(dir.join("inbox")).unwrap();
        std::fs::write(dir.join("feeds.toml"), config).unwrap();
        let paths = LiveEngineConfig {
            feeds: dir.join("feeds.toml"),
            db_path: dir.join("live.db"),
            maps_dir: dir.to_owned(),
            backends: None,
        };
        let (mut mode, replay, _) = LiveMode::start(&paths, now).unwrap();
        let (tx, rx) = mpsc::channel(16);
        mode.transports.rx = rx;
        (mode, replay, tx)
    }

    fn trip(received_ms: Millis) -> Incoming {
        let body = r#"{"type":"Feature","id":"way/644615094","geometry":{"type":"Point","coordinates":[24.942313,60.173151]},
            "properties":{"kind":"substation.trip","severity":"extreme","title":"Substation tripped: Kaisankuja substation"}}"#;
        Incoming::Message {
            feed: 0,
            topic: None,
            format: None,
            body: body.as_bytes().to_vec(),
            received_ms,
        }
    }

    #[tokio::test]
    async fn a_restarted_live_engine_carries_on_with_its_run_and_the_operators_work() {
        use crate::dto::{LifecycleStatus, OperatorRole};
        let dir = tempfile::tempdir().unwrap();
        let (mut mode, mut replay, tx) = live(dir.path());
        tx.send(trip(1_005_000)).await.unwrap();
        mode.pump(&mut replay, || 1_007_000).unwrap();
        let (desk, store) = replay.desk_mut().unwrap();
        desk.sign_in(store, "Aino", OperatorRole::Operator, None, 0).unwrap();
        let id = desk.correlator().incidents().next().unwrap().id.0.to_string();
        desk.transition(store, &id, LifecycleStatus::Acknowledged, 0, 1_007_000)
            .unwrap();
        desk.tick_sop(store, &id, 1, true, 0, 1_007_000).unwrap();
        desk.take_ownership(store, &id, None, 0, 1_007_000).unwrap();
        // The app goes away without a word (nothing here flushes on drop) and starts again.
        drop((mode, replay, tx));
        let (mut mode, mut replay, tx) = live_at(dir.path(), 1_010_000);
        assert_eq!(replay.pipeline().run(), 1, "the same run, not a new one");
        assert_eq!(
            replay.clock().start_ms,
            1_005_000,
            "the clock starts at the run's first arrival"
        );
        assert!(
            replay.picture().get("way/644615094").is_some(),
            "the map shows what arrived before"
        );
        mode.pump(&mut replay, || 1_011_000).unwrap();
        let desk = replay.desk().unwrap();
        let ids: Vec<String> = desk.correlator().incidents().map(|i| i.id.0.to_string()).collect();
        assert_eq!(
            ids,
            vec![id.clone()],
            "the incident is correlated again with the same id"
        );
        assert_eq!(desk.status(&id), LifecycleStatus::Acknowledged);
        let detail = desk.detail(&id).unwrap();
        assert_eq!(detail.entry.acknowledged_by.as_deref(), Some("Aino"));
        assert!(
            detail.sop.iter().any(|s| s.ticked && s.by.as_deref() == Some("Aino")),
            "{:?}",
            detail.sop
        );
        assert_eq!(detail.entry.owner.as_deref(), Some("Aino"), "the owner came back too");
        // Another operator cannot take Aino's incident; a supervisor can give it.
        let (desk, store) = replay.desk_mut().unwrap();
        desk.sign_in(store, "Bo", OperatorRole::Operator, None, 0).unwrap();
        let refused = desk.take_ownership(store, &id, None, 0, 1_011_000).unwrap_err();
        assert!(refused.to_string().contains("is Aino's"), "{refused}");
        let refused = desk.take_ownership(store, &id, Some("Cai"), 0, 1_011_000).unwrap_err();
        assert!(refused.to_string().contains("given by a supervisor"), "{refused}");
        assert_eq!(store.owners(1).unwrap().len(), 1, "a refusal records nothing");
        // Messages after the restart are numbered on from the last one before it.
        tx.send(trip(1_011_500)).await.unwrap();
        mode.pump(&mut replay, || 1_013_000).unwrap();
        assert_eq!(replay.pipeline().store().frontier(1).unwrap().0, 2);
        assert_eq!(replay.pipeline().store().stored_incidents(1).unwrap().len(), 1);
    }

    /// A drop-folder file whose observations were committed but which a crash left in the
    /// folder comes round again after the restart: it is moved, not stored a second time.
    #[tokio::test]
    async fn a_dropped_file_is_stored_once_and_moved_only_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut mode, mut replay, tx) = live(dir.path());
        let inbox = dir.path().join("inbox");
        std::fs::create_dir_all(inbox.join("processed")).unwrap();
        let file = || DropFile {
            key: "trip.geojson:1:1".into(),
            path: inbox.join("trip.geojson"),
            done: inbox.join("processed/trip.geojson"),
        };
        let Incoming::Message { body, received_ms, .. } = trip(1_005_000) else {
            unreachable!()
        };
        let dropped = |received_ms| Incoming::File {
            feed: 0,
            format: None,
            body: body.clone(),
            received_ms,
            file: file(),
        };
        std::fs::write(inbox.join("trip.geojson"), &body).unwrap();
        tx.send(dropped(received_ms)).await.unwrap();
        mode.pump(&mut replay, || 1_007_000).unwrap();
        let count = |replay: &Replay| replay.pipeline().store().arrived_between(1, 0, i64::MAX).unwrap().len();
        assert_eq!(count(&replay), 1);
        assert!(
            inbox.join("processed/trip.geojson").exists() && !inbox.join("trip.geojson").exists(),
            "moved after the commit"
        );
        // The same file again (the move was lost to a crash): the stored key lets it through
        // without a second observation.
        std::fs::write(inbox.join("trip.geojson"), &body).unwrap();
        tx.send(dropped(1_008_000)).await.unwrap();
        mode.pump(&mut replay, || 1_009_000).unwrap();
        assert_eq!(count(&replay), 1, "stored twice");
        assert!(!inbox.join("trip.geojson").exists(), "the file is moved all the same");
    }

    #[tokio::test]
    async fn a_backlog_holds_correlation_back_until_it_is_ingested() {
        let dir = tempfile::tempdir().unwrap();
        let (mut mode, mut replay, tx) = live(dir.path());
        let arrived = 1_005_000;
        tx.send(trip(arrived)).await.unwrap();
        // A tick with no time to ingest leaves the trip waiting: wall time is well past its
        // second, yet the desk must not close that second without it.
        mode.slice = Duration::ZERO;
        mode.pump(&mut replay, || arrived + 10_000).unwrap();
        assert!(replay.picture().get("way/644615094").is_none());
        assert_eq!(replay.desk().unwrap().correlator().incidents().count(), 0);
        mode.slice = INGEST_SLICE;
        mode.pump(&mut replay, || arrived + 10_100).unwrap();
        assert!(replay.picture().get("way/644615094").is_some());
        let titles: Vec<String> = replay
            .desk()
            .unwrap()
            .correlator()
            .incidents()
            .map(|i| i.title.clone())
            .collect();
        assert_eq!(titles, ["Power outage: Kaisankuja substation"]);
        assert_eq!(replay.clock().now_ms, arrived + 10_100);
    }

    #[tokio::test]
    async fn the_desk_waits_one_second_past_an_arrival_second() {
        let dir = tempfile::tempdir().unwrap();
        let (mut mode, mut replay, tx) = live(dir.path());
        let arrived = 1_005_200;
        tx.send(trip(arrived)).await.unwrap();
        mode.pump(&mut replay, || 1_006_500).unwrap();
        assert!(replay.picture().get("way/644615094").is_some(), "on the map at once");
        assert_eq!(
            replay.desk().unwrap().correlator().incidents().count(),
            0,
            "its second ended only 0.5 s ago"
        );
        mode.pump(&mut replay, || 1_007_000).unwrap();
        assert_eq!(replay.desk().unwrap().correlator().incidents().count(), 1);
    }
}
