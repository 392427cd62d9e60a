//! A TCP gate for outage tests: it forwards every connection to a real peer on loopback until
//! it is cut, then aborts every open connection and stops listening (new connections are
//! refused) until it is restored on the same port, the way a dead link or a rejecting firewall
//! looks to cityops. Unlike `proxy` it knows no
//! protocol, so it stands in front of MQTT brokers as well as HTTP servers. Plain `std::net`
//! and threads, test-only.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every relayed connection, to shut down when the gate is cut.
    open: Mutex<Vec<TcpStream>>,
}

/// The gate; it stops accepting when dropped.
pub struct Gate {
    shared: Arc<Shared>,
    port: u16,
}

impl Gate {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Gate {
        let bind = |port: u16| {
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        let first = bind(0);
        let port = first.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        thread::spawn(move || {
            let mut listener = Some(first);
            while !s.stop.load(Ordering::SeqCst) {
                // Cut: nobody listens, so connections are refused. (std binds with SO_REUSEADDR,
                // so the port can be taken again at once.)
                if s.cut.load(Ordering::SeqCst) {
                    listener = None;
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = listener.get_or_insert_with(|| bind(port));
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        let mut open = s.open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        drop(open);
                        relay(client.try_clone().unwrap(), server.try_clone().unwrap());
                        relay(server, client);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Gate { shared, port }
    }

    /// The port to point cityops at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The link goes down: open connections are aborted, new ones refused.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// The link is back.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// Copies `from` to `to` until either side closes.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
