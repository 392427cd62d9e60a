//! The incident workflow at engine level: the demo storm replayed through the real pipeline,
//! store and replay clock into the incident desk; lifecycle, persistence across a restart, the
//! audit chain, and determinism across speeds and seeks.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_core::correlate::IncidentStatus;
use cityops_engine::dto::{ApiError, ApiErrorCode, LifecycleStatus, MapDiffDto, OperatorRole};
use cityops_engine::error::EngineError;
use cityops_engine::headless;
use cityops_engine::incidents::DecisionOp;
use cityops_engine::replay::Replay;
use cityops_store::Store;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/scenarios/helsinki-storm")
}

/// Scenario time `hh:mm` in Helsinki on the demo's night (UTC+2).
fn at(replay: &Replay, hhmm: &str) -> i64 {
    let (h, m) = hhmm.split_once(':').unwrap();
    let (h, m): (i64, i64) = (h.parse().unwrap(), m.parse().unwrap());
    replay.clock().start_ms + ((h - 21) * 60 + m) * 60_000
}

/// The after-action report `cityops report` writes of a database, with more arguments.
fn report_of(db: &std::path::Path, args: &[&str]) -> String {
    let html = db.with_extension("report.html");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cityops"))
        .args(["report", "--db", db.to_str().unwrap(), "--out", html.to_str().unwrap()])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(&html).unwrap()
}

fn outage_id(replay: &Replay) -> String {
    let desk = replay.desk().expect("the demo names a rules file");
    let outages: Vec<_> = desk
        .correlator()
        .incidents()
        .filter(|i| i.incident_type == "power_outage")
        .collect();
    assert_eq!(outages.len(), 1);
    outages[0].id.0.to_string()
}

fn code(e: &EngineError) -> ApiErrorCode {
    ApiError::from(e).code
}

#[test]
fn the_demo_gives_the_same_incidents_at_every_speed_and_after_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let max = headless::replay_max(&demo(), &dir.path().join("max.db")).unwrap();
    assert_eq!(max.incidents, 5, "{max:?}");
    assert_eq!(max.incident_set_hash.len(), 64);

    // Paced replays tick every 100 ms of (paused) wall time, as the app does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    for factor in [1.0, 10.0, 60.0] {
        let paced = rt
            .block_on(headless::replay_paced(
                &demo(),
                &dir.path().join(format!("x{factor}.db")),
                factor,
            ))
            .unwrap();
        assert_eq!(
            (paced.incidents, &paced.incident_set_hash),
            (max.incidents, &max.incident_set_hash),
            "at {factor}x"
        );
    }

    // Seeking forward past the frontier, back, and forward again within it: at each stop the
    // incidents equal those of a replay that simply played to that time.
    let mut seeker = headless::open_replay(&demo(), &dir.path().join("seek.db")).unwrap();
    for stop in ["21:30", "21:13", "21:40", "21:20", "21:12", "21:55"] {
        let t = at(&seeker, stop);
        seeker.seek(t).unwrap();
        let mut played =
            headless::open_replay(&demo(), &dir.path().join(format!("p{}.db", stop.replace(':', "")))).unwrap();
        let mut now = played.now_ms();
        while now < t {
            now = (now + 7_919).min(t);
            played.advance_to(now).unwrap();
        }
        assert_eq!(
            seeker.desk().unwrap().correlator().snapshot(),
            played.desk().unwrap().correlator().snapshot(),
            "incidents at {stop}"
        );
    }
    seeker.seek(i64::MAX).unwrap();
    assert_eq!(seeker.desk().unwrap().incident_set_hash(), max.incident_set_hash);

    // The stored incidents of the seeking run are the final ones, not left-overs of earlier
    // stops, once the seek's write-behind ran (the engine runs it when the clock rests, and a
    // flush before anything reads the store).
    seeker.flush().unwrap();
    let store = Store::open(&dir.path().join("seek.db")).unwrap();
    let stored = store.stored_incidents(store.latest_run().unwrap().unwrap()).unwrap();
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[0].incident_type, "power_outage", "the most severe first");
    assert_eq!(
        stored[0].members.len(),
        seeker
            .desk()
            .unwrap()
            .correlator()
            .incident(&cityops_core::correlate::IncidentId::from(stored[0].id.as_str()))
            .unwrap()
            .members
            .len()
    );
}

