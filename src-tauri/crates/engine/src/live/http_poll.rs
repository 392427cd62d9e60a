//! HTTP polling: GET the feed's URL every interval. A non-2xx answer, a body over the size
//! limit, a connection error or a request that hangs past its timeout is quarantined as a
//! transport failure and retried with backoff; the feed never stops.
//!
//! A CAP feed may be an Atom or RSS index of alerts rather than one alert: the index is a
//! message like any other (alerts embedded in it decode from it), and every alert it links to
//! that has not been fetched before is fetched and becomes a message of its own.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use std::collections::{HashSet, VecDeque};

use cityops_core::tape::FeedFormat;

use super::{now_ms, Backoff, Health, Incoming};
use crate::config::{LiveFeed, Transport};
use crate::feeds::MAX_BODY_BYTES;

pub(super) async fn run(i: usize, feed: LiveFeed, tx: mpsc::Sender<Incoming>, health: Health, mut stop: watch::Receiver<bool>) {
    let Transport::HttpPoll { url, interval_s, timeout_s, headers } = feed.transport else { return };
    let id = feed.spec.id.clone();
    let fail = |reason: String, body: Vec<u8>| Incoming::Failure { feed: i, reason, body, at: now_ms() };
    let mut header_map = reqwest::header::HeaderMap::new();
    for (name, value) in &headers {
        let parsed = value.resolve().and_then(|v| {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = reqwest::header::HeaderValue::from_str(&v).map_err(|e| e.to_string())?;
            Ok((name, value))
        });
        match parsed {
            Ok((n, v)) => {
                header_map.insert(n, v);
            }
            Err(e) => {
                // A missing credential is a configuration problem the operator must see; the
                // feed stays down rather than polling without it.
                let reason = format!("header {name}: {e}");
                health.failed(&id, &reason);
                let _ = tx.send(fail(reason, Vec::new())).await;
                return;
            }
        }
    }
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(timeout_s)).default_headers(header_map).build() {
        Ok(c) => c,
        Err(e) => {
            health.failed(&id, &e.to_string());
            return;
        }
    };
    let interval = Duration::from_secs(interval_s);
    let mut backoff = Backoff::new(interval, Duration::from_secs(300).max(interval));
    let mut fetched = Seen::default();
    loop {
        let wait = match poll(&client, &url).await {
            Ok(body) => {
                health.connected(&id);
                backoff.reset();
                let links = match feed.spec.format {
                    FeedFormat::Cap => crate::feeds::cap::index_links(&body).unwrap_or_default(),
                    _ => Vec::new(),
                };
                if tx.send(Incoming::Message { feed: i, topic: None, body, received_ms: now_ms() }).await.is_err() {
                    return;
                }
                for link in links {
                    if fetched.contains(&link) {
                        continue;
                    }
                    // A link that failed is tried again at the next poll of the index.
                    let incoming = match poll(&client, &link).await {
                        Ok(body) => {
                            fetched.insert(&link);
                            Incoming::Message { feed: i, topic: None, body, received_ms: now_ms() }
                        }
                        Err((reason, body)) => fail(format!("GET {link}: {reason}"), body),
                    };
                    if tx.send(incoming).await.is_err() {
                        return;
                    }
                }
                interval
            }
            Err((reason, body)) => {
                tracing::warn!(feed = %id, %url, %reason, "poll failed");
                health.failed(&id, &reason);
                if tx.send(fail(format!("GET {url}: {reason}"), body)).await.is_err() {
                    return;
                }
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => if *stop.borrow() { return },
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The links already fetched, bounded: the oldest are forgotten first.
#[derive(Default)]
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    const CAPACITY: usize = 10_000;

    fn contains(&self, link: &str) -> bool {
        self.set.contains(link)
    }

    /// Remembers `link`.
    fn insert(&mut self, link: &str) {
        if !self.set.insert(link.to_owned()) {
            return;
        }
        self.order.push_back(link.to_owned());
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// One GET: the body of a 2xx answer, or why not (with the start of an error body, kept for
/// the quarantine).
async fn poll(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, (String, Vec<u8>)> {
    let mut resp = client.get(url).send().await.map_err(|e| (describe(&e), Vec::new()))?;
    let status = resp.status();
    if let Some(len) = resp.content_length() {
        if len as usize > MAX_BODY_BYTES {
            return Err((format!("answer of {len} bytes exceeds the {MAX_BODY_BYTES}-byte limit"), Vec::new()));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| (describe(&e), Vec::new()))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err((format!("answer exceeds the {MAX_BODY_BYTES}-byte limit"), Vec::new()));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        body.truncate(4096);
        return Err((format!("HTTP {status}"), body));
    }
    Ok(body)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}
