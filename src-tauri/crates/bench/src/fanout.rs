//! `cityops-bench fanout`: one site, N headless workstations as separate processes (each a
//! `Follower` on its own cache, the code `cityops follow` runs), and a steady feed into the site
//! as live sensors send it: one observation a message, stamped with the wall time it is
//! published. Every workstation writes down when each settle committed its cache and how far
//! correlation had got; the publisher writes down when it sent each message. From the two:
//! - **applied**: from publishing a message until a workstation's cache holds it (what its map
//!   shows);
//! - **correlated**: until its arrival second is correlated, so any incident it changes has
//!   changed (correlation works in whole arrival seconds: it waits for the second to end).
//!
//! With `offline_minutes` it also times one workstation catching up after a disconnection,
//! against a local replay of the same messages; with a cluster (`ClusterNodes`) it kills the
//! node leading the stream halfway and reports loss, duplicates and the longest stall.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cityops_core::model::Millis;
use cityops_core::scenario::Manifest;
use cityops_core::tape::{self, TapeMessage};
use cityops_engine::error::EngineError;
use cityops_engine::follow::{self, Follower};
use cityops_engine::headless;
use cityops_engine::scenario::Scenario;
use cityops_site::{Credentials, Outgoing, Site, SiteId};
use serde::{Deserialize, Serialize};

use crate::{city_day, Shape, DEFAULT_RULES, MANIFEST};

/// The wall clock in microseconds: every process of the benchmark runs on this machine, so
/// their stamps compare.
fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn io(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_owned(),
        source: e,
    }
}

/// One settle of a workstation: its cache holds the stream up to `seq`, and every arrival
/// second before `upto_ms` is correlated, as of `wall_us`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Settled {
    pub seq: u64,
    pub upto_ms: Millis,
    pub wall_us: i64,
}

/// What a workstation process writes when it stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkstationLog {
    pub settles: Vec<Settled>,
    /// Seconds from opening its cache until it had applied the stream up to the stop.
    pub secs: f64,
    /// Observations its cache accepted, and its incidents.
    pub accepted: u64,
    pub incidents: u64,
    pub position: u64,
}

/// The file a workstation polls for the sequence it stops at.
fn stop_file(dir: &Path) -> PathBuf {
    dir.join("stop")
}

/// A workstation: follows `site` into `db` until the stream position written in `dir/stop` is
/// applied, then writes its [`WorkstationLog`] to `out`. It writes `out.ready` once the site's
/// configuration is applied, so the load starts when every workstation is listening.
pub async fn workstation(url: &str, site: &str, db: &Path, dir: &Path, out: &Path) -> Result<(), EngineError> {
    let id: SiteId = site.parse()?;
    let site = Site::connect(url, id.clone(), Credentials::from_env()).await?;
    let started = Instant::now();
    let mut f = Follower::open(db, id)?;
    let mut settles = Vec::with_capacity(1 << 16);
    let mut ready = false;
    let mut stop: Option<u64> = None;
    let mut looked = Instant::now();
    let mut last = (u64::MAX, Millis::MIN);
    let ready_path = out.with_extension("ready");
    follow::follow_until(&site, &mut f, |f| {
        let now = (
            f.settled_position(),
            f.desk().map_or(Millis::MIN, |d| d.correlated_upto()),
        );
        if now != last {
            last = now;
            settles.push(Settled {
                seq: now.0,
                upto_ms: now.1,
                wall_us: wall_us(),
            });
        }
        if !ready && f.configured() {
            ready = std::fs::write(&ready_path, b"").is_ok();
        }
        if stop.is_none() && looked.elapsed() >= Duration::from_millis(50) {
            looked = Instant::now();
            stop = std::fs::read_to_string(stop_file(dir))
                .ok()
                .and_then(|s| s.trim().parse().ok());
        }
        stop.is_some_and(|s| f.settled_position() >= s)
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let summary = f.summary()?;
    let log = WorkstationLog {
        settles,
        secs,
        accepted: summary.accepted,
        incidents: summary.incidents,
        position: summary.position,
    };
    let text = serde_json::to_vec(&log).expect("a log serializes");
    std::fs::write(out, text).map_err(|e| io(out, e))
}

/// A nats-server node of a cluster the benchmark runs, to kill one of them halfway.
pub struct ClusterNodes {
    /// Each node's server name (as the stream's leader is reported) and its process.
    pub nodes: Vec<(String, Child)>,
}

/// How the load goes.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub url: String,
    pub workstations: usize,
    /// Feed messages per second (one observation each).
    pub rate: u64,
    pub seconds: u64,
    /// Stream replicas (3 on a cluster).
    pub replicas: usize,
    pub dir: PathBuf,
    /// The benchmark binary, run as each workstation.
    pub exe: PathBuf,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut v: Vec<f64>) -> Latency {
        if v.is_empty() {
            return Latency {
                p50_ms: f64::NAN,
                p99_ms: f64::NAN,
                max_ms: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: *v.last().expect("not empty"),
        }
    }
}

/// One workstation's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkstationFigures {
    pub applied: Latency,
    pub correlated: Latency,
    pub accepted: u64,
    pub incidents: u64,
    /// The longest time between two settles while the load ran, in milliseconds.
    pub longest_gap_ms: f64,
}