#[test]
fn lifecycle_transitions_are_stamped_checked_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("life.db");
    let mut replay = headless::open_replay(&demo(), &db).unwrap();
    replay.run_to_end().unwrap();
    let id = outage_id(&replay);
    let now = replay.now_ms();
    let run = replay.pipeline().run();
    let (desk, store) = replay.desk_mut().unwrap();

    let e = desk
        .transition(store, &id, LifecycleStatus::Acknowledged, 1, now)
        .unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::Forbidden, "nobody is signed in: {e}");
    desk.sign_in(store, "Aino Virtanen", OperatorRole::Operator, Some("4711"), 10)
        .unwrap();
    desk.transition(store, &id, LifecycleStatus::Acknowledged, 20, now)
        .unwrap();
    let e = desk.transition(store, &id, LifecycleStatus::New, 21, now).unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::InvalidInput, "{e}");
    desk.transition(store, &id, LifecycleStatus::Dispatched, 30, now)
        .unwrap();
    desk.transition(store, &id, LifecycleStatus::Resolved, 40, now).unwrap();
    let e = desk
        .transition(store, &id, LifecycleStatus::Closed, 50, now)
        .unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::Forbidden, "an operator may not close: {e}");
    // A PIN, once set, is asked for again.
    let e = desk
        .sign_in(store, "Aino Virtanen", OperatorRole::Operator, Some("0000"), 55)
        .unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::Forbidden);
    // An operator cannot hand out roles, nor read the roster.
    assert_eq!(
        code(
            &desk
                .assign_role(store, "Eve", OperatorRole::Supervisor, Some("1111"), 56)
                .unwrap_err()
        ),
        ApiErrorCode::Forbidden
    );
    assert_eq!(code(&desk.roster(store).unwrap_err()), ApiErrorCode::Forbidden);
    // Claiming a role is not having it: the roster gives it, with a PIN.
    let e = desk
        .sign_in(store, "Mikko Supervisor", OperatorRole::Supervisor, None, 60)
        .unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::Forbidden, "{e}");
    store
        .roster_set("Mikko Supervisor", "supervisor", Some("9753"), "cli", "system", 60)
        .unwrap();
    desk.sign_in(store, "Mikko Supervisor", OperatorRole::Supervisor, Some("9753"), 60)
        .unwrap();
    // A supervisor names a trainer in the app; the role needs a PIN.
    assert!(desk.assign_role(store, "Eve", OperatorRole::Trainer, None, 61).is_err());
    desk.assign_role(store, "Eve", OperatorRole::Trainer, Some("1111"), 61)
        .unwrap();
    let roster = desk.roster(store).unwrap();
    assert!(
        roster
            .iter()
            .any(|e| e.name == "Eve" && e.role == OperatorRole::Trainer && e.has_pin),
        "{roster:?}"
    );
    desk.transition(store, &id, LifecycleStatus::Closed, 70, now).unwrap();
    assert_eq!(desk.status(&id), LifecycleStatus::Closed);
    assert!(desk
        .transition(store, "inc/no-such", LifecycleStatus::Acknowledged, 80, now)
        .is_err());

    let rows = store.transitions(run).unwrap();
    let got: Vec<(&str, &str, &str, i64)> = rows
        .iter()
        .map(|r| (r.to.as_str(), r.operator.as_str(), r.role.as_str(), r.wall_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("acknowledged", "Aino Virtanen", "operator", 20),
            ("dispatched", "Aino Virtanen", "operator", 30),
            ("resolved", "Aino Virtanen", "operator", 40),
            ("closed", "Mikko Supervisor", "supervisor", 70)
        ]
    );
    assert!(rows.iter().all(|r| r.scenario_ms == now));
    let detail = replay.desk().unwrap().detail(&id).unwrap();
    assert_eq!(detail.entry.status, LifecycleStatus::Closed);
    assert_eq!(detail.entry.acknowledged_by.as_deref(), Some("Aino Virtanen"));
    assert!(
        detail
            .timeline
            .iter()
            .any(|t| t.text == "Acknowledged by Aino Virtanen (operator)"),
        "{:?}",
        detail.timeline
    );
    // The PIN is stored only as an argon2id hash (salt and parameters in its PHC string).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (salt, hash): (Option<String>, String) = conn
        .query_row(
            "SELECT pin_salt, pin_hash FROM operators WHERE name = 'Aino Virtanen'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        salt.is_none() && hash.starts_with("$argon2id$") && !hash.contains("4711"),
        "{hash}"
    );
}

