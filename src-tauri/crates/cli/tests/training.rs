//! Exercises on the demo storm: scripted trainees driven through the engine API, scored against
//! the scenario's objectives by `cityops score`, and `cityops check` on a broken scenario.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cityops_engine::dto::{ActionParams, ActionRequestDto, AlertSeverity, LifecycleStatus, OperatorRole};

fn demo() -> PathBuf {
    common::repo().join("fixtures/scenarios/helsinki-storm")
}

/// What a scripted trainee does, in seconds after the outage opened (`None`: not at all).
#[derive(Clone, Copy)]
struct Script {
    acknowledge: Option<i64>,
    crew: Option<(i64, &'static str)>,
    alert: Option<i64>,
    /// Resolve, then send another crew this many seconds later.
    resolve_then_dispatch: Option<(i64, i64)>,
}

/// Runs one exercise of the demo in `db` (a new run) with a trainee following `script`.
fn exercise(db: &Path, script: Script) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (engine, diffs) =
            common::demo_played_to_end(db, common::repo().join("fixtures/backends/helsinki.toml")).await;
        let outage = diffs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| d.incidents.as_ref())
            .flat_map(|i| i.upserts.clone())
            .find(|e| e.incident_type == "power_outage")
            .unwrap();
        let (id, opened) = (outage.id.clone(), outage.opened_ms);
        cityops_store::Store::open(db)
            .unwrap()
            .roster_set("Trainee", "supervisor", Some("8642"), "test", "system", 0)
            .unwrap();
        engine
            .sign_in("Trainee".into(), OperatorRole::Supervisor, Some("8642".into()))
            .await
            .unwrap();
        // The trainee's deeds in time order, each at its scenario moment.
        let mut deeds: Vec<(i64, u8)> = Vec::new();
        deeds.extend(script.acknowledge.map(|t| (t, 0)));
        deeds.extend(script.crew.map(|(t, _)| (t, 1)));
        deeds.extend(script.alert.map(|t| (t, 2)));
        if let Some((t, later)) = script.resolve_then_dispatch {
            deeds.push((t, 3));
            deeds.push((t + later, 4));
        }
        deeds.sort();
        let request = |params: ActionParams| ActionRequestDto {
            backend: String::new(),
            incident: Some(id.clone()),
            at: None,
            params,
        };
        for (after_s, deed) in deeds {
            engine.seek(opened + after_s * 1000).unwrap();
            match deed {
                0 => engine
                    .incident_transition(id.clone(), LifecycleStatus::Acknowledged)
                    .await
                    .unwrap(),
                1 | 4 => {
                    let code = if deed == 1 {
                        script.crew.unwrap().1
                    } else {
                        "utility-crew"
                    };
                    let mut r = request(ActionParams::ServiceRequest {
                        service_code: code.into(),
                        description: "Substation tripped".into(),
                    });
                    r.backend = "city-works".into();
                    let p = engine.preview_action(r).await.unwrap();
                    engine.confirm_action(p.token).await.unwrap();
                }
                2 => {
                    let mut r = request(ActionParams::PublicAlert {
                        headline: "Power cut in Kluuvi".into(),
                        description: "Traffic signals are dark.".into(),
                        instruction: "Treat dark signals as stop signs.".into(),
                        severity: AlertSeverity::Severe,
                        expires_minutes: 60,
                    });
                    r.backend = "alert-hub".into();
                    let p = engine.preview_action(r).await.unwrap();
                    assert!(p.body.contains("<status>Exercise</status>"));
                    engine.arm_action(p.token.clone()).await.unwrap();
                    engine.confirm_action(p.token).await.unwrap();
                }
                3 => {
                    // Resolving needs the incident acknowledged (and dispatched) first.
                    for to in [
                        LifecycleStatus::Acknowledged,
                        LifecycleStatus::Dispatched,
                        LifecycleStatus::Resolved,
                    ] {
                        let _ = engine.incident_transition(id.clone(), to).await;
                    }
                }
                _ => unreachable!(),
            }
        }
    });
}

