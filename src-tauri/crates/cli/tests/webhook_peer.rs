//! The webhook receiver the dispatch tests deliver to (Debian's `webhook` 2.8, started by
//! `tests/peers/webhook/run.sh`), the CAP 1.2 schema from `fixtures/external/fetch.sh`, and
//! the fault proxy (`common/proxy.rs`).
//!
//! The receiver must record exactly what was sent and refuse what a real agency's receiver
//! would refuse: a body whose HMAC-SHA256 does not match `X-Cityops-Signature`, or a request
//! without an `Idempotency-Key`. A real CAP 1.2 alert goes through the `cap` hook byte for byte
//! and still validates against the OASIS schema afterwards.
// Some tests here are in the "peers" tier (`cargo test --features peers`); without it their
// helpers are unused.
#![cfg_attr(not(feature = "peers"), allow(dead_code, unused_imports))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::{free_port, http, repo, webhook, HttpAnswer};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "webhook-test-secret";
const T: Duration = Duration::from_secs(10);

/// "sha256=" + the hex HMAC-SHA256 of `body`, the header value the receiver checks.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn post(
    port: u16,
    hook: &str,
    content_type: &str,
    signature: Option<&str>,
    key: Option<&str>,
    body: &[u8],
) -> std::io::Result<HttpAnswer> {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(s) = signature {
        headers.push(("X-Cityops-Signature", s));
    }
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    http(port, "POST", &format!("/hooks/{hook}"), &headers, body, T)
}

fn records(dir: &Path, hook: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{hook}.ndjson")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[cfg(feature = "peers")]
#[test]
fn webhook_records_signed_deliveries_byte_exact_and_refuses_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("webhook");
    let port = free_port();
    let _peer = webhook(port, &dir, SECRET);

    // Escapes, non-ASCII and no trailing newline: the record must keep every byte.
    let body = "{\"action\":\"notify\",\"text\":\"Myrsky \\u00e4 – \\\"katkos\\\"\\n\",\"n\":1}".as_bytes();
    let sig = signature(SECRET, body);
    let ok = post(port, "notify", "application/json", Some(&sig), Some("idem-1"), body).unwrap();
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.body, b"notify-000001", "the reference the sender stores");
    let rec = records(&dir, "notify");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["seq"], 1);
    assert_eq!(rec[0]["idempotency_key"], "idem-1");
    assert_eq!(rec[0]["signature"], sig.as_str());
    assert_eq!(rec[0]["content_type"], "application/json");
    assert_eq!(rec[0]["body"].as_str().unwrap().as_bytes(), body);

    // Refused with 400 and not recorded: a wrong signature, a signature of other bytes, one
    // without its "sha256=" prefix, no signature, no key, an empty key.
    let bare = sig.trim_start_matches("sha256=").to_string();
    let other = signature("another-secret", body);
    let cases: [(Option<&str>, Option<&str>); 6] = [
        (Some(&other), Some("idem-2")),
        (Some(&signature(SECRET, b"{}")), Some("idem-2")),
        (Some(&bare), Some("idem-2")),
        (None, Some("idem-2")),
        (Some(&sig), None),
        (Some(&sig), Some("")),
    ];
    for (s, k) in cases {
        let refused = post(port, "notify", "application/json", s, k, body).unwrap();
        assert_eq!(
            refused.status,
            400,
            "signature {s:?}, key {k:?}: {}",
            String::from_utf8_lossy(&refused.body)
        );
    }
    assert_eq!(records(&dir, "notify").len(), 1);

    // A duplicate delivery is recorded again, so a test can see it.
    let dup = post(port, "notify", "application/json", Some(&sig), Some("idem-1"), body).unwrap();
    assert_eq!((dup.status, dup.body.as_slice()), (200, b"notify-000002".as_slice()));
    let keys: Vec<Value> = records(&dir, "notify")
        .iter()
        .map(|r| r["idempotency_key"].clone())
        .collect();
    assert_eq!(keys, ["idem-1", "idem-1"]);

    // The alert hub: a real CAP 1.2 alert (IPAWS, 450 KB with a signature and embedded
    // audio: larger than one command-line argument may be) is recorded byte for byte.
    let cap_file = common::samples().join("cap/ipaws-5ea321f39fc226a7b44b6874.xml");
    let cap = std::fs::read(&cap_file).unwrap_or_else(|e| panic!("{}: {e} (fixtures/samples)", cap_file.display()));
    let cap_sig = signature(SECRET, &cap);
    let sent = post(
        port,
        "cap",
        "application/cap+xml",
        Some(&cap_sig),
        Some("alert-1"),
        &cap,
    )
    .unwrap();
    assert_eq!(
        (sent.status, sent.body.as_slice()),
        (200, b"cap-000001".as_slice()),
        "{}",
        String::from_utf8_lossy(&sent.body)
    );
    assert_eq!(
        post(
            port,
            "cap",
            "application/cap+xml",
            Some(&signature(SECRET, b"x")),
            Some("alert-2"),
            &cap
        )
        .unwrap()
        .status,
        400
    );
    let rec = records(&dir, "cap");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["content_type"], "application/cap+xml");
    let received = rec[0]["body"].as_str().unwrap().as_bytes();
    assert!(received == cap.as_slice(), "the CAP body was altered");

    // What the hub received is still a valid CAP 1.2 document (xmllint, the OASIS schema).
    let xsd = repo().join("fixtures/external/cache/cap/CAP-v1.2.xsd");
    assert!(
        xsd.is_file(),
        "{} is missing: run fixtures/external/fetch.sh (.ci/setup does)",
        xsd.display()
    );
    let received_file = tmp.path().join("received-cap.xml");
    std::fs::write(&received_file, received).unwrap();
    let lint = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&received_file)
        .output()
        .expect("xmllint runs (Debian libxml2-utils; .ci/setup installs it)");
    assert!(lint.status.success(), "{}", String::from_utf8_lossy(&lint.stderr));
}

