//! The ingest benchmark: a large generated tape through the real pipeline, compared with the
//! raw batched insert rate of the same rows measured in the same process, so that the ratio
//! holds on a noisy machine where absolute rates do not (see `BENCHMARKS.md`).
//!
//! # Layout
//! - this file: the ingest benchmark, seeking in a long day, correlation under load, the
//!   decoders against their bare parsers, and sustained MQTT ingest.
//! - [`outbox`]: the outbox's durable commit against raw `fdatasync`, and delivery to a
//!   webhook receiver against bare signed POSTs.
//! - [`site`]: a workstation catching up with a site against a local replay, and an operator's
//!   event from one workstation to another.
//!
//! The binary `cityops-bench` (`src/main.rs`) runs each one; `BENCHMARKS.md` has the figures.

pub mod fanout;
pub mod outbox;
pub mod site;

use std::path::Path;
use std::time::Instant;

use cityops_core::assets::{Asset, AssetIndex};
use cityops_core::correlate::Correlator;
use cityops_core::geo::distance_m;
use cityops_core::model::{GeoPoint, Layer, Millis, Observation, Severity};
use cityops_core::rules::Rules;
use cityops_core::scenario::Manifest;
use cityops_core::tape::{FeedFormat, TapeMessage};
use serde::Serialize;

use cityops_decoders::{self as feeds, MessageContext};
use cityops_engine::error::EngineError;
use cityops_engine::incidents::Desk;
use cityops_live::pipeline::{Pipeline, BATCH_ROWS};
use cityops_store::Store;

/// The Helsinki default rules, which the benchmarks correlate with.
const DEFAULT_RULES: &str = include_str!("../../../../fixtures/rules/default.toml");

/// Features per generated message, as a feed that batches its updates sends them.
const FEATURES_PER_MESSAGE: usize = 50;

/// What `cityops-bench ingest` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    /// The generated day.
    pub tape: Tape,
    /// Observations in the generated tape.
    pub observations: u64,
    /// The share of them that are abnormal (everything else reports a normal state).
    pub abnormal_share: f64,
    /// Observations per second through decode, quarantine checks and group commits.
    pub pipeline_per_sec: f64,
    /// Rows per second of batched inserts of the same, already decoded rows.
    pub raw_insert_per_sec: f64,
    /// `pipeline_per_sec / raw_insert_per_sec`.
    pub ratio: f64,
    /// Observations per second through the whole path: the pipeline, then the incident desk
    /// reading them back, correlating them with the default rules and persisting incidents.
    pub whole_per_sec: f64,
    /// `whole_per_sec / raw_insert_per_sec`.
    pub whole_ratio: f64,
    /// Incidents the desk made of the generated tape.
    pub incidents: u64,
    /// Peak resident memory of the process, in MiB.
    pub peak_rss_mib: f64,
}

const MANIFEST: &str = r#"
name = "bench"
map = "helsinki"
start = "2026-11-26T00:00:00Z"
view = [24.945, 60.17, 14]
[[feeds]]
id = "vehicles"
layer = "transport"
format = "geojson"
[[feeds]]
id = "cameras"
layer = "security"
format = "geojson"
[[feeds]]
id = "meters"
layer = "utility"
format = "geojson"
[[feeds]]
id = "reports"
layer = "alerts"
format = "geojson"
"#;

/// Which generated day a benchmark replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Tape {
    /// A storm day in the city: fixed cameras and meters and moving vehicles that report on a
    /// schedule, with faults where storm cells pass (see [`city_day`]).
    City,
    /// The stress case: every observation from a random place, four in five of them abnormal
    /// (see [`stress_day`]).
    Stress,
}

impl Tape {
    /// The name `--tape` takes.
    pub fn name(self) -> &'static str {
        match self {
            Tape::City => "city",
            Tape::Stress => "stress",
        }
    }
}

impl std::str::FromStr for Tape {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Tape, EngineError> {
        [Tape::City, Tape::Stress]
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| EngineError::InvalidInput(format!("unknown benchmark tape {s:?}: expected city or stress")))
    }
}

/// The extract the generated tapes cover: its south-west corner and its size in degrees.
const EXTRACT_MIN: GeoPoint = GeoPoint {
    lon: 24.9351,
    lat: 60.1641,
};
const EXTRACT_SPAN: GeoPoint = GeoPoint {
    lon: 0.0184,
    lat: 0.0151,
};

/// A deterministic pseudo-random sequence (xorshift), so every run generates the same tape.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A point of the extract from two fractions of its span.
fn in_extract(x: f64, y: f64) -> GeoPoint {
    GeoPoint {
        lon: EXTRACT_MIN.lon + x * EXTRACT_SPAN.lon,
        lat: EXTRACT_MIN.lat + y * EXTRACT_SPAN.lat,
    }
}

/// A fixed point of the extract for a number (an entity's place), spread by a hash.
fn place_of(key: u64) -> GeoPoint {
    let h = key.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    in_extract(
        (h >> 40) as f64 / (1u64 << 24) as f64,
        (h & 0xff_ffff) as f64 / (1u64 << 24) as f64,
    )
}

/// One observation of a generated tape.
struct Feature {
    entity: String,
    at: GeoPoint,
    kind: &'static str,
    severity: &'static str,
    value: u64,
}

/// How a generated tape is cut into messages and spread in time.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Observations per message.
    pub per_message: usize,
    /// Messages a second, as a live feed sends them; `None` spreads them evenly over 24 h.
    pub per_second: Option<u64>,
}

/// The shape of the ingest and seek benchmarks' days.
const DAY: Shape = Shape {
    per_message: FEATURES_PER_MESSAGE,
    per_second: None,
};