fn score(db: &Path, run: i64) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("score")
        .arg(demo())
        .arg("--db")
        .arg(db)
        .args(["--run", &run.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn outcomes(score: &serde_json::Value) -> Vec<(String, String, f64)> {
    score["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["outcome"].as_str().unwrap().to_owned(),
                o["points"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn row(id: &str, outcome: &str, points: f64) -> (String, String, f64) {
    (id.to_owned(), outcome.to_owned(), points)
}

#[test]
fn scripted_trainees_score_as_the_objectives_say() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("exercises.db");
    let perfect = Script {
        acknowledge: Some(30),
        crew: Some((120, "utility-crew")),
        alert: Some(300),
        resolve_then_dispatch: None,
    };
    let late_and_wrong = Script {
        acknowledge: Some(90),
        crew: Some((100, "public-works")),
        alert: Some(700),
        resolve_then_dispatch: None,
    };
    let absent = Script {
        acknowledge: None,
        crew: None,
        alert: None,
        resolve_then_dispatch: None,
    };
    let reckless = Script {
        acknowledge: Some(20),
        crew: None,
        alert: None,
        resolve_then_dispatch: Some((200, 60)),
    };
    for script in [perfect, late_and_wrong, absent, reckless] {
        exercise(&db, script);
    }
    let s = score(&db, 1);
    assert_eq!(
        outcomes(&s),
        [
            row("ack-outage", "met", 1.0),
            row("utility-crew", "met", 1.0),
            row("public-alert", "met", 1.0),
            row("no-late-dispatch", "met", 1.0)
        ],
        "{s:#}"
    );
    assert_eq!((s["points"].as_f64(), s["maxPoints"].as_f64()), (Some(4.0), Some(4.0)));
    assert_eq!(
        s["objectives"][0]["afterS"].as_f64(),
        Some(30.0),
        "measured in scenario time"
    );
    assert_eq!(
        s["objectives"][0]["detail"],
        "acknowledged by Trainee 30 s after the incident opened; the limit was 60 s"
    );

    let s = score(&db, 2);
    assert_eq!(
        outcomes(&s),
        [
            row("ack-outage", "late", 0.5),
            row("utility-crew", "missed", 0.0),
            row("public-alert", "late", 0.5),
            row("no-late-dispatch", "met", 1.0)
        ],
        "{s:#}"
    );
    assert_eq!(s["points"].as_f64(), Some(2.0));

    let s = score(&db, 3);
    assert_eq!(
        outcomes(&s),
        [
            row("ack-outage", "missed", 0.0),
            row("utility-crew", "missed", 0.0),
            row("public-alert", "missed", 0.0),
            row("no-late-dispatch", "met", 1.0)
        ],
        "{s:#}"
    );

    let s = score(&db, 4);
    assert_eq!(
        outcomes(&s),
        [
            row("ack-outage", "met", 1.0),
            row("utility-crew", "met", 1.0),
            row("public-alert", "missed", 0.0),
            row("no-late-dispatch", "violated", 0.0)
        ],
        "{s:#}"
    );
    assert!(
        s["objectives"][3]["detail"]
            .as_str()
            .unwrap()
            .contains("60 s after the incident was resolved"),
        "{s:#}"
    );

    // The after-action report of the first trainee, side by side with the second.
    let out = dir.path().join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .args(["report", "--db"])
        .arg(&db)
        .args(["--run", "1", "--versus", "2", "--scenario"])
        .arg(demo())
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    check_report(&std::fs::read_to_string(&out).unwrap(), &db);
}

/// The report is well-formed (parsed strictly as XML, every SVG with it), scores both runs,
/// lists the first trainee's deeds, and its charts' totals are the store's counts.
/// A copy of the demo whose objectives add `extra` (TOML), its rules named by absolute path.
fn demo_with_objective(dir: &Path, extra: &str) -> PathBuf {
    let copy = dir.join("scenario");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["tape.ndjson", "assets.geojson", "zones.geojson"] {
        std::fs::copy(demo().join(f), copy.join(f)).unwrap();
    }
    let rules = common::repo().join("fixtures/rules/default.toml");
    let manifest = std::fs::read_to_string(demo().join("scenario.toml")).unwrap().replace(
        "\"../../rules/default.toml\"",
        &format!("{:?}", rules.to_str().unwrap()),
    );
    std::fs::write(copy.join("scenario.toml"), format!("{manifest}\n{extra}")).unwrap();
    copy
}

#[test]
fn an_outage_nobody_acknowledges_in_time_breaks_never_escalate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calm.db");
    let scenario = demo_with_objective(
        dir.path(),
        "[[objectives]]\nid = \"outage-calm\"\ntitle = \"Let the outage not escalate\"\ntask = \"never_escalate\"\nincident_type = \"power_outage\"\n",
    );
    let prompt = Script {
        acknowledge: Some(30),
        crew: None,
        alert: None,
        resolve_then_dispatch: None,
    };
    let absent = Script {
        acknowledge: None,
        ..prompt
    };
    exercise(&db, prompt);
    exercise(&db, absent);
    let calm = |run: i64| {
        let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
            .arg("score")
            .arg(&scenario)
            .arg("--db")
            .arg(&db)
            .args(["--run", &run.to_string(), "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        s["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "outage-calm")
            .cloned()
            .unwrap()
    };
    let kept = calm(1);
    assert_eq!(
        (kept["outcome"].as_str(), kept["points"].as_f64()),
        (Some("met"), Some(1.0))
    );
    let broken = calm(2);
    assert_eq!(
        (broken["outcome"].as_str(), broken["points"].as_f64()),
        (Some("violated"), Some(0.0))
    );
    assert_eq!(
        broken["detail"],
        "HEL-2026-000004 escalated 60 s after it opened: nobody acknowledged it in time"
    );
}

fn check_report(html: &str, db: &Path) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(html);
    let (mut svgs, mut figures, mut depth) = (0, Vec::new(), 0i32);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                match e.name().as_ref() {
                    "svg" => svgs += 1,
                    "figure" => {
                        let attr = |n: &str| {
                            e.try_get_attribute(n)
                                .unwrap()
                                .unwrap()
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        };
                        let totals: serde_json::Value = serde_json::from_str(&attr("data-totals")).unwrap();
                        figures.push((attr("data-chart"), totals));
                    }
                    _ => {}
                }
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("the report is not well-formed at byte {}: {e}", reader.error_position()),
        }
    }
    assert_eq!(depth, 0);
    assert_eq!(svgs, 5, "one SVG per chart");
    let charts: Vec<&str> = figures.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        charts,
        [
            "observations-per-layer",
            "active-incidents",
            "time-to-acknowledge",
            "time-to-dispatch",
            "feed-health"
        ]
    );
    let store = cityops_store::Store::open(db).unwrap();
    let counts = store.counts(1).unwrap();
    for (layer, n) in counts.per_layer {
        let drawn = figures[0].1[layer.as_str()].as_f64().unwrap_or(0.0);
        assert_eq!(
            drawn, n as f64,
            "{layer:?}: the chart shows {drawn}, the store holds {n}"
        );
    }
    assert_eq!(
        figures[1].1["incidents"].as_f64(),
        Some(store.stored_incidents(1).unwrap().len() as f64)
    );
    assert_eq!(
        figures[2].1["incidents"].as_f64(),
        Some(1.0),
        "one incident acknowledged in run 1"
    );
    assert_eq!(
        figures[3].1["incidents"].as_f64(),
        Some(1.0),
        "one incident with actions in run 1"
    );
    assert!(
        html.contains("run 1: <strong>4 of 4 points</strong></span>; <span data-column=\"run 2\" data-points=\"2\">run 2: <strong>2 of 4 points</strong>"),
        "{html:.2000}"
    );
    assert!(html.contains(
        "data-objective=\"ack-outage\"><td>Acknowledge the substation outage within 60 s</td><td class=\"met\" data-column=\"run 1\""
    ));
    assert!(
        html.contains("→ acknowledged by Trainee"),
        "the timeline lists the transition"
    );
    // Incidents are named by their numbers, as the operators saw them; ids stay internal.
    let outage = store
        .stored_incidents(1)
        .unwrap()
        .into_iter()
        .find(|i| i.incident_type == "power_outage")
        .unwrap();
    assert!(outage.number.starts_with("HEL-2026-"), "{}", outage.number);
    assert!(
        html.contains(&format!("{} → acknowledged by Trainee", outage.number)),
        "the transition names the outage by its number"
    );
    assert!(html.contains(&format!("{} Power outage", outage.number)));
    assert!(!html.contains("inc/"), "an internal id in the report");
}