#[cfg(feature = "peers")]
#[test]
fn proxy_resets_after_delivery_to_the_real_receiver() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("webhook");
    let port = free_port();
    let _peer = webhook(port, &dir, SECRET);
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)));
    let body = br#"{"action":"notify","n":2}"#;
    let sig = signature(SECRET, body);

    // The receiver records the delivery, the sender only sees a reset: "ack lost".
    proxy.set_mode(Mode::ResetAfterRequest);
    let lost = post(
        proxy.port(),
        "notify",
        "application/json",
        Some(&sig),
        Some("idem-9"),
        body,
    )
    .unwrap_err();
    assert_eq!(lost.kind(), std::io::ErrorKind::ConnectionReset, "{lost}");
    assert_eq!(records(&dir, "notify").len(), 1);

    // The sender's retry passes and is visible as a second record with the same key.
    proxy.set_mode(Mode::Pass);
    let retry = post(
        proxy.port(),
        "notify",
        "application/json",
        Some(&sig),
        Some("idem-9"),
        body,
    )
    .unwrap();
    assert_eq!(
        (retry.status, retry.body.as_slice()),
        (200, b"notify-000002".as_slice())
    );
    let rec = records(&dir, "notify");
    assert_eq!(rec[1]["body"].as_str().unwrap().as_bytes(), body);
    assert_eq!((proxy.connections(), proxy.forwarded()), (2, 2));
}

/// A one-line upstream that answers "ok" to every request and counts them.
fn tiny_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
            // The proxy must ask for one exchange per connection.
            let answer = if text.contains("\r\nconnection: close\r\n") && !text.contains("keep-alive") {
                "ok"
            } else {
                "no"
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{answer}"
            );
        }
    });
    (addr, seen)
}

#[test]
fn proxy_modes() {
    let (upstream, seen) = tiny_upstream();
    let proxy = Proxy::start(upstream);
    let get = |timeout| http(proxy.port(), "GET", "/", &[("Connection", "keep-alive")], b"", timeout);

    let a = get(T).unwrap();
    assert_eq!((a.status, a.body.as_slice()), (200, b"ok".as_slice()));

    proxy.set_mode(Mode::Refuse);
    assert!(get(T).is_err());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "a refused request never reaches the peer"
    );

    proxy.set_mode(Mode::ResetBeforeForward);
    assert_eq!(get(T).unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    proxy.set_mode(Mode::ResetAfterRequest);
    assert_eq!(get(T).unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(seen.load(Ordering::SeqCst), 2, "delivered, then reset");

    proxy.set_mode(Mode::Delay(Duration::from_millis(400)));
    let t = Instant::now();
    assert_eq!(get(T).unwrap().body, b"ok");
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert!(
        get(Duration::from_millis(100)).is_err(),
        "a client with a shorter timeout gives up"
    );

    proxy.set_mode(Mode::Blackhole);
    let t = Instant::now();
    assert!(get(Duration::from_millis(300)).is_err());
    assert!(t.elapsed() >= Duration::from_millis(300));

    proxy.set_mode(Mode::Pass);
    assert_eq!(get(T).unwrap().body, b"ok");
    assert_eq!(proxy.connections(), 8);
    assert_eq!(proxy.forwarded(), 5);
}
