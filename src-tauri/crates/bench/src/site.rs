//! A site's benchmarks, against a real nats-server (`tests/peers/nats/run.sh`):
//! - **catch-up**: a workstation following a generated city day from an empty cache, against
//!   `cityops replay` of the same tape in the same process (the ratio holds on a noisy machine
//!   where absolute rates do not);
//! - **propagation**: an operator's event published at one workstation until another
//!   workstation's cache holds its effect, while a steady feed load runs through the site.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cityops_core::scenario::Manifest;
use cityops_core::tape::{self, TapeMessage};
use cityops_engine::error::EngineError;
use cityops_engine::follow::{self, Follower};
use cityops_engine::headless;
use cityops_engine::scenario::Scenario;
use cityops_site::{Credentials, Op, OpEvent, Outgoing, Site, SiteId};
use serde::Serialize;

use crate::{generate, Tape, DEFAULT_RULES, MANIFEST};

/// What `cityops-bench site` prints for the catch-up.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchUpReport {
    /// Observations accepted (the same by both ways, or the report says so).
    pub observations: u64,
    /// Messages on the tape, and in the site's stream.
    pub messages: u64,
    /// Seconds the replay took once its tape was loaded (what `cityops replay` reports).
    pub replay_secs: f64,
    /// Seconds the whole `cityops replay` took: reading and parsing the tape file, then the
    /// replay. A workstation parses each tape line as it arrives, so this is the like-for-like
    /// figure.
    pub replay_command_secs: f64,
    /// Seconds a workstation took from an empty cache to everything applied.
    pub follow_secs: f64,
    /// Observations per second of each.
    pub replay_per_sec: f64,
    pub follow_per_sec: f64,
    /// `follow_per_sec / replay_per_sec`.
    pub ratio: f64,
    /// The same against the whole command (`replay_command_secs`).
    pub command_ratio: f64,
    /// Incidents each made; equal when the site reproduces the replay.
    pub replay_incidents: u64,
    pub follow_incidents: u64,
    /// Seconds publishing the tape into the site took (not compared).
    pub publish_secs: f64,
}

