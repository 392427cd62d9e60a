//! Live feeds against real peers on 127.0.0.1: a plain HTTP server the test controls (to inject
//! 500s, hangs and garbage), a TCP server that splits messages across writes, a drop folder,
//! and Debian's mosquitto. Each test runs `cityops_live::run` for real and then reads
//! the store and the feed health.
// Some tests here are in the "peers" tier (`cargo test --features peers`); without it their
// helpers are unused.
#![cfg_attr(not(feature = "peers"), allow(dead_code, unused_imports))]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_core::model::Layer;
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use cityops_decoders::MessageContext;
use cityops_engine::headless;
use cityops_live::config::LiveConfig;
use cityops_live::{self as live, FeedHealthDto, Health, LiveOptions, LiveSummary};
use cityops_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

mod common;

fn feature(entity: &str, kind: &str, severity: &str) -> String {
    serde_json::json!({"type": "Feature", "id": entity, "geometry": {"type": "Point", "coordinates": [24.944, 60.171]},
        "properties": {"kind": kind, "severity": severity, "title": format!("{entity} {kind}")}})
    .to_string()
}

/// What the test HTTP server answers next.
#[derive(Clone)]
enum Answer {
    Ok(String),
    Status(u16, String),
    Hang,
}

/// A minimal HTTP/1.1 server: each connection gets the next scripted answer (the last one
/// repeats).
async fn http_server(script: Arc<Mutex<Vec<Answer>>>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let answer = {
                let mut s = script.lock().unwrap();
                if s.len() > 1 {
                    s.remove(0)
                } else {
                    s[0].clone()
                }
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let (status, body) = match answer {
                    Answer::Ok(b) => (200, b),
                    Answer::Status(s, b) => (s, b),
                    Answer::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/geo+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

struct Running {
    health: Health,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<LiveSummary, cityops_live::LiveError>>,
}

async fn start(dir: &Path, config: &str, db: &str, record: Option<&str>) -> Running {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, config).unwrap();
    let config = LiveConfig::load(&path).unwrap();
    let store = Store::open(&dir.join(db)).unwrap();
    let health = Health::default();
    let (stop, stop_rx) = watch::channel(false);
    let options = LiveOptions {
        record: record.map(|r| dir.join(r)),
        ..LiveOptions::default()
    };
    let feeds = config.feeds.len();
    let task = tokio::spawn(live::run(config, store, options, health.clone(), stop_rx));
    // The run registers its feeds as it starts; wait for that before anyone asks.
    while health.snapshot(0).len() < feeds && !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Running { health, stop, task }
}

impl Running {
    fn feed(&self, id: &str) -> FeedHealthDto {
        if self.task.is_finished() {
            panic!("the live run ended early");
        }
        let all = self.health.snapshot(chrono::Utc::now().timestamp_millis());
        all.into_iter()
            .find(|h| h.id == id)
            .unwrap_or_else(|| panic!("no health for feed {id}"))
    }

    async fn until(&self, what: &str, mut ok: impl FnMut(&Running) -> bool) {
        for _ in 0..300 {
            if ok(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for {what}; health: {:?}",
            self.health.snapshot(chrono::Utc::now().timestamp_millis())
        );
    }

    async fn stop(self) -> LiveSummary {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("live run stops")
            .unwrap()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_poll_survives_500s_hangs_and_garbage_and_a_dead_server() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Mutex::new(vec![
        Answer::Ok(feature("node/1", "signal.dark", "severe")),
        Answer::Status(500, "internal error".into()),
        Answer::Hang,
        Answer::Ok("{\"type\":\"Feature\", garbage".into()),
        Answer::Ok(feature("node/2", "signal.dark", "severe")),
    ]));
    let (addr, server) = http_server(script.clone()).await;
    // The other feed must keep flowing while the polled one misbehaves.
    let config = format!(
        r#"
[[feeds]]
id = "signals"
layer = "transport"
format = "geojson"
[feeds.transport]
type = "http-poll"
url = "http://{addr}/signals.json"
interval_s = 1
timeout_s = 1

[[feeds]]
id = "inbox"
layer = "alerts"
format = "geojson"
[feeds.transport]
type = "file-drop"
dir = "inbox"
"#
    );
    let live = start(dir.path(), &config, "live.db", None).await;
    live.until("the garbage answer", |l| {
        l.feed("signals").rejected >= 3 && l.feed("signals").connected
    })
    .await;
    let garbage_at = live.feed("signals").last_message_ms;
    live.until("the second good answer", |l| {
        l.feed("signals").last_message_ms > garbage_at
    })
    .await;
    std::fs::write(
        dir.path().join("inbox/report.geojson"),
        feature("report/1", "report.outage", "minor"),
    )
    .unwrap();
    live.until("the dropped file", |l| l.feed("inbox").last_message_ms.is_some())
        .await;
    // The file leaves the folder once its observation is committed (the next group commit).
    let processed = dir.path().join("inbox/processed/report.geojson");
    live.until("the dropped file moved to processed/ after its commit", |_| {
        processed.exists()
    })
    .await;
    assert!(!dir.path().join("inbox/report.geojson").exists());

    // Kill the server: the feed reports disconnected, then connected again once it is back.
    server.abort();
    let _ = server.await;
    live.until("disconnected", |l| !l.feed("signals").connected).await;
    assert!(live.feed("signals").last_error.is_some());
    let (addr2, server2) = {
        // Re-bind the same port so the configured URL works again.
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        drop(listener);
        *script.lock().unwrap() = vec![Answer::Ok(feature("node/3", "signal.restored", "normal"))];
        http_server_on(addr, script.clone()).await
    };
    assert_eq!(addr2, addr);
    live.until("reconnected", |l| l.feed("signals").connected).await;
    let h = live.feed("signals");
    assert!(h.failures >= 1, "{h:?}");
    let summary = live.stop().await;
    server2.abort();

    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let quarantine = store.quarantine(summary.run).unwrap();
    let reasons: Vec<String> = quarantine
        .iter()
        .map(|q| format!("{} {} {}", q.feed, q.place, q.reason))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("HTTP 500")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("timed out")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("signals $ (line 1") && r.contains("not JSON")),
        "{reasons:?}"
    );
    let picture = store.picture_at(summary.run, i64::MAX).unwrap();
    let entities: Vec<&str> = picture.iter().map(|o| o.entity.as_str()).collect();
    for e in ["node/1", "node/2", "node/3", "report/1"] {
        assert!(entities.contains(&e), "{e} missing from {entities:?}");
    }
}

async fn http_server_on(
    addr: SocketAddr,
    script: Arc<Mutex<Vec<Answer>>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = match script.lock().unwrap()[0].clone() {
                Answer::Ok(b) => b,
                _ => String::new(),
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_stream_split_across_writes_and_a_recording_that_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let stream = format!(
            "{}\n{}\nnot json at all\n{}\n",
            feature("unit/1", "unit.friendly", "normal"),
            feature("unit/2", "unit.friendly", "normal"),
            feature("unit/1", "unit.friendly", "minor")
        );
        // Half a message, a pause, then the rest: the client must wait for the whole of it.
        let (a, b) = stream.split_at(stream.len() / 3);
        sock.write_all(a.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sock.write_all(b.as_bytes()).await.unwrap();
        // Then half a message and silence: the peer that stops mid-message.
        sock.write_all(b"{\"type\":\"Feat").await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let config = format!(
        r#"
[[feeds]]
id = "units"
layer = "security"
format = "geojson"
[feeds.transport]
type = "tcp"
host = "127.0.0.1"
port = {}
"#,
        addr.port()
    );
    let live = start(dir.path(), &config, "live.db", Some("tape.ndjson")).await;
    live.until("four messages", |l| {
        l.feed("units").rejected == 1 && l.feed("units").messages_per_minute == 4
    })
    .await;
    assert!(live.feed("units").connected);
    let summary = live.stop().await;
    server.abort();
    assert_eq!(summary.stats.messages, 4);

    // The recording replays to exactly the observations the live run stored.
    let live_store = Store::open(&dir.path().join("live.db")).unwrap();
    let (live_hash, live_count) = headless::observation_set_hash(&live_store, summary.run).unwrap();
    assert_eq!(live_count, 3);
    let replayed = headless::replay_max(dir.path(), &dir.path().join("replay.db")).unwrap();
    assert_eq!(replayed.accepted, 3);
    assert_eq!(replayed.rejected, 1);
    assert_eq!(replayed.observation_set_hash, live_hash);
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_messages_keep_their_topic_and_the_feed_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::mosquitto(dir.path());
    let port = broker.1;
    let config = format!(
        r#"
[[feeds]]
id = "grid"
layer = "utility"
format = "geojson"
[feeds.transport]
type = "mqtt"
host = "127.0.0.1"
port = {port}
topics = ["grid/+/status"]
"#
    );
    let live = start(dir.path(), &config, "live.db", Some("tape.ndjson")).await;
    live.until("connected", |l| l.feed("grid").connected).await;

    let mut opts = rumqttc::MqttOptions::new("test-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 100);
    let pump = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    // Give the subscription a moment to land before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, topic) in ["grid/f1/status", "grid/f2/status", "other/topic"].iter().enumerate() {
        client
            .publish(
                *topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                feature(&format!("feeder/{i}"), "feeder.voltage", "minor"),
            )
            .await
            .unwrap();
    }
    live.until("two messages", |l| l.feed("grid").messages_per_minute == 2)
        .await;

    // The broker dies and comes back: the feed says so, and reconnects by itself.
    drop(broker);
    live.until("disconnected", |l| !l.feed("grid").connected).await;
    let broker = common::mosquitto_on(dir.path(), port);
    live.until("reconnected", |l| l.feed("grid").connected).await;
    let summary = live.stop().await;
    pump.abort();
    drop(broker);

    let tape = std::fs::read_to_string(dir.path().join("tape.ndjson")).unwrap();
    assert!(
        tape.contains("\"topic\":\"grid/f1/status\"") && tape.contains("\"topic\":\"grid/f2/status\""),
        "{tape}"
    );
    assert!(!tape.contains("other/topic"));
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    assert_eq!(headless::observation_set_hash(&store, summary.run).unwrap().1, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_index_is_followed_once_per_alert() {
    let data = common::samples().join("cap");
    let quake = std::fs::read(data.join("v1dot2_appendix_adot3.xml")).unwrap();
    let storm = std::fs::read(data.join("v1dot2_appendix_adot2.xml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The server's address is needed inside the index, so bind first and fill the routes after.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let index = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>alerts</title>
<entry><id>q</id><title>Quake</title><link href="http://127.0.0.1:{port}/alerts/quake.xml"/></entry>
<entry><id>s</id><title>Storm</title><link href="http://127.0.0.1:{port}/alerts/storm.xml"/></entry>
<entry><id>m</id><title>Missing</title><link href="http://127.0.0.1:{port}/alerts/missing.xml"/></entry>
</feed>"#
    );
    let routes = [
        ("/index.xml", index.into_bytes()),
        ("/alerts/quake.xml", quake),
        ("/alerts/storm.xml", storm),
    ];
    let addr = listener.local_addr().unwrap();
    let seen = origin_server(
        listener,
        routes
            .into_iter()
            .map(|(path, body)| Route {
                path: path.into(),
                status: 200,
                location: None,
                body,
            })
            .collect(),
    )
    .await;
    let hits = |path: &str| seen.lock().unwrap().iter().filter(|(p, _)| p == path).count();
    let config = format!(
        r#"
[[feeds]]
id = "warnings"
layer = "alerts"
format = "cap"
[feeds.transport]
type = "http-poll"
url = "http://{addr}/index.xml"
interval_s = 1
[feeds.mapping]
fallback_position = [24.9384, 60.1699]
"#
    );
    let live = start(dir.path(), &config, "live.db", None).await;
    live.until("three polls of the index", |_| hits("/index.xml") >= 3)
        .await;
    let summary = live.stop().await;
    assert_eq!(
        (hits("/alerts/quake.xml"), hits("/alerts/storm.xml")),
        (1, 1),
        "each alert is fetched once"
    );
    // A link that fails is tried again at every poll, and each failure is quarantined.
    assert!(hits("/alerts/missing.xml") >= 3);
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let shown = store.picture_at(summary.run, i64::MAX).unwrap();
    let events: Vec<String> = shown
        .iter()
        .filter_map(|o| o.fields.get("event").and_then(|e| e.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("EQ") || e.to_lowercase().contains("earthquake")),
        "{events:?}"
    );
    let quarantine = store.quarantine(summary.run).unwrap();
    assert!(
        quarantine
            .iter()
            .any(|q| q.reason.contains("missing.xml") && q.reason.contains("404")),
        "{:?}",
        quarantine.iter().map(|q| &q.reason).collect::<Vec<_>>()
    );
}

/// The real MiWay capture with its timestamps moved to now: it is older than the adapters'
/// one-year window, and a live feed is judged against the time it arrives.
fn fresh_gtfs_rt(capture: &[u8]) -> Vec<u8> {
    use prost::Message;
    let mut feed = gtfs_realtime::FeedMessage::decode(capture).expect("the MiWay capture decodes");
    let now = chrono::Utc::now().timestamp() as u64;
    let shift = now - feed.header.timestamp.expect("the capture has a header timestamp");
    feed.header.timestamp = Some(now);
    for e in &mut feed.entity {
        if let Some(t) = e.vehicle.as_mut().and_then(|v| v.timestamp.as_mut()) {
            *t += shift;
        }
    }
    feed.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_drop_folder_reads_each_file_by_its_extension_and_refuses_unknown_ones() {
    let data = common::samples();
    let quake = std::fs::read(data.join("cap/v1dot2_appendix_adot3.xml")).unwrap();
    let vehicles = fresh_gtfs_rt(&std::fs::read(data.join("gtfs-rt/miway/VehiclePositions.pb")).unwrap());
    let unit = r#"<?xml version="1.0" encoding="UTF-8"?><event version="2.0" uid="HEL-1" type="a-f-G-U-C" how="m-g" time="2026-11-26T19:10:00Z" start="2026-11-26T19:10:00Z" stale="2036-11-26T19:16:00Z"><point lat="60.172" lon="24.944" hae="1" ce="9" le="9"/><detail><contact callsign="HEL-1"/></detail></event>"#;
    let dir = tempfile::tempdir().unwrap();
    // The CAP adapter's mapping sits in its own table: each format's adapter reads only its own.
    let config = r#"
[[feeds]]
id = "inbox"
layer = "alerts"
format = "auto"
[feeds.transport]
type = "file-drop"
dir = "inbox"
[feeds.mapping.cap]
fallback_position = [24.9384, 60.1699]
"#;
    let live = start(dir.path(), config, "live.db", Some("tape.ndjson")).await;
    let inbox = dir.path().join("inbox");
    let files: [(&str, Vec<u8>); 5] = [
        (
            "report.GeoJSON",
            feature("report/1", "report.outage", "minor").into_bytes(),
        ),
        ("quake.xml", quake.clone()),
        ("unit.cot", unit.as_bytes().to_vec()),
        ("vehicles.pb", vehicles.clone()),
        ("notes.csv", b"id,kind\n1,outage\n".to_vec()),
    ];
    for (name, body) in &files {
        std::fs::write(inbox.join(name), body).unwrap();
    }
    live.until("every file moved out of the folder", |_| {
        files
            .iter()
            .all(|(name, _)| inbox.join("processed").join(name).exists() || inbox.join("rejected").join(name).exists())
    })
    .await;
    let summary = live.stop().await;
    assert!(inbox.join("rejected/notes.csv").exists());
    assert_eq!(summary.stats.messages, 4, "the unknown file is not a message");

    // Each file was decoded by the adapter of its extension's format: the live run stored what
    // that adapter yields for the same bytes.
    let spec = |format: FeedFormat, mapping: serde_json::Value| FeedSpec {
        id: "inbox".into(),
        layer: Layer::Alerts,
        format,
        name: String::new(),
        mapping,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let expected = |format, mapping, body: &[u8]| {
        let ctx = MessageContext {
            feed: "inbox",
            layer: Layer::Alerts,
            seq: 1,
            received_ms: now,
            topic: None,
        };
        cityops_decoders::decode_once(&spec(format, mapping), Path::new("."), ctx, body)
            .unwrap()
            .observations
            .len()
    };
    let cap_mapping = serde_json::json!({"fallback_position": [24.9384, 60.1699]});
    let (n_cap, n_gtfs) = (
        expected(FeedFormat::Cap, cap_mapping, &quake),
        expected(FeedFormat::GtfsRt, serde_json::Value::Null, &vehicles),
    );
    assert!(n_cap >= 1 && n_gtfs > 10, "{n_cap} CAP areas, {n_gtfs} vehicles");
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let mut stored = Vec::new();
    store.for_each(summary.run, |o| stored.push(o.clone())).unwrap();
    let count = |f: &dyn Fn(&cityops_core::model::Observation) -> bool| stored.iter().filter(|o| f(o)).count();
    assert_eq!(count(&|o| o.entity == "report/1"), 1, "the GeoJSON report");
    assert_eq!(count(&|o| o.entity.contains("HEL-1")), 1, "the CoT unit");
    assert_eq!(count(&|o| o.fields.contains_key("event")), n_cap, "the CAP areas");
    assert_eq!(stored.len(), 1 + 1 + n_cap + n_gtfs, "and the GTFS-RT vehicles");

    // The unknown extension is one quarantine entry that names the file.
    let quarantine = store.quarantine(summary.run).unwrap();
    let reasons: Vec<&str> = quarantine.iter().map(|q| q.reason.as_str()).collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("file notes.csv: unknown extension .csv"),
        "{reasons:?}"
    );

    // The tape carries each message's resolved format and replays to the same observations.
    let tape = std::fs::read_to_string(dir.path().join("tape.ndjson")).unwrap();
    let mut formats: Vec<String> = tape
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["format"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    formats.sort();
    assert_eq!(formats, ["cap", "cot", "geojson", "gtfs-rt"]);
    let (live_hash, live_count) = headless::observation_set_hash(&store, summary.run).unwrap();
    assert_eq!(live_count as usize, stored.len());
    let replayed = headless::replay_max(dir.path(), &dir.path().join("replay.db")).unwrap();
    assert_eq!(
        (replayed.accepted as usize, replayed.observation_set_hash),
        (stored.len(), live_hash)
    );
}

/// One SensorThings Observation as a server answers it with the transport's `$expand`.
fn sta_observation(id: u32, time_ms: i64, result: f64) -> serde_json::Value {
    let time = chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({"@iot.id": id, "phenomenonTime": time, "result": result, "Datastream": {"@iot.id": 7, "name": "F2 voltage",
        "unitOfMeasurement": {"symbol": "V"}, "ObservedProperty": {"name": "voltage"},
        "Thing": {"name": "Feeder F2", "Locations": [{"location": {"type": "Point", "coordinates": [24.9431, 60.1712]}}]}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensorthings_poll_retries_the_page_that_failed_and_then_moves_its_watermark() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    let (t1, t2) = (now - 120_000, now - 60_000);
    let page1 = serde_json::json!({"value": [sta_observation(1, t1, 231.0)], "@iot.nextLink": format!("http://{addr}/v1.1/Observations?$skip=1&$top=1")});
    let page2 = serde_json::json!({"value": [sta_observation(2, t2, 229.0)]});
    let script = vec![
        Answer::Ok(page1.to_string()),
        Answer::Status(500, "internal error".into()),
        Answer::Ok("<html>maintenance</html>".into()),
        Answer::Ok(page2.to_string()),
        Answer::Ok(r#"{"value": []}"#.into()),
    ];
    // The server answers from the script in order and notes each request's target.
    let targets: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log, script) = (targets.clone(), Arc::new(Mutex::new(script)));
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            log.lock()
                .unwrap()
                .push(head.split_whitespace().nth(1).unwrap_or("").to_owned());
            let answer = {
                let mut s = script.lock().unwrap();
                if s.len() > 1 {
                    s.remove(0)
                } else {
                    s[0].clone()
                }
            };
            let (status, body) = match answer {
                Answer::Ok(b) => (200, b),
                Answer::Status(s, b) => (s, b),
                Answer::Hang => unreachable!("not scripted here"),
            };
            let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        }
    });
    let config = format!(
        r#"
[[feeds]]
id = "sta"
layer = "utility"
format = "sensorthings"
[feeds.transport]
type = "http-poll"
url = "http://{addr}/v1.1/Observations?$top=1"
interval_s = 1
lookback_s = 300
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let started = chrono::Utc::now().timestamp_millis();
    let live = start(dir.path(), &config, "live.db", None).await;
    live.until("a poll after the second page", |_| targets.lock().unwrap().len() >= 6)
        .await;
    let h = live.feed("sta");
    let summary = live.stop().await;
    server.abort();
    assert!(h.failures >= 1 && h.connected, "{h:?}");

    let targets = targets.lock().unwrap().clone();
    let since = |t: i64| {
        format!(
            "$filter=phenomenonTime%20gt%20{}",
            cityops_decoders::mapping::rfc3339(t)
        )
    };
    // The first poll reaches back lookback_s from the start (to the second: the watermark is
    // taken when the transport starts, a moment after `started`).
    let first = targets[0]
        .split("%20gt%20")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap();
    let first_ms = chrono::DateTime::parse_from_rfc3339(first).unwrap().timestamp_millis();
    assert!(
        (started - 300_000..started - 300_000 + 5_000).contains(&first_ms),
        "{targets:?}"
    );
    assert!(
        targets[0].starts_with("/v1.1/Observations?$top=1&$filter=") && targets[0].contains("&$expand=Datastream"),
        "{targets:?}"
    );
    // The next page, asked again after the 500 and after the garbage, and only then a new poll
    // from the newest time the whole sequence carried.
    let next = "/v1.1/Observations?$skip=1&$top=1";
    assert_eq!(&targets[1..4], [next, next, next], "{targets:?}");
    assert!(targets[4..].iter().all(|t| t.contains(&since(t2))), "{targets:?}");

    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let mut stored = Vec::new();
    store
        .for_each(summary.run, |o| {
            stored.push((o.observed_ms, o.fields["result"].as_f64().unwrap()))
        })
        .unwrap();
    stored.sort_by_key(|o| o.0);
    assert_eq!(stored, [(t1, 231.0), (t2, 229.0)], "each reading once");
    let reasons: Vec<String> = store
        .quarantine(summary.run)
        .unwrap()
        .iter()
        .map(|q| format!("{} {}", q.place, q.reason))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("transport GET ") && reasons[0].contains("HTTP 500"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("$ ") && reasons[1].contains("not JSON"),
        "{reasons:?}"
    );
}

/// One answer of [`origin_server`]: a status, a `Location` for a redirect, and a body.
struct Route {
    path: String,
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// An HTTP server that answers by path and records every request it receives (path and raw
/// headers), so a test can tell which origin was asked for what, with which headers.
async fn origin_server(listener: std::net::TcpListener, routes: Vec<Route>) -> Arc<Mutex<Vec<(String, String)>>> {
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (record, routes) = (seen.clone(), Arc::new(routes));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (routes, record) = (routes.clone(), record.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                record
                    .lock()
                    .unwrap()
                    .push((path.clone(), request.to_ascii_lowercase()));
                let (status, location, body) = match routes.iter().find(|r| r.path == path) {
                    Some(r) => (r.status, r.location.clone(), r.body.clone()),
                    None => (404, None, b"no such thing".to_vec()),
                };
                let location = location.map(|l| format!("location: {l}\r\n")).unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 {status} X\r\n{location}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    seen
}

/// A minimal CAP 1.2 alert sent now, at the centre of Helsinki.
fn cap_alert(id: &str) -> Vec<u8> {
    let sent = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{id}</identifier><sender>hub@example.org</sender><sent>{sent}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>Storm {id}</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty><area><areaDesc>Keskusta</areaDesc><circle>60.1699,24.9384 1</circle></area></info></alert>"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_feed_follows_links_only_to_its_own_and_listed_origins() {
    // Another origin (another port on this machine) holds an alert the index links to, and the
    // feed's own server redirects one URL there. Neither may be fetched with the feed's
    // headers until the configuration lists that origin.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_addr = other.local_addr().unwrap();
    let elsewhere = origin_server(
        other,
        vec![Route {
            path: "/alerts/far.xml".into(),
            status: 200,
            location: None,
            body: cap_alert("FAR"),
        }],
    )
    .await;
    let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = own.local_addr().unwrap();
    let index = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>alerts</title>
<entry><id>n</id><title>Near</title><link href="http://{addr}/alerts/near.xml"/></entry>
<entry><id>f</id><title>Far</title><link href="http://{other_addr}/alerts/far.xml"/></entry>
</feed>"#
    );
    let routes = vec![
        Route {
            path: "/index.xml".into(),
            status: 200,
            location: None,
            body: index.into_bytes(),
        },
        Route {
            path: "/alerts/near.xml".into(),
            status: 200,
            location: None,
            body: cap_alert("NEAR"),
        },
        Route {
            path: "/moved.xml".into(),
            status: 302,
            location: Some(format!("http://{other_addr}/alerts/far.xml")),
            body: Vec::new(),
        },
    ];
    let here = origin_server(own, routes).await;
    let config = |follow: &str| {
        format!(
            r#"
[[feeds]]
id = "warnings"
layer = "alerts"
format = "cap"
[feeds.transport]
type = "http-poll"
urls = ["http://{addr}/index.xml", "http://{addr}/moved.xml"]
interval_s = 1
headers = {{ X-Feed-Token = {{ value = "canary-feed-token" }} }}
{follow}
[feeds.mapping]
fallback_position = [24.9384, 60.1699]
"#
        )
    };
    let polls = |seen: &Arc<Mutex<Vec<(String, String)>>>| {
        seen.lock().unwrap().iter().filter(|(p, _)| p == "/index.xml").count()
    };

    let dir = tempfile::tempdir().unwrap();
    let live = start(dir.path(), &config(""), "live.db", None).await;
    live.until("three polls of the index", |_| polls(&here) >= 3).await;
    let summary = live.stop().await;
    assert!(
        elsewhere.lock().unwrap().is_empty(),
        "the other origin was asked: {:?}",
        elsewhere.lock().unwrap()
    );
    assert!(
        here.lock()
            .unwrap()
            .iter()
            .any(|(p, h)| p == "/alerts/near.xml" && h.contains("canary-feed-token")),
        "the feed's own link is followed with its headers"
    );
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let reasons: Vec<String> = store
        .quarantine(summary.run)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("far.xml") && r.contains("transport.follow")),
        "the refused link is quarantined with why: {reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("moved.xml") && r.contains("redirect")),
        "the refused redirect is quarantined with why: {reasons:?}"
    );

    // Listed, the other origin is trusted like the feed's own.
    let dir = tempfile::tempdir().unwrap();
    let live = start(
        dir.path(),
        &config(&format!("follow = [\"http://{other_addr}\"]")),
        "live.db",
        None,
    )
    .await;
    live.until("the listed origin asked for the far alert", |_| {
        !elsewhere.lock().unwrap().is_empty()
    })
    .await;
    live.stop().await;
    assert!(
        elsewhere
            .lock()
            .unwrap()
            .iter()
            .all(|(p, h)| p == "/alerts/far.xml" && h.contains("canary-feed-token")),
        "{:?}",
        elsewhere.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_feed_reads_cot_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::tls::pki(dir.path());
    let now = chrono::Utc::now();
    let (time, stale) = (
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let event = |uid: &str| {
        format!("<?xml version=\"1.0\"?><event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{time}\" start=\"{time}\" stale=\"{stale}\"><point lat=\"60.17\" lon=\"24.94\" hae=\"0\" ce=\"10\" le=\"10\"/><detail><contact callsign=\"{uid}\"/></detail></event>")
    };
    let tak = common::tls::TlsServer::start(&pki, format!("{}{}", event("UNIT-1"), event("UNIT-2")).into_bytes()).await;
    let config = format!(
        r#"
[[feeds]]
id = "tak"
layer = "security"
format = "cot"
[feeds.transport]
type = "tcp"
host = "127.0.0.1"
port = {}
[feeds.transport.tls]
ca = "ca.pem"
client_cert = "client.pem"
client_key = "client.key"
"#,
        tak.port
    );
    let live = start(dir.path(), &config, "live.db", None).await;
    let db = dir.path().join("live.db");
    live.until("both units stored", |_| {
        let store = Store::open(&db).unwrap();
        store
            .latest_run()
            .unwrap()
            .is_some_and(|run| store.picture_at(run, i64::MAX).unwrap().len() == 2)
    })
    .await;
    live.stop().await;
    assert!(
        tak.sessions().iter().all(|s| s.client_cert),
        "the feed presented its certificate"
    );
}
