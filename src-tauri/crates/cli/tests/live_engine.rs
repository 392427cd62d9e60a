//! The engine's live mode: feeds of a configuration instead of a tape, on the wall clock. Runs
//! the real transports (a drop folder, and a TCP feed whose server is down) and checks what a
//! subscriber receives: observations, feed health, incidents correlated as wall time passes,
//! and the quarantine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_engine::dto::{ApiErrorCode, MapDiffDto};
use cityops_engine::LiveEngineConfig;
use cityops_engine::{dto::ApiError, Engine};
use cityops_live::FeedHealthDto;

mod common;

type Diffs = Arc<Mutex<Vec<MapDiffDto>>>;

/// Polls the diffs received so far until `f` finds something, for at most 20 seconds.
async fn until<T>(diffs: &Diffs, what: &str, f: impl Fn(&[MapDiffDto]) -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f(&diffs.lock().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The latest health of every feed among the diffs.
fn health(diffs: &[MapDiffDto]) -> Option<Vec<FeedHealthDto>> {
    diffs.iter().rev().find_map(|d| d.feeds.clone())
}

fn config(dir: &Path, dead_port: u16) -> PathBuf {
    let demo = common::repo().join("fixtures");
    let text = format!(
        r#"
name = "Test control room"
rules = "{rules}"
assets = "{assets}"

[[feeds]]
id = "inbox"
layer = "utility"
format = "geojson"
name = "Dropped SCADA events"
[feeds.transport]
type = "file-drop"
dir = "inbox"

[[feeds]]
id = "units"
layer = "security"
format = "geojson"
[feeds.transport]
type = "tcp"
host = "127.0.0.1"
port = {dead_port}
"#,
        rules = demo.join("rules/default.toml").display(),
        assets = demo.join("scenarios/helsinki-storm/assets.geojson").display(),
    );
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_streams_observations_health_incidents_and_the_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_live(LiveEngineConfig {
        feeds: config(dir.path(), common::free_port()),
        db_path: dir.path().join("live.db"),
        maps_dir: common::repo().join("maps"),
        backends: None,
    })
    .unwrap();
    let scenario = engine.scenario();
    assert!(scenario.live);
    assert_eq!(scenario.name, "Test control room");
    assert_eq!(scenario.feeds.len(), 2);
    // The clock is the wall clock: its controls are refused with a reason the UI can show.
    for refused in [engine.play(), engine.pause(), engine.seek(0), engine.set_speed(None)] {
        assert_eq!(ApiError::from(refused.unwrap_err()).code, ApiErrorCode::InvalidInput);
    }

    let diffs: Diffs = Arc::default();
    let sink = diffs.clone();
    engine
        .subscribe(Box::new(move |d| {
            sink.lock().unwrap().push(d);
            true
        }))
        .unwrap();
    let feeds = until(&diffs, "health of both feeds", |d| health(d).filter(|h| h.len() == 2)).await;
    assert_eq!(
        feeds
            .iter()
            .map(|f| (f.id.as_str(), f.transport.as_str()))
            .collect::<Vec<_>>(),
        [("inbox", "file-drop"), ("units", "tcp")]
    );
    until(&diffs, "the dead TCP feed reported disconnected", |d| {
        health(d)?
            .iter()
            .find(|f| f.id == "units" && !f.connected && f.last_error.is_some())
            .cloned()
    })
    .await;

    // A substation trip dropped into the folder reaches the map at once, stamped with wall time.
    let before = chrono::Utc::now().timestamp_millis();
    let trip = serde_json::json!({"type": "Feature", "id": "way/644615094",
        "geometry": {"type": "Point", "coordinates": [24.942313, 60.173151]},
        "properties": {"kind": "substation.trip", "severity": "extreme", "title": "Substation tripped: Kaisankuja substation",
                       "time": chrono::Utc::now().to_rfc3339()}});
    std::fs::write(dir.path().join("inbox/trip.geojson"), trip.to_string()).unwrap();
    let shown = until(&diffs, "the trip on the map", |d| {
        d.iter()
            .flat_map(|d| &d.upserts)
            .find(|u| u.id == "way/644615094")
            .cloned()
    })
    .await;
    assert_eq!(shown.kind, "substation.trip");
    let obs = engine.observation("way/644615094".into()).await.unwrap();
    assert!(
        obs.received_ms >= before && obs.received_ms <= chrono::Utc::now().timestamp_millis(),
        "received at wall time"
    );
    assert_eq!(obs.feed_name, "Dropped SCADA events");

    // The desk correlates the trip's arrival second once wall time has passed it.
    let incident = until(&diffs, "the outage incident", |d| {
        d.iter()
            .filter_map(|d| d.incidents.as_ref())
            .flat_map(|i| &i.upserts)
            .find(|e| e.title.contains("Power outage"))
            .cloned()
    })
    .await;
    assert_eq!(incident.root_cause.as_deref(), Some("way/644615094"));
    let clock = diffs.lock().unwrap().last().unwrap().clock.clone();
    assert!(clock.playing && !clock.finished && clock.now_ms >= obs.received_ms);

    // A malformed file is refused and listed with its reason and the start of its body.
    std::fs::write(
        dir.path().join("inbox/broken.geojson"),
        "{\"type\": \"Feature\", <b>oops",
    )
    .unwrap();
    until(&diffs, "the refusal counted in health", |d| {
        health(d)?.iter().find(|f| f.id == "inbox" && f.rejected == 1).cloned()
    })
    .await;
    let q = engine.quarantine(Some("inbox".into())).await.unwrap();
    assert_eq!(q.total, 1);
    assert!(
        q.entries[0].preview.starts_with("{\"type\": \"Feature\", <b>oops"),
        "{:?}",
        q.entries[0]
    );
    assert!(q.entries[0].reason.contains("JSON"), "{:?}", q.entries[0]);
    let inbox = health(&diffs.lock().unwrap())
        .unwrap()
        .into_iter()
        .find(|f| f.id == "inbox")
        .unwrap();
    assert!(
        inbox.connected && inbox.messages_per_minute == 2 && !inbox.stale,
        "{inbox:?}"
    );
    // The dead server's refused connections are quarantined as transport failures of its feed.
    let units = engine.quarantine(Some("units".into())).await.unwrap();
    assert!(
        units.total >= 1
            && units
                .entries
                .iter()
                .all(|e| e.feed == "units" && e.place == "transport" && e.preview.is_empty()),
        "{units:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_without_rules_has_no_incidents_and_nobody_signed_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, "[[feeds]]\nid = \"inbox\"\nlayer = \"alerts\"\nformat = \"geojson\"\n[feeds.transport]\ntype = \"file-drop\"\ndir = \"inbox\"\n").unwrap();
    let engine = Engine::start_live(LiveEngineConfig {
        feeds: path,
        db_path: dir.path().join("live.db"),
        maps_dir: common::repo().join("maps"),
        backends: None,
    })
    .unwrap();
    assert_eq!(engine.scenario().name, "Live: feeds.toml");
    assert_eq!(engine.operator().await.unwrap(), None);
    assert_eq!(
        ApiError::from(engine.incident_detail("x".into()).await.unwrap_err()).code,
        ApiErrorCode::NotFound
    );
}
