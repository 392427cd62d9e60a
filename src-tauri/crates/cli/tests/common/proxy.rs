//! A controllable HTTP/1.1 fault proxy for the dispatch tests: it sits between the engine and a
//! real peer on loopback and, per request, passes, refuses, resets, delays or swallows it.
//! Plain `std::net` and threads, test-only.
//!
//! Every request gets its own upstream connection and the proxy closes the client connection
//! after one exchange (it rewrites the request's `Connection` header to `close`, so the peer's
//! answer says `close` too and clients do not reuse the connection). That way a client's
//! connection pool cannot carry a request past a mode change: each request sees the mode that
//! was set when it arrived. Request bodies must have a `Content-Length` (chunked request bodies
//! are answered 501), which is what reqwest sends for a body it knows.
//!
//! Resets use no socket option (std cannot set `SO_LINGER`): the request is only *peeked*, not
//! read, so closing the socket with those bytes still unread makes the kernel abort the
//! connection with a TCP RST, which the client sees as "connection reset by peer".

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the proxy does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward the request and relay the answer.
    Pass,
    /// Accept the connection and abort it (RST) as soon as the client has sent something;
    /// nothing reaches the peer.
    Refuse,
    /// Forward the request, wait for the peer's whole answer, drop it and abort the client's
    /// connection (RST): the request was delivered but the client never learns it.
    ResetAfterRequest,
    /// Receive the whole request and abort the connection (RST) without forwarding it: the
    /// request is lost in transit.
    ResetBeforeForward,
    /// Forward the request, receive the peer's answer, then wait this long before relaying it
    /// (delivered; the acknowledgement is late, maybe later than the client's timeout).
    Delay(Duration),
    /// Accept and read the request, never forward it and never answer; the connection stays
    /// open until the client gives up (or the proxy is dropped).
    Blackhole,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    stop: AtomicBool,
    connections: AtomicUsize,
    forwarded: AtomicUsize,
}

/// The proxy; it stops accepting when dropped.
pub struct Proxy {
    shared: Arc<Shared>,
    port: u16,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`, in [`Mode::Pass`].
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let mode = *accept_shared.mode.lock().unwrap();
                let conn_shared = accept_shared.clone();
                thread::spawn(move || {
                    // A failing exchange only ends that connection; the client sees the error.
                    let _ = serve(stream, mode, &conn_shared);
                });
            }
        });
        Proxy { shared, port }
    }

    /// The loopback port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mode for connections accepted from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests forwarded to the peer so far (whatever happened to the answer).
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How long the proxy waits for a client's request or a peer's answer before giving up.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn serve(mut client: TcpStream, mode: Mode, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    match mode {
        Mode::Refuse => {
            // Wait for the first bytes so that they are unread when the socket closes (RST).
            let mut one = [0u8; 1];
            let _ = client.peek(&mut one);
            Ok(())
        }
        Mode::ResetBeforeForward => {
            let _ = peek_request(&client)?;
            Ok(())
        }
        Mode::ResetAfterRequest => {
            let request = peek_request(&client)?;
            let Some(request) = request else { return Ok(()) };
            let _answer = exchange(&request, shared)?;
            // `client` is dropped here with the request still unread: RST, no answer.
            Ok(())
        }
        Mode::Blackhole => {
            let mut sink = [0u8; 8192];
            client.set_read_timeout(Some(Duration::from_millis(200)))?;
            loop {
                match client.read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => return Err(e),
                }
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        }
        Mode::Pass | Mode::Delay(_) => {
            let Some(request) = read_request(&mut client)? else {
                let _ =
                    client.write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return Ok(());
            };
            let answer = exchange(&request, shared)?;
            if let Mode::Delay(d) = mode {
                thread::sleep(d);
            }
            client.write_all(&answer)?;
            let _ = client.shutdown(Shutdown::Write);
            Ok(())
        }
    }
}

/// Sends one request to the peer with `Connection: close` and returns its whole answer.
fn exchange(request: &[u8], shared: &Shared) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, IO_TIMEOUT)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.write_all(&with_connection_close(request))?;
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// The length of a complete request at the start of `buf` (headers and `Content-Length` body),
/// `Some(None)` for a chunked body (unsupported), `None` while it is incomplete.
fn complete_length(buf: &[u8]) -> Option<Option<usize>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if head.contains("\r\ntransfer-encoding:") {
        return Some(None);
    }
    let length = head
        .split("\r\n")
        .find_map(|line| {
            line.strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    (buf.len() >= end + length).then_some(Some(end + length))
}

/// Reads (consumes) one request; `None` for a chunked body.
fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(done) = complete_length(&buf) {
            return Ok(done.map(|n| buf[..n].to_vec()));
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until one whole request is in the socket's receive buffer and returns a copy of it,
/// leaving it unread (so that closing the socket sends an RST). `None` for a chunked body.
fn peek_request(client: &TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = client.peek(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(done) = complete_length(&buf[..n]) {
            return Ok(done.map(|len| buf[..len].to_vec()));
        }
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        if Instant::now() > deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        // peek returns at once while anything is buffered; wait for the rest of the request.
        thread::sleep(Duration::from_millis(2));
    }
}

/// The request with its `Connection` header (if any) replaced by `Connection: close`; the
/// request line, the other headers and the body are kept byte for byte.
fn with_connection_close(request: &[u8]) -> Vec<u8> {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |p| p + 2);
    let head = &request[..end];
    let mut out = Vec::with_capacity(request.len() + 19);
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"connection:") {
            continue;
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&request[end..]);
    out
}