#[test]
fn incidents_decisions_and_the_audit_chain_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("restart.db");
    let (run, id, members) = {
        let mut replay = headless::open_replay(&demo(), &db).unwrap();
        replay.run_to_end().unwrap();
        let id = outage_id(&replay);
        let members = replay
            .desk()
            .unwrap()
            .correlator()
            .incident(&cityops_core::correlate::IncidentId::from(id.as_str()))
            .unwrap()
            .members
            .len();
        let now = replay.now_ms();
        let run = replay.pipeline().run();
        let (desk, store) = replay.desk_mut().unwrap();
        store
            .roster_set("Aino", "trainer", Some("1357"), "cli", "system", 1)
            .unwrap();
        desk.sign_in(store, "Aino", OperatorRole::Trainer, Some("1357"), 1)
            .unwrap();
        desk.transition(store, &id, LifecycleStatus::Acknowledged, 2, now)
            .unwrap();
        desk.tick_sop(store, &id, 0, true, 3, now).unwrap();
        assert!(desk.tick_sop(store, &id, 99, true, 4, now).is_err());
        desk.add_note(store, &id, "crew on the way", 4, now).unwrap();
        let new = desk
            .decide(
                store,
                DecisionOp::Split {
                    from: id.clone(),
                    entity: "alarm/way-644615094-door".into(),
                },
                5,
                now,
            )
            .unwrap()
            .unwrap();
        assert!(desk.detail(&new).unwrap().entry.manual);
        desk.decide(store, DecisionOp::Undo, 6, now).unwrap();
        desk.sign_out(store, 7).unwrap();
        (run, id, members)
        // The replay, its store and its connection are dropped here: the app is gone.
    };
    let store = Store::open(&db).unwrap();
    let stored = store.stored_incidents(run).unwrap();
    let outage = stored.iter().find(|i| i.id == id).unwrap();
    assert_eq!(outage.lifecycle, "acknowledged");
    assert_eq!(outage.members.len(), members, "the undone split put the alarm back");
    let alarm = outage
        .members
        .iter()
        .find(|m| m.entity == "alarm/way-644615094-door")
        .unwrap();
    assert_eq!(alarm.rule, "alarm-at-tripped-site");
    let dark: Vec<_> = outage.members.iter().filter(|m| m.kind == "signal.dark").collect();
    assert!(!dark.is_empty() && dark.iter().all(|m| m.rule == "supplied-by-tripped-substation" && m.explanation.contains("fed by that substation")));
    let decisions = store.decisions(run).unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(
        decisions[0].action.contains("\"op\":\"split\"") && decisions[1].action.contains("undo"),
        "{decisions:?}"
    );
    assert_eq!(store.sop_ticks(run).unwrap().len(), 1);
    assert_eq!(outage.notes.len(), 1);
    assert_eq!(
        (outage.notes[0].text.as_str(), outage.notes[0].operator.as_str()),
        ("crew on the way", "Aino")
    );
    let trail = store.audit_trail().unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "roster",
            "sign_in",
            "transition",
            "sop",
            "note",
            "decision",
            "decision",
            "sign_out"
        ]
    );
    assert_eq!(store.verify_audit().unwrap(), Ok(8));
    // The note's entry vouches for it: an edited note is found.
    let report = store.check_audit().unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    // The after-action report carries the narrative log, naming the incident by its number.
    let html = report_of(&db, &["--run", &run.to_string()]);
    assert!(
        html.contains(&format!(
            "<td>note</td><td>{}: crew on the way (Aino, trainer)</td>",
            outage.number
        )),
        "the report has no note row"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE incident_notes SET text = 'nobody came'", [])
        .unwrap();
    let report = store.check_audit().unwrap();
    assert!(!report.problems.is_empty(), "an edited note went unnoticed");
}

#[test]
fn the_audit_trail_is_append_only_and_tampering_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = Store::open(&db).unwrap();
    for (i, name) in ["Aino", "Mikko", "Sari"].iter().enumerate() {
        store.sign_in(name, "operator", None, i as i64).unwrap();
    }
    assert_eq!(store.verify_audit().unwrap(), Ok(3));
    let trail = store.audit_trail().unwrap();
    assert_eq!(trail[0].prev_hash, "0".repeat(64));
    assert_eq!(trail[1].prev_hash, trail[0].hash);

    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(
        conn.execute("UPDATE audit SET operator = 'Mallory' WHERE seq = 2", [])
            .is_err(),
        "updates are refused"
    );
    assert!(
        conn.execute("DELETE FROM audit WHERE seq = 3", []).is_err(),
        "deletes are refused"
    );
    // Someone with the file and a SQLite shell can drop the triggers; the chain still tells.
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET operator = 'Mallory' WHERE seq = 2;")
        .unwrap();
    assert_eq!(store.verify_audit().unwrap(), Err(2));
}

