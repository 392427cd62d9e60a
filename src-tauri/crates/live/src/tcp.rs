//! A TCP stream of concatenated messages, as a TAK server sends Cursor-on-Target events. The
//! stream is cut into messages by the feed format's framing; a partial message waits for the
//! rest, a peer that sends more than the buffer limit without one complete message is
//! quarantined and disconnected, and the client reconnects with backoff.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use super::{hand_over, now_ms, Health, Incoming};
use crate::config::{LiveFeed, Transport};
use cityops_decoders::MAX_BODY_BYTES;
use cityops_net::backoff::Retry;
use cityops_net::tls::{Stream, Tls};

pub(super) async fn run(
    i: usize,
    feed: LiveFeed,
    base: &std::path::Path,
    tx: mpsc::Sender<Incoming>,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    let Transport::Tcp { host, port, tls } = feed.transport else {
        return;
    };
    let id = feed.spec.id.clone();
    let tls = match tls.map(|t| t.client(base)).transpose() {
        Ok(c) => c,
        Err(e) => {
            let e = format!("TLS: {e}");
            health.failed(&id, &e);
            let _ = tx
                .send(Incoming::Failure {
                    feed: i,
                    reason: e,
                    body: Vec::new(),
                    at: now_ms(),
                })
                .await;
            return;
        }
    };
    let peer = Peer {
        i,
        host,
        port,
        tls,
        split: cityops_decoders::stream_framing(feed.spec.format),
    };
    let mut backoff = Retry::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let result = tokio::select! {
            r = session(&peer, &id, &tx, &health, &mut backoff) => r,
            _ = stop.changed() => if *stop.borrow() { return } else { continue },
        };
        if let Err(lost) = result {
            let reason = lost.to_string();
            tracing::warn!(feed = %id, %reason, "stream lost");
            health.failed(&id, &reason);
            if tx
                .send(Incoming::Failure {
                    feed: i,
                    reason,
                    body: Vec::new(),
                    at: now_ms(),
                })
                .await
                .is_err()
            {
                return;
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => if *stop.borrow() { return },
        }
    }
}

/// Where to connect and how to cut the stream.
struct Peer {
    i: usize,
    host: String,
    port: u16,
    tls: Option<Tls>,
    split: fn(&mut Vec<u8>) -> Vec<Vec<u8>>,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum StreamLost {
    /// The peer could not be reached.
    #[error("connect {host}:{port}: {error}")]
    Connect {
        host: String,
        port: u16,
        error: std::io::Error,
    },
    /// Reading from the connection failed.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// The peer closed the connection between messages.
    #[error("the server closed the stream")]
    Closed,
    /// The peer closed the connection with part of a message buffered.
    #[error("the server closed the stream in the middle of a message ({pending} bytes pending)")]
    ClosedMidMessage { pending: usize },
    /// The ingest side is gone: the run is stopping.
    #[error("ingest stopped")]
    IngestStopped,
    /// The peer sent more than a message may hold without completing one.
    #[error("{buffered} bytes without a complete message; dropping the connection")]
    Overrun { buffered: usize },
}

/// One connection, until it fails.
async fn session(
    peer: &Peer,
    id: &str,
    tx: &mpsc::Sender<Incoming>,
    health: &Health,
    backoff: &mut Retry,
) -> Result<(), StreamLost> {
    let Peer {
        i,
        ref host,
        port,
        ref tls,
        split,
    } = *peer;
    let mut stream = Stream::connect(host, port, tls.as_ref())
        .await
        .map_err(|(error, _)| StreamLost::Connect {
            host: host.clone(),
            port,
            error,
        })?;
    health.connected(id);
    backoff.reset();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(StreamLost::Read)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                StreamLost::Closed
            } else {
                StreamLost::ClosedMidMessage { pending: buf.len() }
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        for body in split(&mut buf) {
            let msg = Incoming::Message {
                feed: i,
                topic: None,
                format: None,
                body,
                received_ms: now_ms(),
            };
            if !hand_over(tx, health, id, msg).await {
                return Err(StreamLost::IngestStopped);
            }
        }
        if buf.len() > MAX_BODY_BYTES {
            return Err(StreamLost::Overrun { buffered: buf.len() });
        }
    }
}
