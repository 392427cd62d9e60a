//! The contract suite (`fixtures/contract/`) against the real engine. The same cases run
//! against the UI's fake backend in `ui/src/ipc/contract.test.ts`, so a rule the fake imitates
//! (lifecycle order, roles, dispatch validation, rendered previews, the outbox's statuses)
//! cannot drift from the engine without one of the two failing.
//!
//! Each case gets a fresh engine on the demo storm with a database of its own, seeded with the
//! suite's roster and started with the suite's backends written as a backends file. A replayed
//! scenario is an exercise, so nothing is sent and no network peer is needed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cityops_engine::dto::{ActionRequestDto, ApiError, LifecycleStatus, MapDiffDto, OperatorRole};
use cityops_engine::error::EngineError;
use cityops_engine::{Engine, EngineConfig};
use cityops_store::Store;
use serde_json::Value;

/// How long an `eventually` step may keep asking before its last answer counts.
const EVENTUALLY: Duration = Duration::from_secs(20);

/// Values bound by earlier steps (`as`, `bind`), and `$`, the answer being checked.
type Bound = BTreeMap<String, Value>;

/// One case's engine and the diffs it pushed since the case subscribed.
struct Run {
    engine: Engine,
    diffs: Arc<Mutex<Vec<MapDiffDto>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_the_contract() {
    let text = std::fs::read_to_string(common::repo().join("fixtures/contract/suite.json"))
        .expect("fixtures/contract/suite.json");
    let suite: Value = serde_json::from_str(&text).expect("the suite is JSON");
    let setup = &suite["setup"];
    let home = tempfile::tempdir().unwrap();
    // The audit key and anchors go to a folder of this test's own, not the user's.
    std::env::set_var("CITYOPS_CONFIG_DIR", home.path().join("config"));
    // The suite's secrets are never set: an exercise previews such a backend as unsigned.
    for b in setup["backends"].as_array().unwrap() {
        if let Some(env) = b["secretEnv"].as_str() {
            std::env::remove_var(env);
        }
    }
    let backends = home.path().join("backends.toml");
    std::fs::write(&backends, backends_file(setup)).unwrap();

    let cases = suite["cases"].as_array().unwrap();
    assert!(!cases.is_empty(), "the suite has no cases");
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let db = home.path().join(format!("case-{n}.db"));
        if let Err(e) = run_case(setup, case, &db, &backends).await {
            failures.push(format!("case {name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases broke the contract:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The suite's backends as a backends file (`fixtures/backends/README.md`).
fn backends_file(setup: &Value) -> String {
    let q = |v: &Value| serde_json::to_string(v).unwrap();
    let mut out = format!("sender = {}\n", q(&setup["sender"]));
    for b in setup["backends"].as_array().unwrap() {
        let kind = b["kind"].as_str().unwrap();
        out.push_str(&format!(
            "\n[[backends]]\nid = {}\nname = {}\nkind = {}\nchoices = {}\n",
            q(&b["id"]),
            q(&b["name"]),
            q(&b["kind"]),
            q(&b["choices"])
        ));
        for (field, key) in [
            ("url", "url"),
            ("host", "host"),
            ("port", "port"),
            ("commandTopic", "command_topic"),
            ("responseTopic", "response_topic"),
            ("supervisorOnly", "supervisor_only"),
        ] {
            if !b[field].is_null() {
                out.push_str(&format!("{key} = {}\n", q(&b[field])));
            }
        }
        if let Some(env) = b["secretEnv"].as_str() {
            // Open311 calls its secret an API key; webhooks and alert hubs sign with theirs.
            let key = if kind == "open311" { "api_key" } else { "secret" };
            out.push_str(&format!("{key} = {{ env = {} }}\n", q(&Value::from(env))));
        }
    }
    out
}

async fn run_case(setup: &Value, case: &Value, db: &Path, backends: &Path) -> Result<(), String> {
    // The roster's supervisors exist before the engine starts, as `cityops roster add` makes them.
    let store = Store::open(db).map_err(|e| e.to_string())?;
    for op in setup["roster"].as_array().unwrap() {
        let (name, role, pin) = (
            op["name"].as_str().unwrap(),
            op["role"].as_str().unwrap(),
            op["pin"].as_str(),
        );
        store
            .roster_set(name, role, pin, "contract", "system", 0)
            .map_err(|e| e.to_string())?;
    }
    drop(store);
    let engine = Engine::start(EngineConfig {
        scenario_dir: common::repo().join(setup["scenario"]["dir"].as_str().unwrap()),
        db_path: db.to_owned(),
        maps_dir: common::repo().join("maps"),
        backends: Some(backends.to_owned()),
    })
    .map_err(|e| format!("the engine does not start: {e}"))?;
    // The fake is given this clock; the suite's times are only shared if it is the engine's.
    let scenario = engine.scenario();
    let clock = (Value::from(scenario.start_ms), Value::from(scenario.end_ms));
    if clock != (setup["scenario"]["startMs"].clone(), setup["scenario"]["endMs"].clone()) {
        return Err(format!(
            "the scenario runs {} to {}, not as the suite's setup says",
            scenario.start_ms, scenario.end_ms
        ));
    }
    let run = Run {
        engine,
        diffs: Arc::default(),
    };
    let mut bound = Bound::new();
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        run_step(&run, step, &mut bound)
            .await
            .map_err(|e| format!("step {} ({}): {e}", i + 1, step))?;
    }
    Ok(())
}

async fn run_step(run: &Run, step: &Value, bound: &mut Bound) -> Result<(), String> {
    let call = step["call"].as_str().ok_or("a step needs a call")?;
    if call == "subscribe" {
        return subscribe(run, step, bound).await;
    }
    let args = interpolate(step.get("args").unwrap_or(&Value::Array(Vec::new())), bound)?;
    let args = args.as_array().ok_or("args is a list")?;
    let started = Instant::now();
    loop {
        let answer = call_engine(&run.engine, call, args).await?;
        let checked = check(step, &answer, bound);
        let again = step["eventually"].as_bool() == Some(true) && started.elapsed() < EVENTUALLY;
        match checked {
            Ok(()) => {
                if let (Some(name), Ok(v)) = (step["as"].as_str(), &answer) {
                    bound.insert(name.to_owned(), v.clone());
                }
                return Ok(());
            }
            Err(_) if again => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e),
        }
    }
}

/// Subscribes and binds each name of `bind` to the id of the queued incident of that type in
/// the first diff, which carries the whole picture.
async fn subscribe(run: &Run, step: &Value, bound: &mut Bound) -> Result<(), String> {
    let sink = run.diffs.clone();
    run.engine
        .subscribe(Box::new(move |d| {
            sink.lock().unwrap().push(d);
            true
        }))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let first = loop {
        if let Some(d) = run.diffs.lock().unwrap().first().cloned() {
            break d;
        }
        if started.elapsed() > EVENTUALLY {
            return Err("no diff after subscribing".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let incidents = serde_json::to_value(first.incidents.map(|i| i.upserts).unwrap_or_default()).unwrap();
    for (name, kind) in step["bind"].as_object().into_iter().flatten() {
        let found: Vec<&Value> = incidents
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["incidentType"] == *kind)
            .collect();
        match found[..] {
            [one] => bound.insert(name.clone(), one["id"].clone()),
            _ => {
                return Err(format!(
                    "{} queued incidents of type {kind}, not one: {incidents}",
                    found.len()
                ))
            }
        };
    }
    Ok(())
}

fn arg<T: serde::de::DeserializeOwned>(args: &[Value], i: usize) -> Result<T, String> {
    serde_json::from_value(args.get(i).cloned().unwrap_or(Value::Null)).map_err(|e| format!("argument {}: {e}", i + 1))
}

/// One `Backend` call (`ui/src/ipc/backend.ts`) made on the engine: its answer as JSON, or the
/// `ApiError` the UI would receive.
async fn call_engine(engine: &Engine, call: &str, args: &[Value]) -> Result<Result<Value, Value>, String> {
    fn json<T: serde::Serialize>(r: Result<T, EngineError>) -> Result<Value, Value> {
        r.map(|v| serde_json::to_value(v).unwrap())
            .map_err(|e| serde_json::to_value(ApiError::from(&e)).unwrap())
    }
    Ok(match call {
        "seek" => json(engine.seek(arg(args, 0)?)),
        "signIn" => json(
            engine
                .sign_in(arg(args, 0)?, arg::<OperatorRole>(args, 1)?, arg(args, 2)?)
                .await,
        ),
        "signOut" => json(engine.sign_out().await),
        "operator" => json(engine.operator().await),
        "roster" => json(engine.roster().await),
        "assignRole" => json(
            engine
                .assign_role(arg(args, 0)?, arg::<OperatorRole>(args, 1)?, arg(args, 2)?)
                .await,
        ),
        "incident" => json(engine.incident_detail(arg(args, 0)?).await),
        "transition" => json(
            engine
                .incident_transition(arg(args, 0)?, arg::<LifecycleStatus>(args, 1)?)
                .await,
        ),
        "backends" => json(engine.backends().await),
        "previewAction" => json(engine.preview_action(arg::<ActionRequestDto>(args, 0)?).await),
        "armAction" => json(engine.arm_action(arg(args, 0)?).await),
        "confirmAction" => json(engine.confirm_action(arg(args, 0)?).await),
        "outbox" => json(engine.outbox().await),
        "retryAction" => json(engine.retry_action(arg(args, 0)?).await),
        "cancelAction" => json(engine.cancel_action(arg(args, 0)?).await),
        other => return Err(format!("the suite calls {other}, which this runner does not make")),
    })
}

/// Checks an answer against the step's `ok` (success, matching) or `error` (exactly this).
fn check(step: &Value, answer: &Result<Value, Value>, bound: &Bound) -> Result<(), String> {
    match (step.get("error"), answer) {
        (Some(want), Err(got)) => {
            let want = interpolate(want, bound)?;
            if &want == got {
                Ok(())
            } else {
                Err(format!("expected the error {want}, got {got}"))
            }
        }
        (Some(want), Ok(got)) => Err(format!("expected the error {want}, got success {got}")),
        (None, Err(got)) => Err(format!("expected success, got the error {got}")),
        (None, Ok(got)) => {
            let Some(want) = step.get("ok") else { return Ok(()) };
            let mut with_answer = bound.clone();
            with_answer.insert("$".into(), got.clone());
            matches(want, got, &with_answer, "$")
        }
    }
}

/// `want` matches `got`: objects by the keys `want` names, arrays element by element,
/// `{"$hex": n}` any string of n lowercase hex digits, strings after interpolation.
fn matches(want: &Value, got: &Value, bound: &Bound, at: &str) -> Result<(), String> {
    let fail = || Err(format!("at {at}: expected {want}, got {got}"));
    match want {
        Value::Object(o) if o.contains_key("$hex") => {
            let n = o["$hex"].as_u64().unwrap_or(0) as usize;
            match got.as_str() {
                Some(s) if s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                    Ok(())
                }
                _ => fail(),
            }
        }
        Value::Object(o) => {
            let Some(g) = got.as_object() else { return fail() };
            for (k, w) in o {
                let v = g.get(k).ok_or_else(|| format!("at {at}: no field {k} in {got}"))?;
                matches(w, v, bound, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(a) => {
            let Some(g) = got.as_array() else { return fail() };
            if a.len() != g.len() {
                return Err(format!(
                    "at {at}: expected {} elements, got {}: {got}",
                    a.len(),
                    g.len()
                ));
            }
            a.iter()
                .zip(g)
                .enumerate()
                .try_for_each(|(i, (w, v))| matches(w, v, bound, &format!("{at}[{i}]")))
        }
        Value::String(_) => {
            if interpolate(want, bound)? == *got {
                Ok(())
            } else {
                Err(format!("at {at}: expected {}, got {got}", interpolate(want, bound)?))
            }
        }
        Value::Number(w) => match got.as_f64() {
            Some(g) if Some(g) == w.as_f64() => Ok(()),
            _ => fail(),
        },
        _ if want == got => Ok(()),
        _ => fail(),
    }
}

/// Replaces `{name}` and `{name.field}` by bound values: a string that is one placeholder
/// becomes the value itself (an action id stays a number), others get the text spliced in.
fn interpolate(v: &Value, bound: &Bound) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => {
            if let Some(inner) = s
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .filter(|i| is_name(i))
            {
                return lookup(inner, bound);
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                match after.find('}').map(|close| &after[..close]).filter(|i| is_name(i)) {
                    Some(name) => {
                        match lookup(name, bound)? {
                            Value::String(t) => out.push_str(&t),
                            other => out.push_str(&other.to_string()),
                        }
                        rest = &after[name.len() + 1..];
                    }
                    None => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| interpolate(x, bound)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), interpolate(x, bound)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A placeholder's name: letters, digits, `_`, `$` and dots (JSON's `{"` never is one).
fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

fn lookup(name: &str, bound: &Bound) -> Result<Value, String> {
    let mut parts = name.split('.');
    let first = parts.next().unwrap_or_default();
    let mut v = bound
        .get(first)
        .ok_or_else(|| format!("{{{name}}}: nothing is bound to {first}"))?;
    for p in parts {
        v = v.get(p).ok_or_else(|| format!("{{{name}}}: no field {p}"))?;
    }
    Ok(v.clone())
}
