//! A network outage: the live engine's MQTT broker and its Open311 backend both sit behind TCP
//! gates (`common::gate`), which are cut for a while and then restored, as a dead link would.
//!
//! During the outage the city keeps publishing telemetry to the broker and the operator keeps
//! sending crews. Feed health must show the feed disconnected; the actions wait in the outbox.
//! After it, the persistent MQTT session hands over everything published meanwhile (a
//! replayable source: nothing is lost, nothing doubled), feed health shows the reconnect, and
//! every action reaches Open311 exactly once.
//!
//! `CITYOPS_OUTAGE_SECONDS` sets the outage (CI: 20; a release run uses 600, ten minutes, see
//! RELIABILITY.md).
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cityops_engine::dto::{ActionParams, ActionRequestDto, ActionStatus, MapDiffDto, OperatorRole};
use cityops_engine::Engine;
use cityops_engine::LiveEngineConfig;
use cityops_live::FeedHealthDto;

type Diffs = Arc<Mutex<Vec<MapDiffDto>>>;

fn health(diffs: &Diffs) -> Option<FeedHealthDto> {
    diffs
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|d| d.feeds.clone())
        .and_then(|f| f.into_iter().next())
}

async fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes reading `n` to the broker itself (the city's side of the link), QoS 1.
fn publish(broker: u16, n: usize) {
    let body = format!(
        r#"{{"type":"Feature","id":"meter/{n}","geometry":{{"type":"Point","coordinates":[24.94{n:03},60.17]}},"properties":{{"kind":"meter.reading","severity":"normal","value":{n}}}}}"#
    );
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.to_string(),
            "-q",
            "1",
            "-t",
            "meters/1",
            "-m",
            &body,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "mosquitto_pub (Debian package mosquitto-clients)");
}

