use super::*;

fn obs(entity: &str, seq: u64, received_ms: Millis, lon: f64, lat: f64) -> Observation {
    let mut fields = serde_json::Map::new();
    fields.insert("text".into(), serde_json::json!("<img src=x onerror=alert(1)>"));
    fields.insert("nested".into(), serde_json::json!({"a": [1, 2.5, null, true]}));
    Observation {
        feed: "feed-a".into(),
        seq,
        idx: 0,
        received_ms,
        observed_ms: received_ms - 250,
        layer: Layer::Security,
        kind: "camera.offline".into(),
        severity: Severity::Moderate,
        entity: entity.into(),
        position: GeoPoint { lon, lat },
        title: "Camera ✓ offline".into(),
        fields: fields.into(),
        shape: None,
    }
}

#[test]
fn observations_round_trip_exactly() {
    let mut s = Store::open_in_memory().unwrap();
    let run = s.begin_run("demo", "now").unwrap();
    // One of them covers an area, kept as its shape.
    let mut area = obs("zone/3", 3, 2_000, 24.945, 60.172);
    area.shape = Some(Box::new(cityops_core::shape::Shape::Polygon(vec![vec![
        [24.94, 60.17],
        [24.95, 60.17],
        [24.95, 60.175],
        [24.94, 60.17],
    ]])));
    let written = vec![
        obs("cam/1", 1, 1_000, 24.94, 60.17),
        obs("cam/2", 2, 2_000, 24.95, 60.175),
        area,
    ];
    s.append(run, &written, &[], (3, 2_000)).unwrap();
    let mut read = Vec::new();
    s.for_each(run, |o| read.push(o.clone())).unwrap();
    assert_eq!(read, written);
    assert_eq!(s.frontier(run).unwrap(), (3, Some(2_000)));
    let counts = s.counts(run).unwrap();
    assert_eq!(
        counts.per_layer.iter().find(|(l, _)| *l == Layer::Security).unwrap().1,
        3
    );
}

#[test]
fn migrations_run_once_and_refuse_newer_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let run = s.begin_run("demo", "now").unwrap();
    s.append(run, &[obs("cam/1", 1, 1_000, 24.94, 60.17)], &[], (1, 1_000))
        .unwrap();
    drop(s);
    // Reopening must keep the data and not re-run migrations.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.picture_at(run, 5_000).unwrap().len(), 1);
    drop(s);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
}

#[test]
fn picture_and_windows_follow_arrival_time() {
    let mut s = Store::open_in_memory().unwrap();
    let run = s.begin_run("demo", "now").unwrap();
    let other = s.begin_run("other", "now").unwrap();
    let a1 = obs("a", 1, 1_000, 24.94, 60.17);
    let b2 = obs("b", 2, 2_000, 24.94, 60.17);
    let mut a3 = obs("a", 3, 3_000, 24.95, 60.17);
    a3.severity = Severity::Normal;
    s.append(run, &[a1.clone(), b2.clone(), a3.clone()], &[], (3, 3_000))
        .unwrap();
    s.append(other, &[obs("z", 1, 1_000, 24.94, 60.17)], &[], (1, 1_000))
        .unwrap();
    assert_eq!(s.picture_at(run, 999).unwrap(), vec![]);
    assert_eq!(s.picture_at(run, 2_500).unwrap(), vec![a1.clone(), b2.clone()]);
    assert_eq!(s.picture_at(run, 3_000).unwrap(), vec![b2.clone(), a3.clone()]);
    assert_eq!(s.arrived_between(run, 1_000, 3_000).unwrap(), vec![b2, a3.clone()]);
    assert_eq!(s.entity_at(run, "a", 2_999).unwrap(), Some(a1));
    assert_eq!(s.entity_at(run, "a", 10_000).unwrap(), Some(a3));
    assert_eq!(s.entity_at(run, "nope", 10_000).unwrap(), None);
}

#[test]
fn area_queries_use_place_and_time() {
    let mut s = Store::open_in_memory().unwrap();
    let run = s.begin_run("demo", "now").unwrap();
    let base = 1_800_000_000_000;
    let mut all = Vec::new();
    // A 10 x 10 grid of points over 40 minutes.
    for i in 0..100u64 {
        let lon = 24.93 + (i % 10) as f64 * 0.003;
        let lat = 60.16 + (i / 10) as f64 * 0.002;
        all.push(obs(&format!("e{i}"), i + 1, base + i as i64 * 24_000, lon, lat));
    }
    s.append(run, &all, &[], (100, base)).unwrap();
    let area = BBox {
        min: GeoPoint {
            lon: 24.935,
            lat: 60.163,
        },
        max: GeoPoint {
            lon: 24.946,
            lat: 60.171,
        },
    };
    let (from, to) = (base + 5 * 60_000, base + 30 * 60_000);
    let got = s.in_area(None, area, from, to).unwrap();
    let want: Vec<Observation> = all
        .iter()
        .filter(|o| area.contains(o.position) && (from..=to).contains(&o.observed_ms))
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // The window's summary counts the same observations and lists the newest, as sightings.
    let summary = s.area_summary(run, area, (from, to), Millis::MAX, None, 3).unwrap();
    assert_eq!(summary.total as usize, want.len());
    assert_eq!(
        summary.per_kind.get("camera.offline"),
        Some(&(Layer::Security, want.len() as u64))
    );
    let newest: Vec<&str> = summary.newest.iter().map(|n| n.entity.as_str()).collect();
    let mut by_time = want.clone();
    by_time.sort_by_key(|o| std::cmp::Reverse(o.observed_ms));
    let expect: Vec<&str> = by_time.iter().take(3).map(|o| o.entity.as_str()).collect();
    assert_eq!(newest, expect);
    // What had not arrived yet, and another layer, are left out.
    let early = s
        .area_summary(run, area, (from, to), want[0].received_ms, None, 3)
        .unwrap();
    assert_eq!(early.total, 1);
    let none = s
        .area_summary(run, area, (from, to), Millis::MAX, Some(Layer::Transport), 3)
        .unwrap();
    assert_eq!((none.total, none.newest.len()), (0, 0));
}

