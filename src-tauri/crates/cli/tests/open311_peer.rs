//! The Open311 GeoReport v2 test peer (`tests/peers/open311/server.py`) that the dispatch
//! tests deliver service requests to. It is written from the specification, so it is checked
//! here by someone else's reading of the specification: PyPI `georeport` 0.3.1
//! (`tests/peers/open311/check_client.sh`). The rest checks, over plain HTTP, what the outbox
//! tests rely on: api_key and location validation with GeoReport error arrays, the
//! `Idempotency-Key` (a repeat returns the original and creates nothing, also after a restart),
//! persistence across a restart, and the `/_test/` log, close and fault endpoints.
//!
//! There is no skip: when Python or pip cannot set the client up, the test fails and says why.
// The "peers" tier (`cargo test --features peers`): this file needs real servers, root or
// fetched data, which a plain `cargo test` in a fresh clone does not have.
#![cfg(feature = "peers")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, http, open311_with_key, repo, HttpAnswer};
use serde_json::Value;

const KEY: &str = "test-key-311";
const T: Duration = Duration::from_secs(10);

fn form_post(port: u16, key: Option<&str>, body: &str) -> std::io::Result<HttpAnswer> {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    http(port, "POST", "/requests.json", &headers, body.as_bytes(), T)
}

fn get(port: u16, target: &str) -> HttpAnswer {
    http(port, "GET", target, &[], b"", T).unwrap()
}

fn json_post(port: u16, target: &str, body: &str) -> HttpAnswer {
    http(
        port,
        "POST",
        target,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        T,
    )
    .unwrap()
}

fn log(port: u16) -> Vec<Value> {
    get(port, "/_test/log").json().as_array().unwrap().clone()
}

/// Asserts a GeoReport error array with this code.
fn assert_error(a: &HttpAnswer, status: u16) {
    assert_eq!(a.status, status, "{}", String::from_utf8_lossy(&a.body));
    let e = a.json();
    assert_eq!(e[0]["code"], status, "{e}");
    assert!(e[0]["description"].as_str().is_some_and(|d| !d.is_empty()), "{e}");
}

const CREW: &str = "api_key=test-key-311&service_code=utility-crew&lat=60.1699&long=24.9384\
&description=Feeder+F12+tripped&attribute%5Bpriority%5D=urgent";

