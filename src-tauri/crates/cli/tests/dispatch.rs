//! The outbox against real peers on 127.0.0.1: our Open311 server (tests/peers/open311),
//! Debian's webhook receiver, mosquitto with a responder, and taky. Each delivered action must
//! arrive exactly as previewed, and exactly once through faults and crashes.
// Some tests here are in the "peers" tier (`cargo test --features peers`); without it their
// helpers are unused.
#![cfg_attr(not(feature = "peers"), allow(dead_code, unused_imports))]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cityops_engine::dto::{
    ActionDto, ActionParams, ActionPreviewDto, ActionRequestDto, ActionStatus, AlertSeverity, OperatorDto, OperatorRole,
};
use cityops_outbox::{config, Outbox};
use cityops_store::Store;
use common::proxy::{Mode, Proxy};

fn supervisor() -> OperatorDto {
    OperatorDto {
        name: "anna".into(),
        role: OperatorRole::Supervisor,
    }
}

fn service_request(desc: &str) -> ActionParams {
    ActionParams::ServiceRequest {
        service_code: "utility-crew".into(),
        description: desc.into(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn commit(outbox: &mut Outbox, backend: &str, params: ActionParams) -> (ActionPreviewDto, ActionDto) {
    let req = ActionRequestDto {
        backend: backend.into(),
        incident: Some("inc-1".into()),
        at: None,
        params,
    };
    let preview = outbox.preview(req, &common::place(), &supervisor(), now_ms()).unwrap();
    if preview.confirmations >= 2 {
        outbox.arm(&preview.token, &supervisor()).unwrap();
    }
    let action = outbox.confirm(&preview.token, &supervisor(), None).unwrap();
    (preview, action)
}

fn open311_log(port: u16) -> Vec<serde_json::Value> {
    let answer = common::http(port, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
    answer.json().as_array().unwrap().clone()
}

/// Requests the Open311 server created, per idempotency key.
fn created_per_key(port: u16) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for e in open311_log(port) {
        if let (Some(k), Some(id)) = (e["idempotency_key"].as_str(), e["created"].as_str()) {
            out.entry(k.to_owned()).or_default().push(id.to_owned());
        }
    }
    out
}

fn open311_backends(port: u16, extra: &str) -> Vec<config::BackendSpec> {
    let text = format!(
        "[[backends]]\nid = \"works\"\nname = \"City works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = {{ env = \"CITYOPS_TEST_OPEN311_KEY\" }}\nchoices = [\"utility-crew\"]\nretry_base_ms = 50\nmax_backoff_s = 1\npoll_s = 1\n{extra}\n"
    );
    std::env::set_var("CITYOPS_TEST_OPEN311_KEY", "k-test");
    config::parse(Path::new("test.toml"), &text).unwrap()
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open311_request_arrives_as_previewed_and_its_status_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _server = common::open311_with_key(port, &dir.path().join("open311"), Some("k-test"));
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(&db, open311_backends(port, ""), false).unwrap();
    let store = Store::open(&db).unwrap();
    let (preview, action) = commit(&mut outbox, "works", service_request("Feeder trip; 12 signals dark"));
    assert_eq!(
        preview.destination,
        format!("POST http://127.0.0.1:{port}/requests.json")
    );
    assert!(
        preview.body.ends_with("&api_key=********"),
        "the key is masked in the preview: {}",
        preview.body
    );
    let delivered = common::wait_for(&db, action.id, ActionStatus::Delivered, Duration::from_secs(20)).await;
    assert_eq!(delivered.reference.as_deref(), Some("SR-000001"));

    let log = open311_log(port);
    assert_eq!(log.len(), 1, "{log:?}");
    let sent = log[0]["body"].as_str().unwrap();
    assert_eq!(
        sent,
        preview.body.replace("api_key=********", "api_key=k-test"),
        "the body is the preview's, with the real key"
    );
    assert_eq!(log[0]["idempotency_key"], preview.key.as_str());
    let headers = log[0]["headers"].as_object().unwrap();
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str().unwrap());
    assert_eq!(content_type, Some("application/x-www-form-urlencoded"));

    // The operator sees the crew's progress: the server closes the request, polling notices.
    common::http(
        port,
        "POST",
        "/_test/close/SR-000001",
        &[("Content-Type", "application/json")],
        br#"{"status_notes":"feeder restored"}"#,
        Duration::from_secs(5),
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let a = store.action(action.id).unwrap().unwrap().dto;
        if a.remote_status.as_deref() == Some("closed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "remote status stayed {:?}",
            a.remote_status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = store.attempts(action.id).unwrap();
    assert_eq!(attempts, vec![(1, "delivered".to_owned(), "SR-000001".to_owned())]);
    assert!(store.verify_audit().unwrap().is_ok());
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_cap_arrive_signed_byte_exact_and_the_alert_is_schema_valid() {
    let xsd = common::repo().join("fixtures/external/cache/cap/CAP-v1.2.xsd");
    assert!(
        xsd.exists(),
        "{} is missing: run fixtures/external/fetch.sh (.ci/setup does)",
        xsd.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _hooks = common::webhook(port, &dir.path().join("hooks"), "hook-secret");
    std::env::set_var("CITYOPS_TEST_HOOK_SECRET", "hook-secret");
    let text = format!(
        "sender = \"cityops@test\"\n[[backends]]\nid = \"rescue\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hooks/notify\"\nsecret = {{ env = \"CITYOPS_TEST_HOOK_SECRET\" }}\n\
         [[backends]]\nid = \"hub\"\nkind = \"cap\"\nurl = \"http://127.0.0.1:{port}/hooks/cap\"\nsecret = {{ env = \"CITYOPS_TEST_HOOK_SECRET\" }}\n"
    );
    let specs = config::parse(Path::new("t.toml"), &text).unwrap();
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(&db, specs, false).unwrap();
    let hostile = "Substation <b>down</b> & \"12\" signals dark";
    let (notify, n) = commit(
        &mut outbox,
        "rescue",
        ActionParams::Notify {
            message: hostile.into(),
        },
    );
    let alert = ActionParams::PublicAlert {
        headline: "Power cut in Kluuvi".into(),
        description: hostile.into(),
        instruction: "Treat dark signals as stop signs.".into(),
        severity: AlertSeverity::Severe,
        expires_minutes: 120,
    };
    // A public alert is dangerous: one confirmation is not enough, and operators cannot send it.
    let req = ActionRequestDto {
        backend: "hub".into(),
        incident: None,
        at: None,
        params: alert.clone(),
    };
    let operator = OperatorDto {
        name: "olli".into(),
        role: OperatorRole::Operator,
    };
    assert!(
        outbox
            .preview(req.clone(), &common::place(), &operator, now_ms())
            .is_err(),
        "operators cannot publish alerts"
    );
    let p = outbox.preview(req, &common::place(), &supervisor(), now_ms()).unwrap();
    assert_eq!(p.confirmations, 2);
    assert!(
        outbox.confirm(&p.token, &supervisor(), None).is_err(),
        "one confirmation is refused"
    );
    assert_eq!(outbox.arm(&p.token, &supervisor()).unwrap(), 2);
    let c = outbox.confirm(&p.token, &supervisor(), None).unwrap();
    let cap = p;

    let n = common::wait_for(&db, n.id, ActionStatus::Delivered, Duration::from_secs(20)).await;
    let c = common::wait_for(&db, c.id, ActionStatus::Delivered, Duration::from_secs(20)).await;
    assert_eq!(n.reference.as_deref(), Some("notify-000001"));
    assert_eq!(c.reference.as_deref(), Some("cap-000001"));
    for (file, preview) in [("notify.ndjson", &notify), ("cap.ndjson", &cap)] {
        let lines = std::fs::read_to_string(dir.path().join("hooks").join(file)).unwrap();
        let lines: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{file}: {lines:?}");
        assert_eq!(lines[0]["body"].as_str().unwrap(), preview.body, "{file}: byte-exact");
        assert_eq!(lines[0]["idempotency_key"], preview.key.as_str());
        let sig = preview
            .headers
            .iter()
            .find(|h| h.name == "X-Cityops-Signature")
            .unwrap();
        assert_eq!(lines[0]["signature"], sig.value.as_str());
    }
    let doc = dir.path().join("alert.xml");
    std::fs::write(&doc, &cap.body).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&doc)
        .output()
        .expect("xmllint (libxml2-utils) is installed");
    assert!(
        out.status.success(),
        "CAP alert is not schema-valid: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cap.body
    );
    assert!(cap.body.contains("<status>Actual</status>"));
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_command_waits_for_the_device_reply() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::mosquitto(dir.path());
    let port = broker.1;
    // A device: answers each command on its reply topic, with the command's key.
    let mut opts = rumqttc::MqttOptions::new("device-sim", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    client.subscribe("city/cmd/#", rumqttc::QoS::AtLeastOnce).unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        for event in conn.iter() {
            let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = event else {
                continue;
            };
            let body = String::from_utf8_lossy(&p.payload).into_owned();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let device = v["device"].as_str().unwrap().to_owned();
            let reply = serde_json::json!({ "key": v["key"], "status": "ok", "detail": format!("{} set", v["command"].as_str().unwrap()) });
            let _ = seen_tx.send((p.topic.clone(), body));
            client
                .publish(
                    format!("city/reply/{device}"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    reply.to_string(),
                )
                .unwrap();
        }
    });
    let text = format!(
        "[[backends]]\nid = \"devices\"\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ncommand_topic = \"city/cmd/{{device}}\"\nresponse_topic = \"city/reply/{{device}}\"\nchoices = [\"flash\"]\ntimeout_ms = 5000\nretry_base_ms = 100\n"
    );
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(&db, config::parse(Path::new("t.toml"), &text).unwrap(), false).unwrap();
    let (preview, action) = commit(
        &mut outbox,
        "devices",
        ActionParams::DeviceCommand {
            device: "signal-1234".into(),
            command: "flash".into(),
        },
    );
    assert_eq!(preview.confirmations, 2, "device commands need a second confirmation");
    assert_eq!(
        preview.destination,
        format!("mqtt://127.0.0.1:{port} city/cmd/signal-1234")
    );
    let a = common::wait_for(&db, action.id, ActionStatus::Delivered, Duration::from_secs(30)).await;
    assert_eq!(a.reference.as_deref(), Some("signal-1234: ok: flash set"));
    let (topic, body) = seen_rx.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(
        (topic.as_str(), body.as_str()),
        ("city/cmd/signal-1234", preview.body.as_str())
    );
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_commands_go_over_tls_with_credentials_and_only_the_devices_reply_counts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::tls::pki(dir.path());
    let passwd = dir.path().join("passwd");
    let made = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&passwd)
        .args(["outbox", "outbox-secret"])
        .status()
        .unwrap();
    assert!(made.success());
    let device_pw = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg(&passwd)
        .args(["device", "device-secret"])
        .status()
        .unwrap();
    assert!(device_pw.success());
    let port = common::free_port();
    let tls = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous false\npassword_file {}\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display(),
        passwd.display()
    );
    let _broker = common::mosquitto_configured(dir.path(), port, &tls);
    // A device and, on the same broker, a forger: any client may publish a reply with the
    // command's key, but only the commanded device's response topic counts.
    let mut opts = rumqttc::MqttOptions::new("device-sim", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_credentials("device", "device-secret");
    let ca = std::fs::read(&pki.ca).unwrap();
    opts.set_transport(rumqttc::Transport::tls(ca, None, None));
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    client.subscribe("city/cmd/#", rumqttc::QoS::AtLeastOnce).unwrap();
    std::thread::spawn(move || {
        for event in conn.iter() {
            let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = event else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
            let device = v["device"].as_str().unwrap().to_owned();
            let forged = serde_json::json!({ "key": v["key"], "status": "ok", "detail": "forged" });
            client
                .publish(
                    "city/reply/another-device",
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    forged.to_string(),
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let genuine = serde_json::json!({ "key": v["key"], "status": "ok", "detail": "genuine" });
            client
                .publish(
                    format!("city/reply/{device}"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    genuine.to_string(),
                )
                .unwrap();
        }
    });
    std::env::set_var("CITYOPS_TEST_MQTT_PASSWORD", "outbox-secret");
    let text = format!(
        "[[backends]]\nid = \"devices\"\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ncommand_topic = \"city/cmd/{{device}}\"\nresponse_topic = \"city/reply/{{device}}\"\n\
         choices = [\"flash\"]\ntimeout_ms = 5000\nretry_base_ms = 100\nusername = \"outbox\"\npassword = {{ env = \"CITYOPS_TEST_MQTT_PASSWORD\" }}\n[backends.tls]\nca = \"ca.pem\"\n"
    );
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(
        &db,
        config::parse(&dir.path().join("backends.toml"), &text).unwrap(),
        false,
    )
    .unwrap();
    let (_, action) = commit(
        &mut outbox,
        "devices",
        ActionParams::DeviceCommand {
            device: "signal-1234".into(),
            command: "flash".into(),
        },
    );
    let a = common::wait_for(&db, action.id, ActionStatus::Delivered, Duration::from_secs(30)).await;
    assert_eq!(
        a.reference.as_deref(),
        Some("signal-1234: ok: genuine"),
        "the forged reply on another topic was taken: {a:?}"
    );
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cot_tasking_reaches_other_tak_clients() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _taky = common::taky(port, dir.path());
    // A field unit's TAK client, connected and registered (takv, contact, group) before the
    // tasking goes out; taky routes the tasking to it by the callsign in <marti><dest>.
    let mut unit = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    unit.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    std::io::Write::write_all(&mut unit, b"<?xml version=\"1.0\"?><event version=\"2.0\" uid=\"UNIT-7\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"2026-11-26T00:00:00Z\" start=\"2026-11-26T00:00:00Z\" stale=\"2030-01-01T00:00:00Z\"><point lat=\"60.17\" lon=\"24.94\" hae=\"0\" ce=\"10\" le=\"10\"/><detail><takv device=\"test\" platform=\"ATAK\" os=\"1\" version=\"4.0\"/><contact callsign=\"UNIT-7\" endpoint=\"*:-1:stcp\"/><__group name=\"Cyan\" role=\"Team Member\"/></detail></event>").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // One backend has the outbox's own TAK client confirm each relay; the other does not.
    let text = format!(
        "[[backends]]\nid = \"tak\"\nkind = \"cot\"\nhost = \"127.0.0.1\"\nport = {port}\nchoices = [\"t-x-i\"]\nconfirm_callsign = \"CITYOPS-OUTBOX\"\ntimeout_ms = 5000\n\
         [[backends]]\nid = \"tak-unconfirmed\"\nkind = \"cot\"\nhost = \"127.0.0.1\"\nport = {port}\nchoices = [\"t-x-i\"]\n"
    );
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(&db, config::parse(Path::new("t.toml"), &text).unwrap(), false).unwrap();
    let (_, unconfirmed) = commit(
        &mut outbox,
        "tak-unconfirmed",
        ActionParams::TaskUnit {
            unit: "UNIT-7".into(),
            task: "t-x-i".into(),
            remarks: "Look at feeder 4".into(),
        },
    );
    let a = common::wait_for(&db, unconfirmed.id, ActionStatus::Sent, Duration::from_secs(20)).await;
    assert_eq!(
        a.reference,
        Some(format!("cityops-{}", unconfirmed.key)),
        "a finished write is only sent"
    );
    let (preview, action) = commit(
        &mut outbox,
        "tak",
        ActionParams::TaskUnit {
            unit: "UNIT-7".into(),
            task: "t-x-i".into(),
            remarks: "Check feeder 3".into(),
        },
    );
    assert!(
        preview.body.contains("<dest callsign=\"CITYOPS-OUTBOX\"/>"),
        "{}",
        preview.body
    );
    let a = common::wait_for(&db, action.id, ActionStatus::Delivered, Duration::from_secs(20)).await;
    let uid = format!("cityops-{}", preview.key);
    assert_eq!(a.reference.as_deref(), Some(uid.as_str()));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while !String::from_utf8_lossy(&got).contains(&uid) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the unit never saw the tasking: {}",
            String::from_utf8_lossy(&got)
        );
        let n = unit.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("Check feeder 3"));
}

/// Each fault in turn, on the path to the Open311 server: every action is created exactly once.
#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_between_us_and_open311_still_deliver_each_action_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let server = common::open311(port, &dir.path().join("open311"));
    let proxy = Proxy::start(([127, 0, 0, 1], port).into());
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(
        &db,
        open311_backends(proxy.port(), "timeout_ms = 1500\nretry_budget = 20"),
        false,
    )
    .unwrap();
    let store = Store::open(&db).unwrap();
    let fault = |body: &str| {
        common::http(
            port,
            "POST",
            "/_test/fault",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            Duration::from_secs(5),
        )
        .unwrap();
    };
    let mut ids = Vec::new();
    type Arm<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Arm)> = vec![
        ("500s", Box::new(|| fault(r#"{"mode":"status500","count":2}"#))),
        (
            "retry-after",
            Box::new(|| fault(r#"{"mode":"retry_after","count":1,"seconds":1}"#)),
        ),
        (
            "slow answer past our timeout (created, ack lost)",
            Box::new(|| fault(r#"{"mode":"slow","count":1,"seconds":3}"#)),
        ),
        (
            "reset before an answer",
            Box::new(|| fault(r#"{"mode":"reset","count":1}"#)),
        ),
        ("hang", Box::new(|| fault(r#"{"mode":"hang","count":1,"seconds":3}"#))),
        (
            "proxy resets after the server answered",
            Box::new(|| proxy.set_mode(Mode::ResetAfterRequest)),
        ),
        (
            "proxy loses the request",
            Box::new(|| proxy.set_mode(Mode::ResetBeforeForward)),
        ),
        ("proxy blackholes", Box::new(|| proxy.set_mode(Mode::Blackhole))),
    ];
    for (name, arm) in &cases {
        arm();
        let (_, a) = commit(&mut outbox, "works", service_request(name));
        // Let the fault bite at least once before the path heals.
        let started = Instant::now();
        while store.action(a.id).unwrap().unwrap().dto.attempts < 1 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.set_mode(Mode::Pass);
        let done = common::wait_for(&db, a.id, ActionStatus::Delivered, Duration::from_secs(30)).await;
        assert!(
            done.reference.as_deref().unwrap_or("").starts_with("SR-"),
            "{name}: {done:?}"
        );
        ids.push(a.id);
    }
    // The server down for a while, seen directly (not through the proxy, which would accept the
    // connection): actions queue, and the outbox says plainly that the backend is unreachable.
    drop(outbox);
    let direct = open311_backends(port, "").into_iter().map(|mut b| {
        b.id = "direct".into();
        b
    });
    let mut outbox = Outbox::start(&db, direct.collect(), false).unwrap();
    drop(server);
    let (_, a) = commit(&mut outbox, "direct", service_request("server down"));
    let started = Instant::now();
    while store.action(a.id).unwrap().unwrap().dto.attempts < 2 {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let view = outbox.view().unwrap();
    assert!(
        view.offline,
        "every backend with queued actions is unreachable: {view:?}"
    );
    let waiting = store.action(a.id).unwrap().unwrap().dto.status;
    assert!(
        matches!(waiting, ActionStatus::Queued | ActionStatus::Sending),
        "with the server down the action waits, it is {waiting:?}"
    );
    let _server = common::open311(port, &dir.path().join("open311"));
    common::wait_for(&db, a.id, ActionStatus::Delivered, Duration::from_secs(30)).await;
    ids.push(a.id);

    let created = created_per_key(port);
    for id in ids {
        let key = store.action(id).unwrap().unwrap().dto.key;
        assert_eq!(
            created.get(&key).map(Vec::len),
            Some(1),
            "action {id} ({key}) created {:?}",
            created.get(&key)
        );
    }
    assert_eq!(created.len(), cases.len() + 1, "nothing invented: {created:?}");
    let answer = common::http(port, "GET", "/requests.json", &[], b"", Duration::from_secs(5)).unwrap();
    assert_eq!(
        answer.json().as_array().unwrap().len(),
        cases.len() + 1,
        "the server holds one request per action"
    );
}

#[cfg(feature = "peers")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_fails_the_action_and_the_operator_can_retry_or_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // The server accepts only another key: 403, which no resend can fix.
    let _server = common::open311_with_key(port, &dir.path().join("open311"), Some("other"));
    let db = dir.path().join("c.db");
    let mut outbox = Outbox::start(&db, open311_backends(port, ""), false).unwrap();
    let store = Store::open(&db).unwrap();
    let (_, a) = commit(&mut outbox, "works", service_request("wrong key"));
    let failed = common::wait_for(&db, a.id, ActionStatus::Failed, Duration::from_secs(20)).await;
    assert!(failed.last_error.as_deref().unwrap_or("").contains("403"), "{failed:?}");
    assert_eq!(failed.attempts, 1, "a refusal is not retried");
    outbox.retry(a.id, &supervisor()).unwrap();
    common::wait_for(&db, a.id, ActionStatus::Failed, Duration::from_secs(20)).await;
    assert_eq!(store.action(a.id).unwrap().unwrap().dto.attempts, 2);
    outbox.cancel(a.id, &supervisor()).unwrap();
    assert_eq!(store.action(a.id).unwrap().unwrap().dto.status, ActionStatus::Cancelled);
    assert!(
        outbox.cancel(a.id, &supervisor()).is_err(),
        "a cancelled action cannot be cancelled again"
    );
    assert!(outbox.retry(a.id, &supervisor()).is_err(), "nor retried");
    let actions: Vec<String> = store.audit_trail().unwrap().into_iter().map(|e| e.action).collect();
    for expected in ["dispatch", "attempt", "failed", "retry", "cancel"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
}

/// `cityops dispatch` killed with SIGKILL in the middle of a burst of 200 actions, then
/// `cityops send`: every action committed before the kill reaches the server exactly once, and
/// the server holds nothing that was not committed.
#[cfg(feature = "peers")]
#[test]
fn kill_9_during_a_burst_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _server = common::open311(port, &dir.path().join("open311"));
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        format!("[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = {{ env = \"CITYOPS_TEST_OPEN311_KEY\" }}\nretry_base_ms = 50\n"),
    )
    .unwrap();
    let db = dir.path().join("c.db");
    let bin = env!("CARGO_BIN_EXE_cityops");
    let params = r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"burst"}"#;
    let mut rng_state = (std::process::id() as u64).wrapping_mul(6364136223846793005) ^ now_ms() as u64;
    let mut printed = Vec::new();
    // Three kills at pseudo-random points, then a clean run.
    for round in 0..3 {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(300 + (rng_state >> 33) % 1500);
        let mut child = Command::new(bin)
            .args(["dispatch", "--backends"])
            .arg(&backends)
            .arg("--db")
            .arg(&db)
            .args([
                "--backend",
                "works",
                "--params",
                params,
                "--at",
                "24.9445,60.1709",
                "--count",
                "200",
            ])
            .env("CITYOPS_TEST_OPEN311_KEY", "k")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let keys = reader.join().unwrap();
        eprintln!(
            "round {round}: killed after {kill_after:?}, {} keys printed",
            keys.len()
        );
        printed.extend(keys);
    }
    let status = Command::new(bin)
        .args(["send", "--backends"])
        .arg(&backends)
        .arg("--db")
        .arg(&db)
        .args(["--timeout", "120"])
        .env("CITYOPS_TEST_OPEN311_KEY", "k")
        .status()
        .unwrap();
    assert!(status.success());

    let store = Store::open(&db).unwrap();
    let committed: Vec<ActionDto> = store.actions(u32::MAX).unwrap();
    let committed_keys: std::collections::BTreeSet<String> = committed.iter().map(|a| a.key.clone()).collect();
    for k in &printed {
        assert!(
            committed_keys.contains(k),
            "key {k} was printed as committed but is not in the store"
        );
    }
    assert!(
        committed.iter().all(|a| a.status == ActionStatus::Delivered),
        "all delivered after the restart"
    );
    let created = created_per_key(port);
    for k in &committed_keys {
        assert_eq!(
            created.get(k).map(Vec::len),
            Some(1),
            "key {k} created {:?} times",
            created.get(k)
        );
    }
    for k in created.keys() {
        assert!(
            committed_keys.contains(k),
            "the server holds {k}, which was never committed"
        );
    }
    // In order: the server created the requests in the order the actions were committed.
    let id_of: std::collections::BTreeMap<&str, i64> = committed.iter().map(|a| (a.key.as_str(), a.id)).collect();
    let creation_order: Vec<i64> = open311_log(port)
        .iter()
        .filter_map(|e| e["created"].as_str().and(e["idempotency_key"].as_str()))
        .map(|k| id_of[k])
        .collect();
    let mut sorted = creation_order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(creation_order, sorted, "requests were created out of commit order");
    assert!(!printed.is_empty());
    assert!(store.verify_audit().unwrap().is_ok());
}

/// A replayed scenario is an exercise: actions from the real engine are previewed, committed,
/// marked as exercise and recorded, and not one connection reaches the configured backends,
/// although they are listening.
#[test]
fn a_replayed_scenario_sends_nothing_over_the_network() {
    use cityops_engine::dto::LifecycleStatus;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    // Listeners where every backend points; each counts the connections it accepts.
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for l in listeners {
        let accepted = accepted.clone();
        l.set_nonblocking(false).unwrap();
        std::thread::spawn(move || {
            for _ in l.incoming() {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    std::env::set_var("CITYOPS_TEST_EXERCISE_SECRET", "s");
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        format!(
            "[[backends]]\nid = \"works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{}\"\nchoices = [\"utility-crew\"]\n\
             [[backends]]\nid = \"hub\"\nkind = \"cap\"\nurl = \"http://127.0.0.1:{}/cap\"\nsecret = {{ env = \"CITYOPS_TEST_EXERCISE_SECRET\" }}\n\
             [[backends]]\nid = \"devices\"\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {}\ncommand_topic = \"cmd/{{device}}\"\n",
            ports[0], ports[1], ports[2]
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (engine, diffs) = common::demo_played_to_end(&dir.path().join("e.db"), backends).await;
        let outage = diffs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| d.incidents.as_ref())
            .flat_map(|i| i.upserts.clone())
            .rev()
            .find(|e| e.incident_type == "power_outage")
            .unwrap();
        let request = |backend: &str, params: ActionParams| ActionRequestDto {
            backend: backend.into(),
            incident: Some(outage.id.clone()),
            at: None,
            params,
        };
        assert!(
            engine
                .preview_action(request("works", service_request("crew")))
                .await
                .is_err(),
            "nobody signed in"
        );
        Store::open(&dir.path().join("e.db"))
            .unwrap()
            .roster_set("Trainee", "trainer", Some("7531"), "test", "system", now_ms())
            .unwrap();
        engine
            .sign_in("Trainee".into(), OperatorRole::Trainer, Some("7531".into()))
            .await
            .unwrap();
        let backends = engine.backends().await.unwrap();
        assert!(backends.iter().all(|b| b.exercise), "{backends:?}");

        let crew = engine
            .preview_action(request("works", service_request("Feeder trip")))
            .await
            .unwrap();
        assert!(crew.exercise && crew.body.contains("lat=60.1"), "{}", crew.body);
        let crew = engine.confirm_action(crew.token).await.unwrap();
        let alert = ActionParams::PublicAlert {
            headline: "Power cut".into(),
            description: "Signals dark".into(),
            instruction: String::new(),
            severity: AlertSeverity::Severe,
            expires_minutes: 60,
        };
        let alert = engine.preview_action(request("hub", alert)).await.unwrap();
        assert!(
            alert.body.contains("<status>Exercise</status>") && alert.body.contains("<areaDesc>Power outage"),
            "{}",
            alert.body
        );
        engine.arm_action(alert.token.clone()).await.unwrap();
        engine.confirm_action(alert.token).await.unwrap();
        let cmd = engine
            .preview_action(request(
                "devices",
                ActionParams::DeviceCommand {
                    device: "signal-1".into(),
                    command: "flash".into(),
                },
            ))
            .await
            .unwrap();
        engine.arm_action(cmd.token.clone()).await.unwrap();
        engine.confirm_action(cmd.token).await.unwrap();

        let started = Instant::now();
        loop {
            let view = engine.outbox().await.unwrap();
            if view.actions.len() == 3 && view.actions.iter().all(|a| a.status == ActionStatus::Delivered) {
                assert!(
                    view.actions
                        .iter()
                        .all(|a| a.exercise && a.reference.as_deref() == Some("exercise: recorded, not sent")),
                    "{view:?}"
                );
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{view:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let detail = engine.incident_detail(outage.id.clone()).await.unwrap();
        assert_eq!(
            detail.entry.status,
            LifecycleStatus::Dispatched,
            "sending a crew marks the incident dispatched"
        );
        assert!(
            diffs.lock().unwrap().iter().any(|d| d
                .outbox
                .as_ref()
                .is_some_and(|o| o.actions.iter().any(|a| a.id == crew.id))),
            "the outbox reached subscribers"
        );
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an exercise opened a connection to a backend"
    );
}