#[test]
fn quarantine_keeps_what_was_refused() {
    let mut s = Store::open_in_memory().unwrap();
    let run = s.begin_run("demo", "now").unwrap();
    let q = QuarantineEntry {
        feed: "signals".into(),
        seq: 9,
        place: "features[2].properties.kind".into(),
        reason: "missing or not a string".into(),
        received_ms: 5,
        body: b"{}".to_vec(),
    };
    s.append(run, &[], std::slice::from_ref(&q), (9, 5)).unwrap();
    assert_eq!(s.quarantine(run).unwrap(), vec![q]);
    assert_eq!(s.counts(run).unwrap().quarantined, 1);
}

#[test]
fn the_quarantine_browser_pages_newest_first_filters_by_feed_and_cuts_bodies() {
    let mut s = Store::open_in_memory().unwrap();
    let run = s.begin_run("demo", "now").unwrap();
    let other = s.begin_run("other", "now").unwrap();
    let entry = |feed: &str, seq: u64, body: Vec<u8>| QuarantineEntry {
        feed: feed.into(),
        seq,
        place: "$".into(),
        reason: format!("bad {seq}"),
        received_ms: seq as i64,
        body,
    };
    let big = "é".repeat(600).into_bytes();
    let rows = [
        entry("grid", 1, Vec::new()),
        entry("cctv", 2, big.clone()),
        entry("grid", 3, b"<script>x</script>".to_vec()),
    ];
    s.append(run, &[], &rows, (3, 3)).unwrap();
    s.append(other, &[], &[entry("grid", 9, Vec::new())], (9, 9)).unwrap();

    let all = s.quarantine_page(run, None, 10, 16).unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(
        all.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 2, 1],
        "newest first, this run only"
    );
    assert_eq!(
        all.feeds.iter().map(|f| (f.feed.as_str(), f.count)).collect::<Vec<_>>(),
        [("cctv", 1), ("grid", 2)]
    );
    let cut = &all.entries[1];
    assert_eq!(
        (cut.body_bytes, cut.preview.chars().count()),
        (big.len() as u64, 8),
        "16 bytes of two-byte characters"
    );
    assert_eq!(all.entries[0].preview, "<script>x</script>"[..16]);
    assert_eq!(
        (all.entries[2].preview.as_str(), all.entries[2].body_bytes),
        ("", 0),
        "a transport failure has no body"
    );

    let grid = s.quarantine_page(run, Some("grid"), 1, 512).unwrap();
    assert_eq!(
        (grid.total, grid.entries.len(), grid.entries[0].reason.as_str()),
        (2, 1, "bad 3")
    );
    assert_eq!(s.quarantine_page(run, Some("nope"), 10, 512).unwrap().total, 0);
}

fn queued_action(store: &Store, key: &str) -> i64 {
    store
        .commit_action(&NewAction {
            key,
            run: None,
            incident: None,
            backend: "works",
            kind: cityops_core::dispatch::BackendKind::Open311,
            summary: "crew",
            destination: "POST http://127.0.0.1:1/requests.json",
            headers: &[],
            body: "service_code=utility-crew",
            device: None,
            exercise: false,
            operator: "ann",
            role: "operator",
            wall_ms: 1_000,
            scenario_ms: None,
        })
        .unwrap()
}

#[test]
fn a_cancel_between_the_senders_read_and_its_attempt_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.db");
    let sender = Store::open(&db).unwrap();
    let operator = Store::open(&db).unwrap();
    let id = queued_action(&operator, "k1");
    // The sender reads the head of the queue; the operator's cancel commits on another
    // connection before the sender starts its attempt.
    let head = sender.head_action("works", false).unwrap().expect("queued");
    operator.cancel_action(id, "ann", "operator", 2_000).unwrap();
    assert_eq!(
        sender.start_attempt(&head, 3_000).unwrap(),
        None,
        "nothing may be sent after the cancel"
    );
    let row = sender.action(id).unwrap().unwrap();
    assert_eq!(row.dto.status, cityops_dto::ActionStatus::Cancelled);
    assert_eq!(row.dto.attempts, 0);
    assert!(sender.attempts(id).unwrap().is_empty(), "no attempt was opened");
    // Read after the cancel, the queue is empty; a queued action still starts as before.
    assert!(sender.head_action("works", false).unwrap().is_none());
    let id = queued_action(&operator, "k2");
    let head = sender.head_action("works", false).unwrap().unwrap();
    assert!(sender.start_attempt(&head, 4_000).unwrap().is_some());
    assert!(
        operator.cancel_action(id, "ann", "operator", 5_000).is_err(),
        "an action in flight cannot be cancelled"
    );
}