#[test]
fn open311_server_against_an_independent_client_and_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("open311");
    let port = free_port();
    let server = open311_with_key(port, &state, Some(KEY));

    // The independent client: services, a service definition, a posted request read back.
    let out = Command::new("bash")
        .arg(repo().join("tests/peers/open311/check_client.sh"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(KEY)
        .output()
        .expect("bash runs check_client.sh");
    assert!(
        out.status.success(),
        "the georeport client check failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("open311 client check: ok"));

    // Validation answers with GeoReport error arrays.
    assert_error(
        &form_post(port, None, "api_key=wrong&service_code=utility-crew&lat=60&long=24").unwrap(),
        403,
    );
    assert_error(
        &form_post(port, None, "service_code=utility-crew&lat=60&long=24").unwrap(),
        403,
    );
    assert_error(
        &form_post(port, None, "api_key=test-key-311&service_code=nope&lat=60&long=24").unwrap(),
        404,
    );
    assert_error(
        &form_post(port, None, "api_key=test-key-311&service_code=public-works").unwrap(),
        400,
    );
    assert_error(&get(port, "/requests/SR-999999.json"), 404);

    // Idempotency: the repeat answers the original and creates nothing.
    let first = form_post(port, Some("key-1"), CREW).unwrap();
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let id = first.json()[0]["service_request_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("SR-"), "{id}");
    let again = form_post(port, Some("key-1"), CREW).unwrap();
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = form_post(
        port,
        Some("key-1"),
        "api_key=test-key-311&service_code=public-works&address_string=X",
    )
    .unwrap();
    assert_error(&other, 422);

    let request = get(port, &format!("/requests/{id}.json")).json();
    let r = &request[0];
    assert_eq!(r["service_request_id"], id.as_str());
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "utility-crew");
    assert_eq!(r["service_name"], "Utility field crew");
    assert_eq!(r["description"], "Feeder F12 tripped");
    assert_eq!((r["lat"].as_f64(), r["long"].as_f64()), (Some(60.1699), Some(24.9384)));

    // The test log: every POST in order, with its key, headers, raw body, outcome.
    let entries: Vec<Value> = log(port)
        .into_iter()
        .filter(|e| e["idempotency_key"] == "key-1")
        .collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0]["created"], id.as_str());
    assert_eq!(entries[0]["status"], 201);
    assert_eq!(entries[0]["body"], CREW);
    assert_eq!(
        entries[0]["headers"]["Content-Type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        (entries[1]["created"].clone(), entries[1]["status"].clone()),
        (Value::Null, Value::from(201))
    );
    assert_eq!(entries[2]["status"], 422);

    // Closing through the test endpoint shows in the request and in the status filter.
    let closed = http(
        port,
        "POST",
        &format!("/_test/close/{id}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"status_notes=Crew+restored+the+feeder",
        T,
    )
    .unwrap();
    assert_eq!(closed.status, 200);
    let r = get(port, &format!("/requests/{id}.json")).json();
    assert_eq!(
        (r[0]["status"].as_str(), r[0]["status_notes"].as_str()),
        (Some("closed"), Some("Crew restored the feeder"))
    );
    let closed_ids: Vec<Value> = get(port, "/requests.json?status=closed")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_request_id"].clone())
        .collect();
    assert_eq!(closed_ids, vec![Value::from(id.as_str())]);

    // A restart on the same folder keeps requests, keys and the log.
    let before = get(port, "/requests.json").json().as_array().unwrap().len();
    drop(server);
    let port2 = free_port();
    let _server = open311_with_key(port2, &state, Some(KEY));
    assert_eq!(
        get(port2, &format!("/requests/{id}.json")).json()[0]["status"],
        "closed"
    );
    let replay = form_post(port2, Some("key-1"), CREW).unwrap();
    assert_eq!((replay.status, &replay.body), (201, &first.body));
    assert_eq!(get(port2, "/requests.json").json().as_array().unwrap().len(), before);
    assert_eq!(log(port2).iter().filter(|e| e["idempotency_key"] == "key-1").count(), 4);

    faults(port2, &state);
}

/// Each injected fault behaves as documented in tests/peers/README.md.
fn faults(port: u16, state: &Path) {
    let fault = |spec: &str| assert_eq!(json_post(port, "/_test/fault", spec).status, 200);
    let count = || get(port, "/requests.json").json().as_array().unwrap().len();
    let body = |n: u32| format!("api_key=test-key-311&service_code=public-works&address_string=Fault+{n}");

    let n0 = count();
    fault(r#"{"mode":"status500","count":2}"#);
    assert_error(&form_post(port, Some("f1"), &body(1)).unwrap(), 500);
    assert_error(&form_post(port, Some("f1"), &body(1)).unwrap(), 500);
    assert_eq!(
        form_post(port, Some("f1"), &body(1)).unwrap().status,
        201,
        "the fault covers two requests only"
    );

    fault(r#"{"mode":"retry_after","count":1,"seconds":7}"#);
    let busy = form_post(port, Some("f2"), &body(2)).unwrap();
    assert_error(&busy, 503);
    assert_eq!(busy.header("retry-after"), Some("7"));

    fault(r#"{"mode":"reset","count":1}"#);
    let reset = form_post(port, Some("f3"), &body(3)).unwrap_err();
    assert_eq!(reset.kind(), std::io::ErrorKind::ConnectionReset, "{reset}");

    fault(r#"{"mode":"hang","count":1,"seconds":1}"#);
    let t = Instant::now();
    assert!(
        form_post(port, Some("f4"), &body(4)).is_err(),
        "a hang closes without an answer"
    );
    assert!(t.elapsed() >= Duration::from_millis(900));

    // Slow: the request is created at once, the answer comes after the client gave up.
    fault(r#"{"mode":"slow","count":1,"seconds":2}"#);
    let late = http(
        port,
        "POST",
        "/requests.json",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Idempotency-Key", "f5"),
        ],
        body(5).as_bytes(),
        Duration::from_millis(300),
    );
    assert!(late.is_err(), "the client timed out");
    let retried = form_post(port, Some("f5"), &body(5)).unwrap();
    assert_eq!(retried.status, 201);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));

    fault(r#"{"mode":"status500","count":5}"#);
    fault(r#"{"mode":"none"}"#);
    assert_eq!(form_post(port, Some("f6"), &body(6)).unwrap().status, 201);

    // f1, f5 and f6 created one request each; the faulted attempts created nothing.
    assert_eq!(count(), n0 + 3, "state in {}", state.display());
    let entries = log(port);
    let faulted: Vec<(&str, &Value)> = entries
        .iter()
        .filter(|e| !e["fault"].is_null())
        .map(|e| (e["fault"].as_str().unwrap(), &e["created"]))
        .collect();
    let modes: Vec<&str> = faulted.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        modes,
        ["status500", "status500", "retry_after", "reset", "hang", "slow"]
    );
    let f5 = entries
        .iter()
        .find(|e| e["idempotency_key"] == "f5" && e["fault"] == "slow")
        .unwrap();
    assert!(f5["created"].as_str().is_some_and(|c| c.starts_with("SR-")), "{f5}");
    assert!(faulted[..5].iter().all(|(_, created)| created.is_null()));
}