/// `n` observations from the manifest's start in messages cut and spread as `shape` says,
/// with `feed_of(message)` choosing each message's feed and `feature(feed, rng, t)`
/// making each observation. Returns the messages and how many observations were abnormal.
fn day(
    manifest: &Manifest,
    n: usize,
    shape: Shape,
    feed_of: impl Fn(usize) -> usize,
    mut feature: impl FnMut(usize, &mut Rng, Millis) -> Feature,
) -> (Vec<TapeMessage>, usize) {
    let per_message = shape.per_message.max(1);
    let messages = n.div_ceil(per_message);
    let step_ms = (24 * 3600 * 1000 / messages.max(1)) as i64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(messages);
    let (mut made, mut abnormal) = (0, 0);
    for m in 0..messages {
        let f = feed_of(m);
        let time_ms = manifest.start_ms
            + match shape.per_second {
                Some(rate) => m as i64 * 1000 / rate.max(1) as i64,
                None => m as i64 * step_ms,
            };
        let time = chrono::DateTime::from_timestamp_millis(time_ms - 1500)
            .unwrap_or_default()
            .to_rfc3339();
        let mut body = String::from(r#"{"type":"FeatureCollection","features":["#);
        for i in 0..per_message.min(n - made) {
            let Feature {
                entity,
                at,
                kind,
                severity,
                value,
            } = feature(f, &mut rng, time_ms);
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"type":"Feature","id":"{entity}","geometry":{{"type":"Point","coordinates":[{:.6},{:.6}]}},"properties":{{"kind":"{kind}","severity":"{severity}","time":"{time}","title":"generated {m}","value":{value}}}}}"#,
                at.lon, at.lat
            ));
            made += 1;
            abnormal += usize::from(severity != "normal");
        }
        body.push_str("]}");
        out.push(TapeMessage {
            line: m as u64 + 1,
            time_ms,
            feed: FEEDS[f].into(),
            format: FeedFormat::GeoJson,
            topic: None,
            body: body.into_bytes(),
        });
    }
    (out, abnormal)
}

/// The feeds of the benchmark manifest, in its order.
const FEEDS: [&str; 4] = ["vehicles", "cameras", "meters", "reports"];

/// The stress day: each feed sends a quarter of the messages, every observation comes from a
/// random place (an entity of 5,000 per feed, which moves wherever it reports from) and four in
/// five are abnormal. No city sends this; it keeps thousands of small incidents open at once,
/// so every spatial query meets dozens of open members.
fn stress_day(manifest: &Manifest, n: usize) -> (Vec<TapeMessage>, usize) {
    let kinds = ["vehicle.position", "camera.offline", "feeder.voltage", "report.outage"];
    let severities = ["normal", "minor", "moderate", "severe", "extreme"];
    day(
        manifest,
        n,
        DAY,
        |m| m % FEEDS.len(),
        |f, rng, _| {
            let r = rng.next();
            Feature {
                entity: format!("{}/{}", FEEDS[f], (r >> 40) % 5_000),
                at: GeoPoint {
                    lon: EXTRACT_MIN.lon + (r % 18_400) as f64 * 1e-6,
                    lat: EXTRACT_MIN.lat + ((r >> 20) % 15_100) as f64 * 1e-6,
                },
                kind: kinds[f],
                severity: severities[(r >> 8) as usize % 5],
                value: r % 1000,
            }
        },
    )
}

/// Storm cells of the city day: one starts every this often...
const CELL_EVERY_MS: Millis = 15 * 60 * 1000;
/// ...and lasts this long, so two or three are active at any time...
const CELL_LASTS_MS: Millis = 40 * 60 * 1000;
/// ...over a circle of this radius around its centre.
const CELL_RADIUS_M: f64 = 250.0;

/// The centres of the storm cells active at `t`.
fn storm_cells(t: Millis) -> impl Iterator<Item = GeoPoint> {
    let last = t.div_euclid(CELL_EVERY_MS);
    let first = (t - CELL_LASTS_MS).div_euclid(CELL_EVERY_MS) + 1;
    (first..=last).map(|k| place_of(k as u64 ^ 0x5bd1_e995))
}

/// The city day, shaped on the `helsinki-storm` scenario's tape (four in five observations from
/// vehicles, the rest from cameras, meters and citizens), but a whole day long: 1,200 vehicles
/// driving, 2,000 cameras and 1,000 meters in fixed places, and citizen reports. Storm cells
/// pass over the extract (one every 15 minutes, 40 minutes long, 250 m across); inside one,
/// cameras go offline, meters read abnormal voltage, vehicles are delayed and citizens report
/// outages. Each asset reports whether or not it is faulty, as real feeds do, so most
/// observations are normal and faults repeat until their cell has passed.
pub(crate) fn city_day(manifest: &Manifest, n: usize, shape: Shape) -> (Vec<TapeMessage>, usize) {
    let faulty = |p: GeoPoint, t: Millis| storm_cells(t).any(|c| distance_m(c, p) <= CELL_RADIUS_M);
    let mut report = 0u64;
    // Per 50 messages: 40 from vehicles, 6 from cameras, 3 from meters, 1 from citizens.
    let feed_of = |m: usize| match m % 50 {
        0..40 => 0,
        40..46 => 1,
        46..49 => 2,
        _ => 3,
    };
    day(manifest, n, shape, feed_of, move |f, rng, t| {
        let r = rng.next();
        let value = r % 1000;
        match f {
            0 => {
                // A vehicle drives across the extract and around again every 20 minutes.
                let id = (r >> 40) % 1_200;
                let home = place_of(id);
                let lap = (t.rem_euclid(1_200_000)) as f64 / 1_200_000.0;
                let x = ((home.lon - EXTRACT_MIN.lon) / EXTRACT_SPAN.lon + lap).fract();
                let at = in_extract(x, (home.lat - EXTRACT_MIN.lat) / EXTRACT_SPAN.lat);
                let (kind, severity) = if faulty(at, t) {
                    ("vehicle.delayed", "minor")
                } else {
                    ("vehicle.position", "normal")
                };
                Feature {
                    entity: format!("vehicles/{id}"),
                    at,
                    kind,
                    severity,
                    value,
                }
            }
            1 => {
                let id = (r >> 40) % 2_000;
                let at = place_of(100_000 + id);
                let (kind, severity) = if faulty(at, t) {
                    ("camera.offline", "moderate")
                } else {
                    ("camera.online", "normal")
                };
                Feature {
                    entity: format!("cameras/{id}"),
                    at,
                    kind,
                    severity,
                    value,
                }
            }
            2 => {
                let id = (r >> 40) % 1_000;
                let at = place_of(200_000 + id);
                let severity = if faulty(at, t) { "severe" } else { "normal" };
                Feature {
                    entity: format!("meters/{id}"),
                    at,
                    kind: "feeder.voltage",
                    severity,
                    value,
                }
            }
            _ => {
                // Citizens report from where the storm is, each report a new entity; one in ten
                // reports comes from anywhere.
                report += 1;
                let cells: Vec<GeoPoint> = storm_cells(t).collect();
                let from_cell = if (r >> 8) % 10 == 0 {
                    None
                } else {
                    cells.get((r >> 12) as usize % cells.len().max(1))
                };
                let at = match from_cell {
                    Some(c) => {
                        let (dx, dy) = (
                            ((r >> 16) % 1000) as f64 / 1000.0 - 0.5,
                            ((r >> 32) % 1000) as f64 / 1000.0 - 0.5,
                        );
                        GeoPoint {
                            lon: c.lon + dx * 0.006,
                            lat: c.lat + dy * 0.003,
                        }
                    }
                    None => in_extract((r % 1000) as f64 / 1000.0, ((r >> 24) % 1000) as f64 / 1000.0),
                };
                Feature {
                    entity: format!("reports/{report}"),
                    at,
                    kind: "report.outage",
                    severity: "moderate",
                    value,
                }
            }
        }
    })
}

