//! Rule-level tests: observations in, incidents out, with the Helsinki default rules over a small
//! hand-made asset map, and property tests for ordering and undo.

use proptest::prelude::*;

use super::*;
use crate::assets::AssetIndex;
use crate::model::{GeoPoint, Layer, Observation, Severity};
use crate::rules::Rules;

const T0: i64 = 1_795_726_800_000;

/// A substation S with two signals and a camera on two feeders, a signal fed from elsewhere.
fn assets() -> AssetIndex {
    let f = |id: &str, ty: &str, lon: f64, lat: f64, fed: Option<&str>, feeder: Option<&str>| {
        serde_json::json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"asset_type": ty, "name": format!("{ty} {id}"), "fed_by": fed, "feeder": feeder}})
    };
    let text = serde_json::json!({"type": "FeatureCollection", "features": [
        f("way/S", "substation", 24.9400, 60.1700, None, None),
        f("node/s1", "signal", 24.9410, 60.1700, Some("way/S"), Some("F1")),
        f("node/s2", "signal", 24.9400, 60.1720, Some("way/S"), Some("F2")),
        f("node/c1", "camera", 24.9412, 60.1701, Some("way/S"), Some("F1")),
        f("node/s9", "signal", 24.9600, 60.1700, None, None),
    ]});
    AssetIndex::parse_geojson(&text.to_string()).unwrap()
}

fn rules() -> Rules {
    Rules::parse(include_str!("../../../../../fixtures/rules/default.toml")).unwrap()
}

/// Where things are, by entity.
fn place(entity: &str) -> (f64, f64) {
    match entity {
        "way/S" | "alarm/S-door" | "feeder/S-F1" => (24.9400, 60.1700),
        "node/s1" => (24.9410, 60.1700),
        "node/s2" => (24.9400, 60.1720),
        "node/c1" => (24.9412, 60.1701),
        "node/s9" => (24.9600, 60.1700),
        _ => (24.9410, 60.1700),
    }
}

fn layer(kind: &str) -> Layer {
    match kind.split('.').next().unwrap() {
        "substation" | "feeder" => Layer::Utility,
        "camera" | "alarm" => Layer::Security,
        "report" | "weather" => Layer::Alerts,
        _ => Layer::Transport,
    }
}

/// One observation `t` seconds into the test, arriving a second after it was observed.
fn obs(
    seq: u64,
    t: f64,
    entity: &str,
    kind: &str,
    severity: Severity,
    at: (f64, f64),
    fields: serde_json::Value,
) -> Observation {
    let observed_ms = T0 + (t * 1000.0) as i64;
    Observation {
        feed: "test".into(),
        seq,
        idx: 0,
        received_ms: observed_ms + 1000,
        observed_ms,
        layer: layer(kind),
        kind: kind.into(),
        severity,
        entity: entity.into(),
        position: GeoPoint { lon: at.0, lat: at.1 },
        title: format!("{entity} {kind}"),
        fields: fields.as_object().cloned().unwrap_or_default().into(),
        shape: None,
    }
}

/// A scenario line: seconds, entity, kind, severity, optional position and fields.
struct Line(
    f64,
    &'static str,
    &'static str,
    Severity,
    Option<(f64, f64)>,
    serde_json::Value,
);

fn l(t: f64, entity: &'static str, kind: &'static str, severity: Severity) -> Line {
    Line(t, entity, kind, severity, None, serde_json::Value::Null)
}

impl Line {
    fn at(mut self, lon: f64, lat: f64) -> Line {
        self.4 = Some((lon, lat));
        self
    }
    fn with(mut self, fields: serde_json::Value) -> Line {
        self.5 = fields;
        self
    }
}

fn observations(lines: Vec<Line>) -> Vec<Observation> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, Line(t, e, k, s, at, fields))| obs(i as u64 + 1, t, e, k, s, at.unwrap_or_else(|| place(e)), fields))
        .collect()
}

/// Feeds observations second by second (by arrival), then lets time run to `until` seconds.
fn run(c: &mut Correlator, mut all: Vec<Observation>, until: f64) {
    all.sort_by_key(|o| (o.received_ms.div_euclid(1000), o.seq));
    let mut i = 0;
    while i < all.len() {
        let second = all[i].received_ms.div_euclid(1000);
        let j = i + all[i..]
            .iter()
            .take_while(|o| o.received_ms.div_euclid(1000) == second)
            .count();
        c.ingest_second(second, &mut all[i..j]);
        c.assert_consistent();
        i = j;
    }
    c.ingest_second((T0 + (until * 1000.0) as i64) / 1000, &mut []);
    c.assert_consistent();
}