fn stored(db: &std::path::Path) -> Vec<(String, u32)> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT entity, count(*) FROM observations GROUP BY entity ORDER BY entity")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn feeds_and_backends_cut_off_and_back_lose_and_double_nothing() {
    let outage = Duration::from_secs(
        std::env::var("CITYOPS_OUTAGE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let dir = tempfile::tempdir().unwrap();
    let broker_port = common::free_port();
    // Mosquitto keeps at most 1,000 messages for a disconnected persistent session by default
    // and drops the rest; a ten-minute outage at two readings a second needs more, as a
    // deployment that must not lose telemetry would configure (RELIABILITY.md).
    let _broker = common::mosquitto_configured(dir.path(), broker_port, "max_queued_messages 0\n");
    let open311_port = common::free_port();
    let _open311 = common::open311_with_key(open311_port, &dir.path().join("open311"), Some("outage-key"));
    std::env::set_var("CITYOPS_OUTAGE_KEY", "outage-key");
    let mqtt_gate = common::gate::Gate::start(([127, 0, 0, 1], broker_port).into());
    let http_gate = common::gate::Gate::start(([127, 0, 0, 1], open311_port).into());

    let feeds = dir.path().join("feeds.toml");
    std::fs::write(
        &feeds,
        format!(
            "rules = \"{}\"\n[[feeds]]\nid = \"meters\"\nlayer = \"utility\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {}\ntopics = [\"meters/#\"]\nclient_id = \"cityops-outage\"\n",
            common::repo().join("fixtures/rules/default.toml").display(),
            mqtt_gate.port()
        ),
    )
    .unwrap();
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        format!(
            "[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{}\"\napi_key = {{ env = \"CITYOPS_OUTAGE_KEY\" }}\nchoices = [\"utility-crew\"]\nretry_base_ms = 200\nmax_backoff_s = 2\npoll_s = 1\n",
            http_gate.port()
        ),
    )
    .unwrap();
    let db = dir.path().join("live.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = Engine::start_live(LiveEngineConfig {
            feeds,
            db_path: db.clone(),
            maps_dir: common::repo().join("maps"),
            backends: Some(backends),
        })
        .unwrap();
        let diffs: Diffs = Arc::default();
        let sink = diffs.clone();
        engine
            .subscribe(Box::new(move |d| {
                sink.lock().unwrap().push(d);
                true
            }))
            .unwrap();
        engine
            .sign_in("Coordinator".into(), OperatorRole::Operator, None)
            .await
            .unwrap();
        let send_crew = |n: usize| {
            let engine = &engine;
            async move {
                let request = ActionRequestDto {
                    backend: "works".into(),
                    incident: None,
                    at: Some([24.9445, 60.1709]),
                    params: ActionParams::ServiceRequest {
                        service_code: "utility-crew".into(),
                        description: format!("crew {n}"),
                    },
                };
                let preview = engine.preview_action(request).await.unwrap();
                engine.confirm_action(preview.token).await.unwrap()
            }
        };

        // The link works: readings arrive (the first ones until the subscription has landed).
        let mut n = 0;
        until("the first reading stored", Duration::from_secs(60), || {
            n += 1;
            publish(broker_port, n);
            std::thread::sleep(Duration::from_millis(300));
            stored(&db).iter().any(|(e, _)| e.starts_with("meter/")).then_some(())
        })
        .await;
        let before = health(&diffs).unwrap();
        assert!(before.connected, "{before:?}");
        let first = send_crew(0).await;

        // The link goes down for both.
        mqtt_gate.cut();
        http_gate.cut();
        let down = until("the feed shown disconnected", Duration::from_secs(30), || {
            health(&diffs).filter(|h| !h.connected)
        })
        .await;
        assert!(down.failures > before.failures && down.last_error.is_some(), "{down:?}");
        let started = Instant::now();
        let mut during = Vec::new();
        let mut crews = Vec::new();
        while started.elapsed() < outage {
            n += 1;
            publish(broker_port, n);
            during.push(n);
            if crews.len() < 3 {
                crews.push(send_crew(crews.len() + 1).await.id);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let outbox = engine.outbox().await.unwrap();
        for id in &crews {
            let a = outbox.actions.iter().find(|a| a.id == *id).unwrap();
            // The outbox probes an unreachable backend with one action at a time, so the others
            // may not have been tried at all; none has failed or given up.
            assert!(
                matches!(a.status, ActionStatus::Queued | ActionStatus::Sending),
                "an action during the outage is waiting: {a:?}"
            );
        }
        assert!(
            outbox.offline && outbox.queued as usize >= crews.len(),
            "the outbox says it is offline: {outbox:?}"
        );
        assert!(
            !health(&diffs).unwrap().connected,
            "still disconnected at the end of the outage"
        );

        // The link is back.
        mqtt_gate.restore();
        http_gate.restore();
        let back = until("the feed shown connected again", Duration::from_secs(60), || {
            health(&diffs).filter(|h| h.connected)
        })
        .await;
        println!(
            "outage of {outage:?}: {} readings published meanwhile, {} crews sent; health after: {back:?}",
            during.len(),
            crews.len()
        );
        let last = *during.last().unwrap();
        until(
            "every reading published during the outage stored",
            Duration::from_secs(60),
            || {
                let s = stored(&db);
                s.iter().any(|(e, _)| *e == format!("meter/{last}")).then_some(())
            },
        )
        .await;
        let mut seen = String::new();
        let delivered = tokio::time::timeout(Duration::from_secs(90), async {
            loop {
                let outbox = engine.outbox().await.unwrap();
                if outbox.actions.iter().all(|a| a.status == ActionStatus::Delivered) && outbox.actions.len() == 4 {
                    break;
                }
                seen = format!("{outbox:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(
            delivered.is_ok(),
            "every crew delivered within 90 s of the link's return: {seen}"
        );
        let s = stored(&db);
        for k in during {
            assert_eq!(
                s.iter().find(|(e, _)| *e == format!("meter/{k}")).map(|(_, c)| *c),
                Some(1),
                "reading {k} stored exactly once: {s:?}"
            );
        }
        assert!(s.iter().all(|(_, c)| *c == 1), "nothing doubled: {s:?}");
        let log = common::http(open311_port, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
        let created = log
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["created"].is_string())
            .count();
        assert_eq!(created, 4, "each crew created once on the server: {}", log.json());
        assert!(first.id < crews[0]);
    });
}