#[test]
fn check_reports_every_problem_with_file_and_line() {
    let ok = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("check")
        .arg(demo())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("storm");
    std::fs::create_dir_all(&broken).unwrap();
    let manifest = std::fs::read_to_string(demo().join("scenario.toml")).unwrap();
    let manifest = manifest
        .replace(
            "assets = \"assets.geojson\"",
            &format!("assets = \"{}\"", demo().join("assets.geojson").display()),
        )
        .replace(
            "rules = \"../../rules/default.toml\"",
            &format!(
                "rules = \"{}\"",
                common::repo().join("fixtures/rules/default.toml").display()
            ),
        )
        .replace(
            "incident_type = \"power_outage\"\nwithin_s = 600",
            "incident_type = \"volcano\"\nwithin_s = 600",
        )
        .replace("asset_type = \"camera\"", "asset_type = \"kiosk\"");
    std::fs::write(broken.join("scenario.toml"), &manifest).unwrap();
    let mut tape = std::fs::read_to_string(demo().join("tape.ndjson")).unwrap();
    let lines = tape.lines().count();
    tape.push_str("{\"t\": \"not a time\"}\n");
    tape.push_str(
        &tape
            .lines()
            .next()
            .unwrap()
            .replace("\"feed\":\"", "\"feed\":\"ghost-")
            .replace("\"feed\": \"", "\"feed\": \"ghost-"),
    );
    tape.push('\n');
    std::fs::write(broken.join("tape.ndjson"), &tape).unwrap();
    // A zone that is a point, not an area.
    std::fs::write(
        broken.join("zones.geojson"),
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"station","properties":{"name":"Station"},"geometry":{"type":"Point","coordinates":[24.94,60.17]}}]}"#,
    )
    .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_cityops"))
        .arg("check")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = text.lines().collect();
    assert_eq!(problems.len(), 5, "{text}");
    let tape_path = broken.join("tape.ndjson").display().to_string();
    assert!(
        problems[0].starts_with(&format!("{tape_path}:{}: ", lines + 1)),
        "{text}"
    );
    assert!(
        problems[1].starts_with(&format!("{tape_path}:{}: feed \"ghost-", lines + 2)),
        "{text}"
    );
    let injects_line = manifest
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[injects]]")
        .nth(3)
        .unwrap()
        .0
        + 1;
    assert_eq!(
        problems[2],
        format!(
            "{}: features[0].geometry: a zone is a Polygon or a MultiPolygon",
            broken.join("zones.geojson").display()
        )
    );
    assert!(
        problems[3].starts_with(&format!(
            "{}:{injects_line}: injects[3] (camera-offline): the scenario has no asset of type \"kiosk\"",
            broken.join("scenario.toml").display()
        )),
        "{text}"
    );
    let objectives_line = manifest
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[objectives]]")
        .nth(2)
        .unwrap()
        .0
        + 1;
    assert!(
        problems[4].starts_with(&format!(
            "{}:{objectives_line}: objectives[2] (public-alert): incident_type \"volcano\"",
            broken.join("scenario.toml").display()
        )),
        "{text}"
    );
}
