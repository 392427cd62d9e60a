//! The promises of issue 18 held against faults and people, with nothing but Rust: each
//! backend here is a real HTTP server on 127.0.0.1 scripted by the test (`common::scripted`),
//! and each fault is one that today's peers cannot be told to show.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_engine::dto::{ActionDto, ActionParams, ActionRequestDto, ActionStatus, OperatorDto, OperatorRole};
use cityops_outbox::{config, Outbox};
use cityops_store::Store;
use common::scripted::{Answer, Scripted};

fn operator() -> OperatorDto {
    OperatorDto {
        name: "anna".into(),
        role: OperatorRole::Operator,
    }
}

fn crew(description: &str) -> ActionParams {
    ActionParams::ServiceRequest {
        service_code: "utility-crew".into(),
        description: description.into(),
    }
}

fn open311(port: u16) -> Vec<config::BackendSpec> {
    let text = format!(
        "[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = {{ env = \"CITYOPS_TRUST_OPEN311_KEY\" }}\n\
         choices = [\"utility-crew\"]\nretry_base_ms = 50\nmax_backoff_s = 1\npoll_s = 3600\n"
    );
    std::env::set_var("CITYOPS_TRUST_OPEN311_KEY", "canary-api-key");
    config::parse(Path::new("test.toml"), &text).unwrap()
}