fn correlate(lines: Vec<Line>, until: f64) -> Correlator {
    let mut c = Correlator::new(rules(), assets());
    run(&mut c, observations(lines), until);
    c
}

/// One line per incident and per member, the way the checks below read them.
fn summary(c: &Correlator) -> String {
    let mut out = String::new();
    for inc in c.incidents() {
        let status = match &inc.status {
            IncidentStatus::Open if inc.root_cleared => "open, root cleared".to_owned(),
            IncidentStatus::Open => "open".to_owned(),
            IncidentStatus::Cleared => "cleared".to_owned(),
            IncidentStatus::Merged { into } => format!("merged into {into}"),
        };
        out += &format!(
            "{} {} [{status}] {}\n",
            inc.incident_type,
            inc.severity.as_str(),
            inc.title
        );
        for m in &inc.members {
            let dup = m
                .duplicate_of
                .as_ref()
                .map(|d| format!(" dup of {d}"))
                .unwrap_or_default();
            let cleared = if m.cleared { " cleared" } else { "" };
            out += &format!("  {} {} {}{dup}{cleared}\n", m.entity, m.rule, m.explanation.confidence);
        }
    }
    out
}

fn text_of(c: &Correlator, entity: &str) -> String {
    c.open_incidents()
        .chain(c.incidents())
        .find_map(|i| i.member(entity))
        .map(|m| m.explanation.text.clone())
        .unwrap()
}

use Severity::{Extreme, Minor, Moderate, Normal, Severe};

fn trip(t: f64, feeders: &[&str]) -> Line {
    l(t, "way/S", "substation.trip", Extreme).with(serde_json::json!({ "feeders_affected": feeders }))
}

#[test]
fn dependents_of_a_trip_are_grouped_under_it_and_explained() {
    let c = correlate(
        vec![
            trip(0.0, &["F1", "F2"]),
            l(20.0, "node/s1", "signal.dark", Severe),
            l(30.0, "node/c1", "camera.offline", Moderate),
            l(40.0, "node/s9", "signal.dark", Severe),
        ],
        60.0,
    );
    assert_eq!(
        summary(&c),
        "power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  node/s1 supplied-by-tripped-substation 0.95
  node/c1 supplied-by-tripped-substation 0.95
signal_failure severe [open] Signals dark: signal node/s9
  node/s9 seed 1
"
    );
    let m = c.open_incidents().next().unwrap().member("node/s1").unwrap().clone();
    assert_eq!(
        m.explanation.text,
        "signal node/s1 went dark 20 s after substation way/S tripped; it is fed by that substation on feeder F1"
    );
    assert_eq!(m.explanation.dependency_path, ["node/s1", "way/S"]);
    assert_eq!((m.explanation.distance_m, m.explanation.time_gap_s), (55.3, 20.0));
    let id = &c.open_incidents().next().unwrap().id;
    assert_eq!(id.as_str(), "inc/test/1/0", "ids come from the root observation's key");
}

#[test]
fn a_member_whose_kind_changes_is_matched_by_its_new_kind() {
    // The camera switches to battery when the substation trips, then goes offline. A second feed
    // then reports a camera offline at the same spot: only the member's new kind makes that a
    // duplicate of it (the member grid must follow the kind).
    let c = correlate(
        vec![
            trip(0.0, &["F1", "F2"]),
            l(10.0, "node/c1", "camera.on_battery", Minor),
            l(20.0, "node/c1", "camera.offline", Moderate),
            l(30.0, "vms/cam-12", "camera.offline", Moderate).at(24.94121, 60.17011),
        ],
        60.0,
    );
    assert_eq!(
        summary(&c),
        "power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  node/c1 supplied-by-tripped-substation 0.95
  vms/cam-12 same-asset-two-feeds 0.84 dup of node/c1
"
    );
}

