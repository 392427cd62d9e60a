//! The SensorThings adapter against a real SensorThings v1.1 server: PyPI
//! django-ogc-sensorthings 1.2.0, started on a free loopback port by
//! `tests/peers/sensorthings/run.sh`. The test creates Things, Locations, Datastreams, Sensors
//! and ObservedProperties by deep insert and Observations by POST, then polls them with the
//! adapter's own query (`filter_since`), follows `@iot.nextLink`, and decodes what the server
//! answered.
//!
//! There is no skip: when Python, venv or pip cannot set the server up, the test fails and
//! prints the server's log, which says why.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cityops_core::model::{GeoPoint, Layer, Severity};
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use cityops_engine::feeds::sensorthings::{filter_since, next_link};
use cityops_engine::feeds::{adapter_for, MessageContext};
use serde_json::{json, Value};

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
                panic!("the SensorThings server exited ({status}) before listening:\n{}", peer.log_text());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && peer.get("/sensorthings/v1.1/").0 == 200 {
                return peer;
            }
            assert!(Instant::now() < deadline, "the SensorThings server did not answer on port {port} within 300 s:\n{}", peer.log_text());
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
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked answers are not handled here");
        let location = head.lines().find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")).map(str::to_owned));
        (status, location, raw[split + 4..].to_vec())
    }

    fn get(&self, target: &str) -> (u16, Option<String>, Vec<u8>) {
        self.request("GET", target, None)
    }

    fn post(&self, target: &str, body: Value) -> Option<String> {
        let (status, location, answer) = self.request("POST", target, Some(&body));
        assert_eq!(status, 201, "POST {target} answered {status}: {}\n{}", String::from_utf8_lossy(&answer), self.log_text());
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
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn polls_a_real_sensorthings_server_with_the_adapters_query() {
    let peer = Peer::start();
    let api = "/sensorthings/v1.1";
    peer.post(&format!("{api}/Things"), thing("Feeder F2", 24.9431, 60.1712, "voltage", "V"));
    peer.post(&format!("{api}/Things"), thing("Pump P7", 24.9601, 60.1987, "pressure", "bar"));

    // The datastream ids the server chose, by name. (Things -> Datastreams is a to-many
    // expansion, which this server gets right; see the canary below for the to-one case.)
    let (status, _, body) = peer.get(&format!("{api}/Things?$expand=Datastreams"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let listing: Value = serde_json::from_slice(&body).unwrap();
    let ds = |name: &str| -> String {
        let all = listing["value"].as_array().into_iter().flatten().flat_map(|t| t["Datastreams"].as_array().into_iter().flatten());
        let found = all.into_iter().find(|d| d["name"] == name);
        found.unwrap_or_else(|| panic!("no datastream {name:?} in {listing}"))["@iot.id"].as_str().unwrap().to_owned()
    };
    let (voltage, pressure) = (ds("Feeder F2 voltage"), ds("Pump P7 pressure"));

    let now = chrono::Utc::now().timestamp_millis() / 1000 * 1000;
    let t0 = now - 600_000;
    let readings = [(t0 - 60_000, &voltage, 229.0), (t0 + 60_000, &voltage, 231.5), (t0 + 120_000, &voltage, 190.0), (t0 + 180_000, &pressure, 1.2)];
    for (t, ds, result) in readings {
        peer.post(&format!("{api}/Observations"), json!({"phenomenonTime": iso(t), "result": result, "Datastream": {"@iot.id": ds}}));
    }

    let spec = FeedSpec {
        id: "scada-sta".into(),
        layer: Layer::Utility,
        format: FeedFormat::SensorThings,
        name: String::new(),
        mapping: json!({
            "kinds": {"voltage": "feeder.voltage", "pressure": "water.pressure"},
            "thresholds": [
                {"property": "voltage", "below": 200.0, "severity": "severe", "kind": "feeder.voltage_low"},
                {"property": "pressure", "below": 2.0, "severity": "moderate", "kind": "water.pressure_loss"}
            ]
        }),
    };
    let mut adapter = adapter_for(&spec, Path::new(".")).unwrap();
    let ctx = MessageContext { feed: "scada-sta", layer: Layer::Utility, seq: 1, received_ms: now, topic: None };

    // Canary for the server's known bug: in a collection, every to-one expansion repeats the
    // first item's entity, so a poll of /Observations across datastreams would put every
    // reading on the first Thing. Against this server the transport polls per Datastream.
    // If this assertion fails, the bug is fixed and /Observations can be polled directly.
    let (_, _, body) = peer.get(&format!("{api}/Observations?{}", filter_since(t0)));
    let all: Value = serde_json::from_slice(&body).unwrap();
    let expanded: Vec<&Value> = all["value"].as_array().unwrap().iter().map(|o| &o["Datastream"]["@iot.id"]).collect();
    assert_eq!(expanded.len(), 3);
    assert!(expanded.iter().all(|id| *id == expanded[0]), "django-ogc-sensorthings no longer repeats the first expansion: {expanded:?}");

    // Two ways to poll around the bugs, which must agree:
    // (a) /Observations one per page ($top=1, so no page has a second item to mis-expand),
    //     following @iot.nextLink, which works on this top-level path;
    // (b) each Datastream's Observations in a single page (no $top: this server's paging under
    //     a navigation path repeats items, so it is not used there).
    let mut by_pages = Vec::new();
    let mut pages = 0;
    let mut target = format!("{api}/Observations?{}&$top=1", filter_since(t0));
    loop {
        let (status, _, body) = peer.get(&target);
        assert_eq!(status, 200, "GET {target}: {}\n{}", String::from_utf8_lossy(&body), peer.log_text());
        let decoded = adapter.decode(ctx, &body).unwrap();
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        by_pages.extend(decoded.observations);
        pages += 1;
        match next_link(&body) {
            Some(link) => {
                let prefix = format!("http://127.0.0.1:{}", peer.port);
                target = link.strip_prefix(&prefix).unwrap_or_else(|| panic!("next link {link} is not on this server")).to_owned();
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    // One page per reading, and the server may announce one more, empty page.
    assert!((3..=4).contains(&pages), "{pages} pages");
    let mut observations = Vec::new();
    for ds in [&voltage, &pressure] {
        let (status, _, body) = peer.get(&format!("{api}/Datastreams('{ds}')/Observations?{}", filter_since(t0)));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let decoded = adapter.decode(ctx, &body).unwrap();
        assert!(decoded.rejected.is_empty() && next_link(&body).is_none(), "{:?}", decoded.rejected);
        observations.extend(decoded.observations);
    }
    by_pages.sort_by_key(|o| o.observed_ms);
    observations.sort_by_key(|o| o.observed_ms);
    let got: Vec<(i64, &str, Severity, String)> = observations.iter().map(|o| (o.observed_ms, o.kind.as_str(), o.severity, o.entity.clone())).collect();
    assert_eq!(
        got,
        [
            (t0 + 60_000, "feeder.voltage", Severity::Normal, format!("sta:{voltage}")),
            (t0 + 120_000, "feeder.voltage_low", Severity::Severe, format!("sta:{voltage}")),
            (t0 + 180_000, "water.pressure_loss", Severity::Moderate, format!("sta:{pressure}")),
        ]
    );
    assert_eq!(observations[0].position, GeoPoint::new(24.9431, 60.1712).unwrap());
    assert_eq!(observations[2].position, GeoPoint::new(24.9601, 60.1987).unwrap());
    assert_eq!(observations[0].fields["result"], 231.5);
    assert_eq!((observations[1].fields["unit"].as_str(), observations[1].fields["thing"].as_str()), (Some("V"), Some("Feeder F2")));
    assert_eq!(observations[1].title, "Feeder F2: voltage 190.0 below 200");
    assert_eq!(observations[2].fields["datastream"], "Pump P7 pressure");
    let strip = |o: &cityops_core::model::Observation| (o.entity.clone(), o.observed_ms, o.kind.clone(), o.position, o.fields.clone());
    assert_eq!(by_pages.iter().map(strip).collect::<Vec<_>>(), observations.iter().map(strip).collect::<Vec<_>>());
}