#[test]
fn manual_decisions_are_replayed_at_their_time_after_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let mut replay = headless::open_replay(&demo(), &dir.path().join("m.db")).unwrap();
    let t = at(&replay, "21:20");
    replay.advance_to(t).unwrap();
    let outage = outage_id(&replay);
    let warning = replay
        .desk()
        .unwrap()
        .correlator()
        .incidents()
        .find(|i| i.incident_type == "weather_warning")
        .unwrap()
        .id
        .0
        .to_string();
    let (desk, store) = replay.desk_mut().unwrap();
    desk.sign_in(store, "Aino", OperatorRole::Operator, None, 1).unwrap();
    desk.decide(
        store,
        DecisionOp::Merge {
            into: outage.clone(),
            from: warning.clone(),
        },
        2,
        t,
    )
    .unwrap();
    let merged = |r: &Replay| {
        matches!(
            r.desk()
                .unwrap()
                .correlator()
                .incident(&cityops_core::correlate::IncidentId::from(warning.as_str()))
                .unwrap()
                .status,
            IncidentStatus::Merged { .. }
        )
    };
    assert!(merged(&replay));
    let after_merge = replay.desk().unwrap().correlator().snapshot();

    replay.seek(at(&replay, "21:15")).unwrap();
    assert!(!merged(&replay), "before the decision the warning is its own incident");
    replay.seek(t).unwrap();
    assert!(merged(&replay), "played past the decision, it is merged again");
    assert_eq!(replay.desk().unwrap().correlator().snapshot(), after_merge);
    replay.seek(at(&replay, "21:25")).unwrap();
    assert!(merged(&replay));
    // Undo right after the decision restores the exact previous state.
    replay.seek(t).unwrap();
    let (desk, store) = replay.desk_mut().unwrap();
    desk.decide(store, DecisionOp::Undo, 3, t).unwrap();
    assert!(!merged(&replay));
    let mut fresh = headless::open_replay(&demo(), &dir.path().join("f.db")).unwrap();
    fresh.advance_to(t).unwrap();
    assert_eq!(
        replay.desk().unwrap().correlator().snapshot().incidents,
        fresh.desk().unwrap().correlator().snapshot().incidents
    );
}