#[test]
fn a_dependent_on_another_feeder_or_too_late_is_not_grouped() {
    // The trip names only F2: the F1 signal is its own problem, the F2 one a dependent.
    let c = correlate(
        vec![
            trip(0.0, &["F2"]),
            l(20.0, "node/s1", "signal.dark", Severe),
            l(25.0, "node/s2", "signal.dark", Severe),
        ],
        60.0,
    );
    assert_eq!(
        summary(&c),
        "power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  node/s2 supplied-by-tripped-substation 0.95
signal_failure severe [open] Signals dark: signal node/s1
  node/s1 seed 1
"
    );
    // Restored at 100 s (the camera keeps the incident open); the window is 300 s: a signal dark
    // at 350 s is still explained by the trip, one at 500 s is not.
    let c = correlate(
        vec![
            trip(0.0, &["F1", "F2"]),
            l(20.0, "node/c1", "camera.offline", Moderate),
            l(100.0, "way/S", "substation.restored", Normal),
            l(350.0, "node/s2", "signal.dark", Severe),
            l(500.0, "node/s1", "signal.dark", Severe),
        ],
        520.0,
    );
    assert_eq!(
        summary(&c),
        "power_outage extreme [open, root cleared] Power outage: substation way/S
  way/S seed 1 cleared
  node/c1 supplied-by-tripped-substation 0.95
  node/s2 supplied-by-tripped-substation 0.95
signal_failure severe [open] Signals dark: signal node/s1
  node/s1 seed 1
"
    );
}

#[test]
fn when_the_root_clears_dependents_that_do_not_stay_visible() {
    let lines = vec![
        trip(0.0, &["F1", "F2"]),
        l(20.0, "node/s1", "signal.dark", Severe),
        l(21.0, "node/s2", "signal.dark", Severe),
        l(600.0, "way/S", "substation.restored", Normal),
        l(640.0, "node/s1", "signal.restored", Normal),
    ];
    let c = correlate(lines, 700.0);
    let inc = c.incidents().next().unwrap();
    assert!(inc.is_open() && inc.root_cleared);
    assert_eq!(
        inc.members
            .iter()
            .filter(|m| !m.cleared)
            .map(|m| m.entity.as_str())
            .collect::<Vec<_>>(),
        ["node/s2"]
    );
    let c = correlate(
        vec![
            trip(0.0, &[]),
            l(20.0, "node/s1", "signal.dark", Severe),
            l(600.0, "way/S", "substation.restored", Normal),
            l(640.0, "node/s1", "signal.ok", Normal),
        ],
        700.0,
    );
    let inc = c.incidents().next().unwrap();
    assert_eq!(
        (inc.status.clone(), inc.cleared_ms),
        (IncidentStatus::Cleared, Some(T0 + 640_000))
    );
}

#[test]
fn an_alarm_at_the_tripped_site_is_linked_through_its_site_field() {
    let c = correlate(
        vec![
            trip(0.0, &[]),
            l(144.0, "alarm/S-door", "alarm.intrusion", Severe).with(serde_json::json!({"site": "way/S"})),
        ],
        150.0,
    );
    let text = text_of(&c, "alarm/S-door");
    assert_eq!(
        text,
        "alarm/S-door raised an intrusion alarm 2 min 24 s after substation way/S tripped; its site is that substation"
    );
    assert_eq!(c.open_incidents().count(), 1);
}

#[test]
fn delayed_vehicles_join_near_a_dark_junction_only() {
    let near = (24.9410, 60.1708); // 89 m north of node/s1
    let far = (24.9410, 60.1730); // 334 m north
    let lines = vec![
        trip(0.0, &[]),
        l(20.0, "node/s1", "signal.dark", Severe),
        l(90.0, "vehicle/near", "vehicle.delayed", Minor).at(near.0, near.1),
        l(95.0, "vehicle/far", "vehicle.delayed", Minor).at(far.0, far.1),
        l(300.0, "node/s1", "signal.restored", Normal),
        l(500.0, "vehicle/late", "vehicle.delayed", Minor).at(near.0, near.1),
        l(510.0, "vehicle/near", "vehicle.delayed", Moderate).at(far.0, far.1),
    ];
    let c = correlate(lines, 520.0);
    assert_eq!(
        summary(&c),
        "power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  node/s1 supplied-by-tripped-substation 0.95 cleared
  vehicle/near delayed-at-dark-junction 0.49
"
    );
    let inc = c.open_incidents().next().unwrap();
    let v = inc.member("vehicle/near").unwrap();
    assert_eq!(
        (v.reports, v.severity, v.last_key.seq),
        (2, Moderate, 7),
        "later observations of a member update it"
    );
    assert_eq!(
        text_of(&c, "vehicle/near"),
        "vehicle/near was delayed 89 m from signal node/s1, which went dark 1 min 10 s earlier",
        "explanations are written when the member joins"
    );
}