/// What `cityops-bench fanout` prints for one count of workstations.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutReport {
    pub workstations: usize,
    /// Messages published, and the rate the publisher kept.
    pub published: u64,
    pub rate: f64,
    /// Over every workstation: the median of their p50s, the worst of their p99s and maxima.
    pub applied: Latency,
    pub correlated: Latency,
    /// Messages published but missing from a workstation's cache (summed over workstations),
    /// and messages in the stream or a cache more than once.
    pub lost: u64,
    pub duplicates: u64,
    /// The longest time any workstation went without a settle while the load ran (ms), and the
    /// longest single publish (ms): what a killed node costs.
    pub stall_ms: f64,
    pub longest_publish_ms: f64,
    /// The node killed halfway, if any.
    pub killed: Option<String>,
    pub per_workstation: Vec<WorkstationFigures>,
}

/// The manifest of the benchmark's feeds starting at `start_ms`.
fn manifest_text(start_ms: Millis) -> String {
    let start = chrono::DateTime::from_timestamp_millis(start_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    MANIFEST.replacen("2026-11-26T00:00:00Z", &start, 1).replacen(
        "[[feeds]]",
        "tape = \"tape.ndjson\"\nrules = \"rules.toml\"\n[[feeds]]",
        1,
    )
}

/// A scenario folder with the benchmark's feeds from `start_ms` and `messages` as its tape.
fn write_scenario(dir: &Path, start_ms: Millis, messages: &[TapeMessage]) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, body: &[u8]| std::fs::write(dir.join(name), body).map_err(|e| io(&dir.join(name), e));
    write("scenario.toml", manifest_text(start_ms).as_bytes())?;
    write("rules.toml", DEFAULT_RULES.as_bytes())?;
    let mut text = String::new();
    for m in messages {
        text.push_str(&tape::format_line(m));
        text.push('\n');
    }
    write("tape.ndjson", text.as_bytes())
}

/// `n` city messages of one observation each, `rate` a second from `start_ms`.
fn load(start_ms: Millis, n: usize, rate: u64) -> Vec<TapeMessage> {
    let manifest = Manifest::parse(&manifest_text(start_ms)).expect("the benchmark manifest is valid");
    city_day(
        &manifest,
        n,
        Shape {
            per_message: 1,
            per_second: Some(rate.max(1)),
        },
    )
    .0
}

/// Workstation processes, each following the site into its own cache.
struct Workstations {
    children: Vec<Child>,
    outs: Vec<PathBuf>,
}