#[test]
fn the_engine_pushes_incident_changes_and_answers_operator_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = common::demo_engine(&dir.path().join("e.db"));
        let diffs: Arc<Mutex<Vec<MapDiffDto>>> = Arc::default();
        let sink = diffs.clone();
        engine
            .subscribe(Box::new(move |d| {
                sink.lock().unwrap().push(d);
                true
            }))
            .unwrap();
        engine.set_speed(None).unwrap();
        engine.play().unwrap();
        let mut waited = 0;
        while !diffs.lock().unwrap().last().is_some_and(|d| d.clock.finished) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
            assert!(waited < 10_000, "replay did not finish");
        }
        let (first, upserts) = {
            let d = diffs.lock().unwrap();
            (
                d[0].incidents.clone().unwrap(),
                d.iter()
                    .filter_map(|d| d.incidents.as_ref())
                    .flat_map(|i| i.upserts.clone())
                    .collect::<Vec<_>>(),
            )
        };
        assert!(
            first.reset && first.upserts.is_empty(),
            "a subscriber first gets the (empty) queue"
        );
        let outage = upserts
            .iter()
            .rev()
            .find(|e| e.incident_type == "power_outage")
            .unwrap()
            .clone();
        assert_eq!(outage.status, LifecycleStatus::New);
        // The area covers what is still a problem: at the end, a few late members near the centre.
        let a = outage.area;
        assert!(
            a.west <= a.east && a.south <= a.north && (24.9..25.0).contains(&a.west) && (60.1..60.2).contains(&a.south),
            "{a:?}"
        );

        let e = engine
            .incident_transition(outage.id.clone(), LifecycleStatus::Acknowledged)
            .await
            .unwrap_err();
        assert_eq!(ApiError::from(&e).code, ApiErrorCode::Forbidden);
        assert_eq!(engine.operator().await.unwrap(), None);
        engine
            .sign_in("Aino".into(), OperatorRole::Operator, None)
            .await
            .unwrap();
        let before = diffs.lock().unwrap().len();
        engine
            .incident_transition(outage.id.clone(), LifecycleStatus::Acknowledged)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let pushed = diffs.lock().unwrap()[before..]
            .iter()
            .filter_map(|d| d.incidents.clone())
            .flat_map(|i| i.upserts)
            .find(|e| e.id == outage.id)
            .unwrap();
        assert_eq!(
            (pushed.status, pushed.acknowledged_by.as_deref()),
            (LifecycleStatus::Acknowledged, Some("Aino"))
        );

        let detail = engine.incident_detail(outage.id.clone()).await.unwrap();
        let root = detail.root.clone().unwrap();
        assert_eq!(
            (root.entity.as_str(), root.kind.as_str()),
            ("way/644615094", "substation.trip")
        );
        let layers: Vec<_> = detail.groups.iter().map(|g| g.layer.as_str()).collect();
        assert_eq!(layers, ["transport", "security", "utility", "alerts"]);
        let signal = detail.groups[0]
            .members
            .iter()
            .find(|m| m.kind == "signal.dark")
            .unwrap();
        assert!(
            signal.explanation.contains("went dark") && signal.explanation.contains("fed by that substation"),
            "{}",
            signal.explanation
        );
        assert_eq!(detail.sop.len(), 7);
        engine.incident_tick_sop(outage.id.clone(), 1, true).await.unwrap();
        let detail = engine.incident_detail(outage.id.clone()).await.unwrap();
        assert!(detail.sop[1].ticked && detail.sop[1].by.as_deref() == Some("Aino"));
        assert!(engine.incident_detail("inc/none".into()).await.is_err());
        // The narrative log: a note with who and when, in the detail's timeline.
        engine
            .incident_note(outage.id.clone(), " Caller: <b>no power</b> on Kaisaniemenkatu ".into())
            .await
            .unwrap();
        let detail = engine.incident_detail(outage.id.clone()).await.unwrap();
        let note = detail.timeline.iter().find(|t| t.kind == "note").unwrap();
        assert_eq!(note.text, "Caller: <b>no power</b> on Kaisaniemenkatu");
        assert_eq!(note.operator.as_deref(), Some("Aino"));
        let e = engine.incident_note(outage.id.clone(), "  ".into()).await.unwrap_err();
        assert_eq!(ApiError::from(&e).code, ApiErrorCode::InvalidInput);
        let e = engine
            .incident_note("inc/none".into(), "lost".into())
            .await
            .unwrap_err();
        assert_eq!(ApiError::from(&e).code, ApiErrorCode::NotFound);

        let new = engine
            .incident_split(outage.id.clone(), "alarm/way-644615094-door".into())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(engine.incident_detail(new.clone()).await.unwrap().can_undo);
        engine.incident_undo().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let removed = diffs
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter_map(|d| d.incidents.clone())
            .any(|i| i.removed.contains(&new));
        assert!(removed, "the undone split left the queue");
    });
}