#[test]
fn the_same_outage_reported_twice_is_merged_as_a_duplicate() {
    let a = (24.9500, 60.1750);
    let lines = vec![
        l(0.0, "report/a", "report.outage", Minor).at(a.0, a.1),
        l(60.0, "report/b", "report.outage", Minor).at(a.0 + 0.0005, a.1), // 28 m
        l(90.0, "report/c", "report.outage", Minor).at(a.0, a.1 + 0.0011), // 122 m
        l(700.0, "report/d", "report.outage", Minor).at(a.0, a.1 + 0.0002), // 22 m but 700 s later
        l(710.0, "report/e", "report.outage", Minor).at(a.0 + 0.03, a.1),  // 1.7 km
    ];
    let c = correlate(lines, 720.0);
    assert_eq!(
        summary(&c),
        "citizen_reports minor [open] Citizen reports: report/a report.outage
  report/a seed 1
  report/b same-outage-reported-twice 0.65 dup of report/a
  report/c report-near-known-outage 0.42
  report/d report-near-known-outage 0.57
citizen_reports minor [open] Citizen reports: report/e report.outage
  report/e seed 1
"
    );
    assert_eq!(
        text_of(&c, "report/b"),
        "report/b reported an outage 28 m from report/a and 1 min after it; likely the same thing reported twice"
    );
    // Events expire: fifteen minutes after the last report nothing keeps the incidents open.
    let mut c = c;
    c.ingest_second((T0 + 1_700_000) / 1000, &mut []);
    assert_eq!(c.open_incidents().count(), 0);
}

#[test]
fn severity_rises_with_breadth_and_duration() {
    // Reports 60 m apart every five minutes: none a duplicate, each near the previous one.
    let lines: Vec<Line> = (0..7)
        .map(|i| {
            l(
                i as f64 * 300.0,
                [
                    "report/0", "report/1", "report/2", "report/3", "report/4", "report/5", "report/6",
                ][i],
                "report.outage",
                Minor,
            )
            .at(24.95, 60.17 + i as f64 * 0.00054)
        })
        .collect();
    let mut c = Correlator::new(rules(), assets());
    let all = observations(lines);
    let severities: Vec<Severity> = (0..7)
        .map(|i| {
            run(&mut c, vec![all[i].clone()], i as f64 * 300.0 + 2.0);
            c.open_incidents().next().unwrap().severity
        })
        .collect();
    assert_eq!(
        severities,
        [Minor, Minor, Minor, Minor, Moderate, Moderate, Severe],
        "5 members: moderate; 30 minutes open: severe"
    );
    assert_eq!(c.open_incidents().count(), 1);
}

#[test]
fn a_root_takes_in_an_earlier_incident_it_explains() {
    let sag = l(0.0, "feeder/S-F1", "feeder.voltage", Moderate)
        .with(serde_json::json!({"substation": "way/S", "feeder": "F1"}));
    let zero = l(60.5, "feeder/S-F1", "feeder.voltage", Extreme)
        .with(serde_json::json!({"substation": "way/S", "feeder": "F1"}));
    let c = correlate(vec![sag, trip(60.0, &["F1"]), zero], 70.0);
    assert_eq!(
        summary(&c),
        "supply_disturbance moderate [merged into inc/test/2/0] Supply disturbance: feeder/S-F1 feeder.voltage
  feeder/S-F1 supplied-by-tripped-substation 0.95
power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  feeder/S-F1 supplied-by-tripped-substation 0.95
"
    );
    assert_eq!(text_of(&c, "feeder/S-F1"), "feeder/S-F1 reported abnormal voltage 1 min before substation way/S tripped; its substation is that substation on feeder F1");
    assert_eq!(
        c.open_incidents()
            .next()
            .unwrap()
            .member("feeder/S-F1")
            .unwrap()
            .reports,
        2
    );
}

fn outage() -> Correlator {
    correlate(
        vec![
            trip(0.0, &[]),
            l(20.0, "node/s1", "signal.dark", Severe),
            l(30.0, "node/c1", "camera.offline", Moderate),
            l(40.0, "node/s9", "signal.dark", Severe),
        ],
        60.0,
    )
}

