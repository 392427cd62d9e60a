//! `cityops ingest` end to end: the real binary runs live feeds of five standards at once
//! against real peers on 127.0.0.1 (mosquitto for MQTT JSON, taky for Cursor-on-Target, an HTTP
//! server for GTFS-Realtime and a CAP index, a drop folder for GeoJSON), and its feed health
//! reports a killed broker as disconnected and then reconnected. (SensorThings has its own
//! live test against its real server, `sensorthings_live.rs`.)
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cityops_store::Store;
use serde_json::Value;

mod common;
use common::free_port;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP server answering fixed bodies by path.
fn http_server(routes: Vec<(String, Vec<u8>)>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut sock = sock;
                let mut line = String::new();
                let _ = BufReader::new(&sock).read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, b)| ("200 OK", b.clone()))
                    .unwrap_or(("404 Not Found", Vec::new()));
                let _ = write!(
                    sock,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(&body);
            });
        }
    });
    port
}

/// The real MiWay capture with its timestamps moved to now: it is older than the adapters'
/// one-year window, and a live feed is judged against the time it arrives.
fn fresh(capture: &[u8]) -> Vec<u8> {
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

fn cot_event(uid: &str, lat: f64, lon: f64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><event version="2.0" uid="{uid}" type="a-f-G-U-C" how="m-g" time="2026-11-26T19:10:00Z" start="2026-11-26T19:10:00Z" stale="2036-11-26T19:16:00Z"><point lat="{lat}" lon="{lon}" hae="1" ce="9" le="9"/><detail><contact callsign="{uid}"/></detail></event>"#
    )
}

#[test]
fn ingest_runs_five_standards_at_once_and_reports_a_broker_restart() {
    let data = common::samples();
    let dir = tempfile::tempdir().unwrap();

    let mqtt_port = free_port();
    let broker = common::mosquitto_on(dir.path(), mqtt_port);
    let tak_port = free_port();
    let _taky = common::taky(tak_port, &dir.path().join("taky"));
    let alert = std::fs::read(data.join("cap/v1dot2_appendix_adot3.xml")).unwrap();
    let vp = fresh(&std::fs::read(data.join("gtfs-rt/miway/VehiclePositions.pb")).unwrap());
    let http_port = http_server(vec![
        ("/alerts/quake.xml".to_owned(), alert),
        ("/miway/vp.pb".to_owned(), vp),
    ]);
    // A CAP feed of one alert (the index case has its own test); GTFS-RT vehicle positions.
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
    let config = format!(
        r#"
[[feeds]]
id = "miway"
layer = "transport"
format = "gtfs-rt"
[feeds.transport]
type = "http-poll"
url = "http://127.0.0.1:{http_port}/miway/vp.pb"
interval_s = 2

[[feeds]]
id = "warnings"
layer = "alerts"
format = "cap"
[feeds.transport]
type = "http-poll"
url = "http://127.0.0.1:{http_port}/alerts/quake.xml"
interval_s = 2

[[feeds]]
id = "grid"
layer = "utility"
format = "mqtt-json"
[feeds.transport]
type = "mqtt"
host = "127.0.0.1"
port = {mqtt_port}
topics = ["grid/+/telemetry"]
[feeds.mapping]
id = "sensor"
[[feeds.mapping.thresholds]]
field = "voltage_kv"
below = 9.5
severity = "moderate"
kind = "feeder.voltage_low"

[[feeds]]
id = "units"
layer = "security"
format = "cot"
[feeds.transport]
type = "tcp"
host = "127.0.0.1"
port = {tak_port}

[[feeds]]
id = "inbox"
layer = "alerts"
format = "geojson"
[feeds.transport]
type = "file-drop"
dir = "inbox"
"#
    );
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();

    let mut cityops = Proc(
        Command::new(env!("CARGO_BIN_EXE_cityops"))
            .args(["ingest", "--config"])
            .arg(dir.path().join("feeds.toml"))
            .arg("--db")
            .arg(dir.path().join("live.db"))
            .args(["--duration", "30s", "--health-every", "1s", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = cityops.0.stdout.take().unwrap();
    let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    let health = |feed: &str| -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["health"]["id"] == feed)
            .map(|v| v["health"].clone())
            .collect()
    };
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !ok() {
            assert!(t.elapsed() < Duration::from_secs(25), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("the MQTT and TCP feeds to connect", &|| {
        health("grid").last().is_some_and(|h| h["connected"] == true)
            && health("units").last().is_some_and(|h| h["connected"] == true)
    });

    // Field data arrives: telemetry on MQTT, a unit report through the TAK server, a dropped file.
    let publish = |n: usize| {
        let out = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtt_port.to_string(),
                "-q",
                "1",
                "-t",
                "grid/s1/telemetry",
                "-m",
            ])
            .arg(format!(
                r#"{{"sensor":"feeder-F{n}","voltage_kv":8.{n},"lat":60.171,"lon":24.943}}"#
            ))
            .output()
            .expect("mosquitto_pub (Debian mosquitto-clients) runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    publish(1);
    let mut unit = std::net::TcpStream::connect(("127.0.0.1", tak_port)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unit.write_all(cot_event("HEL-1", 60.172, 24.944).as_bytes()).unwrap();
    std::fs::write(
        dir.path().join("inbox/report.geojson"),
        r#"{"type":"Feature","id":"report/9","geometry":{"type":"Point","coordinates":[24.945,60.17]},"properties":{"kind":"report.outage"}}"#,
    )
    .unwrap();
    wait("a message on every feed", &|| {
        ["miway", "warnings", "grid", "units", "inbox"]
            .iter()
            .all(|f| health(f).last().is_some_and(|h| !h["lastMessageMs"].is_null()))
    });

    // The broker dies: the feed says so; it comes back: the feed reconnects by itself.
    drop(broker);
    wait("grid disconnected", &|| {
        health("grid").last().is_some_and(|h| h["connected"] == false)
    });
    let _broker = common::mosquitto_on(dir.path(), mqtt_port);
    wait("grid reconnected", &|| {
        health("grid")
            .last()
            .is_some_and(|h| h["connected"] == true && h["failures"].as_u64() >= Some(1))
    });
    publish(2);
    wait("the message after the restart", &|| {
        health("grid")
            .last()
            .is_some_and(|h| h["messagesPerMinute"].as_u64() >= Some(2))
    });

    let status = cityops.0.wait().unwrap();
    assert!(status.success());
    reader.join().unwrap();
    let summary = lines
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|v| v.get("run").is_some())
        .cloned()
        .expect("a summary line");
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let run = summary["run"].as_i64().unwrap();
    let shown = store.picture_at(run, i64::MAX).unwrap();
    let count = |feed: &str| shown.iter().filter(|o| o.feed == feed).count();
    assert_eq!(count("miway"), 125, "every MiWay vehicle");
    assert_eq!(count("warnings"), 1);
    assert_eq!(count("grid"), 2);
    assert_eq!(count("units"), 1);
    assert_eq!(count("inbox"), 1);
    let feeder = shown.iter().find(|o| o.entity.ends_with("feeder-F1")).unwrap();
    assert_eq!(feeder.kind, "feeder.voltage_low");
}
