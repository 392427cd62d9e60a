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

/// What `cityops bench-mqtt` prints.
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
    use crate::config::LiveConfig;
    use crate::live::{self, Health, LiveOptions};
    use std::time::Duration;

    let config_text = format!(
        "[[feeds]]\nid = \"soak\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ntopics = [\"soak/#\"]\nclient_id = \"cityops-soak-{}\"\n",
        std::process::id()
    );
    let config = LiveConfig::parse(&dir.join("soak.toml"), &config_text).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    let store = Store::open(&dir.join("soak.db"))?;
    let health = Health::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(live::run(config, store, LiveOptions::default(), health.clone(), stop_rx));
    let now = || chrono::Utc::now().timestamp_millis();
    let feed = |h: &Health| h.snapshot(now()).into_iter().next();
    for _ in 0..100 {
        if feed(&health).is_some_and(|f| f.connected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !feed(&health).is_some_and(|f| f.connected) {
        return Err(EngineError::InvalidInput(format!("no MQTT broker answers on 127.0.0.1:{port}")));
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
    let sampler = tokio::spawn(async move {
        let mut peak: f64 = 0.0;
        while !sampler_flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_mib());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        peak
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
    stop_tx.send(true).ok();
    let summary = runner.await.map_err(|e| EngineError::InvalidInput(e.to_string()))??;
    sampler_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap_or(f64::NAN);
    pump.abort();
    let stored = Store::open(&dir.join("soak.db"))?.counts(summary.run)?.per_layer.iter().map(|(_, n)| n).sum();
    Ok(MqttSoakReport {
        published: acked.load(std::sync::atomic::Ordering::Relaxed),
        ingested: summary.stats.messages,
        stored,
        publish_rate: sent as f64 / publish_secs,
        seconds: publish_secs,
        rss_start_mib: rss_start,
        rss_peak_mib: peak,
        rss_end_mib: rss_mib(),
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
}

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
    /// Runs only the underlying parser over a body.
    pub bare: fn(&[u8]) -> Result<usize, feeds::DecodeError>,
    /// When the payloads are taken to arrive (adapters refuse times a year off arrival).
    pub received_ms: i64,
}

/// Measures a case: alternating adapter and bare passes over the same payloads until each side
/// has run for at least `min_secs`, so background load hits both alike.
pub fn decode_rate(case: &DecodeCase, min_secs: f64) -> Result<DecodeRate, EngineError> {
    let mut adapter = feeds::adapter_for(&case.spec, &case.base_dir)?;
    let bytes: usize = case.payloads.iter().map(|(_, b)| b.len()).sum();
    let (mut adapter_secs, mut bare_secs, mut passes, mut observations) = (0.0, 0.0, 0usize, 0usize);
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
            observations += feeds::checked_decode(adapter.as_mut(), ctx, body).map(|d| d.observations.len()).unwrap_or(0);
        }
        adapter_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (_, body) in &case.payloads {
            let _ = std::hint::black_box((case.bare)(body));
        }
        bare_secs += t.elapsed().as_secs_f64();
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
    })
}