#[test]
fn required_sop_steps_hold_the_resolution_until_ticked_or_a_supervisor_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sop.db");
    let mut replay = headless::open_replay(&demo(), &db).unwrap();
    replay.run_to_end().unwrap();
    let now = replay.now_ms();
    let run = replay.pipeline().run();
    let warning = replay
        .desk()
        .unwrap()
        .correlator()
        .incidents()
        .find(|i| i.incident_type == "weather_warning")
        .map(|i| (i.id.0.to_string(), i.number.clone()))
        .unwrap();
    let (id, number) = warning;
    let (desk, store) = replay.desk_mut().unwrap();
    store
        .roster_set("Sari", "supervisor", Some("2468"), "cli", "system", 1)
        .unwrap();
    desk.sign_in(store, "Aino", OperatorRole::Operator, None, 1).unwrap();
    // The pre-alert was due ten minutes after the warning opened: at the end, it is overdue.
    let detail = desk.detail(&id).unwrap();
    assert_eq!(detail.sop.iter().filter(|s| s.required).count(), 2);
    assert!(detail.sop[1].overdue && detail.sop[1].due_ms == Some(detail.entry.opened_ms + 600_000));
    assert!(!detail.sop[0].overdue, "a step without a deadline is never overdue");
    // Resolving with both unticked is refused, naming the incident by number and the steps.
    let e = desk
        .transition(store, &id, LifecycleStatus::Resolved, 2, now)
        .unwrap_err();
    let said = e.to_string();
    assert!(
        said.contains(&number)
            && said.contains("required SOP steps not ticked: 1 (Brief the shift")
            && said.contains(", 2 (Pre-alert"),
        "{said}"
    );
    // Ticking one leaves the other named; an operator may not override.
    desk.tick_sop(store, &id, 0, true, 3, now).unwrap();
    let said = desk
        .transition(store, &id, LifecycleStatus::Resolved, 4, now)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("not ticked: 2 (Pre-alert") && !said.contains("1 (Brief"),
        "{said}"
    );
    let e = desk
        .transition_with(store, &id, LifecycleStatus::Resolved, Some("trust me"), 5, now)
        .unwrap_err();
    assert_eq!(ApiError::from(&e).code, ApiErrorCode::Forbidden);
    // A supervisor resolves past it, with a reason: recorded, audited, in the report.
    desk.sign_out(store, 6).unwrap();
    desk.sign_in(store, "Sari", OperatorRole::Supervisor, Some("2468"), 7)
        .unwrap();
    let e = desk
        .transition_with(store, &id, LifecycleStatus::Resolved, Some("  "), 8, now)
        .unwrap_err();
    assert_eq!(
        ApiError::from(&e).code,
        ApiErrorCode::InvalidInput,
        "a blank reason is no reason"
    );
    desk.transition_with(
        store,
        &id,
        LifecycleStatus::Resolved,
        Some("Crews pre-alerted by radio before the shift began"),
        9,
        now,
    )
    .unwrap();
    assert_eq!(desk.status(&id), LifecycleStatus::Resolved);
    let overrides = store.overrides(run).unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(
        (overrides[0].steps.as_str(), overrides[0].operator.as_str()),
        ("2", "Sari")
    );
    let timeline = desk.detail(&id).unwrap().timeline;
    assert!(timeline
        .iter()
        .any(|t| t.kind == "override" && t.text.contains("Crews pre-alerted")));
    assert!(store.audit_trail().unwrap().iter().any(|e| e.action == "override"));
    drop(replay);
    let html = report_of(&db, &[]);
    assert!(
        html.contains(&format!(
            "<td>override</td><td>{number}: required SOP steps 2 unticked, overridden by Sari (supervisor): Crews pre-alerted by radio before the shift began</td>"
        )),
        "the report has no override row"
    );
}

#[test]
fn an_incident_nobody_acknowledges_escalates_on_the_scenario_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("esc.db");
    let mut replay = headless::open_replay(&demo(), &db).unwrap();
    let warning = |replay: &mut Replay, full: bool| {
        let (desk, _) = replay.desk_mut().unwrap();
        desk.take_diff(full)
            .map(|d| d.upserts)
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.incident_type == "weather_warning")
    };
    // The storm warning (severe) opens at 21:00; the rules give a severe incident 180 s.
    replay.advance_to(at(&replay, "21:02")).unwrap();
    let w = warning(&mut replay, true).unwrap();
    assert_eq!(w.escalated_ms, None, "not yet");
    replay.advance_to(at(&replay, "21:04")).unwrap();
    let w = warning(&mut replay, false).expect("the queue is told when the warning escalates");
    assert_eq!(w.escalated_ms, Some(w.opened_ms + 180_000));
    assert_eq!(warning(&mut replay, false), None, "and told once");
    // Acknowledged, it is no longer escalated.
    let now = replay.now_ms();
    let (desk, store) = replay.desk_mut().unwrap();
    desk.sign_in(store, "Aino", OperatorRole::Operator, None, 1).unwrap();
    desk.transition(store, &w.id, LifecycleStatus::Acknowledged, 2, now)
        .unwrap();
    assert_eq!(warning(&mut replay, false).unwrap().escalated_ms, None);
    // Back before the limit, nothing is escalated; the report of a run nobody answered says
    // which incidents escalated, and when.
    replay.seek(at(&replay, "21:01")).unwrap();
    assert_eq!(warning(&mut replay, true).unwrap().escalated_ms, None);
    drop(replay);
    let mut other = headless::open_replay(&demo(), &dir.path().join("quiet.db")).unwrap();
    other.run_to_end().unwrap();
    let run = other.pipeline().run();
    drop(other);
    let html = report_of(
        &dir.path().join("quiet.db"),
        &["--run", &run.to_string(), "--scenario", demo().to_str().unwrap()],
    );
    let escalated = html.matches("<td>escalated</td>").count();
    assert_eq!(
        escalated, 3,
        "the warning and the outage, severe and extreme, escalated; so did the operator's call \
         once half an hour made it severe (rule broad-or-long)"
    );
    assert!(
        html.contains("<td>escalated</td><td>HEL-2026-000005 Obstruction"),
        "{:?}",
        html.lines().filter(|l| l.contains("escalated")).collect::<Vec<_>>()
    );
    assert!(
        html.contains("<td>21:03:00</td><td>escalated</td><td>HEL-2026-000001 Weather warning"),
        "{:?}",
        html.lines().filter(|l| l.contains("escalated")).collect::<Vec<_>>()
    );
}

