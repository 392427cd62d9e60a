//! Real peers the live-feed tests start on 127.0.0.1: Debian's mosquitto and taky (PyPI).
//! Each test binary uses some of these, so the unused ones are not warnings there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mosquitto is not installed (Debian package mosquitto; .ci/setup installs it)");
    for _ in 0..100 {
        let mut child = Command::new(bin).arg("-c").arg(&conf).stderr(Stdio::null()).spawn().unwrap();
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
