//! The demo storm through the correlator: the tape decoded exactly as the pipeline decodes it,
//! fed one arrival second at a time, with the scenario's asset file and the default rules.
//!
//! The incident summary is compared with `snapshots/correlation.txt`; run with
//! `UPDATE_SNAPSHOTS=1` to rewrite it after an intended change, and review the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cityops_core::assets::AssetIndex;
use cityops_core::correlate::{Correlator, Incident};
use cityops_core::model::Observation;
use cityops_core::rules::Rules;
use cityops_engine::headless;
use cityops_engine::scenario::Scenario;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Every observation of the demo tape, in arrival order.
fn demo_observations(scenario_dir: &Path) -> Vec<Observation> {
    // Through the real pipeline and store, as the app and the CLI ingest it.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut replay = headless::open_replay(scenario_dir, &dir.path().join("demo.db")).expect("the demo loads");
    replay.run_to_end().expect("the demo replays");
    let mut out = Vec::new();
    replay
        .pipeline()
        .store()
        .for_each(replay.pipeline().run(), |o| out.push(o.clone()))
        .expect("the store reads back");
    out
}

/// Runs the correlator second by second over the whole demo.
fn correlate_demo() -> (Correlator, Vec<Observation>) {
    let dir = root().join("fixtures/scenarios/helsinki-storm");
    let scenario = Scenario::load(&dir).unwrap();
    let assets_file = scenario.manifest.assets.clone().expect("the demo has assets");
    let assets = AssetIndex::parse_geojson(&std::fs::read_to_string(dir.join(assets_file)).unwrap()).unwrap();
    let rules = Rules::parse(&std::fs::read_to_string(root().join("fixtures/rules/default.toml")).unwrap()).unwrap();
    let mut c = Correlator::new(rules, assets);
    let all = demo_observations(&dir);
    let mut batch = Vec::new();
    let mut second = None;
    for o in all.iter().cloned() {
        let s = o.received_ms.div_euclid(1000);
        if second.is_some_and(|x| x != s) {
            c.ingest_second(second.unwrap(), &mut batch);
            batch.clear();
        }
        second = Some(s);
        batch.push(o);
    }
    c.ingest_second(second.unwrap(), &mut batch);
    c.ingest_second(scenario.end_ms().div_euclid(1000), &mut []);
    (c, all)
}

fn entities_of(all: &[Observation], kind: &str) -> BTreeSet<String> {
    all.iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.entity.clone())
        .collect()
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The incidents and every explanation, one line each.
fn summary(c: &Correlator) -> String {
    let mut out = String::new();
    for inc in c.incidents() {
        let status = format!("{:?}", inc.status).to_lowercase();
        out += &format!(
            "{} {} {} severity={} opened={} cleared={} root={} root_cleared={} members={}\n  title: {}\n",
            inc.id,
            inc.incident_type,
            status,
            inc.severity.as_str(),
            time(inc.opened_ms),
            inc.cleared_ms.map(time).unwrap_or_else(|| "-".into()),
            inc.root_cause.as_deref().unwrap_or("-"),
            inc.root_cleared,
            inc.members.len(),
            inc.title,
        );
        if !inc.is_open() && !matches!(inc.status, cityops_core::correlate::IncidentStatus::Cleared) {
            continue;
        }
        for m in &inc.members {
            out += &format!(
                "  - {} {} [{} {:.2}{}{}] {}\n",
                m.entity,
                m.kind,
                m.rule,
                m.explanation.confidence,
                if m.cleared { " cleared" } else { "" },
                m.duplicate_of
                    .as_ref()
                    .map(|d| format!(" dup of {d}"))
                    .unwrap_or_default(),
                m.explanation.text
            );
        }
    }
    out
}

fn power_outages(c: &Correlator) -> Vec<&Incident> {
    c.incidents().filter(|i| i.incident_type == "power_outage").collect()
}

#[test]
fn the_storm_is_one_power_outage_with_its_dependents_explained() {
    let (c, all) = correlate_demo();
    let outages = power_outages(&c);
    assert_eq!(outages.len(), 1, "exactly one power outage:\n{}", summary(&c));
    let outage = outages[0];
    let root = outage.root().unwrap();
    assert_eq!(
        (root.entity.as_str(), root.kind.as_str()),
        ("way/644615094", "substation.trip")
    );
    let members: BTreeSet<&str> = outage.members.iter().map(|m| m.entity.as_str()).collect();

    // Every dark signal and every camera that lost power is a dependent, explained by supply.
    for kind in ["signal.dark", "camera.offline", "camera.on_battery"] {
        let want = entities_of(&all, kind);
        assert!(!want.is_empty());
        for e in &want {
            assert!(members.contains(e.as_str()), "{kind} {e} is not in the outage");
            let m = outage.member(e).unwrap();
            assert_eq!(m.rule, "supplied-by-tripped-substation", "{e}");
            assert_eq!(
                m.explanation.dependency_path.last().map(String::as_str),
                Some("way/644615094")
            );
            assert!(
                m.explanation.text.contains("it is fed by that substation"),
                "{}",
                m.explanation.text
            );
        }
    }
    // Delayed trams and buses in the service area are grouped at the dark junctions.
    let delayed: Vec<_> = outage
        .members
        .iter()
        .filter(|m| m.rule == "delayed-at-dark-junction")
        .collect();
    assert!(delayed.len() >= 10, "only {} delayed vehicles grouped", delayed.len());
    assert!(delayed.iter().any(|m| m.entity.starts_with("vehicle/tram-")));
    // The intrusion alarm at the substation door is linked through its site.
    let alarm = outage.member("alarm/way-644615094-door").expect("the alarm is linked");
    assert_eq!(alarm.rule, "alarm-at-tripped-site");
    assert!(alarm.cleared, "the alarm was cleared at 21:31");
    // Every citizen report near the outage is grouped or linked, the hostile one included.
    for e in entities_of(&all, "report.outage") {
        assert!(members.contains(e.as_str()), "report {e} is not in the outage");
    }
    // Vehicle positions, normal readings and the storm warning are not members.
    assert!(outage
        .members
        .iter()
        .all(|m| m.kind != "vehicle.position" && !m.kind.starts_with("weather.")));
    let warnings: Vec<_> = c.incidents().filter(|i| i.incident_type == "weather_warning").collect();
    assert_eq!(warnings.len(), 1, "the storm warning is an incident of its own");
    assert_eq!(warnings[0].members.len(), 1);
    // The substation was restored; what did not recover by the end stays visible in it.
    assert!(outage.root_cleared);

    let text = summary(&c);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/correlation.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        text,
        want,
        "the incident summary changed; rerun with UPDATE_SNAPSHOTS=1 and review {}",
        path.display()
    );
}

#[test]
fn the_demo_gives_the_same_incidents_in_any_order_within_a_second() {
    let (a, all) = correlate_demo();
    // Reverse every second's batch: the canonical sort must undo it.
    let dir = root().join("fixtures/scenarios/helsinki-storm");
    let scenario = Scenario::load(&dir).unwrap();
    let mut b = Correlator::new(a.rules().clone(), a.assets().clone());
    let mut seconds: std::collections::BTreeMap<i64, Vec<Observation>> = Default::default();
    for o in all {
        seconds.entry(o.received_ms.div_euclid(1000)).or_default().push(o);
    }
    for (s, mut batch) in seconds {
        batch.reverse();
        b.ingest_second(s, &mut batch);
    }
    b.ingest_second(scenario.end_ms().div_euclid(1000), &mut []);
    assert_eq!(a.snapshot(), b.snapshot());
}
