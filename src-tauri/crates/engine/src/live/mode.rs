//! Live mode of the [`crate::Engine`]: the feeds of a configuration instead of a tape.
//!
//! The transports and the ingest are the ones `cityops ingest` runs ([`super::spawn_transports`],
//! [`super::Ingest`]), so a live message takes exactly the path a tape line takes: it becomes a
//! `TapeMessage`, goes through its feed's adapter and the [`Pipeline`], and lands on the same
//! picture of a [`Replay`]. The difference is only the clock: the engine passes in wall time,
//! and the incident desk correlates arrival seconds once wall time has passed them (reading
//! them back from the store, as in a replay).

use std::path::PathBuf;
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_core::scenario::Manifest;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{open_pipeline, spawn_transports, Health, Ingest, Transports};
use crate::config::LiveConfig;
use crate::dto::ScenarioDto;
use crate::error::EngineError;
use crate::replay::Replay;
use crate::scenario::{load_assets_and_rules, Scenario};
use crate::store::Store;

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
}

/// The running feeds of a live engine; dropping it stops their transports.
pub(crate) struct LiveMode {
    transports: Transports,
    ingest: Ingest,
    stop: watch::Sender<bool>,
}

impl LiveMode {
    /// Reads the configuration, opens the store on a new run and starts every feed's transport
    /// on the current runtime. `now` is the wall time the live clock starts at.
    pub(crate) fn start(config: &LiveEngineConfig, now: Millis) -> Result<(LiveMode, Replay, ScenarioDto), EngineError> {
        let live = LiveConfig::load(&config.feeds).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
        let base = live.base_dir();
        let (assets, rules) = load_assets_and_rules(&base, live.assets.as_deref(), live.rules.as_deref())?;
        let manifest = Manifest {
            name: live.name.clone(),
            description: format!("Live feeds of {}", live.path.display()),
            map: live.map.clone(),
            start_ms: now,
            end_ms: None,
            tape: String::new(),
            assets: live.assets.clone(),
            rules: live.rules.clone(),
            view: live.view,
            feeds: live.feeds.iter().map(|f| f.spec.clone()).collect(),
        };
        let mut dto = ScenarioDto::new(&manifest, now);
        dto.live = true;
        let scenario = Scenario { dir: base, manifest, tape_path: PathBuf::new(), messages: Vec::new(), tape_issues: Vec::new(), assets, rules };
        let pipeline = open_pipeline(&live, Store::open(&config.db_path)?)?;
        tracing::info!(config = %live.path.display(), run = pipeline.run(), db = %config.db_path.display(), feeds = live.feeds.len(), "live engine started");
        let health = Health::default();
        let ingest = Ingest::new(&live, None, health.clone())?;
        let (stop, stop_rx) = watch::channel(false);
        let transports = spawn_transports(&live, &health, stop_rx);
        Ok((LiveMode { transports, ingest, stop }, Replay::live(scenario, pipeline, health), dto))
    }

    /// One clock tick: puts what the transports delivered through the pipeline onto the
    /// picture, then moves the clock to wall time `now` (read by the caller after the drain).
    pub(crate) fn pump(&mut self, replay: &mut Replay, now: impl FnOnce() -> Millis) -> Result<(), EngineError> {
        let deadline = Instant::now() + INGEST_SLICE;
        let (pipeline, picture) = replay.live_parts();
        // Empty or disconnected (every transport ended): nothing more this tick.
        while let Ok(incoming) = self.transports.rx.try_recv() {
            self.ingest.handle(incoming, pipeline, Some(picture))?;
            if Instant::now() >= deadline {
                break;
            }
        }
        let now = now();
        replay.follow(now, now - SETTLE_MS)?;
        Ok(())
    }
}

impl Drop for LiveMode {
    fn drop(&mut self) {
        // Transports wait on this signal; a dropped sender alone would not stop them cleanly.
        let _ = self.stop.send(true);
    }
}
