//! Whole-scenario replays without a window, for the `cityops` CLI, CI and trainers.

use std::path::Path;
use std::time::Instant;

use cityops_core::digest::ObservationDigest;
use cityops_core::model::Layer;
use serde::Serialize;

use crate::error::EngineError;
use crate::replay::Replay;
use crate::scenario::Scenario;
use cityops_live::pipeline::Pipeline;
use cityops_store::{RunId, Store, StoreError};

/// The summary `cityops replay --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    /// The scenario's name.
    pub scenario: String,
    /// The run written in the database.
    pub run: RunId,
    /// Tape messages fed through the pipeline.
    pub messages: u64,
    /// Observations accepted, all layers.
    pub accepted: u64,
    /// Observations accepted per layer.
    pub per_layer: std::collections::BTreeMap<String, u64>,
    /// Pieces of input refused and quarantined (tape lines, messages, features).
    pub rejected: u64,
    /// SHA-256 of the stored observation set, in arrival order (see `cityops_core::digest`).
    pub observation_set_hash: String,
    /// Incidents at the end of the replay (open, cleared and merged ones).
    pub incidents: u64,
    /// SHA-256 of the incident set (ids, members, explanations; see `incidents::incident_set_hash`).
    pub incident_set_hash: String,
    /// Wall time of the replay itself, in milliseconds.
    pub elapsed_ms: u64,
}

/// The hash and size of a run's stored observation set.
pub fn observation_set_hash(store: &Store, run: RunId) -> Result<(String, u64), StoreError> {
    let mut digest = ObservationDigest::new();
    store.for_each(run, |o| digest.add(o))?;
    let n = digest.count();
    Ok((digest.finish(), n))
}

/// Summarises a finished run from what the store holds.
pub fn summarize(replay: &Replay, elapsed_ms: u64) -> Result<ReplaySummary, EngineError> {
    let store = replay.pipeline().store();
    let run = replay.pipeline().run();
    let counts = store.counts(run)?;
    let (hash, accepted) = observation_set_hash(store, run)?;
    Ok(ReplaySummary {
        scenario: replay.scenario().manifest.name.clone(),
        run,
        messages: replay.pipeline().stats().messages,
        accepted,
        per_layer: counts
            .per_layer
            .iter()
            .map(|(l, n)| (l.as_str().to_owned(), *n))
            .collect(),
        rejected: counts.quarantined,
        observation_set_hash: hash,
        incidents: replay
            .desk()
            .map(|d| d.correlator().incidents().count() as u64)
            .unwrap_or(0),
        incident_set_hash: replay.desk().map(|d| d.incident_set_hash()).unwrap_or_default(),
        elapsed_ms,
    })
}

/// Opens a scenario replay on a new run in the database at `db`.
pub fn open_replay(scenario_dir: &Path, db: &Path) -> Result<Replay, EngineError> {
    let scenario = Scenario::load(scenario_dir)?;
    let store = Store::open(db)?;
    let run = store.begin_run(&scenario.manifest.name, &chrono::Utc::now().to_rfc3339())?;
    let pipeline = Pipeline::new(store, run, &scenario.manifest.feeds, &scenario.dir)?;
    Ok(Replay::new(scenario, pipeline))
}

/// Replays a whole scenario as fast as the pipeline goes and summarises it.
pub fn replay_max(scenario_dir: &Path, db: &Path) -> Result<ReplaySummary, EngineError> {
    let mut replay = open_replay(scenario_dir, db)?;
    let started = Instant::now();
    replay.run_to_end()?;
    let elapsed = started.elapsed().as_millis() as u64;
    summarize(&replay, elapsed)
}

/// Layers in the order summaries print them.
pub fn layer_names() -> Vec<&'static str> {
    Layer::ALL.iter().map(|l| l.as_str()).collect()
}

/// Replays a whole scenario on the paced clock at `factor` times real time, ticking the way the
/// engine does, and summarises it. On a paused tokio runtime this runs instantly and proves
/// that pacing does not change the outcome.
pub async fn replay_paced(scenario_dir: &Path, db: &Path, factor: f64) -> Result<ReplaySummary, EngineError> {
    let mut replay = open_replay(scenario_dir, db)?;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(crate::engine::TICK);
    let mut last = tokio::time::Instant::now();
    while !replay.finished() {
        ticker.tick().await;
        let dt = (last.elapsed().as_secs_f64() * 1000.0 * factor).round() as i64;
        last = tokio::time::Instant::now();
        replay.advance_to(replay.now_ms() + dt)?;
    }
    summarize(&replay, started.elapsed().as_millis() as u64)
}