/// A scenario folder of the generated city day: the benchmark manifest with a tape and the
/// default rules.
fn city_scenario(dir: &Path, n: usize) -> Result<Vec<TapeMessage>, EngineError> {
    let manifest = Manifest::parse(MANIFEST).expect("the benchmark manifest is valid");
    let (messages, _) = generate(&manifest, n, Tape::City);
    let text = MANIFEST.replacen(
        "[[feeds]]",
        "tape = \"tape.ndjson\"\nrules = \"rules.toml\"\n[[feeds]]",
        1,
    );
    let io = |path: &Path, e: std::io::Error| EngineError::Io {
        path: path.to_owned(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, body: &[u8]| std::fs::write(dir.join(name), body).map_err(|e| io(&dir.join(name), e));
    write("scenario.toml", text.as_bytes())?;
    write("rules.toml", DEFAULT_RULES.as_bytes())?;
    let mut tape_text = String::new();
    for m in &messages {
        tape_text.push_str(&tape::format_line(m));
        tape_text.push('\n');
    }
    write("tape.ndjson", tape_text.as_bytes())?;
    Ok(messages)
}

async fn connect(url: &str, site: &str) -> Result<Site, EngineError> {
    let id: SiteId = site.parse()?;
    let site = Site::connect(url, id, Credentials::from_env()).await?;
    site.init(1, false, cityops_site::dispatch::DEFAULT_ACK_WAIT).await?;
    Ok(site)
}

/// The catch-up benchmark with `n` generated observations, its databases in `dir`.
pub async fn catch_up(url: &str, n: usize, dir: &Path) -> Result<CatchUpReport, EngineError> {
    let scenario_dir = dir.join("city");
    let messages = city_scenario(&scenario_dir, n)?;
    let started = Instant::now();
    let replayed = headless::replay_max(&scenario_dir, &dir.join("replay.db"))?;
    let replay_command_secs = started.elapsed().as_secs_f64();

    let site = connect(url, &format!("bench-{}", std::process::id())).await?;
    let id = site.id().clone();
    let config = Scenario::site_config(&scenario_dir)?;
    let started = Instant::now();
    let end = messages.last().map_or(0, |m| (m.time_ms.div_euclid(1000) + 1) * 1000);
    let outgoing = std::iter::once(Outgoing::config(&id, &config))
        .chain(messages.iter().map(|m| Outgoing::tape_line(&id, m)))
        .chain(std::iter::once(Outgoing::tick(&id, end)));
    site.publish(outgoing).await?;
    let publish_secs = started.elapsed().as_secs_f64();

    let mut follower = Follower::open(&dir.join("follow.db"), id)?;
    let started = Instant::now();
    let followed = follow::follow_until_idle(&site, &mut follower).await?;
    let follow_secs = started.elapsed().as_secs_f64();
    let replay_secs = replayed.elapsed_ms as f64 / 1000.0;
    let replay_per_sec = replayed.accepted as f64 / replay_secs;
    let follow_per_sec = followed.accepted as f64 / follow_secs;
    if followed.accepted != replayed.accepted {
        tracing::error!(
            replayed = replayed.accepted,
            followed = followed.accepted,
            "the workstation and the replay disagree"
        );
    }
    Ok(CatchUpReport {
        observations: followed.accepted,
        messages: messages.len() as u64,
        replay_secs,
        follow_secs,
        replay_per_sec,
        follow_per_sec,
        ratio: follow_per_sec / replay_per_sec,
        command_ratio: replay_command_secs / follow_secs,
        replay_command_secs,
        replay_incidents: replayed.incidents,
        follow_incidents: followed.incidents,
        publish_secs,
    })
}

/// What `cityops-bench site` prints for the propagation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropagationReport {
    /// Operators' events measured.
    pub events: usize,
    /// Feed messages per second published meanwhile (each with 50 observations).
    pub feed_rate: u64,
    /// Publish at A until B's cache committed the event's effect, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Events B accepted (the rest it refused, with a reason; both change its cache).
    pub accepted: usize,
}

/// The propagation benchmark: `events` SOP ticks published at `per_sec` from workstation A
/// while feed messages go into the site at `feed_rate`, each timed until workstation B (a
/// follower on a thread of its own, as a separate machine would be) has applied it.
pub async fn propagation(
    url: &str,
    events: usize,
    per_sec: u64,
    feed_rate: u64,
    dir: &Path,
) -> Result<PropagationReport, EngineError> {
    let scenario_dir = dir.join("load");
    // Enough generated messages for the whole run at the feed rate.
    let seconds = events as u64 / per_sec.max(1) + 30;
    let messages = city_scenario(&scenario_dir, (seconds * feed_rate.max(1)) as usize * 50)?;
    let name = format!("benchprop-{}", std::process::id());
    let site = Arc::new(connect(url, &name).await?);
    let id = site.id().clone();
    let config = Scenario::site_config(&scenario_dir)?;
    let roster = OpEvent {
        id: format!("roster-{name}"),
        operator: "cityops-bench".into(),
        workstation: "bench".into(),
        at_ms: 0,
        wall_ms: 0,
        op: Op::Roster {
            name: "Bench".into(),
            role: "operator".into(),
            pin_hash: None,
        },
    };
    site.publish([Outgoing::config(&id, &config), Outgoing::event(&id, &roster)])
        .await?;

    // The feed load, paced.
    let load = {
        let site = site.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            for (k, m) in messages.iter().enumerate() {
                let due = Duration::from_secs_f64(k as f64 / feed_rate.max(1) as f64);
                tokio::time::sleep_until(started + due).await;
                if site.publish_batch(&[Outgoing::tape_line(&id, m)]).await.is_err() {
                    break;
                }
            }
        })
    };

    // Workstation B, on its own thread with its own connection.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (incident_tx, incident_rx) = std::sync::mpsc::channel::<String>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(Vec<f64>, usize)>();
    let b = {
        let (url, id, sent, db) = (url.to_owned(), id.clone(), sent.clone(), dir.join("b.db"));
        std::thread::spawn(move || -> Result<(), EngineError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| EngineError::Io {
                    path: db.clone(),
                    source: e,
                })?;
            rt.block_on(async move {
                let site = Site::connect(&url, id.clone(), Credentials::from_env()).await?;
                let mut f = Follower::open(&db, id)?;
                let mut told = false;
                let mut latencies = Vec::with_capacity(events);
                let mut accepted = 0;
                let mut last_seen: Option<String> = None;
                follow::follow_until(&site, &mut f, |f| {
                    if !told {
                        if let Some(inc) = f.desk().and_then(|d| d.correlator().incidents().next()) {
                            let _ = incident_tx.send(inc.id.0.to_string());
                            told = true;
                        }
                    }
                    if let Some(e) = f.last_event() {
                        if last_seen.as_deref() != Some(e.event_id.as_str()) {
                            last_seen = Some(e.event_id.clone());
                            if let Some(t) = sent.lock().expect("the map is never poisoned").remove(&e.event_id) {
                                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                                accepted += usize::from(e.outcome == "accepted");
                            }
                        }
                    }
                    latencies.len() >= events
                })
                .await?;
                let _ = done_tx.send((latencies, accepted));
                Ok(())
            })
        })
    };

    // Workstation A waits for an incident to act on, then ticks and unticks its first step.
    let incident = tokio::task::spawn_blocking(move || incident_rx.recv_timeout(Duration::from_secs(120)))
        .await
        .map_err(|e| EngineError::InvalidInput(format!("waiting for an incident: {e}")))?
        .map_err(|_| EngineError::InvalidInput("no incident within 120 s of feed load".into()))?;
    let started = tokio::time::Instant::now();
    for k in 0..events {
        tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 / per_sec.max(1) as f64)).await;
        let event = OpEvent {
            id: format!("{name}-{k}"),
            operator: "Bench".into(),
            workstation: "a".into(),
            at_ms: 0,
            wall_ms: 0,
            op: Op::Sop {
                incident: incident.clone(),
                step: 0,
                ticked: k % 2 == 0,
            },
        };
        sent.lock()
            .expect("the map is never poisoned")
            .insert(event.id.clone(), Instant::now());
        site.publish_batch(&[Outgoing::event(&id, &event)]).await?;
    }
    let (mut latencies, accepted) = tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(60)))
        .await
        .map_err(|e| EngineError::InvalidInput(format!("waiting for workstation B: {e}")))?
        .map_err(|_| EngineError::InvalidInput("workstation B did not apply every event within 60 s".into()))?;
    load.abort();
    b.join()
        .map_err(|_| EngineError::InvalidInput("workstation B panicked".into()))??;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    Ok(PropagationReport {
        events: latencies.len(),
        feed_rate,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: *latencies.last().unwrap_or(&f64::NAN),
        accepted,
    })
}