#[test]
fn operators_merge_split_and_reassign_and_automatic_correlation_respects_it() {
    let mut c = outage();
    let ids: Vec<IncidentId> = c.open_incidents().map(|i| i.id.clone()).collect();
    let (power, s9) = (&ids[0], &ids[1]);
    let before = c.snapshot();

    let (new, changes) = c.split(power, "node/c1", "anna", T0 + 70_000).unwrap();
    assert!(changes.contains(&IncidentChange {
        id: new.clone(),
        kind: ChangeKind::Opened
    }));
    assert_eq!(c.incident(&new).unwrap().title, "Camera offline: camera node/c1");
    assert_eq!(
        text_of(&c, "node/c1"),
        format!("camera node/c1 was split out of {power} by anna")
    );
    c.assert_consistent();
    // The camera reports offline again: it stays where the operator put it.
    let mut again = observations(vec![l(90.0, "node/c1", "camera.offline", Moderate)]);
    again.iter_mut().for_each(|o| o.seq += 100);
    run(&mut c, again, 100.0);
    assert!(c.incident(power).unwrap().member("node/c1").is_none());
    assert_eq!(c.incident(&new).unwrap().member("node/c1").unwrap().reports, 2);

    c.reassign(power, "node/s1", s9, "anna", T0 + 110_000).unwrap();
    assert!(c.incident(s9).unwrap().member("node/s1").is_some());
    c.merge(power, s9, "ben", T0 + 120_000).unwrap();
    assert_eq!(
        c.incident(s9).unwrap().status,
        IncidentStatus::Merged { into: power.clone() }
    );
    assert_eq!(
        c.decisions().map(|d| d.operator.as_str()).collect::<Vec<_>>(),
        ["anna", "anna", "ben"]
    );
    c.assert_consistent();

    for _ in 0..3 {
        c.undo().unwrap();
        c.assert_consistent();
    }
    assert_eq!(c.undo().unwrap_err(), ManualError::NothingToUndo);
    // The camera's later observations stay; everything the operator did is taken back.
    let after = c.snapshot();
    assert_eq!(after.incidents.len(), before.incidents.len());
    assert!(after.pins.is_empty());
    let cam = after.incidents[0].member("node/c1").unwrap();
    assert_eq!((cam.rule.as_str(), cam.reports), ("supplied-by-tripped-substation", 2));

    assert!(matches!(
        c.merge(power, power, "x", 0),
        Err(ManualError::SameIncident(_))
    ));
    assert!(matches!(
        c.split(s9, "node/s9", "x", 0),
        Err(ManualError::LastMember { .. })
    ));
    assert!(matches!(
        c.split(power, "nope", "x", 0),
        Err(ManualError::UnknownMember { .. })
    ));
}

/// Entities the property tests draw from, with a problem kind and a clearing kind (the camera
/// twice, with two problem kinds, so that members change kind).
const POOL: [(&str, &str, &str); 9] = [
    ("way/S", "substation.trip", "substation.restored"),
    ("node/s1", "signal.dark", "signal.restored"),
    ("node/s2", "signal.dark", "signal.restored"),
    ("node/c1", "camera.offline", "camera.online"),
    ("node/c1", "camera.on_battery", "camera.online"),
    ("node/s9", "signal.dark", "signal.ok"),
    ("report/1", "report.outage", "report.outage"),
    ("report/2", "report.outage", "report.outage"),
    ("vehicle/1", "vehicle.delayed", "vehicle.position"),
];