#[test]
fn a_call_an_operator_enters_opens_an_incident_that_survives_seeks_and_is_audited() {
    use cityops_core::call::CallSpec;
    use cityops_core::model::{Layer, Severity};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("call.db");
    let mut replay = headless::open_replay(&demo(), &db).unwrap();
    replay.advance_to(at(&replay, "21:10")).unwrap();
    let spec = CallSpec {
        incident_type: "obstruction".into(),
        layer: Layer::Transport,
        severity: Severity::Severe,
        description: "Tree across the tram tracks on Mannerheimintie by the opera.\nCaller stays on site.".into(),
        lon: 24.9301,
        lat: 60.1815,
    };
    let mut wrong = spec.clone();
    wrong.incident_type = "alien_landing".into();
    let e = replay.call(&wrong, "Aino", "operator", replay.now_ms(), 1).unwrap_err();
    assert_eq!(code(&e), ApiErrorCode::InvalidInput);
    assert!(e.to_string().contains("alien_landing"), "{e}");
    let made = replay.now_ms();
    let row = replay.call(&spec, "Aino", "operator", made, 2).unwrap();
    assert_eq!((row.n, row.entity.as_str()), (1, "call/1"));
    let called = |replay: &Replay| {
        replay
            .desk()
            .unwrap()
            .correlator()
            .incidents()
            .find(|i| i.root_cause.as_deref() == Some("call/1"))
            .map(|i| {
                (
                    i.incident_type.clone(),
                    i.title.clone(),
                    i.number.clone(),
                    i.opened_ms,
                    i.severity,
                )
            })
    };
    assert_eq!(
        called(&replay),
        None,
        "the incident opens when its second is correlated"
    );
    replay.advance_to(made + 2_000).unwrap();
    let opened = called(&replay).expect("the call opened an incident");
    assert_eq!(
        (opened.0.as_str(), opened.1.as_str(), opened.3, opened.4),
        (
            "obstruction",
            "Obstruction: Tree across the tram tracks on Mannerheimintie by the opera.",
            made,
            Severity::Severe
        )
    );
    assert!(opened.2.starts_with("HEL-2026-"), "{}", opened.2);
    // A seek back before the call and forward again gives the same incident, number and all.
    replay.seek(at(&replay, "21:05")).unwrap();
    assert_eq!(called(&replay), None);
    replay.seek(made + 60_000).unwrap();
    assert_eq!(called(&replay), Some(opened.clone()));
    let store = replay.pipeline().store();
    let run = replay.pipeline().run();
    let entry = store
        .audit_trail()
        .unwrap()
        .into_iter()
        .find(|e| e.action == "call")
        .unwrap();
    assert_eq!(
        (entry.operator.as_str(), entry.subject.as_str(), entry.detail.as_str()),
        ("Aino", "call/1", "obstruction")
    );
    assert!(store.check_audit().unwrap().problems.is_empty());
    assert_eq!(store.calls(run).unwrap(), vec![row.clone()]);
    drop(replay);
    // The record is vouched for: an edited call is found.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE operator_calls SET operator = 'Mallory'", [])
        .unwrap();
    drop(conn);
    let store = Store::open(&db).unwrap();
    let report = store.check_audit().unwrap();
    assert!(
        report.problems.iter().any(|p| p.to_string().contains("operator_calls")),
        "{report:?}"
    );
}
