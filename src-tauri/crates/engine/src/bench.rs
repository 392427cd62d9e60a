//! The ingest benchmark: a large generated tape through the real pipeline, compared with the
//! raw batched insert rate of the same rows measured in the same process, so that the ratio
//! holds on a noisy machine where absolute rates do not (see `BENCHMARKS.md`).

use std::path::Path;
use std::time::Instant;

use cityops_core::scenario::Manifest;
use cityops_core::tape::{FeedFormat, TapeMessage};
use serde::Serialize;

use crate::error::EngineError;
use crate::feeds::{self, MessageContext};
use crate::pipeline::{Pipeline, BATCH_ROWS};
use crate::store::Store;

/// Features per generated message, as a feed that batches its updates sends them.
const FEATURES_PER_MESSAGE: usize = 50;

/// What `cityops bench` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    /// Observations in the generated tape.
    pub observations: u64,
    /// Observations per second through decode, quarantine checks and group commits.
    pub pipeline_per_sec: f64,
    /// Rows per second of batched inserts of the same, already decoded rows.
    pub raw_insert_per_sec: f64,
    /// `pipeline_per_sec / raw_insert_per_sec`.
    pub ratio: f64,
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

/// A deterministic tape of `n` observations spread over a day and the extract's area.
fn generate(manifest: &Manifest, n: usize) -> Vec<TapeMessage> {
    let feeds = ["vehicles", "cameras", "meters", "reports"];
    let kinds = ["vehicle.position", "camera.offline", "feeder.voltage", "report.outage"];
    let severities = ["normal", "minor", "moderate", "severe", "extreme"];
    let messages = n.div_ceil(FEATURES_PER_MESSAGE);
    let step_ms = (24 * 3600 * 1000 / messages.max(1)) as i64;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = Vec::with_capacity(messages);
    let mut made = 0;
    for m in 0..messages {
        let f = m % feeds.len();
        let time_ms = manifest.start_ms + m as i64 * step_ms;
        let time = chrono::DateTime::from_timestamp_millis(time_ms - 1500).unwrap_or_default().to_rfc3339();
        let mut body = String::from(r#"{"type":"FeatureCollection","features":["#);
        for i in 0..FEATURES_PER_MESSAGE.min(n - made) {
            let r = next();
            let lon = 24.9351 + (r % 18_400) as f64 * 1e-6;
            let lat = 60.1641 + ((r >> 20) % 15_100) as f64 * 1e-6;
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"type":"Feature","id":"{}/{}","geometry":{{"type":"Point","coordinates":[{lon:.6},{lat:.6}]}},"properties":{{"kind":"{}","severity":"{}","time":"{time}","title":"generated {}","value":{}}}}}"#,
                feeds[f], (r >> 40) % 5_000, kinds[f], severities[(r >> 8) as usize % 5], m, r % 1000
            ));
            made += 1;
        }
        body.push_str("]}");
        out.push(TapeMessage { line: m as u64 + 1, time_ms, feed: feeds[f].into(), format: FeedFormat::GeoJson, topic: None, body: body.into_bytes() });
    }
    out
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
pub fn run(n: usize, dir: &Path) -> Result<BenchReport, EngineError> {
    let manifest = Manifest::parse(MANIFEST).expect("the benchmark manifest is valid");
    let messages = generate(&manifest, n);

    // The pipeline: decode, validate, group-commit into a WAL file with all indexes.
    let store = Store::open(&dir.join("pipeline.db"))?;
    let run = store.begin_run("bench", "bench")?;
    let mut pipeline = Pipeline::new(store, run, &manifest.feeds, dir)?;
    // The raw insert of the same rows into an identical database; decoding them for it is
    // not timed.
    let mut raw = Store::open(&dir.join("raw.db"))?;
    let raw_run = raw.begin_run("bench-raw", "bench")?;

    let (mut pipeline_secs, mut raw_secs) = (0.0, 0.0);
    let mut inserted = 0u64;
    let chunk = BATCH_ROWS.div_ceil(FEATURES_PER_MESSAGE);
    for slice in messages.chunks(chunk) {
        let t = Instant::now();
        for msg in slice {
            pipeline.ingest(msg, None)?;
        }
        pipeline.flush()?;
        pipeline_secs += t.elapsed().as_secs_f64();

        let mut rows = Vec::with_capacity(BATCH_ROWS);
        for msg in slice {
            let layer = manifest.feed(&msg.feed).map(|f| f.layer).expect("generated feeds are declared");
            let ctx = MessageContext { feed: &msg.feed, layer, seq: msg.line, received_ms: msg.time_ms, topic: None };
            let decoded = feeds::geojson::decode(ctx, &msg.body).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
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
    Ok(BenchReport {
        observations: accepted,
        pipeline_per_sec,
        raw_insert_per_sec,
        ratio: pipeline_per_sec / raw_insert_per_sec,
        peak_rss_mib: peak_rss_mib(),
    })
}