fn random_tape() -> impl Strategy<Value = Vec<Observation>> {
    prop::collection::vec((0..POOL.len(), any::<bool>(), 0u32..240, 0u32..4000, -40i32..40), 1..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (e, problem, t, lag, jitter))| {
                let (entity, bad, good) = POOL[e];
                let (kind, sev) = if problem || bad == good {
                    (bad, Severe)
                } else {
                    (good, Normal)
                };
                let (lon, lat) = place(entity);
                let mut o = obs(
                    i as u64,
                    t as f64,
                    entity,
                    kind,
                    sev,
                    (lon + jitter as f64 * 1e-5, lat),
                    serde_json::json!({}),
                );
                // Arrival lags observation by up to four seconds, so seconds mix observed times.
                o.received_ms = o.observed_ms + lag as i64;
                o
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn order_within_a_second_does_not_change_the_incidents(tape in random_tape(), seed in any::<u64>()) {
        let mut a = Correlator::new(rules(), assets());
        run(&mut a, tape.clone(), 300.0);
        // The same observations, each second's batch in another order.
        let mut shuffled = tape;
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add((i as u64).wrapping_mul(1442695040888963407)) >> 33) as usize % n;
            shuffled.swap(i, j);
        }
        shuffled.sort_by_key(|o| o.received_ms.div_euclid(1000));
        let mut b = Correlator::new(rules(), assets());
        let mut i = 0;
        while i < shuffled.len() {
            let s = shuffled[i].received_ms.div_euclid(1000);
            let j = i + shuffled[i..].iter().take_while(|o| o.received_ms.div_euclid(1000) == s).count();
            b.ingest_second(s, &mut shuffled[i..j]);
            i = j;
        }
        b.ingest_second((T0 + 300_000) / 1000, &mut []);
        prop_assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn a_manual_decision_then_undo_restores_the_exact_state(tape in random_tape(), pick in any::<(usize, usize, usize, u8)>()) {
        let mut c = Correlator::new(rules(), assets());
        run(&mut c, tape, 300.0);
        let open: Vec<IncidentId> = c.open_incidents().map(|i| i.id.clone()).collect();
        prop_assume!(!open.is_empty());
        let before = c.snapshot();
        let a = open[pick.0 % open.len()].clone();
        let b = open[pick.1 % open.len()].clone();
        let members = c.incident(&a).unwrap().members.clone();
        let entity = members[pick.2 % members.len()].entity.clone();
        let done = match pick.3 % 3 {
            0 => c.merge(&a, &b, "op", 1).is_ok(),
            1 => c.split(&a, &entity, "op", 1).is_ok(),
            _ => c.reassign(&a, &entity, &b, "op", 1).is_ok(),
        };
        c.assert_consistent();
        if done {
            c.undo().unwrap();
        }
        c.assert_consistent();
        prop_assert_eq!(c.snapshot(), before);
    }
}

#[test]
fn incidents_are_numbered_in_the_order_they_open_and_a_split_takes_the_next_number() {
    let mut c = outage();
    let numbers: Vec<(String, String)> = c.incidents().map(|i| (i.number.clone(), i.title.clone())).collect();
    // T0 is in 2026; the default rules file names Helsinki's prefix.
    assert_eq!(
        numbers,
        [
            (
                "HEL-2026-000001".to_owned(),
                "Power outage: substation way/S".to_owned()
            ),
            ("HEL-2026-000002".to_owned(), "Signals dark: signal node/s9".to_owned()),
        ]
    );
    let power = c.open_incidents().next().unwrap().id.clone();
    let (new, _) = c.split(&power, "node/c1", "anna", T0 + 70_000).unwrap();
    assert_eq!(c.incident(&new).unwrap().number, "HEL-2026-000003");
    // A merge keeps both numbers: the one merged away is not given again.
    let s9 = c
        .open_incidents()
        .map(|i| i.id.clone())
        .find(|i| *i != power && *i != new)
        .unwrap();
    c.merge(&power, &s9, "anna", T0 + 80_000).unwrap();
    assert_eq!(c.incident(&s9).unwrap().number, "HEL-2026-000002");
    let mut later = observations(vec![l(100.0, "node/x7", "signal.dark", Severe).at(24.99, 60.19)]);
    later.iter_mut().for_each(|o| o.seq += 100);
    run(&mut c, later, 120.0);
    let last = c.incidents().map(|i| i.number.clone()).max().unwrap();
    assert_eq!(last, "HEL-2026-000004");
}