fn commit(outbox: &mut Outbox, params: ActionParams) -> ActionDto {
    let req = ActionRequestDto {
        backend: "works".into(),
        incident: None,
        at: None,
        params,
    };
    let preview = outbox
        .preview(
            req,
            &common::place(),
            &operator(),
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
    // What the operator is shown never holds the key: it is added only when sending.
    assert!(
        preview.body.contains("api_key=********") && !format!("{preview:?}").contains("canary-api-key"),
        "{}",
        preview.body
    );
    outbox.confirm(&preview.token, &operator(), None).unwrap()
}

/// The description field of an Open311 form.
fn description(form: &[u8]) -> String {
    let form = String::from_utf8_lossy(form);
    form.split('&')
        .find_map(|kv| kv.strip_prefix("description="))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_is_retried_and_redirects_and_huge_answers_fail_with_the_reason() {
    // Another origin that would happily take the form and its API key.
    let elsewhere = Scripted::start(|_, _| Answer::new(201, r#"[{"service_request_id":"STOLEN-1"}]"#));
    let to = format!("http://127.0.0.1:{}/requests.json", elsewhere.port);
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (per_key, location) = (seen.clone(), to.clone());
    let backend = Scripted::start(move |req, _| {
        let key = req.header("idempotency-key").unwrap_or_default().to_owned();
        let n = {
            let mut m = per_key.lock().unwrap();
            let n = m.entry(key).or_default();
            *n += 1;
            *n
        };
        match description(&req.body).as_str() {
            // The first attempt's answer was lost; the server is still working on that key.
            "conflict" if n == 1 => Answer::new(409, "request with this Idempotency-Key is in progress"),
            "conflict" => Answer::new(201, r#"[{"service_request_id":"SR-409"}]"#),
            "huge" => Answer::new(201, vec![b' '; 2 * 1024 * 1024]),
            "moved" => Answer::new(307, "").header("Location", &location),
            other => Answer::new(400, format!("unexpected {other}")),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let mut outbox = Outbox::start(&db, open311(backend.port), false).unwrap();
    let conflict = commit(&mut outbox, crew("conflict"));
    let huge = commit(&mut outbox, crew("huge"));
    let moved = commit(&mut outbox, crew("moved"));

    let a = common::wait_for(&db, conflict.id, ActionStatus::Delivered, Duration::from_secs(20)).await;
    assert_eq!(
        (a.reference.as_deref(), a.attempts),
        (Some("SR-409"), 2),
        "a 409 is asked again, not failed: {a:?}"
    );
    let a = common::wait_for(&db, huge.id, ActionStatus::Failed, Duration::from_secs(20)).await;
    assert!(a.last_error.as_deref().is_some_and(|e| e.contains("1024 KiB")), "{a:?}");
    let a = common::wait_for(&db, moved.id, ActionStatus::Failed, Duration::from_secs(20)).await;
    let why = a.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("307") && why.contains(&to),
        "the failure names the Location: {why}"
    );
    assert_eq!(a.reference, None);
    drop(outbox);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.received()
    );
    assert!(
        backend
            .received()
            .iter()
            .all(|r| String::from_utf8_lossy(&r.body).contains("api_key=canary-api-key")),
        "the backend itself got the key"
    );
}

/// A backends file with one webhook (a receiver that cannot deduplicate) at `port`.
fn webhook_backends(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("backends.toml");
    std::fs::write(&path, format!("[[backends]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = {{ env = \"CITYOPS_TRUST_HOOK_SECRET\" }}\nretry_base_ms = 50\n")).unwrap();
    path
}

fn cityops() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cityops"));
    c.env("CITYOPS_TRUST_HOOK_SECRET", "hook-secret");
    c
}

#[test]
fn two_senders_on_one_database_deliver_each_key_once() {
    // A receiver slow enough that two senders started together overlap for the whole burst.
    let receiver = Scripted::start(|_, _| {
        std::thread::sleep(Duration::from_millis(20));
        Answer::new(200, "ok")
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let backends = webhook_backends(dir.path(), receiver.port);
    let out = cityops()
        .args(["dispatch", "--backends"])
        .arg(&backends)
        .arg("--db")
        .arg(&db)
        .args([
            "--backend",
            "hook",
            "--params",
            r#"{"kind":"notify","message":"Feeder trip"}"#,
            "--at",
            "24.94,60.17",
            "--count",
            "40",
            "--no-send",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(keys.len(), 40);
    let send = || {
        cityops()
            .args(["send", "--timeout", "60", "--backends"])
            .arg(&backends)
            .arg("--db")
            .arg(&db)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (send(), send());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *per_key
            .entry(r.header("idempotency-key").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "keys delivered more than once: {twice:?}");
    assert_eq!(per_key.len(), 40, "every key delivered");
    assert!(keys.iter().all(|k| per_key.contains_key(k)));
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(
        stderr.contains("holds the outbox's sender lease") && stderr.contains("process "),
        "the second sender says who holds the lease: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_never_records_a_live_action_and_refuses_a_database_where_one_waits() {
    // The real crew request was queued while its backend was offline.
    let receiver = Scripted::start(|_, _| Answer::new(201, r#"[{"service_request_id":"SR-LIVE"}]"#));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cityops.db");
    let mut live = Outbox::idle(&db, open311(receiver.port)).unwrap();
    let crew = commit(&mut live, crew("Feeder trip"));
    drop(live);
    // A replay on that database would have recorded it as "exercise: recorded, not sent".
    let refused = Outbox::start(&db, open311(receiver.port), true)
        .err()
        .expect("the replay is refused");
    let why = refused.to_string();
    assert!(
        why.contains("1 live action") && why.contains(&db.display().to_string()),
        "{why}"
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.action(crew.id).unwrap().unwrap().dto.status,
        ActionStatus::Queued,
        "still waiting for its backend"
    );
    assert!(
        store.head_action("works", true).unwrap().is_none(),
        "an exercise sender never sees a live action"
    );
    // Live mode sends it, for real and once; then a replay may use the database.
    let live = Outbox::start(&db, open311(receiver.port), false).unwrap();
    let sent = common::wait_for(&db, crew.id, ActionStatus::Delivered, Duration::from_secs(10)).await;
    assert_eq!(sent.reference.as_deref(), Some("SR-LIVE"));
    drop(live);
    assert_eq!(receiver.received().len(), 1);
    let _exercise = Outbox::start(&db, open311(receiver.port), true).expect("nothing live waits now");
}

#[test]
fn only_the_roster_makes_a_supervisor_and_a_public_alert_needs_one() {
    let hub = Scripted::start(|_, _| Answer::new(200, "ok"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let backends = dir.path().join("backends.toml");
    std::fs::write(&backends, format!("[[backends]]\nid = \"hub\"\nkind = \"cap\"\nurl = \"http://127.0.0.1:{}/cap\"\nsecret = {{ env = \"CITYOPS_TRUST_HOOK_SECRET\" }}\n", hub.port)).unwrap();
    let alert = r#"{"kind":"publicAlert","headline":"Power cut","description":"Signals dark","instruction":"","severity":"severe","expiresMinutes":60}"#;
    let dispatch = |name: &str, pin: Option<&str>| {
        let mut c = cityops();
        c.args(["dispatch", "--backends"]).arg(&backends).arg("--db").arg(&db);
        c.args([
            "--backend",
            "hub",
            "--params",
            alert,
            "--at",
            "24.94,60.17",
            "--operator",
            name,
            "--role",
            "supervisor",
            "--no-send",
        ]);
        if let Some(pin) = pin {
            c.args(["--pin-env", "CITYOPS_TRUST_PIN"]).env("CITYOPS_TRUST_PIN", pin);
        }
        c.output().unwrap()
    };
    let roster = |args: &[&str], pins: &[(&str, &str)]| {
        let mut c = cityops();
        c.arg("roster").args(args).arg("--db").arg(&db);
        for (k, v) in pins {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let said = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Typing "supervisor" is not being one.
    let o = dispatch("mallory", None);
    assert!(
        !o.status.success() && said(&o).contains("not in the roster as supervisor"),
        "{}",
        said(&o)
    );
    // The first supervisor comes from the command line, with a PIN.
    let o = roster(&["add", "anna", "--role", "supervisor"], &[]);
    assert!(!o.status.success() && said(&o).contains("needs a PIN"), "{}", said(&o));
    let o = roster(
        &["add", "anna", "--role", "supervisor", "--pin-env", "P"],
        &[("P", "2468")],
    );
    assert!(o.status.success(), "{}", said(&o));
    // After that, only a supervisor adds another.
    let o = roster(
        &["add", "mallory", "--role", "supervisor", "--pin-env", "P"],
        &[("P", "1111")],
    );
    assert!(!o.status.success() && said(&o).contains("--by"), "{}", said(&o));
    let o = roster(
        &[
            "add",
            "mallory",
            "--role",
            "supervisor",
            "--pin-env",
            "P",
            "--by",
            "anna",
            "--by-pin-env",
            "Q",
        ],
        &[("P", "1111"), ("Q", "0000")],
    );
    assert!(
        !o.status.success() && said(&o).contains("wrong PIN for anna"),
        "{}",
        said(&o)
    );
    let o = dispatch("anna", None);
    assert!(!o.status.success() && said(&o).contains("PIN"), "{}", said(&o));
    let o = dispatch("anna", Some("2468"));
    assert!(o.status.success(), "{}", said(&o));
    let store = Store::open(&db).unwrap();
    let actions = store.actions(10).unwrap();
    assert_eq!((actions.len(), actions[0].operator.as_str()), (1, "anna"));
    let roster: Vec<(String, String)> = store.roster().unwrap().into_iter().map(|e| (e.name, e.role)).collect();
    assert_eq!(
        roster,
        [("anna".to_owned(), "supervisor".to_owned())],
        "mallory never got in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_counts_the_second_confirmation_itself() {
    let hub = Scripted::start(|_, _| Answer::new(200, "ok"));
    let text = format!("[[backends]]\nid = \"hub\"\nkind = \"cap\"\nurl = \"http://127.0.0.1:{}/cap\"\nsecret = {{ env = \"CITYOPS_TRUST_HOOK_SECRET\" }}\n", hub.port);
    std::env::set_var("CITYOPS_TRUST_HOOK_SECRET", "hook-secret");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let mut outbox = Outbox::start(&db, config::parse(Path::new("t.toml"), &text).unwrap(), false).unwrap();
    let anna = OperatorDto {
        name: "anna".into(),
        role: OperatorRole::Supervisor,
    };
    let params = ActionParams::PublicAlert {
        headline: "Power cut".into(),
        description: "Signals dark".into(),
        instruction: String::new(),
        severity: cityops_engine::dto::AlertSeverity::Severe,
        expires_minutes: 60,
    };
    let req = ActionRequestDto {
        backend: "hub".into(),
        incident: None,
        at: None,
        params,
    };
    let p = outbox
        .preview(req, &common::place(), &anna, chrono::Utc::now().timestamp_millis())
        .unwrap();
    assert_eq!(p.confirmations, 2);
    let e = outbox.confirm(&p.token, &anna, None).unwrap_err();
    assert!(e.to_string().contains("confirm it once first"), "{e}");
    // Another operator cannot give the first confirmation for her.
    let olli = OperatorDto {
        name: "olli".into(),
        role: OperatorRole::Supervisor,
    };
    assert!(outbox.arm(&p.token, &olli).is_err());
    // Signed in again as an operator, she may not confirm it either.
    let anna_as_operator = OperatorDto {
        name: "anna".into(),
        role: OperatorRole::Operator,
    };
    assert!(outbox.arm(&p.token, &anna_as_operator).is_err());
    assert_eq!(outbox.arm(&p.token, &anna).unwrap(), 2);
    let action = outbox.confirm(&p.token, &anna, None).unwrap();
    common::wait_for(&db, action.id, ActionStatus::Delivered, Duration::from_secs(10)).await;
    assert_eq!(hub.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cot_tasking_goes_over_tls_with_a_client_certificate_and_is_only_sent() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::tls::pki(dir.path());
    let tak = common::tls::TlsServer::start(&pki, Vec::new()).await;
    let backends = |with_cert: bool| {
        let client = if with_cert {
            "client_cert = \"client.pem\"\nclient_key = \"client.key\"\n"
        } else {
            ""
        };
        let text = format!("[[backends]]\nid = \"tak\"\nkind = \"cot\"\nhost = \"127.0.0.1\"\nport = {}\nchoices = [\"t-x-i\"]\nretry_base_ms = 50\ntimeout_ms = 3000\n[backends.tls]\nca = \"ca.pem\"\n{client}", tak.port);
        config::parse(&dir.path().join("backends.toml"), &text).unwrap()
    };
    let task = || ActionParams::TaskUnit {
        unit: "UNIT-7".into(),
        task: "t-x-i".into(),
        remarks: "Check feeder 3".into(),
    };
    let commit_to = |outbox: &mut Outbox| {
        let req = ActionRequestDto {
            backend: "tak".into(),
            incident: None,
            at: None,
            params: task(),
        };
        let p = outbox
            .preview(
                req,
                &common::place(),
                &operator(),
                chrono::Utc::now().timestamp_millis(),
            )
            .unwrap();
        outbox.confirm(&p.token, &operator(), None).unwrap()
    };

    // Without its certificate the server refuses the handshake: the tasking waits, unsent.
    let db = dir.path().join("nocert.db");
    let mut outbox = Outbox::start(&db, backends(false), false).unwrap();
    let refused = commit_to(&mut outbox);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(outbox);
    let a = Store::open(&db).unwrap().action(refused.id).unwrap().unwrap().dto;
    assert_eq!(a.status, ActionStatus::Queued, "{a:?}");
    assert!(a.attempts >= 1 && a.last_error.is_some(), "{a:?}");
    assert!(tak.sessions().is_empty(), "no session without a client certificate");

    // With it, the event arrives over TLS; with no confirming client the server cannot say
    // it took it, so the action is "sent", not "delivered".
    let db = dir.path().join("cert.db");
    let mut outbox = Outbox::start(&db, backends(true), false).unwrap();
    let action = commit_to(&mut outbox);
    let a = common::wait_for(&db, action.id, ActionStatus::Sent, Duration::from_secs(10)).await;
    assert_eq!(a.reference.as_deref(), Some(format!("cityops-{}", action.key).as_str()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sessions = tak.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].client_cert);
    let got = String::from_utf8_lossy(&sessions[0].received).into_owned();
    assert!(
        got.contains(&format!("uid=\"cityops-{}\"", action.key)) && got.contains("Check feeder 3"),
        "{got}"
    );
}