impl Workstations {
    fn start(o: &FanoutOptions, site: &SiteId, dir: &Path, names: &[String]) -> Result<Workstations, EngineError> {
        let mut children = Vec::new();
        let mut outs = Vec::new();
        for name in names {
            let out = dir.join(format!("{name}.json"));
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(out.with_extension("ready"));
            let child = Command::new(&o.exe)
                .args(["workstation", "--nats", &o.url, "--site", site.as_str(), "--db"])
                .arg(dir.join(format!("{name}.db")))
                .arg("--dir")
                .arg(dir)
                .arg("--out")
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| io(&o.exe, e))?;
            children.push(child);
            outs.push(out);
        }
        Ok(Workstations { children, outs })
    }

    /// Waits until every workstation applied the site's configuration.
    async fn ready(&mut self) -> Result<(), EngineError> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.outs.iter().all(|o| o.with_extension("ready").exists()) {
            for c in &mut self.children {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(EngineError::InvalidInput(format!(
                        "a workstation stopped early: {status}"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(EngineError::InvalidInput(
                    "the workstations were not ready within 120 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Tells them to stop at `seq` and reads their logs.
    async fn stop_at(mut self, dir: &Path, seq: u64) -> Result<Vec<WorkstationLog>, EngineError> {
        let stop = stop_file(dir);
        std::fs::write(&stop, seq.to_string()).map_err(|e| io(&stop, e))?;
        let deadline = Instant::now() + Duration::from_secs(900);
        let mut logs = Vec::new();
        for (c, out) in self.children.iter_mut().zip(&self.outs) {
            loop {
                match c.try_wait().map_err(|e| io(out, e))? {
                    Some(s) if s.success() => break,
                    Some(s) => return Err(EngineError::InvalidInput(format!("a workstation failed: {s}"))),
                    None if Instant::now() > deadline => {
                        return Err(EngineError::InvalidInput(
                            "a workstation did not catch up within 15 min".into(),
                        ))
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let text = std::fs::read(out).map_err(|e| io(out, e))?;
            logs.push(serde_json::from_slice(&text).map_err(|e| EngineError::InvalidInput(e.to_string()))?);
        }
        let _ = std::fs::remove_file(&stop);
        self.children.clear();
        Ok(logs)
    }
}

impl Drop for Workstations {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A message as the publisher sent it: its stream sequence (0 when a retry made it unknown),
/// its arrival time and when it went out.
#[derive(Clone, Copy)]
struct Sent {
    seq: u64,
    time_ms: Millis,
    wall_us: i64,
}

/// Publishes `messages` at their arrival times (each due when the wall clock reaches it),
/// killing `kill` (a cluster node) when half are out. Returns what was sent, the longest
/// publish in ms and the node killed.
async fn publish_paced(
    site: &Site,
    messages: &[TapeMessage],
    mut cluster: Option<&mut ClusterNodes>,
) -> Result<(Vec<Sent>, f64, Option<String>), EngineError> {
    let id = site.id().clone();
    let mut sent = Vec::with_capacity(messages.len());
    let mut longest = 0f64;
    let mut killed = None;
    let half = messages.len() / 2;
    let mut k = 0;
    while k < messages.len() {
        let now_ms = wall_us() / 1000;
        let due = messages[k..]
            .iter()
            .take(cityops_site::PUBLISH_BATCH)
            .take_while(|m| m.time_ms <= now_ms)
            .count();
        if due == 0 {
            let wait = (messages[k].time_ms - now_ms).clamp(0, 50) as u64;
            tokio::time::sleep(Duration::from_millis(wait.max(1) / 2 + 1)).await;
            continue;
        }
        if k <= half && k + due > half {
            if let Some(c) = cluster.as_deref_mut() {
                killed = kill_leader(site, c).await?;
            }
        }
        let batch: Vec<Outgoing> = messages[k..k + due]
            .iter()
            .map(|m| Outgoing::tape_line(&id, m))
            .collect();
        let at = wall_us();
        let started = Instant::now();
        // A batch the stream did not take at once (a node died) is sent again by `publish`,
        // whose message ids make the repeat add nothing.
        let done = match site.publish_batch(&batch).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, "a publish failed; sending again");
                let mut again = site.publish(batch.iter().cloned()).await?;
                again.published = 0;
                again
            }
        };
        longest = longest.max(started.elapsed().as_secs_f64() * 1000.0);
        // The benchmark is the site's only publisher: a batch taken whole has consecutive
        // sequences ending at its last.
        let whole = done.published == due as u64;
        for (j, m) in messages[k..k + due].iter().enumerate() {
            sent.push(Sent {
                seq: if whole {
                    done.last_seq + 1 + j as u64 - due as u64
                } else {
                    0
                },
                time_ms: m.time_ms,
                wall_us: at,
            });
        }
        k += due;
    }
    Ok((sent, longest, killed))
}

/// Kills the node that leads the site's stream (or the first, when none is named).
async fn kill_leader(site: &Site, cluster: &mut ClusterNodes) -> Result<Option<String>, EngineError> {
    let leader = site.leader().await?;
    let at = cluster
        .nodes
        .iter()
        .position(|(name, _)| Some(name) == leader.as_ref())
        .unwrap_or(0);
    let (name, child) = &mut cluster.nodes[at];
    tracing::warn!(node = %name, "killing the stream's leader");
    let _ = child.kill();
    let _ = child.wait();
    Ok(Some(name.clone()))
}

/// Figures of one workstation from its settles and what was sent.
fn figures(log: &WorkstationLog, sent: &[Sent], load_until_us: i64) -> WorkstationFigures {
    let mut applied = Vec::with_capacity(sent.len());
    let mut correlated = Vec::with_capacity(sent.len());
    // Both the settles and the messages are in order, so one pass each.
    let (mut a, mut c) = (0, 0);
    for s in sent.iter().filter(|s| s.seq > 0) {
        while a < log.settles.len() && log.settles[a].seq < s.seq {
            a += 1;
        }
        if let Some(r) = log.settles.get(a) {
            applied.push((r.wall_us - s.wall_us) as f64 / 1000.0);
        }
        while c < log.settles.len() && log.settles[c].upto_ms <= s.time_ms {
            c += 1;
        }
        if let Some(r) = log.settles.get(c) {
            correlated.push((r.wall_us - s.wall_us).max(0) as f64 / 1000.0);
        }
    }
    let first = sent.first().map_or(0, |s| s.wall_us);
    let longest_gap_ms = log
        .settles
        .windows(2)
        .filter(|w| w[1].wall_us >= first && w[0].wall_us <= load_until_us)
        .map(|w| (w[1].wall_us - w[0].wall_us) as f64 / 1000.0)
        .fold(0.0, f64::max);
    WorkstationFigures {
        applied: Latency::of(applied),
        correlated: Latency::of(correlated),
        accepted: log.accepted,
        incidents: log.incidents,
        longest_gap_ms,
    }
}

async fn new_site(o: &FanoutOptions, name: &str, start_ms: Millis, dir: &Path) -> Result<Site, EngineError> {
    let id: SiteId = name.parse()?;
    let site = Site::connect(&o.url, id.clone(), Credentials::from_env()).await?;
    // A cluster elects its meta leader first; until then creating a stream is refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match site
            .init(o.replicas, false, cityops_site::dispatch::DEFAULT_ACK_WAIT)
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tracing::info!(error = %e, "the site is not ready yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    write_scenario(dir, start_ms, &[])?;
    let config = Scenario::site_config(dir)?;
    site.publish([Outgoing::config(&id, &config)]).await?;
    Ok(site)
}

/// The load for `o.workstations` workstations; with `cluster`, the node leading the stream is
/// killed halfway.
pub async fn fanout(o: &FanoutOptions, cluster: Option<&mut ClusterNodes>) -> Result<FanoutReport, EngineError> {
    let dir = o.dir.join(format!("n{}", o.workstations));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let name = format!("fan{}n{}", std::process::id(), o.workstations);
    // The load starts once every workstation listens; its arrivals are stamped from then.
    let site = new_site(o, &name, wall_us() / 1000, &dir.join("scenario")).await?;
    let names: Vec<String> = (0..o.workstations).map(|k| format!("ws-{k}")).collect();
    let mut ws = Workstations::start(o, site.id(), &dir, &names)?;
    ws.ready().await?;
    let start_ms = wall_us() / 1000 + 500;
    let messages = load(start_ms, (o.rate * o.seconds) as usize, o.rate);
    let (sent, longest_publish_ms, killed) = publish_paced(&site, &messages, cluster).await?;
    let load_until_us = wall_us();
    // The rate kept: from the first publish to the last.
    let secs = match (sent.first(), sent.last()) {
        (Some(a), Some(b)) if b.wall_us > a.wall_us => (b.wall_us - a.wall_us) as f64 / 1e6,
        _ => f64::NAN,
    };
    // The last second is correlated once the site's time passes it: one tick after the load.
    let end = messages.last().map_or(0, |m| (m.time_ms.div_euclid(1000) + 1) * 1000);
    let last = site.publish([Outgoing::tick(site.id(), end)]).await?.last_seq;
    let logs = ws.stop_at(&dir, last).await?;
    let per: Vec<WorkstationFigures> = logs.iter().map(|l| figures(l, &sent, load_until_us)).collect();
    let published = sent.len() as u64;
    // One observation a message, and the configuration and the tick besides.
    let in_stream = site.last_seq().await?.saturating_sub(2);
    let lost = per.iter().map(|w| published.saturating_sub(w.accepted)).sum();
    let duplicates =
        in_stream.saturating_sub(published) + per.iter().map(|w| w.accepted.saturating_sub(published)).sum::<u64>();
    let median = |f: fn(&WorkstationFigures) -> f64| {
        let mut v: Vec<f64> = per.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let worst = |f: fn(&WorkstationFigures) -> f64| per.iter().map(f).fold(f64::NAN, f64::max);
    Ok(FanoutReport {
        workstations: o.workstations,
        published,
        rate: published.saturating_sub(1) as f64 / secs,
        applied: Latency {
            p50_ms: median(|w| w.applied.p50_ms),
            p99_ms: worst(|w| w.applied.p99_ms),
            max_ms: worst(|w| w.applied.max_ms),
        },
        correlated: Latency {
            p50_ms: median(|w| w.correlated.p50_ms),
            p99_ms: worst(|w| w.correlated.p99_ms),
            max_ms: worst(|w| w.correlated.max_ms),
        },
        lost,
        duplicates,
        stall_ms: worst(|w| w.longest_gap_ms),
        longest_publish_ms,
        killed,
        per_workstation: per,
    })
}

/// What `cityops-bench fanout --offline-minutes` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchUpReport {
    /// Minutes of the feed the workstation missed, and the messages in them.
    pub offline_minutes: f64,
    pub messages: u64,
    /// Seconds the workstation took from opening its cache to having applied them all.
    pub catch_up_secs: f64,
    /// Seconds `cityops replay` of the same messages took, reading its tape included.
    pub replay_secs: f64,
    /// `replay_secs / catch_up_secs`.
    pub ratio: f64,
    /// Observations each accepted from the missed minutes.
    pub caught_up: u64,
    pub replayed: u64,
}

/// A workstation follows the load for a few seconds, stops (the link is gone), misses
/// `minutes` of the feed at `o.rate`, and starts again: its catch-up is timed against a local
/// replay of the messages it missed.
pub async fn catch_up(o: &FanoutOptions, minutes: f64) -> Result<CatchUpReport, EngineError> {
    let dir = o.dir.join("catch-up");
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let name = format!("fan{}offline", std::process::id());
    let start_ms = wall_us() / 1000;
    let site = new_site(o, &name, start_ms, &dir.join("scenario")).await?;
    let names = ["ws-0".to_owned()];
    let before = (o.rate * 5) as usize;
    let missed = (o.rate as f64 * minutes * 60.0) as usize;
    let all = load(start_ms + 500, before + missed, o.rate);
    let (live, away) = all.split_at(before);
    // Connected: a few seconds of the load, at once (only where it stands matters).
    let mut ws = Workstations::start(o, site.id(), &dir, &names)?;
    ws.ready().await?;
    let id = site.id().clone();
    let seq = site
        .publish(live.iter().map(|m| Outgoing::tape_line(&id, m)))
        .await?
        .last_seq;
    ws.stop_at(&dir, seq).await?;
    // Gone: the site goes on without it.
    let last = site
        .publish(away.iter().map(|m| Outgoing::tape_line(&id, m)))
        .await?
        .last_seq;
    let ws = Workstations::start(o, site.id(), &dir, &names)?;
    let log = ws.stop_at(&dir, last).await?.remove(0);
    // The same messages replayed locally from their tape, reading it included.
    let scenario = dir.join("replay");
    write_scenario(&scenario, away.first().map_or(start_ms, |m| m.time_ms), away)?;
    let started = Instant::now();
    let replayed = headless::replay_max(&scenario, &dir.join("replay.db"))?;
    let replay_secs = started.elapsed().as_secs_f64();
    Ok(CatchUpReport {
        offline_minutes: minutes,
        messages: away.len() as u64,
        catch_up_secs: log.secs,
        replay_secs,
        ratio: replay_secs / log.secs,
        caught_up: log.accepted.saturating_sub(live.len() as u64),
        replayed: replayed.accepted,
    })
}

/// A free TCP port on loopback.
fn free_port() -> Result<u16, EngineError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| io(Path::new("127.0.0.1:0"), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| io(Path::new("127.0.0.1:0"), e))
}

/// Starts a three-node nats-server cluster with `script` (`tests/peers/nats/run.sh`), each node's
/// store and log under `dir`, and returns it with the URL of all three.
pub async fn start_cluster(script: &Path, dir: &Path) -> Result<(ClusterNodes, String), EngineError> {
    let ports = [free_port()?, free_port()?, free_port()?];
    let routes = [free_port()?, free_port()?, free_port()?];
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&node).map_err(|e| io(&node, e))?;
        let log = std::fs::File::create(node.join("nats.log")).map_err(|e| io(&node, e))?;
        let others: Vec<String> = (0..3).filter(|j| *j != i).map(|j| routes[j].to_string()).collect();
        let name = format!("fan-n{i}");
        let child = Command::new("bash")
            .arg(script)
            .args([ports[i].to_string(), node.display().to_string()])
            .args([routes[i].to_string(), others.join(","), name.clone()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| io(&node, e))?)
            .stderr(log)
            .spawn()
            .map_err(|e| io(script, e))?;
        nodes.push((name, child));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for port in ports {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(EngineError::InvalidInput(format!(
                    "nats-server on port {port} did not start"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let url = ports.map(|p| format!("nats://127.0.0.1:{p}")).join(",");
    Ok((ClusterNodes { nodes }, url))
}

impl Drop for ClusterNodes {
    fn drop(&mut self) {
        for (_, c) in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
