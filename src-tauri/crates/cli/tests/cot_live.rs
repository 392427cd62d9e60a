//! Cursor-on-Target through a real TAK server: taky (PyPI, started by
//! `tests/peers/taky/run.sh`) on 127.0.0.1 relays the events a field unit sends to the
//! cityops TCP feed. Killing the server shows as disconnected; starting it again reconnects.
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

use std::io::Write;
use std::time::Duration;

use cityops_live::config::LiveConfig;
use cityops_live::{self as live, Health, LiveOptions};
use cityops_store::Store;
use tokio::sync::watch;

mod common;

fn event(uid: &str, cot_type: &str, lat: f64, lon: f64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><event version="2.0" uid="{uid}" type="{cot_type}" how="m-g" time="2026-11-26T19:10:00Z" start="2026-11-26T19:10:00Z" stale="2036-11-26T19:16:00Z"><point lat="{lat}" lon="{lon}" hae="15" ce="9" le="9"/><detail><contact callsign="{uid}"/><remarks>patrol &lt;north&gt;</remarks></detail></event>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_relayed_by_taky_arrive_and_the_feed_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let taky = common::taky(port, &dir.path().join("taky"));

    let config_path = dir.path().join("feeds.toml");
    std::fs::write(
        &config_path,
        format!("[[feeds]]\nid = \"units\"\nlayer = \"security\"\nformat = \"cot\"\n[feeds.transport]\ntype = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
    )
    .unwrap();
    let config = LiveConfig::load(&config_path).unwrap();
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let health = Health::default();
    let (stop, stop_rx) = watch::channel(false);
    let runner = tokio::spawn(live::run(
        config,
        store,
        LiveOptions::default(),
        health.clone(),
        stop_rx,
    ));
    let units = |h: &Health| {
        h.snapshot(chrono::Utc::now().timestamp_millis())
            .into_iter()
            .find(|f| f.id == "units")
    };
    let wait = |what: &'static str, ok: &dyn Fn(&cityops_live::FeedHealthDto) -> bool| {
        let h = health.clone();
        let found = (0..600).any(|_| {
            if units(&h).is_some_and(|f| ok(&f)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
            false
        });
        assert!(found, "timed out waiting for {what}: {:?}", units(&h));
    };
    wait("connected", &|f| f.connected);

    // A field unit connects to the TAK server and reports; taky relays to every client.
    let send = |events: &[String]| {
        let mut unit = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for e in events {
            unit.write_all(e.as_bytes()).unwrap();
        }
        unit.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    };
    send(&[
        event("HEL-1", "a-f-G-U-C", 60.171, 24.941),
        event("ALARM-7", "b-a-o-tbl", 60.172, 24.945),
    ]);
    wait("two events", &|f| f.messages_per_minute >= 2);

    // The server goes away and comes back: the feed reports it and reconnects by itself.
    drop(taky);
    wait("disconnected", &|f| !f.connected);
    let taky = common::taky(port, &dir.path().join("taky"));
    wait("reconnected", &|f| f.connected);
    send(&[event("HEL-2", "a-f-G-U-C", 60.173, 24.947)]);
    wait("the event after the restart", &|f| f.messages_per_minute >= 3);

    stop.send(true).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), runner)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(taky);
    let store = Store::open(&dir.path().join("live.db")).unwrap();
    let shown = store.picture_at(summary.run, i64::MAX).unwrap();
    let mut entities: Vec<&str> = shown.iter().map(|o| o.entity.as_str()).collect();
    entities.sort();
    assert_eq!(entities, ["cot:ALARM-7", "cot:HEL-1", "cot:HEL-2"], "{shown:?}");
    let alarm = shown.iter().find(|o| o.entity == "cot:ALARM-7").unwrap();
    assert!(alarm.kind.starts_with("alarm"), "{}", alarm.kind);
    let unit = shown.iter().find(|o| o.entity == "cot:HEL-1").unwrap();
    assert!((unit.position.lat - 60.171).abs() < 1e-6 && (unit.position.lon - 24.941).abs() < 1e-6);
}
