//! `cityops-bench`: the benchmarks of `BENCHMARKS.md`, each printing the ratios it measures
//! against a bare baseline in the same run (so they hold on a noisy machine). Run them from a
//! release build: `cargo run --release -p cityops-bench -- <benchmark>`.

use std::path::{Path, PathBuf};

use cityops_bench::Tape;
use cityops_core::model::Layer;
use cityops_core::scenario::FeedSpec;
use cityops_decoders as feeds;
use clap::{Parser, Subcommand};

/// mimalloc, as the `cityops` and desktop binaries use it, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cityops-bench",
    version,
    about = "cityops benchmarks: each prints ratios against a baseline measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// live feed ingests it, then checks nothing was lost and reports memory.
    Mqtt {
        /// The broker's port on 127.0.0.1 (start mosquitto there first).
        #[arg(long)]
        port: u16,
        /// Messages per second to publish.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Seconds to publish for.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Decode rate of every adapter on real payloads, next to its bare parser on the same bytes.
    Decode {
        /// Seconds each side runs per format.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// The real sample payloads (CAP alerts and GTFS-RT captures; fixtures/samples).
        #[arg(long, default_value = "fixtures/samples")]
        data: PathBuf,
        /// Only these formats (for example `cot`); all when none is given.
        #[arg(long = "format")]
        formats: Vec<String>,
    },
    /// Durable commit latency of an action next to raw fdatasync, and delivery throughput to a
    /// webhook receiver (tests/peers/webhook/run.sh) when `--webhook` is given.
    Outbox {
        /// Commits measured (and actions delivered).
        #[arg(long, default_value_t = 1000)]
        actions: usize,
        /// Where the databases go (a temporary folder in the current one by default, so the
        /// disk measured is the project's, not a RAM-backed /tmp).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The receiver's URL, e.g. http://127.0.0.1:9000/hooks/notify.
        #[arg(long)]
        webhook: Option<String>,
        /// The environment variable holding the receiver's secret.
        #[arg(long, default_value = "CITYOPS_WEBHOOK_SECRET")]
        secret_env: String,
    },
    /// Seek latency in a generated 24 h tape, and the max-speed replay against the pipeline alone.
    Seek {
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        #[arg(long, default_value_t = 200)]
        seeks: usize,
        /// Where the databases go (a temporary folder in the current one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Correlation throughput and latency with many open incidents and a large asset index.
    Correlate {
        /// Substations, each feeding nine signals; every one trips, so this is also the number
        /// of open incidents.
        #[arg(long, default_value_t = 10_000)]
        substations: usize,
        /// Observations correlated after the trips.
        #[arg(long, default_value_t = 200_000)]
        observations: usize,
        /// Observations per arrival second.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
    },
    /// A site on a running nats-server (tests/peers/nats/run.sh): a workstation catching up
    /// from an empty cache against a local replay of the same tape, then the propagation of
    /// operators' events from one workstation to another under a steady feed load.
    Site {
        /// The NATS server (user and password from CITYOPS_NATS_USER and CITYOPS_NATS_PASSWORD).
        #[arg(long)]
        nats: String,
        /// Observations in the generated city day the workstation catches up with.
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        /// Operators' events timed.
        #[arg(long, default_value_t = 200)]
        events: usize,
        /// Operators' events per second.
        #[arg(long, default_value_t = 20)]
        events_per_sec: u64,
        /// Feed messages per second meanwhile (50 observations each).
        #[arg(long, default_value_t = 100)]
        feed_rate: u64,
        /// Where the databases go (a temporary folder in the current one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Headless workstations, each a process of its own, following one site while a steady
    /// feed goes into it: per workstation the latency from a feed message to its cache and to
    /// its incidents; with --offline-minutes, one workstation's catch-up after a disconnection
    /// against a local replay; with --cluster, a node killed halfway through each run.
    Fanout {
        /// The NATS server (user and password from CITYOPS_NATS_USER and CITYOPS_NATS_PASSWORD);
        /// not with --cluster.
        #[arg(long, required_unless_present = "cluster")]
        nats: Option<String>,
        /// Counts of workstations, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,5,10,20")]
        workstations: Vec<usize>,
        /// Feed messages per second (one observation each).
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        /// Seconds each run publishes for.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Also time one workstation catching up after this many minutes offline (0: not).
        #[arg(long, default_value_t = 0.0)]
        offline_minutes: f64,
        /// Start a three-node cluster (R3 streams) with --nats-script for each run and kill the
        /// node leading the stream halfway through it.
        #[arg(long)]
        cluster: bool,
        /// The script that runs one nats-server node.
        #[arg(long, default_value = "tests/peers/nats/run.sh")]
        nats_script: PathBuf,
        /// Where the caches go (a temporary folder in the current one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// One workstation of `fanout`, run by it.
    #[command(hide = true)]
    Workstation {
        #[arg(long)]
        nats: String,
        #[arg(long)]
        site: String,
        #[arg(long)]
        db: PathBuf,
        /// Where the stop file is.
        #[arg(long)]
        dir: PathBuf,
        /// Where its log goes.
        #[arg(long)]
        out: PathBuf,
    },
    /// "What happened here?": random 1 km² boxes over 15 minutes in a generated city day,
    /// through the place-and-time index and by a full scan of the same run.
    Query {
        /// Observations in the generated day.
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        /// Queries to time.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Where the benchmark database goes (a temporary folder by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Replays a large generated tape through the pipeline and compares it with raw inserts.
    Ingest {
        /// Observations in the generated tape.
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        /// Which generated day: `city` or `stress` (both, one after the other, by default).
        #[arg(long)]
        tape: Option<String>,
        /// Where the two benchmark databases go (a temporary folder by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(cityops_engine::log_colour(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .init();
    match Cli::parse().command {
        Command::Mqtt { port, rate, seconds } => {
            let tmp = tempfile::tempdir()?;
            let rt = runtime()?;
            let r = rt.block_on(cityops_bench::mqtt_soak(port, rate, seconds, tmp.path()))?;
            println!("{}", serde_json::to_string(&r)?);
            println!(
                "published {} ({:.0}/s over {:.1} s), ingested {}, stored {}, lost {}; RSS {:.0} MiB at start, peak {:.0}, end {:.0}",
                r.published, r.publish_rate, r.seconds, r.ingested, r.stored, r.published.saturating_sub(r.stored), r.rss_start_mib, r.rss_peak_mib, r.rss_end_mib
            );
            Ok(())
        }
        Command::Decode { seconds, data, formats } => {
            for case in decode_cases(&data)?
                .into_iter()
                .filter(|c| formats.is_empty() || formats.iter().any(|f| f == c.spec.format.as_str()))
            {
                let r = cityops_bench::decode_rate(&case, seconds)?;
                println!("{}", serde_json::to_string(&r)?);
                let tokenizer = match (r.tokenizer_mb_per_sec, r.tokenizer_ratio) {
                    (Some(mb), Some(ratio)) => format!("; tokenizer alone {mb:.1} MB/s, ratio {ratio:.2}"),
                    _ => String::new(),
                };
                eprintln!(
                    "{:<12} {:>5} msgs {:>9} B -> {:>6} obs: adapter {:>8.0} msg/s {:>7.1} MB/s, bare {:>7.1} MB/s, ratio {:.2}{tokenizer}  ({})",
                    r.format, r.messages, r.bytes, r.observations, r.adapter_msgs_per_sec, r.adapter_mb_per_sec, r.bare_mb_per_sec, r.ratio, r.source
                );
            }
            Ok(())
        }
        Command::Outbox {
            actions,
            dir,
            webhook,
            secret_env,
        } => {
            let tmp = tempfile::tempdir_in(".")?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let rt = runtime()?;
            let r = rt.block_on(cityops_bench::outbox::run(
                &dir,
                actions.max(1),
                webhook.as_deref().map(|u| (u, secret_env.as_str())),
            ))?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "commit p50 {:.0} us p99 {:.0} us; fdatasync p50 {:.0} us p99 {:.0} us; ratio p50 {:.2} p99 {:.2}",
                r.commit_p50_us, r.commit_p99_us, r.fdatasync_p50_us, r.fdatasync_p99_us, r.ratio_p50, r.ratio_p99
            );
            if let (Some(rate), Some(bare), Some(ratio)) = (r.delivered_per_sec, r.bare_posts_per_sec, r.delivery_ratio)
            {
                eprintln!("delivered {} actions to the webhook receiver: {rate:.1} actions/s; bare signed POSTs {bare:.1}/s; ratio {ratio:.2}", r.delivered);
            }
            Ok(())
        }
        Command::Site {
            nats,
            observations,
            events,
            events_per_sec,
            feed_rate,
            dir,
        } => {
            let tmp = tempfile::tempdir_in(".")?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let rt = runtime()?;
            let c = rt.block_on(cityops_bench::site::catch_up(
                &nats,
                observations,
                &dir.join("catch-up"),
            ))?;
            println!("{}", serde_json::to_string(&c)?);
            eprintln!(
                "catch-up of {} observations ({} messages): replay {:.0} obs/s ({:.1} s; {:.1} s with reading the tape), workstation {:.0} obs/s ({:.1} s), ratio {:.2} ({:.2} against the whole command); incidents {} and {}; publishing took {:.1} s",
                c.observations, c.messages, c.replay_per_sec, c.replay_secs, c.replay_command_secs, c.follow_per_sec, c.follow_secs, c.ratio, c.command_ratio, c.replay_incidents, c.follow_incidents, c.publish_secs
            );
            let p = rt.block_on(cityops_bench::site::propagation(
                &nats,
                events.max(1),
                events_per_sec,
                feed_rate,
                &dir.join("propagation"),
            ))?;
            println!("{}", serde_json::to_string(&p)?);
            eprintln!(
                "propagation of {} events ({} accepted) under {} feed messages/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                p.events, p.accepted, p.feed_rate, p.p50_ms, p.p99_ms, p.max_ms
            );
            Ok(())
        }
        Command::Fanout {
            nats,
            workstations,
            rate,
            seconds,
            offline_minutes,
            cluster,
            nats_script,
            dir,
        } => {
            let tmp = tempfile::tempdir_in(".")?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let rt = runtime()?;
            let mut o = cityops_bench::fanout::FanoutOptions {
                url: nats.unwrap_or_default(),
                workstations: 1,
                rate: rate.max(1),
                seconds: seconds.max(1),
                replicas: if cluster { 3 } else { 1 },
                dir: dir.clone(),
                exe: std::env::current_exe()?,
            };
            for n in workstations {
                o.workstations = n.max(1);
                let r = if cluster {
                    let run = dir.join(format!("cluster-{n}"));
                    rt.block_on(async {
                        let (mut nodes, url) = cityops_bench::fanout::start_cluster(&nats_script, &run).await?;
                        o.url = url;
                        cityops_bench::fanout::fanout(&o, Some(&mut nodes)).await
                    })?
                } else {
                    rt.block_on(cityops_bench::fanout::fanout(&o, None))?
                };
                println!("{}", serde_json::to_string(&r)?);
                eprintln!(
                    "{} workstations, {} messages at {:.0}/s: applied p50 {:.0} ms p99 {:.0} ms max {:.0} ms; correlated p50 {:.0} ms p99 {:.0} ms max {:.0} ms; lost {}, duplicates {}, longest stall {:.0} ms, longest publish {:.0} ms{}",
                    r.workstations, r.published, r.rate, r.applied.p50_ms, r.applied.p99_ms, r.applied.max_ms,
                    r.correlated.p50_ms, r.correlated.p99_ms, r.correlated.max_ms, r.lost, r.duplicates, r.stall_ms,
                    r.longest_publish_ms,
                    r.killed.as_ref().map(|k| format!("; killed {k} halfway")).unwrap_or_default()
                );
            }
            if offline_minutes > 0.0 && !cluster {
                let c = rt.block_on(cityops_bench::fanout::catch_up(&o, offline_minutes))?;
                println!("{}", serde_json::to_string(&c)?);
                eprintln!(
                    "catch-up after {} min offline ({} messages): workstation {:.1} s, local replay {:.1} s, ratio {:.2}; observations {} and {}",
                    c.offline_minutes, c.messages, c.catch_up_secs, c.replay_secs, c.ratio, c.caught_up, c.replayed
                );
            }
            Ok(())
        }
        Command::Workstation {
            nats,
            site,
            db,
            dir,
            out,
        } => {
            let rt = runtime()?;
            rt.block_on(cityops_bench::fanout::workstation(&nats, &site, &db, &dir, &out))?;
            Ok(())
        }
        Command::Query {
            observations,
            queries,
            dir,
        } => {
            let tmp = tempfile::tempdir_in(".")?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let r = cityops_bench::query(observations, queries.max(1), &dir)?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "{} observations; {} queries of 1 km² x 15 min, {:.0} rows each on average: index p50 {:.2} ms p99 {:.2} ms; the window's summary p50 {:.2} ms p99 {:.2} ms; full scan p50 {:.0} ms p99 {:.0} ms (p99 ratio {:.0})",
                r.observations,
                r.queries,
                r.mean_rows,
                r.index_p50_ms,
                r.index_p99_ms,
                r.summary_p50_ms,
                r.summary_p99_ms,
                r.scan_p50_ms,
                r.scan_p99_ms,
                r.p99_ratio
            );
            Ok(())
        }
        Command::Seek {
            observations,
            seeks,
            dir,
        } => {
            let tmp = tempfile::tempdir_in(".")?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let r = cityops_bench::seek(observations, seeks.max(1), &dir)?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "{} observations over 24 h: pipeline {:.0} obs/s, max-speed replay {:.0} obs/s (ratio {:.2}, {:.0}x real time); {} seeks p50 {:.0} ms p99 {:.0} ms max {:.0} ms, then the store's incidents p50 {:.0} ms max {:.0} ms (longest step {:.0} ms); {} incidents; peak RSS {:.0} MiB",
                r.observations,
                r.pipeline_per_sec,
                r.replay_per_sec,
                r.replay_ratio,
                r.speed_up,
                r.seeks,
                r.seek_p50_ms,
                r.seek_p99_ms,
                r.seek_max_ms,
                r.write_behind_p50_ms,
                r.write_behind_max_ms,
                r.write_behind_step_max_ms,
                r.incidents,
                r.peak_rss_mib
            );
            Ok(())
        }
        Command::Correlate {
            substations,
            observations,
            batch,
        } => {
            let r = cityops_bench::correlation(substations, observations, batch.max(1))?;
            println!("{}", serde_json::to_string(&r)?);
            println!(
                "{} assets, {} open incidents: {:.0} obs/s in batches of {}, one observation p50 {:.0} us, p99 {:.0} us; RSS {:.0} MiB -> {:.0} MiB with the incidents open",
                r.assets, r.open_incidents, r.per_sec, r.batch, r.p50_us, r.p99_us, r.rss_before_mib, r.rss_open_mib
            );
            Ok(())
        }
        Command::Ingest {
            observations,
            tape,
            dir,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let tapes = match tape.as_deref() {
                None => vec![Tape::City, Tape::Stress],
                Some(t) => vec![t.parse::<Tape>()?],
            };
            for tape in tapes {
                let dir = dir.join(tape.name());
                std::fs::create_dir_all(&dir)?;
                let r = cityops_bench::run(observations, tape, &dir)?;
                println!("{}", serde_json::to_string(&r)?);
                println!(
                    "{:?} day ({:.0} % abnormal): pipeline {:.0} obs/s, raw batched insert {:.0} rows/s, ratio {:.2}; with correlation {:.0} obs/s, ratio {:.2} ({} incidents); peak RSS {:.0} MiB ({} observations)",
                    r.tape, r.abnormal_share * 100.0, r.pipeline_per_sec, r.raw_insert_per_sec, r.ratio, r.whole_per_sec, r.whole_ratio, r.incidents, r.peak_rss_mib, r.observations
                );
            }
            Ok(())
        }
    }
}

/// 21:00 on the demo night, when the generated and demo payloads are taken to arrive.
const DEMO_TIME_MS: i64 = 1_795_719_600_000;

/// The real payloads each adapter is benchmarked on.
fn decode_cases(data: &Path) -> anyhow::Result<Vec<cityops_bench::DecodeCase>> {
    use cityops_core::tape::FeedFormat;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let spec = |id: &str, layer: Layer, format: FeedFormat| FeedSpec {
        id: id.into(),
        layer,
        format,
        name: String::new(),
        mapping: serde_json::Value::Null,
    };
    let mut cases = Vec::new();

    // GeoJSON: every message of the demo tape (real OSM assets and routes).
    let demo = cityops_engine::scenario::Scenario::load(&repo.join("fixtures/scenarios/helsinki-storm"))?;
    cases.push(cityops_bench::DecodeCase {
        spec: spec("demo", Layer::Transport, FeedFormat::GeoJson),
        base_dir: demo.dir.clone(),
        source: "fixtures/scenarios/helsinki-storm tape bodies".into(),
        payloads: demo
            .messages
            .iter()
            .map(|m| (m.topic.clone(), m.body.clone()))
            .collect(),
        bare: feeds::geojson::bare_parse,
        tokenize: None,
        received_ms: DEMO_TIME_MS,
    });

    // CAP: the real OASIS, IPAWS, NWS and NOAA alerts (CAP 1.0 examples are refused by design).
    let cap_dir = data.join("cap");
    let mut alerts: Vec<_> = std::fs::read_dir(&cap_dir)
        .map_err(|e| anyhow::anyhow!("{}: {e} (the real samples folder; see --data)", cap_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("v1dot0")))
        .collect();
    alerts.sort();
    let mut cap = spec("alerts", Layer::Alerts, FeedFormat::Cap);
    cap.mapping = serde_json::json!({ "fallback_position": [24.9384, 60.1699] });
    cases.push(cityops_bench::DecodeCase {
        spec: cap,
        base_dir: cap_dir.clone(),
        source: format!("{} real alerts in {}", alerts.len(), cap_dir.display()),
        payloads: alerts
            .iter()
            .map(|p| std::fs::read(p).map(|b| (None, b)))
            .collect::<Result<_, _>>()?,
        bare: feeds::xml::bare_parse,
        tokenize: Some(feeds::cap::tokenize),
        received_ms: DEMO_TIME_MS,
    });

    // CoT: no real capture is published; events as ATAK sends them (MITRE base schema plus the
    // usual ATAK detail), one per message as the TCP framing yields them.
    let events = (0..200)
        .map(|k| {
            let body = format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><event version="2.0" uid="ANDROID-{k}" type="a-f-G-U-C" how="m-g" time="2026-11-26T19:10:00Z" start="2026-11-26T19:10:00Z" stale="2026-11-26T19:16:00Z"><point lat="60.17{k:02}" lon="24.94{k:02}" hae="15.2" ce="9.9" le="9999999.0"/><detail><takv os="34" version="4.10.0" device="PIXEL" platform="ATAK-CIV"/><contact endpoint="*:-1:stcp" callsign="HEL-{k}"/><__group role="Team Member" name="Cyan"/><status battery="88"/><track course="90.0" speed="1.5"/><remarks>Patrol &amp; check &lt;north&gt;</remarks></detail></event>"#
            );
            (None, body.into_bytes())
        })
        .collect();
    cases.push(cityops_bench::DecodeCase {
        spec: spec("units", Layer::Security, FeedFormat::Cot),
        base_dir: repo.clone(),
        source: "200 ATAK-style events (no real capture is published)".into(),
        payloads: events,
        bare: feeds::xml::bare_parse,
        tokenize: Some(feeds::cot::tokenize),
        received_ms: DEMO_TIME_MS,
    });

    // GTFS-Realtime: the real MiWay capture, in the order a poller would see it, so trip
    // updates are placed at the buses just seen (there is no static data for MiWay here, so its
    // alerts cannot be placed and are refused: refusing is part of the work measured).
    let miway = data.join("gtfs-rt/miway");
    let payloads = ["VehiclePositions", "TripUpdates", "Alerts"]
        .iter()
        .map(|name| {
            let path = miway.join(format!("{name}.pb"));
            std::fs::read(&path)
                .map(|b| (None, b))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    cases.push(cityops_bench::DecodeCase {
        spec: spec("miway", Layer::Transport, FeedFormat::GtfsRt),
        base_dir: miway.clone(),
        source: "real MiWay VehiclePositions, TripUpdates and Alerts".into(),
        payloads,
        bare: feeds::gtfs_rt::bare_parse,
        tokenize: None,
        // The capture's header timestamp, 2025-10-26 22:50:32 UTC.
        received_ms: 1_761_519_032_000,
    });

    // MQTT JSON telemetry: feeder readings as the documented mapping reads them (no real
    // capture of a city's telemetry is published).
    let mut mqtt = spec("grid", Layer::Utility, FeedFormat::MqttJson);
    mqtt.mapping = serde_json::json!({
        "topics": ["grid/+/telemetry"], "id": "sensor", "time": "time",
        "thresholds": [
            {"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"},
            {"field": "voltage_kv", "below": 0.5, "severity": "extreme", "kind": "feeder.trip"}
        ]
    });
    let readings = (0..500)
        .map(|k| {
            let body = format!(
                r#"{{"sensor":"feeder-{k}","time":"2026-11-26T19:08:30Z","voltage_kv":{}.{},"lat":60.17{k:03},"lon":24.94{k:03},"current_a":{}}}"#,
                k % 11,
                k % 10,
                k * 3
            );
            (Some(format!("grid/s{}/telemetry", k % 4)), body.into_bytes())
        })
        .collect();
    cases.push(cityops_bench::DecodeCase {
        spec: mqtt,
        base_dir: repo.clone(),
        source: "500 feeder readings in the documented mapping".into(),
        payloads: readings,
        bare: feeds::mqtt_json::bare_parse,
        tokenize: None,
        received_ms: DEMO_TIME_MS,
    });
    Ok(cases)
}

/// The runtime of the benchmarks that run async code: two workers, one per core here.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