/// The generated day of `tape`, with how many of its observations are abnormal.
fn generate(manifest: &Manifest, n: usize, tape: Tape) -> (Vec<TapeMessage>, usize) {
    match tape {
        Tape::City => city_day(manifest, n, DAY),
        Tape::Stress => stress_day(manifest, n),
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Runs the benchmark with `n` observations, writing two databases in `dir`.
///
/// The two measurements alternate, one group commit's worth of messages at a time, so that
/// whatever else the machine does slows both alike and the ratio stays meaningful.
pub fn run(n: usize, tape: Tape, dir: &Path) -> Result<BenchReport, EngineError> {
    // The peak memory reported is this run's, not an earlier one's in the same process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let manifest = Manifest::parse(MANIFEST).expect("the benchmark manifest is valid");
    let (messages, abnormal) = generate(&manifest, n, tape);

    // The pipeline: decode, validate, group-commit into a WAL file with all indexes.
    let store = Store::open(&dir.join("pipeline.db"))?;
    let run = store.begin_run("bench", "bench")?;
    let mut pipeline = Pipeline::new(store, run, &manifest.feeds, dir)?;
    // The raw insert of the same rows into an identical database; decoding them for it is
    // not timed.
    let mut raw = Store::open(&dir.join("raw.db"))?;
    let raw_run = raw.begin_run("bench-raw", "bench")?;
    // The incident desk the app runs behind the pipeline (no asset file: spatial, duplicate and
    // seed rules do the work). Its end is far away so it never takes the end-of-scenario path.
    let rules = Rules::parse(DEFAULT_RULES).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let mut desk = Desk::new(
        run,
        rules,
        AssetIndex::default(),
        Default::default(),
        manifest.start_ms,
        i64::MAX / 8,
    );

    let (mut pipeline_secs, mut correlate_secs, mut raw_secs) = (0.0, 0.0, 0.0);
    let mut inserted = 0u64;
    let chunk = BATCH_ROWS.div_ceil(FEATURES_PER_MESSAGE);
    for slice in messages.chunks(chunk) {
        let t = Instant::now();
        for msg in slice {
            pipeline.ingest(msg, None)?;
        }
        pipeline.flush()?;
        pipeline_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        desk.correlate_to(pipeline.store(), slice.last().expect("chunks are never empty").time_ms)?;
        correlate_secs += t.elapsed().as_secs_f64();

        let mut rows = Vec::with_capacity(BATCH_ROWS);
        for msg in slice {
            let layer = manifest
                .feed(&msg.feed)
                .map(|f| f.layer)
                .expect("generated feeds are declared");
            let ctx = MessageContext {
                feed: &msg.feed,
                layer,
                seq: msg.line,
                received_ms: msg.time_ms,
                topic: None,
            };
            let decoded =
                feeds::geojson::decode(ctx, &msg.body).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
            rows.extend(decoded.observations);
        }
        let last = slice.last().expect("chunks are never empty");
        let t = Instant::now();
        raw.append(raw_run, &rows, &[], (last.line, last.time_ms))?;
        raw_secs += t.elapsed().as_secs_f64();
        inserted += rows.len() as u64;
    }
    let accepted = pipeline.stats().accepted.values().sum::<u64>();
    let pipeline_per_sec = accepted as f64 / pipeline_secs;
    let raw_insert_per_sec = inserted as f64 / raw_secs;
    let whole_per_sec = accepted as f64 / (pipeline_secs + correlate_secs);
    Ok(BenchReport {
        tape,
        observations: accepted,
        abnormal_share: abnormal as f64 / n.max(1) as f64,
        pipeline_per_sec,
        raw_insert_per_sec,
        ratio: pipeline_per_sec / raw_insert_per_sec,
        whole_per_sec,
        whole_ratio: whole_per_sec / raw_insert_per_sec,
        incidents: desk.correlator().incidents().count() as u64,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// What `cityops-bench mqtt` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MqttSoakReport {
    /// Messages the publisher sent (QoS 1, acknowledged by the broker).
    pub published: u64,
    /// Messages the live feed received and ingested.
    pub ingested: u64,
    /// Observations committed to the store.
    pub stored: u64,
    /// The publish rate achieved, messages per second.
    pub publish_rate: f64,
    /// Seconds the publisher ran.
    pub seconds: f64,
    /// Resident memory when the feed had connected, MiB.
    pub rss_start_mib: f64,
    /// The highest resident memory sampled during the run, MiB.
    pub rss_peak_mib: f64,
    /// Resident memory at the end, MiB.
    pub rss_end_mib: f64,
    /// Seconds from the publisher's end until the feed had taken everything in: how far the
    /// ingest fell behind.
    pub drain_seconds: f64,
    /// Feed health showed the feed overloaded (its transport waiting for the ingest) at some
    /// sample.
    pub overloaded_seen: bool,
    /// How long the transport waited for the ingest in total, ms (feed health).
    pub held_back_ms: u64,
}

/// What `cityops-bench correlate` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrelationReport {
    /// Assets in the index.
    pub assets: u64,
    /// Open incidents when the measurement started.
    pub open_incidents: u64,
    /// Observations correlated in one-second batches of `batch`.
    pub observations: u64,
    pub batch: u64,
    /// Observations per second, batched.
    pub per_sec: f64,
    /// Latency of one observation alone in its second: median and 99th percentile, microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    /// Resident memory before the incidents were opened and with them open, MiB.
    pub rss_before_mib: f64,
    pub rss_open_mib: f64,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Publishes `rate` telemetry messages per second for `seconds` to the MQTT broker at
/// 127.0.0.1:`port` while a live MQTT feed ingests them into a WAL database in `dir`; then
/// checks that every message arrived and was stored.
pub async fn mqtt_soak(port: u16, rate: u64, seconds: u64, dir: &Path) -> Result<MqttSoakReport, EngineError> {
    use cityops_live::config::LiveConfig;
    use cityops_live::{self as live, Health, LiveOptions};
    use std::time::Duration;

    let config_text = format!(
        "[[feeds]]\nid = \"soak\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ntopics = [\"soak/#\"]\nclient_id = \"cityops-soak-{}\"\n",
        std::process::id()
    );
    let config = LiveConfig::parse(&dir.join("soak.toml"), &config_text)
        .map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let store = Store::open(&dir.join("soak.db"))?;
    let health = Health::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(live::run(
        config,
        store,
        LiveOptions::default(),
        health.clone(),
        stop_rx,
    ));
    let now = || chrono::Utc::now().timestamp_millis();
    let feed = |h: &Health| h.snapshot(now()).into_iter().next();
    for _ in 0..100 {
        if feed(&health).is_some_and(|f| f.connected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !feed(&health).is_some_and(|f| f.connected) {
        return Err(EngineError::InvalidInput(format!(
            "no MQTT broker answers on 127.0.0.1:{port}"
        )));
    }
    // Let the subscription land before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = rss_mib();

    let mut opts = rumqttc::MqttOptions::new(format!("cityops-soak-pub-{}", std::process::id()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(1_000);
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 10_000);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let acks = acked.clone();
    let pump = tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = event {
                acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let sampler_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler_flag = sampler_stop.clone();
    let sampled = health.clone();
    let sampler = tokio::spawn(async move {
        let (mut peak, mut overloaded) = (0.0f64, false);
        while !sampler_flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_mib());
            overloaded |= sampled
                .snapshot(chrono::Utc::now().timestamp_millis())
                .iter()
                .any(|f| f.overloaded);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (peak, overloaded)
    });

    let total = rate * seconds;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = (rate / 100).max(1);
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let body = format!(
                r#"{{"type":"Feature","id":"meter/{}","geometry":{{"type":"Point","coordinates":[24.94{},60.17{}]}},"properties":{{"kind":"meter.reading","severity":"normal","value":{}}}}}"#,
                sent % 5_000,
                sent % 10,
                sent % 7,
                sent
            );
            client
                .publish(format!("soak/{}", sent % 16), rumqttc::QoS::AtLeastOnce, false, body)
                .await
                .map_err(|e| EngineError::InvalidInput(format!("publish: {e}")))?;
            sent += 1;
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let published_at = Instant::now();
    // Wait for the broker's acknowledgements and for the feed to take everything in.
    for _ in 0..600 {
        let got = feed(&health).map(|f| f.messages_per_minute as u64).unwrap_or(0);
        if acked.load(std::sync::atomic::Ordering::Relaxed) >= total && got > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut last = 0;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = feed(&health).and_then(|f| f.last_message_ms).unwrap_or(0);
        if seen == last && now() - seen > 1_000 {
            break;
        }
        last = seen;
    }
    // The last message arrived at `last`, and the loop noticed a second later.
    let drain_seconds = (published_at.elapsed().as_secs_f64() - (now() - last) as f64 / 1000.0).max(0.0);
    let held_back_ms = feed(&health).map_or(0, |f| f.held_back_ms);
    stop_tx.send(true).ok();
    let summary = runner.await.map_err(|e| EngineError::InvalidInput(e.to_string()))??;
    sampler_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (peak, overloaded_seen) = sampler.await.unwrap_or((f64::NAN, false));
    pump.abort();
    let stored = Store::open(&dir.join("soak.db"))?
        .counts(summary.run)?
        .per_layer
        .iter()
        .map(|(_, n)| n)
        .sum();
    Ok(MqttSoakReport {
        published: acked.load(std::sync::atomic::Ordering::Relaxed),
        ingested: summary.stats.messages,
        stored,
        publish_rate: sent as f64 / publish_secs,
        seconds: publish_secs,
        rss_start_mib: rss_start,
        rss_peak_mib: peak,
        rss_end_mib: rss_mib(),
        drain_seconds,
        overloaded_seen,
        held_back_ms,
    })
}

/// One adapter's decode rate next to its bare parser's on the same bytes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodeRate {
    /// The feed format.
    pub format: String,
    /// Where the payloads came from.
    pub source: String,
    /// Payload messages in one pass.
    pub messages: usize,
    /// Bytes in one pass.
    pub bytes: usize,
    /// Observations the adapter yields per pass.
    pub observations: usize,
    /// Adapter messages per second.
    pub adapter_msgs_per_sec: f64,
    /// Adapter megabytes per second.
    pub adapter_mb_per_sec: f64,
    /// Bare parser megabytes per second on the same bytes.
    pub bare_mb_per_sec: f64,
    /// Adapter rate over bare parser rate (goal: at least 0.5).
    pub ratio: f64,
    /// For XML, the tokenizer alone (no attribute read), megabytes per second.
    pub tokenizer_mb_per_sec: Option<f64>,
    /// Adapter rate over the tokenizer's.
    pub tokenizer_ratio: Option<f64>,
}

/// A parser run over a body for the decode benchmark; returns how many items it found.
pub type ParseFn = fn(&[u8]) -> Result<usize, feeds::DecodeError>;

/// A set of real payloads of one format, and the bare parser to compare its adapter with.
pub struct DecodeCase {
    /// The feed spec the adapter is built from (format, layer, mapping).
    pub spec: cityops_core::scenario::FeedSpec,
    /// Where relative paths in the mapping resolve.
    pub base_dir: std::path::PathBuf,
    /// Where the payloads came from.
    pub source: String,
    /// The payloads, with the topic each arrived on.
    pub payloads: Vec<(Option<String>, Vec<u8>)>,
    /// Runs only the underlying parser over a body, producing its whole output.
    pub bare: ParseFn,
    /// For XML, the tokenizer under the parser (start tags found, nothing else read).
    pub tokenize: Option<ParseFn>,
    /// When the payloads are taken to arrive (adapters refuse times a year off arrival).
    pub received_ms: i64,
}

/// Measures a case: alternating adapter and bare passes over the same payloads until each side
/// has run for at least `min_secs`, so background load hits both alike.
pub fn decode_rate(case: &DecodeCase, min_secs: f64) -> Result<DecodeRate, EngineError> {
    let mut adapter = feeds::adapter_for(&case.spec, &case.base_dir)?;
    let bytes: usize = case.payloads.iter().map(|(_, b)| b.len()).sum();
    let (mut adapter_secs, mut bare_secs, mut tokenize_secs, mut passes, mut observations) =
        (0.0, 0.0, 0.0, 0usize, 0usize);
    while adapter_secs < min_secs || bare_secs < min_secs {
        let t = Instant::now();
        observations = 0;
        for (i, (topic, body)) in case.payloads.iter().enumerate() {
            let ctx = MessageContext {
                feed: &case.spec.id,
                layer: case.spec.layer,
                seq: (passes * case.payloads.len() + i) as u64 + 1,
                received_ms: case.received_ms,
                topic: topic.as_deref(),
            };
            // Refusals are part of the work measured; only an unreadable payload is an error.
            observations += feeds::checked_decode(adapter.as_mut(), ctx, body)
                .map(|d| d.observations.len())
                .unwrap_or(0);
        }
        adapter_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (_, body) in &case.payloads {
            let _ = std::hint::black_box((case.bare)(body));
        }
        bare_secs += t.elapsed().as_secs_f64();
        if let Some(tokenize) = case.tokenize {
            let t = Instant::now();
            for (_, body) in &case.payloads {
                let _ = std::hint::black_box(tokenize(body));
            }
            tokenize_secs += t.elapsed().as_secs_f64();
        }
        passes += 1;
    }
    let mb = (bytes * passes) as f64 / 1e6;
    Ok(DecodeRate {
        format: case.spec.format.as_str().to_owned(),
        source: case.source.clone(),
        messages: case.payloads.len(),
        bytes,
        observations,
        adapter_msgs_per_sec: (case.payloads.len() * passes) as f64 / adapter_secs,
        adapter_mb_per_sec: mb / adapter_secs,
        bare_mb_per_sec: mb / bare_secs,
        ratio: bare_secs / adapter_secs,
        tokenizer_mb_per_sec: case.tokenize.map(|_| mb / tokenize_secs),
        tokenizer_ratio: case.tokenize.map(|_| tokenize_secs / adapter_secs),
    })
}

/// The correlation benchmark: `substations` substations on a grid, each feeding nine signals
/// (so `10 * substations` assets), every substation tripped (one open incident each), then
/// `n` observations: dark signals (dependency matches), delayed vehicles next to signals
/// (spatial matches) and signals coming back (clears), in one-second batches of `batch`; then
/// 10,000 single observations, each in its own second, for the latency percentiles.
pub fn correlation(substations: usize, n: usize, batch: usize) -> Result<CorrelationReport, EngineError> {
    let rss_before_mib = rss_mib();
    let (lon0, lat0) = (24.6, 60.1);
    let side = (substations as f64).sqrt().ceil() as usize;
    // 600 m between substations, signals within about 150 m of theirs.
    let (dlon, dlat) = (0.0108, 0.0054);
    let mut assets = Vec::with_capacity(substations * 10);
    for s in 0..substations {
        let (x, y) = ((s % side) as f64, (s / side) as f64);
        let p = GeoPoint {
            lon: lon0 + x * dlon,
            lat: lat0 + y * dlat,
        };
        let id = format!("sub/{s}");
        assets.push(Asset {
            id: id.clone(),
            asset_type: "substation".into(),
            name: format!("Substation {s}"),
            position: p,
            layer: Layer::Utility,
            fed_by: None,
            feeder: None,
        });
        for k in 0..9 {
            let a = k as f64 * std::f64::consts::TAU / 9.0;
            let q = GeoPoint {
                lon: p.lon + 0.0024 * a.cos(),
                lat: p.lat + 0.0012 * a.sin(),
            };
            assets.push(Asset {
                id: format!("sig/{s}/{k}"),
                asset_type: "signal".into(),
                name: format!("Signal {s}/{k}"),
                position: q,
                layer: Layer::Transport,
                fed_by: Some(id.clone()),
                feeder: None,
            });
        }
    }
    let positions: Vec<GeoPoint> = assets.iter().map(|a| a.position).collect();
    let index = AssetIndex::new(assets).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let rules = Rules::parse(DEFAULT_RULES).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let mut c = Correlator::new(rules, index);
    let t0 = 1_795_000_000_000i64;
    let obs = |seq: u64, at: i64, entity: String, kind: &str, severity: Severity, layer: Layer, position: GeoPoint| {
        Observation {
            feed: "bench".into(),
            seq,
            idx: 0,
            received_ms: at,
            observed_ms: at - 500,
            layer,
            kind: kind.into(),
            severity,
            entity,
            position,
            title: kind.into(),
            fields: Default::default(),
            shape: None,
        }
    };
    let mut seq = 0u64;
    let mut trips: Vec<Observation> = (0..substations)
        .map(|s| {
            seq += 1;
            obs(
                seq,
                t0,
                format!("sub/{s}"),
                "substation.trip",
                Severity::Extreme,
                Layer::Utility,
                positions[s * 10],
            )
        })
        .collect();
    c.ingest_second(t0 / 1000, &mut trips);
    let open_incidents = c.open_incidents().count() as u64;
    let rss_open_mib = rss_mib();

    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut make = |seq: u64, at: i64| {
        let r = next();
        let s = (r % substations as u64) as usize;
        let k = ((r >> 20) % 9) as usize;
        let p = positions[s * 10 + 1 + k];
        match (r >> 40) % 20 {
            0..=11 => obs(
                seq,
                at,
                format!("sig/{s}/{k}"),
                "signal.dark",
                Severity::Severe,
                Layer::Transport,
                p,
            ),
            12..=16 => {
                let q = GeoPoint {
                    lon: p.lon + 0.0005,
                    lat: p.lat,
                };
                obs(
                    seq,
                    at,
                    format!("veh/{}", (r >> 8) % 5_000),
                    "vehicle.delayed",
                    Severity::Moderate,
                    Layer::Transport,
                    q,
                )
            }
            _ => obs(
                seq,
                at,
                format!("sig/{s}/{k}"),
                "signal.ok",
                Severity::Normal,
                Layer::Transport,
                p,
            ),
        }
    };
    let mut second = t0 / 1000 + 1;
    let started = Instant::now();
    let mut done = 0usize;
    while done < n {
        let mut b: Vec<Observation> = (0..batch.min(n - done))
            .map(|_| {
                seq += 1;
                make(seq, second * 1000 + 100)
            })
            .collect();
        done += b.len();
        c.ingest_second(second, &mut b);
        second += 1;
    }
    let per_sec = n as f64 / started.elapsed().as_secs_f64();
    let mut lat = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        seq += 1;
        let mut one = [make(seq, second * 1000 + 100)];
        let t = Instant::now();
        c.ingest_second(second, &mut one);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        second += 1;
    }
    lat.sort_by(f64::total_cmp);
    Ok(CorrelationReport {
        assets: (substations * 10) as u64,
        open_incidents,
        observations: n as u64,
        batch: batch as u64,
        per_sec,
        p50_us: lat[lat.len() / 2],
        p99_us: lat[lat.len() * 99 / 100],
        rss_before_mib,
        rss_open_mib,
    })
}

/// What `cityops-bench seek` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeekReport {
    /// Observations in the generated 24 h tape.
    pub observations: u64,
    /// The pipeline alone (decode, checks, group commits), observations per second.
    pub pipeline_per_sec: f64,
    /// The whole replay at max speed (pipeline, picture, incident desk with the default
    /// rules and its checkpoints), observations per second.
    pub replay_per_sec: f64,
    /// `replay_per_sec / pipeline_per_sec`.
    pub replay_ratio: f64,
    /// Scenario time over wall time of the max-speed replay.
    pub speed_up: f64,
    /// Seeks measured, to random times.
    pub seeks: usize,
    pub seek_p50_ms: f64,
    pub seek_p99_ms: f64,
    pub seek_max_ms: f64,
    /// After each seek, once it answered: the store's copy of the incidents brought to the
    /// new time (what the engine does when the clock rests; see `Desk::write_behind`).
    pub write_behind_p50_ms: f64,
    pub write_behind_max_ms: f64,
    /// The longest single step of the write-behind (`Desk::write_behind_step`): the longest
    /// a command waits behind it.
    pub write_behind_step_max_ms: f64,
    /// Incidents at the end of the tape.
    pub incidents: u64,
    pub peak_rss_mib: f64,
}

/// The benchmark manifest, ending after the generated day.
fn day_manifest() -> Result<Manifest, EngineError> {
    let text = MANIFEST.replace(
        "start = \"2026-11-26T00:00:00Z\"",
        "start = \"2026-11-26T00:00:00Z\"\nend = \"2026-11-27T00:00:00Z\"",
    );
    Manifest::parse(&text).map_err(|e| EngineError::InvalidInput(e.to_string()))
}

/// A replay of generated messages with the default rules, on its own database file in `dir`.
fn day_replay(
    dir: &Path,
    manifest: &Manifest,
    messages: Vec<TapeMessage>,
    db: &str,
) -> Result<cityops_engine::replay::Replay, EngineError> {
    let rules = Rules::parse(DEFAULT_RULES).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let scenario = cityops_engine::scenario::Scenario {
        dir: dir.to_owned(),
        manifest: manifest.clone(),
        tape_path: dir.join("generated.ndjson"),
        messages,
        tape_issues: Vec::new(),
        assets: AssetIndex::default(),
        rules: Some(rules),
        zones: Default::default(),
    };
    let store = Store::open(&dir.join(db))?;
    let run = store.begin_run("bench-seek", "bench")?;
    let pipeline = Pipeline::new(store, run, &manifest.feeds, dir)?;
    Ok(cityops_engine::replay::Replay::new(scenario, pipeline))
}

/// Replays a generated 24 h tape of `n` observations at max speed (with the incident desk),
/// times the pipeline alone on the same messages in the same run, then seeks to `seeks` random
/// times and reports the latency of each seek (picture rebuilt from the store, incidents
/// restored from the nearest checkpoint and correlated forward).
pub fn seek(n: usize, seeks: usize, dir: &Path) -> Result<SeekReport, EngineError> {
    let manifest = day_manifest()?;
    let (messages, _) = generate(&manifest, n, Tape::Stress);
    let end_ms = manifest.start_ms + 24 * 3600 * 1000;
    // The pipeline alone, on its own database.
    let store = Store::open(&dir.join("seek-pipeline.db"))?;
    let run = store.begin_run("bench-seek-pipeline", "bench")?;
    let mut pipeline = Pipeline::new(store, run, &manifest.feeds, dir)?;
    let t = Instant::now();
    for msg in &messages {
        pipeline.ingest(msg, None)?;
    }
    pipeline.flush()?;
    let pipeline_secs = t.elapsed().as_secs_f64();
    let accepted = pipeline.stats().accepted.values().sum::<u64>();
    drop(pipeline);

    // The replay the app runs, at max speed.
    let mut replay = day_replay(dir, &manifest, messages, "seek-replay.db")?;
    let t = Instant::now();
    replay.run_to_end()?;
    let replay_secs = t.elapsed().as_secs_f64();
    let incidents = replay
        .desk()
        .map(|d| d.correlator().incidents().count() as u64)
        .unwrap_or(0);

    // Seeks to random times, forwards and backwards.
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut lat = Vec::with_capacity(seeks);
    let mut behind = Vec::with_capacity(seeks);
    let mut step_max: f64 = 0.0;
    for _ in 0..seeks {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let target = manifest.start_ms + (rng % (end_ms - manifest.start_ms) as u64) as i64;
        let t = Instant::now();
        replay.seek(target)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        // The write-behind as the engine does it, a step at a time: the whole, and its
        // longest step (how long a command can wait behind it).
        let mut whole = 0.0;
        loop {
            let t = Instant::now();
            let more = replay.write_behind_step()?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            whole += ms;
            step_max = step_max.max(ms);
            if !more {
                break;
            }
        }
        behind.push(whole);
    }
    lat.sort_by(f64::total_cmp);
    behind.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    Ok(SeekReport {
        observations: accepted,
        pipeline_per_sec: accepted as f64 / pipeline_secs,
        replay_per_sec: accepted as f64 / replay_secs,
        replay_ratio: pipeline_secs / replay_secs,
        speed_up: (end_ms - manifest.start_ms) as f64 / 1000.0 / replay_secs,
        seeks,
        seek_p50_ms: pct(0.5),
        seek_p99_ms: pct(0.99),
        seek_max_ms: pct(1.0),
        write_behind_p50_ms: behind[behind.len() / 2],
        write_behind_max_ms: behind[behind.len() - 1],
        write_behind_step_max_ms: step_max,
        incidents,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// What `cityops-bench query` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryReport {
    pub observations: u64,
    pub queries: usize,
    /// Observations a query found, on average.
    pub mean_rows: f64,
    pub index_p50_ms: f64,
    pub index_p99_ms: f64,
    /// The window's question (`Store::area_summary`): counts per kind and the newest 500.
    pub summary_p50_ms: f64,
    pub summary_p99_ms: f64,
    pub scan_p50_ms: f64,
    pub scan_p99_ms: f64,
    /// The full scan's p99 over the index's: how much the index saves.
    pub p99_ratio: f64,
}

/// "What happened here?": `queries` random boxes of about 1 km² over 15 minutes in a generated
/// city day of `n` observations, through the store's place-and-time index
/// ([`Store::in_area`]) and by a full scan of the same run ([`Store::in_area_scan`]), which
/// must find the same rows.
pub fn query(n: usize, queries: usize, dir: &Path) -> Result<QueryReport, EngineError> {
    let manifest = day_manifest()?;
    let (messages, _) = generate(&manifest, n, Tape::City);
    let store = Store::open(&dir.join("query.db"))?;
    let run = store.begin_run("bench-query", "bench")?;
    let mut pipeline = Pipeline::new(store, run, &manifest.feeds, dir)?;
    for msg in &messages {
        pipeline.ingest(msg, None)?;
    }
    pipeline.flush()?;
    drop(messages);
    let accepted = pipeline.stats().accepted.values().sum::<u64>();
    drop(pipeline);
    let store = Store::open(&dir.join("query.db"))?;
    // Where and when the day's observations are, to put the boxes among them.
    let (mut w, mut s, mut e, mut nn) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let (mut first, mut last) = (Millis::MAX, Millis::MIN);
    store.for_each(run, |o| {
        w = w.min(o.position.lon);
        e = e.max(o.position.lon);
        s = s.min(o.position.lat);
        nn = nn.max(o.position.lat);
        first = first.min(o.observed_ms);
        last = last.max(o.observed_ms);
    })?;
    // About 1 km by 1 km at the city's latitude, and 15 minutes.
    let (dlat, dlon) = (1000.0 / 111_320.0, 1000.0 / (111_320.0 * s.to_radians().cos()));
    let window = 15 * 60_000;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut index, mut scan, mut summary, mut rows) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
    for _ in 0..queries {
        let lon = w + next() * (e - w - dlon).max(0.0);
        let lat = s + next() * (nn - s - dlat).max(0.0);
        let from = first + (next() * (last - first - window).max(0) as f64) as Millis;
        let area = cityops_core::grid::BBox {
            min: GeoPoint { lon, lat },
            max: GeoPoint {
                lon: lon + dlon,
                lat: lat + dlat,
            },
        };
        let t = Instant::now();
        let a = store.in_area(Some(run), area, from, from + window)?;
        index.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let c = store.area_summary(run, area, (from, from + window), Millis::MAX, None, 500)?;
        summary.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let b = store.in_area_scan(run, area, from, from + window)?;
        scan.push(t.elapsed().as_secs_f64() * 1000.0);
        if a.len() != b.len() || a.len() as u64 != c.total {
            return Err(EngineError::InvalidInput(format!(
                "the index found {} observations, the summary counted {} and a full scan found {}",
                a.len(),
                c.total,
                b.len()
            )));
        }
        rows += a.len();
    }
    index.sort_by(f64::total_cmp);
    summary.sort_by(f64::total_cmp);
    scan.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Ok(QueryReport {
        observations: accepted,
        queries,
        mean_rows: rows as f64 / queries as f64,
        index_p50_ms: pct(&index, 0.5),
        index_p99_ms: pct(&index, 0.99),
        summary_p50_ms: pct(&summary, 0.5),
        summary_p99_ms: pct(&summary, 0.99),
        scan_p50_ms: pct(&scan, 0.5),
        scan_p99_ms: pct(&scan, 0.99),
        p99_ratio: pct(&scan, 0.99) / pct(&index, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replay of a generated day of 20,000 observations, on its own database file.
    fn day(dir: &Path, name: &str) -> cityops_engine::replay::Replay {
        let manifest = day_manifest().unwrap();
        let (messages, _) = generate(&manifest, 20_000, Tape::Stress);
        day_replay(dir, &manifest, messages, name).unwrap()
    }

    /// The place-and-time index finds what a full scan of the run finds: `query` refuses to
    /// report otherwise, and the boxes are among the observations.
    #[test]
    fn the_index_finds_what_a_full_scan_finds() {
        let dir = tempfile::tempdir().unwrap();
        let r = query(20_000, 25, dir.path()).unwrap();
        assert_eq!(r.queries, 25);
        assert!(r.mean_rows > 0.0, "{r:?}");
    }

    /// The city day is what `BENCHMARKS.md` says it is: cameras and meters stay where they
    /// are, vehicles move, about a quarter of the observations are abnormal, faults come from
    /// storm cells (so cameras both fail and come back), and it opens incidents.
    #[test]
    fn the_city_day_is_as_documented() {
        let manifest = Manifest::parse(MANIFEST).unwrap();
        let (messages, abnormal) = generate(&manifest, 50_000, Tape::City);
        let share = abnormal as f64 / 50_000.0;
        assert!((0.15..0.35).contains(&share), "abnormal share {share}");
        let mut places: std::collections::HashMap<String, std::collections::HashSet<(u64, u64)>> = Default::default();
        let mut kinds = std::collections::BTreeSet::new();
        let mut all = Vec::new();
        for msg in &messages {
            let layer = manifest.feed(&msg.feed).unwrap().layer;
            let ctx = MessageContext {
                feed: &msg.feed,
                layer,
                seq: msg.line,
                received_ms: msg.time_ms,
                topic: None,
            };
            for o in feeds::geojson::decode(ctx, &msg.body).unwrap().observations {
                places
                    .entry(o.entity.clone())
                    .or_default()
                    .insert((o.position.lon.to_bits(), o.position.lat.to_bits()));
                kinds.insert(o.kind.clone());
                all.push(o);
            }
        }
        assert_eq!(all.len(), 50_000);
        for (entity, at) in &places {
            if entity.starts_with("cameras/") || entity.starts_with("meters/") {
                assert_eq!(at.len(), 1, "{entity} moved");
            }
        }
        assert!(
            places.iter().any(|(e, at)| e.starts_with("vehicles/") && at.len() > 1),
            "no vehicle moved"
        );
        for k in [
            "camera.offline",
            "camera.online",
            "vehicle.delayed",
            "vehicle.position",
            "report.outage",
            "feeder.voltage",
        ] {
            assert!(kinds.contains(k), "no {k}");
        }
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        let mut c = Correlator::new(rules, AssetIndex::default());
        // The tape is in arrival order: each run of one arrival second is a batch.
        let second = |o: &Observation| o.received_ms.div_euclid(1000);
        for batch in all.chunk_by_mut(|a, b| second(a) == second(b)) {
            c.ingest_second(second(&batch[0]), batch);
        }
        assert!(c.incidents().count() > 50, "{} incidents", c.incidents().count());
    }

    fn stored(replay: &cityops_engine::replay::Replay) -> Vec<cityops_store::StoredIncident> {
        let store = replay.pipeline().store();
        store.stored_incidents(replay.pipeline().run()).unwrap()
    }

    /// Written behind in small steps, with seeks landing between steps, the store's copy of
    /// the incidents ends as the whole write in one go leaves it, at every stop.
    #[test]
    fn the_write_behind_in_steps_ends_as_the_whole_write() {
        let dir = tempfile::tempdir().unwrap();
        let (mut stepped, mut whole) = (day(dir.path(), "stepped.db"), day(dir.path(), "whole.db"));
        for r in [&mut stepped, &mut whole] {
            r.run_to_end().unwrap();
            r.flush().unwrap();
        }
        let start = stepped.clock().start_ms;
        let incidents = stored(&whole).len();
        assert!(
            incidents > 100,
            "{incidents} incidents: too few for steps of 7 to matter"
        );
        let hour = 3_600_000;
        for (k, t) in [13, 2, 20, 7, 23, 1].into_iter().enumerate() {
            for r in [&mut stepped, &mut whole] {
                r.seek(start + t * hour).unwrap();
            }
            let (desk, store) = stepped.desk_mut().unwrap();
            let mut steps = 0;
            // Every other stop, a seek lands after a few steps, before the write is done.
            if k % 2 == 1 {
                for _ in 0..3 {
                    desk.persist_upto(store, 7).unwrap();
                }
                for r in [&mut stepped, &mut whole] {
                    r.seek(start + (t + 1) * hour).unwrap();
                }
            }
            let (desk, store) = stepped.desk_mut().unwrap();
            while desk.persist_upto(store, 7).unwrap() {
                steps += 1;
            }
            whole.flush().unwrap();
            assert!(steps > 1, "stop {k}: the write took {steps} steps");
            let (a, b) = (stored(&stepped), stored(&whole));
            assert_eq!(a.len(), b.len(), "stop {k}");
            assert!(a == b, "stop {k}: the stepped write differs from the whole one");
        }
    }
}
