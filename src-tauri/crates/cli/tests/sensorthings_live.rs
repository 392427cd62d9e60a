//! The SensorThings transport and adapter against a real SensorThings v1.1 server: PyPI
//! django-ogc-sensorthings 1.2.0, started on a free loopback port by
//! `tests/peers/sensorthings/run.sh`. The test creates Things, Locations, Datastreams, Sensors
//! and ObservedProperties by deep insert and Observations by POST at several times, while
//! `live::run` polls the server through the configured http-poll transport (incremental
//! `$filter` on phenomenonTime, `$expand`, `@iot.nextLink` pages), and then reads what the live
//! run stored.
//!
//! There is no skip: when Python, venv or pip cannot set the server up, the test fails and
//! prints the server's log, which says why.
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cityops_core::model::{GeoPoint, Observation, Severity};
use cityops_decoders::sensorthings::filter_since;
use cityops_engine::headless;
use cityops_live::config::LiveConfig;
use cityops_live::{self as live, Health, LiveOptions};
use cityops_store::Store;
use serde_json::{json, Value};
use tokio::sync::watch;

/// The server process; it is killed (by its own id) when the test ends, however it ends.
struct Peer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn start() -> Peer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let script = root.join("tests/peers/sensorthings/run.sh");
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers");
        std::fs::create_dir_all(&scratch).unwrap();
        // Ask the kernel for a free port, then hand it to the server. Another process could
        // take it in between; on a test machine that is rare enough to accept.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = scratch.join(format!("sensorthings-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg(&script)
            .arg(port.to_string())
            .arg(scratch.join("sensorthings"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let mut peer = Peer { child, port, log };
        // The first run creates the virtual environment (pip install): allow a few minutes.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = peer.child.try_wait().unwrap() {
                panic!(
                    "the SensorThings server exited ({status}) before listening:\n{}",
                    peer.log_text()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && peer.get("/sensorthings/v1.1/").0 == 200 {
                return peer;
            }
            assert!(
                Instant::now() < deadline,
                "the SensorThings server did not answer on port {port} within 300 s:\n{}",
                peer.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// One HTTP/1.1 request with `Connection: close`; returns the status, the `Location`
    /// header and the body.
    fn request(&self, method: &str, target: &str, body: Option<&Value>) -> (u16, Option<String>, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.port,
            payload.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(payload.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
        assert!(
            !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
            "chunked answers are not handled here"
        );
        let location = head.lines().find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
                .map(str::to_owned)
        });
        (status, location, raw[split + 4..].to_vec())
    }

    fn get(&self, target: &str) -> (u16, Option<String>, Vec<u8>) {
        self.request("GET", target, None)
    }

    fn post(&self, target: &str, body: Value) -> Option<String> {
        let (status, location, answer) = self.request("POST", target, Some(&body));
        assert_eq!(
            status,
            201,
            "POST {target} answered {status}: {}\n{}",
            String::from_utf8_lossy(&answer),
            self.log_text()
        );
        location
    }
}

fn thing(name: &str, lon: f64, lat: f64, property: &str, unit: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name} remote terminal unit"),
        "properties": {"owner": "cityops test"},
        "Locations": [{
            "name": format!("{name} site"),
            "description": "where the RTU is",
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [lon, lat]}
        }],
        "Datastreams": [{
            "name": format!("{name} {property}"),
            "description": format!("{property} measured at {name}"),
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": "http://unitsofmeasure.org/ucum.html"},
            "Sensor": {"name": format!("{name} {property} sensor"), "description": "transducer", "encodingType": "application/pdf", "metadata": "none"},
            "ObservedProperty": {"name": property, "definition": format!("http://example.org/{property}"), "description": property}
        }]
    })
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Runs blocking work (the peer's plain-socket requests) without stalling the runtime the
/// live run is on.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits up to a minute for `ok`, then fails with the feeds' health.
async fn until(health: &Health, what: &str, ok: impl Fn() -> bool) {
    for _ in 0..600 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}; health: {:?}",
        health.snapshot(chrono::Utc::now().timestamp_millis())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_poll_transport_reads_a_real_sensorthings_server_incrementally() {
    let peer = blocking(Peer::start);
    let api = "/sensorthings/v1.1";
    let (voltage, pressure) = blocking(|| {
        peer.post(
            &format!("{api}/Things"),
            thing("Feeder F2", 24.9431, 60.1712, "voltage", "V"),
        );
        peer.post(
            &format!("{api}/Things"),
            thing("Pump P7", 24.9601, 60.1987, "pressure", "bar"),
        );
        // The datastream ids the server chose, by name. (Things -> Datastreams is a to-many
        // expansion, which this server gets right; see the canary below for the to-one case.)
        let (status, _, body) = peer.get(&format!("{api}/Things?$expand=Datastreams"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let listing: Value = serde_json::from_slice(&body).unwrap();
        let ds = |name: &str| -> String {
            let all = listing["value"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["Datastreams"].as_array().into_iter().flatten());
            let found = all.into_iter().find(|d| d["name"] == name);
            found.unwrap_or_else(|| panic!("no datastream {name:?} in {listing}"))["@iot.id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        (ds("Feeder F2 voltage"), ds("Pump P7 pressure"))
    });
    let post = |t: i64, ds: &str, result: f64| {
        blocking(|| {
            peer.post(
                &format!("{api}/Observations"),
                json!({"phenomenonTime": iso(t), "result": result, "Datastream": {"@iot.id": ds}}),
            )
        })
    };

    // Whole seconds, because the server stores phenomenonTime to the second.
    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    // Older than the 600 s lookback: never delivered.
    post(now - 900_000, &voltage, 229.0);
    // The first batch, there before the feed starts.
    let first = [
        (now - 300_000, &voltage, 231.5),
        (now - 240_000, &voltage, 190.0),
        (now - 200_000, &pressure, 1.2),
    ];
    for (t, ds, result) in first {
        post(t, ds, result);
    }

    // Canary for the server's known bug: in a collection, every to-one expansion repeats the
    // first item's entity, so a page of /Observations across datastreams would put every
    // reading on the first Thing. The feeds below therefore poll one reading per page ($top=1)
    // or per datastream. If this assertion fails, the bug is fixed and /Observations can be
    // polled with any page size.
    let (_, _, body) = blocking(|| peer.get(&format!("{api}/Observations?{}", filter_since(now - 600_000))));
    let all: Value = serde_json::from_slice(&body).unwrap();
    let expanded: Vec<&Value> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["Datastream"]["@iot.id"])
        .collect();
    assert_eq!(expanded.len(), 3);
    assert!(
        expanded.iter().all(|id| *id == expanded[0]),
        "django-ogc-sensorthings no longer repeats the first expansion: {expanded:?}"
    );

    // Two feeds over the same readings, the two ways an operator configures them: the whole
    // service's collection (one reading per page, at most two pages per poll, so the first
    // batch alone takes two polls), and one collection per datastream.
    let base = format!("http://127.0.0.1:{}{api}", peer.port);
    let config = format!(
        r#"
[[feeds]]
id = "sta-all"
layer = "utility"
format = "sensorthings"
[feeds.transport]
type = "http-poll"
url = "{base}/Observations?$top=1"
interval_s = 1
max_pages = 2
[feeds.mapping]
kinds = {{ voltage = "feeder.voltage", pressure = "water.pressure" }}
thresholds = [
  {{ property = "voltage", below = 200.0, severity = "severe", kind = "feeder.voltage_low" }},
  {{ property = "pressure", below = 2.0, severity = "moderate", kind = "water.pressure_loss" }},
]

[[feeds]]
id = "sta-each"
layer = "utility"
format = "sensorthings"
[feeds.transport]
type = "http-poll"
urls = ["{base}/Datastreams('{voltage}')/Observations", "{base}/Datastreams('{pressure}')/Observations"]
interval_s = 1
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, config).unwrap();
    let config = LiveConfig::load(&path).unwrap();
    let db = dir.path().join("live.db");
    let health = Health::default();
    let (stop, stop_rx) = watch::channel(false);
    let options = LiveOptions {
        record: Some(dir.path().join("tape.ndjson")),
        ..LiveOptions::default()
    };
    let run = tokio::spawn(live::run(
        config,
        Store::open(&db).unwrap(),
        options,
        health.clone(),
        stop_rx,
    ));
    let reader = Store::open(&db).unwrap();
    let stored = |feed: &str| -> Vec<Observation> {
        let mut out = Vec::new();
        if let Some(run) = reader.latest_run().unwrap() {
            reader
                .for_each(run, |o| {
                    if o.feed == feed {
                        out.push(o.clone())
                    }
                })
                .unwrap();
        }
        out.sort_by_key(|o| o.observed_ms);
        out
    };
    until(&health, "the first batch in both feeds", || {
        stored("sta-all").len() >= 3 && stored("sta-each").len() >= 3
    })
    .await;

    // The second batch, newer than the first: the next polls pick up only these.
    let second = [(now - 100_000, &voltage, 228.0), (now - 90_000, &pressure, 3.1)];
    for (t, ds, result) in second {
        post(t, ds, result);
    }
    until(&health, "the second batch in both feeds", || {
        stored("sta-all").len() >= 5 && stored("sta-each").len() >= 5
    })
    .await;
    // Let each feed poll a few more times, so a reading delivered twice would show.
    let polled = |feed: &str| {
        health
            .snapshot(chrono::Utc::now().timestamp_millis())
            .into_iter()
            .find(|h| h.id == feed)
            .and_then(|h| h.last_message_ms)
            .unwrap_or(0)
    };
    let after = chrono::Utc::now().timestamp_millis() + 2_500;
    until(&health, "three more polls", || {
        polled("sta-all") > after && polled("sta-each") > after
    })
    .await;
    stop.send(true).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the live run stops")
        .unwrap()
        .unwrap();

    let feeder = GeoPoint::new(24.9431, 60.1712).unwrap();
    let pump = GeoPoint::new(24.9601, 60.1987).unwrap();
    let expect = [
        (now - 300_000, format!("sta:{voltage}"), feeder, 231.5),
        (now - 240_000, format!("sta:{voltage}"), feeder, 190.0),
        (now - 200_000, format!("sta:{pressure}"), pump, 1.2),
        (now - 100_000, format!("sta:{voltage}"), feeder, 228.0),
        (now - 90_000, format!("sta:{pressure}"), pump, 3.1),
    ];
    for feed in ["sta-all", "sta-each"] {
        let got: Vec<(i64, String, GeoPoint, f64)> = stored(feed)
            .iter()
            .map(|o| {
                (
                    o.observed_ms,
                    o.entity.clone(),
                    o.position,
                    o.fields["result"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got, expect,
            "{feed}: each reading exactly once, at its Thing's location"
        );
    }
    let all = stored("sta-all");
    let kinds: Vec<(&str, Severity)> = all.iter().map(|o| (o.kind.as_str(), o.severity)).collect();
    assert_eq!(
        kinds,
        [
            ("feeder.voltage", Severity::Normal),
            ("feeder.voltage_low", Severity::Severe),
            ("water.pressure_loss", Severity::Moderate),
            ("feeder.voltage", Severity::Normal),
            ("water.pressure", Severity::Normal)
        ]
    );
    assert_eq!(
        (all[1].fields["unit"].as_str(), all[1].fields["thing"].as_str()),
        (Some("V"), Some("Feeder F2"))
    );
    assert_eq!(all[1].title, "Feeder F2: voltage 190.0 below 200");
    let quarantine = reader.quarantine(summary.run).unwrap();
    assert!(
        quarantine.is_empty(),
        "{:?}",
        quarantine.iter().map(|q| &q.reason).collect::<Vec<_>>()
    );

    // Every page was one message, recorded as received: the whole-service feed's first batch
    // came one reading per page with a next link, and the recording replays to the same
    // observations the live run stored.
    let tape = std::fs::read_to_string(dir.path().join("tape.ndjson")).unwrap();
    let lines: Vec<Value> = tape.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, summary.stats.messages);
    let paged = lines
        .iter()
        .filter(|l| l["feed"] == "sta-all" && l["body"].as_str().is_some_and(|b| b.contains("@iot.nextLink")))
        .count();
    assert!(paged >= 2, "{paged} pages with a next link");
    let (live_hash, live_count) = headless::observation_set_hash(&reader, summary.run).unwrap();
    assert_eq!(live_count, 10);
    let replayed = headless::replay_max(dir.path(), &dir.path().join("replay.db")).unwrap();
    assert_eq!((replayed.accepted, replayed.observation_set_hash), (10, live_hash));
    drop(peer);
}