#[test]
fn numbers_start_again_with_the_year_and_carry_the_rules_prefix() {
    let text = include_str!("../../../../../fixtures/rules/default.toml")
        .replace("incident_prefix = \"HEL\"", "incident_prefix = \"ESP\"");
    let mut c = Correlator::new(Rules::parse(&text).unwrap(), assets());
    // 2026-12-31T23:59:30Z and a minute later, in 2027.
    let new_year = 1_798_761_600_000;
    let mut a = obs(
        1,
        0.0,
        "node/s9",
        "signal.dark",
        Severe,
        place("node/s9"),
        serde_json::Value::Null,
    );
    a.observed_ms = new_year - 30_000;
    a.received_ms = a.observed_ms;
    let mut b = obs(
        2,
        0.0,
        "node/s1",
        "signal.dark",
        Severe,
        (24.99, 60.19),
        serde_json::Value::Null,
    );
    b.observed_ms = new_year + 30_000;
    b.received_ms = b.observed_ms;
    c.ingest_second(a.received_ms / 1000, &mut [a]);
    c.ingest_second(b.received_ms / 1000, &mut [b]);
    let numbers: Vec<String> = c.incidents().map(|i| i.number.clone()).collect();
    assert_eq!(numbers.len(), 2);
    assert!(numbers.contains(&"ESP-2026-000001".to_owned()), "{numbers:?}");
    assert!(numbers.contains(&"ESP-2027-000001".to_owned()), "{numbers:?}");
    let refused = include_str!("../../../../../fixtures/rules/default.toml")
        .replace("incident_prefix = \"HEL\"", "incident_prefix = \"hel-1\"");
    let e = Rules::parse(&refused).unwrap_err();
    assert_eq!(e.field, "incident_prefix");
    assert!(e.line.is_some());
}

#[test]
fn an_operators_call_opens_an_incident_of_its_type_that_observations_join() {
    // A caller reports a tree across the tracks 166 m east of a dark signal (outside the dark
    // junction's reach); a tram delayed beside it joins the call, not the outage.
    let call = (24.9440, 60.1700);
    let lines = vec![
        trip(0.0, &[]),
        l(20.0, "node/s1", "signal.dark", Severe),
        l(60.0, "call/1", "call.obstruction", Severe)
            .at(call.0, call.1)
            .with(serde_json::json!({"name": "Tree across the tracks"})),
        l(90.0, "vehicle/t1", "vehicle.delayed", Minor).at(call.0 + 0.0002, call.1),
        l(95.0, "call/2", "call.no_such_type", Severe).at(call.0, call.1),
    ];
    let c = correlate(lines, 120.0);
    assert_eq!(
        summary(&c),
        "power_outage extreme [open] Power outage: substation way/S
  way/S seed 1
  node/s1 supplied-by-tripped-substation 0.95
obstruction severe [open] Obstruction: Tree across the tracks
  call/1 seed 1
  vehicle/t1 delayed-at-reported-obstruction 0.78
",
        "a call of a type the rules do not have opens nothing"
    );
    assert_eq!(
        text_of(&c, "call/1"),
        "call/1 was reported to an operator by phone or radio (obstruction); it opened this incident and is its probable root cause"
    );
}

#[test]
fn a_call_opens_its_own_incident_even_where_a_rule_would_group_it() {
    // Rules that would fold a call into an open incident nearby do not: the operator asked for
    // a new incident, and merges it if it is the same one.
    let text = format!(
        "{}\n[[rules]]\nid = \"calls-near-outages\"\ntype = \"spatial\"\nkinds = [\"call.*\"]\nnear = [\"substation.trip\"]\nradius_m = 500\nwindow_s = 600\nconfidence = 0.9\n",
        include_str!("../../../../../fixtures/rules/default.toml")
    );
    let mut c = Correlator::new(Rules::parse(&text).unwrap(), assets());
    let lines = vec![
        trip(0.0, &[]),
        l(30.0, "call/1", "call.power_outage", Severe).with(serde_json::json!({"name": "No power on Kalevankatu"})),
    ];
    run(&mut c, observations(lines), 60.0);
    let titles: Vec<_> = c.open_incidents().map(|i| i.title.clone()).collect();
    assert_eq!(
        titles,
        [
            "Power outage: substation way/S",
            "Power outage: No power on Kalevankatu"
        ]
    );
}

/// The default rules (whose zone rules watch units entering and leaving a "station" zone)
/// with a rule for intrusion alarms inside it.
fn zone_correlator() -> Correlator {
    let text = format!(
        "{}\n[[types]]\nid = \"station_alarm\"\ntitle = \"Alarm in {{name}}\"\nseeds = [\"zone.alarm\"]\n\
         [[rules]]\nid = \"alarms-inside\"\ntype = \"inside\"\nzones = [\"station\"]\nkinds = [\"alarm.*\"]\nopens = \"station_alarm\"\n",
        include_str!("../../../../../fixtures/rules/default.toml")
    );
    let zones = crate::zones::Zones::parse_geojson(
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"station","properties":{"name":"Railway station"},
           "geometry":{"type":"Polygon","coordinates":[[[24.9500,60.1700],[24.9600,60.1700],[24.9600,60.1750],[24.9500,60.1750],[24.9500,60.1700]]]}}]}"#,
    )
    .unwrap();
    let rules = Rules::parse(&text).unwrap();
    rules.check_zones(&zones).unwrap();
    Correlator::new(rules, assets()).with_zones(zones)
}

#[test]
fn zone_rules_open_an_incident_when_units_enter_leave_or_alarms_go_off_inside() {
    let (inside, outside) = ((24.955, 60.172), (24.945, 60.172));
    let mut c = zone_correlator();
    let lines = vec![
        // Seen outside, then inside: it entered. Another unit first seen inside did not.
        l(0.0, "unit/1", "unit.position", Normal).at(outside.0, outside.1),
        l(5.0, "unit/3", "unit.position", Normal).at(inside.0, inside.1),
        l(10.0, "unit/1", "unit.position", Normal).at(inside.0, inside.1),
        l(20.0, "unit/2", "unit.position", Normal).at(outside.0, outside.1),
        l(30.0, "unit/2", "unit.position", Normal).at(inside.0, inside.1),
        // unit/3 leaves.
        l(40.0, "unit/3", "unit.position", Normal).at(outside.0, outside.1),
        // An alarm inside the zone opens the station's alarm incident; one outside does not.
        l(50.0, "alarm/a", "alarm.intrusion", Severe).at(inside.0, inside.1),
        l(55.0, "alarm/b", "alarm.intrusion", Severe).at(inside.0 + 0.001, inside.1),
        l(60.0, "alarm/c", "alarm.intrusion", Severe).at(outside.0, outside.1),
    ];
    run(&mut c, observations(lines), 70.0);
    assert_eq!(
        summary(&c),
        "unit_in_zone minor [open] Unit at Railway station
  unit/1 unit-enters-station 1
  unit/2 unit-enters-station 1
  unit/3 unit-leaves-station 1
station_alarm severe [open] Alarm in Railway station
  alarm/a alarms-inside 1
  alarm/b alarms-inside 1
security_alarm severe [open] Intrusion alarm: alarm/c alarm.intrusion
  alarm/c seed 1
"
    );
    assert_eq!(
        text_of(&c, "unit/1"),
        "unit/1 entered zone Railway station (reported unit.position)"
    );
    assert_eq!(
        text_of(&c, "unit/3"),
        "unit/3 left zone Railway station (reported unit.position)"
    );
    // A unit's next normal position does not clear its zone event: nothing clears an event.
    let mut more = observations(vec![l(80.0, "unit/1", "unit.position", Normal).at(inside.0, inside.1)]);
    for o in &mut more {
        o.seq = 100;
    }
    run(&mut c, more, 90.0);
    assert!(!c.open_incidents().next().unwrap().member("unit/1").unwrap().cleared);
}

#[test]
fn a_zone_rule_naming_a_zone_the_file_lacks_is_refused_with_the_rule() {
    let text = format!(
        "{}\n[[types]]\nid = \"z\"\ntitle = \"Z\"\nseeds = [\"zone.z\"]\n[[rules]]\nid = \"in-tunnel\"\ntype = \"inside\"\nzones = [\"tunnel\"]\nkinds = [\"*\"]\nopens = \"z\"\n",
        include_str!("../../../../../fixtures/rules/default.toml")
    );
    let rules = Rules::parse(&text).unwrap();
    let other = crate::zones::Zones::parse_geojson(
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"station","properties":{"name":"Station"},
           "geometry":{"type":"Polygon","coordinates":[[[24.95,60.17],[24.96,60.17],[24.96,60.175],[24.95,60.17]]]}}]}"#,
    )
    .unwrap();
    let e = rules.check_zones(&other).unwrap_err();
    assert!(e.contains("in-tunnel") && e.contains("\"tunnel\""), "{e}");
    // Without a zones file the rule watches nothing, so one rules file serves both.
    assert!(rules.check_zones(&crate::zones::Zones::default()).is_ok());
    let bad = text.replace("opens = \"z\"", "opens = \"nope\"");
    let e = Rules::parse(&bad).unwrap_err().to_string();
    assert!(e.contains("opens") && e.contains("nope"), "{e}");
}
