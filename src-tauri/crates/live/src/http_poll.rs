//! HTTP polling: GET the feed's URL (or each of its `urls`) every interval. A non-2xx answer,
//! a body over the size limit, a connection error or a request that hangs past its timeout is
//! quarantined as a transport failure and retried with backoff; the feed never stops.
//!
//! A CAP feed may be an Atom or RSS index of alerts rather than one alert: the index is a
//! message like any other (alerts embedded in it decode from it), and every alert it links to
//! that has not been fetched before is fetched and becomes a message of its own.
//!
//! # SensorThings: incremental polls
//! A SensorThings feed's URL is an `Observations` collection (`.../v1.1/Observations`, or
//! `.../Datastreams('id')/Observations`, possibly with query options of its own such as
//! `$top=1`). Each poll appends the adapter's query, [`filter_since`] of the URL's watermark
//! (`phenomenonTime gt` it, with the `$expand` the adapter needs), and follows `@iot.nextLink`
//! for at most `max_pages` pages (default 10); every page is one message, recorded as received.
//! A paging sequence cut short by `max_pages` resumes from its next link at the next poll.
//!
//! Each URL keeps its own watermark in memory: it starts `lookback_s` (default 600 s) before
//! the transport started and, once a paging sequence has been read to its end, moves to the
//! newest `phenomenonTime` the sequence carried. It moves only then because servers promise no
//! order (this one cannot sort by phenomenonTime), so an older reading may be on a later page.
//! The strictly-greater filter means no reading is delivered twice; the price is that a reading
//! stored after a poll with exactly the watermark's time, or with an older time (a gateway
//! that uploads late), is not seen. A reading stamped more than [`FUTURE_SLACK`] after the
//! poll does not move the watermark, so one sensor with a wrong clock cannot blind the feed;
//! it is delivered again by each poll until the wall clock passes it.
//!
//! # Links stay on the feed's origins
//! A link named by content (a CAP index entry, an `@iot.nextLink`, a redirect) is followed only
//! when it is on the origin of one of the feed's URLs or one listed in `transport.follow`; the
//! feed's headers, which may hold credentials, go nowhere else, and a hostile server cannot
//! point the poller at other hosts. A refused link is quarantined with the reason.
//!
//! An answer that is not a SensorThings collection (garbage behind a 200) is still one message
//! (the pipeline quarantines it with the decoder's reason), counts as a failed poll, leaves the
//! watermark where it was and backs the feed off; like a non-2xx answer, the page that failed is
//! asked for again, so the pages before it are not delivered twice.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_core::tape::FeedFormat;
use tokio::sync::{mpsc, watch};

use super::{now_ms, Health, Incoming};
use crate::config::{LiveFeed, Transport};
use cityops_decoders::sensorthings::{filter_since, newest_time, next_link};
use cityops_decoders::MAX_BODY_BYTES;
use cityops_net::backoff::Retry;
use cityops_net::origin::Allowed;

/// How far a SensorThings poll looks back when the transport starts, unless configured.
pub(crate) const DEFAULT_LOOKBACK_S: u64 = 600;
/// How many `@iot.nextLink` pages one SensorThings poll follows, unless configured.
pub(crate) const DEFAULT_MAX_PAGES: u32 = 10;
/// Readings stamped further than this past the poll do not move a SensorThings watermark.
pub(crate) const FUTURE_SLACK: Duration = Duration::from_secs(300);

/// Where an incremental SensorThings poll of one URL stands.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    /// The configured collection URL.
    url: String,
    /// Readings at or before this `phenomenonTime` have been delivered.
    watermark: Millis,
    /// The newest time seen in the paging sequence under way.
    pending: Option<Millis>,
    /// The page to read next when a sequence was cut short (or failed) part way.
    resume: Option<String>,
}

impl Cursor {
    fn new(url: String, watermark: Millis) -> Cursor {
        Cursor {
            url,
            watermark,
            pending: None,
            resume: None,
        }
    }

    /// The first page of a new sequence: the configured URL with the adapter's query appended.
    fn first_page(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{}", self.url, filter_since(self.watermark))
    }

    /// Takes note of a page's newest time, ignoring one too far in the future.
    fn saw(&mut self, newest: Option<Millis>, polled_at: Millis) {
        if let Some(t) = newest.filter(|t| *t <= polled_at + FUTURE_SLACK.as_millis() as Millis) {
            self.pending = Some(self.pending.map_or(t, |p| p.max(t)));
        }
    }

    /// The sequence was read to its end: the watermark moves to the newest time it carried.
    fn finish(&mut self) {
        if let Some(t) = self.pending.take() {
            self.watermark = self.watermark.max(t);
        }
        self.resume = None;
    }
}

/// How one poll of one URL went.
enum Polled {
    /// Every answer was good.
    Ok,
    /// Something failed (already quarantined or sent); the feed backs off.
    Failed(String),
    /// The ingest side is gone: the run is stopping.
    Closed,
}

pub(super) async fn run(
    i: usize,
    feed: LiveFeed,
    tx: mpsc::Sender<Incoming>,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    let urls = feed.transport.poll_urls();
    let Transport::HttpPoll {
        interval_s,
        timeout_s,
        headers,
        lookback_s,
        max_pages,
        follow,
        ..
    } = feed.transport
    else {
        return;
    };
    let allowed = Allowed::new(urls.iter().map(String::as_str), follow.iter().map(String::as_str));
    let id = feed.spec.id.clone();
    let fail = |reason: String, body: Vec<u8>| Incoming::Failure {
        feed: i,
        reason,
        body,
        at: now_ms(),
    };
    let mut header_map = reqwest::header::HeaderMap::new();
    for (name, value) in &headers {
        let parsed = value.resolve().map_err(|e| e.to_string()).and_then(|v| {
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
    // A redirect is followed only within the allowed origins: elsewhere it would carry the
    // feed's headers, and make the poller fetch whatever the server names.
    let redirects = {
        let allowed = allowed.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else if allowed.allows(attempt.url().as_str()) {
                attempt.follow()
            } else {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "redirect to {to} refused: not the feed's origin nor one in transport.follow"
                ))
            }
        })
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_s))
        .default_headers(header_map)
        .redirect(redirects)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            health.failed(&id, &e.to_string());
            return;
        }
    };
    let interval = Duration::from_secs(interval_s);
    // A failed poll is tried again no sooner than the next poll would have been: the first
    // wait is between one and two intervals (equal jitter over twice the interval).
    let mut backoff = Retry::new(interval * 2, Duration::from_secs(300).max(interval * 2));
    let mut fetched = Seen::default();
    let started = now_ms();
    let lookback_ms = lookback_s.unwrap_or(DEFAULT_LOOKBACK_S).saturating_mul(1000) as Millis;
    let mut cursors: Vec<Cursor> = urls
        .iter()
        .map(|u| Cursor::new(u.clone(), started - lookback_ms))
        .collect();
    let max_pages = max_pages.unwrap_or(DEFAULT_MAX_PAGES);
    loop {
        let mut failed = false;
        for (k, url) in urls.iter().enumerate() {
            let polled = match feed.spec.format {
                FeedFormat::SensorThings => {
                    poll_sensorthings(i, &client, &allowed, &mut cursors[k], max_pages, &tx).await
                }
                _ => poll_plain(i, feed.spec.format, &client, &allowed, url, &mut fetched, &tx).await,
            };
            match polled {
                Polled::Ok => {}
                Polled::Failed(reason) => {
                    tracing::warn!(feed = %id, %url, %reason, "poll failed");
                    health.failed(&id, &reason);
                    failed = true;
                }
                Polled::Closed => return,
            }
        }
        let wait = if failed {
            backoff.next_delay()
        } else {
            health.connected(&id);
            backoff.reset();
            interval
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

/// One GET of a URL whose answer is one message (and, for a CAP index, the alerts it links to).
async fn poll_plain(
    i: usize,
    format: FeedFormat,
    client: &reqwest::Client,
    allowed: &Allowed,
    url: &str,
    fetched: &mut Seen,
    tx: &mpsc::Sender<Incoming>,
) -> Polled {
    let fail = |reason: String, body: Vec<u8>| Incoming::Failure {
        feed: i,
        reason,
        body,
        at: now_ms(),
    };
    let body = match poll(client, url).await {
        Ok(body) => body,
        Err((reason, body)) => {
            let reason = format!("GET {url}: {reason}");
            return if tx.send(fail(reason.clone(), body)).await.is_err() {
                Polled::Closed
            } else {
                Polled::Failed(reason)
            };
        }
    };
    let links = match format {
        FeedFormat::Cap => cityops_decoders::cap::index_links(&body).unwrap_or_default(),
        _ => Vec::new(),
    };
    if tx
        .send(Incoming::Message {
            feed: i,
            topic: None,
            format: None,
            body,
            received_ms: now_ms(),
        })
        .await
        .is_err()
    {
        return Polled::Closed;
    }
    for link in links {
        if fetched.contains(&link) {
            continue;
        }
        if !allowed.allows(&link) {
            // Refused at every poll, like a link that fails, so the operator sees it; it does
            // not fail the index's poll.
            if tx.send(fail(refused_link(&link), Vec::new())).await.is_err() {
                return Polled::Closed;
            }
            continue;
        }
        // A link that failed is tried again at the next poll of the index; it does not fail the
        // index's poll.
        let incoming = match poll(client, &link).await {
            Ok(body) => {
                fetched.insert(&link);
                Incoming::Message {
                    feed: i,
                    topic: None,
                    format: None,
                    body,
                    received_ms: now_ms(),
                }
            }
            Err((reason, body)) => fail(format!("GET {link}: {reason}"), body),
        };
        if tx.send(incoming).await.is_err() {
            return Polled::Closed;
        }
    }
    Polled::Ok
}

/// One incremental SensorThings poll of a collection: up to `max_pages` pages, each a message.
async fn poll_sensorthings(
    i: usize,
    client: &reqwest::Client,
    allowed: &Allowed,
    cursor: &mut Cursor,
    max_pages: u32,
    tx: &mpsc::Sender<Incoming>,
) -> Polled {
    let mut target = cursor.resume.take().unwrap_or_else(|| cursor.first_page());
    for _ in 0..max_pages {
        let polled_at = now_ms();
        let body = match poll(client, &target).await {
            Ok(body) => body,
            Err((reason, body)) => {
                // The same page is asked for again after the backoff.
                let reason = format!("GET {target}: {reason}");
                cursor.resume = Some(target);
                let failure = Incoming::Failure {
                    feed: i,
                    reason: reason.clone(),
                    body,
                    at: now_ms(),
                };
                return if tx.send(failure).await.is_err() {
                    Polled::Closed
                } else {
                    Polled::Failed(reason)
                };
            }
        };
        let newest = newest_time(&body);
        let next = next_link(&body);
        if tx
            .send(Incoming::Message {
                feed: i,
                topic: None,
                format: None,
                body,
                received_ms: now_ms(),
            })
            .await
            .is_err()
        {
            return Polled::Closed;
        }
        match newest {
            Ok(newest) => cursor.saw(newest, polled_at),
            Err(e) => {
                // The body went to the pipeline, which quarantines it with this same reason. The
                // same page is asked for again after the backoff, so the pages before it are not
                // delivered twice.
                let reason = format!("GET {target}: not a SensorThings answer: {e}");
                cursor.resume = Some(target);
                return Polled::Failed(reason);
            }
        }
        match next {
            Some(link) if !allowed.allows(&link) => {
                // The pages read so far are delivered; the rest of the sequence is on an origin
                // the feed may not follow, so it ends here and the operator is told why.
                cursor.finish();
                let reason = refused_link(&link);
                let failure = Incoming::Failure {
                    feed: i,
                    reason: reason.clone(),
                    body: Vec::new(),
                    at: now_ms(),
                };
                return if tx.send(failure).await.is_err() {
                    Polled::Closed
                } else {
                    Polled::Failed(reason)
                };
            }
            Some(link) => target = link,
            None => {
                cursor.finish();
                return Polled::Ok;
            }
        }
    }
    // Out of pages for this poll: the sequence goes on from here at the next one, and the
    // watermark waits until it has been read to its end.
    cursor.resume = Some(target);
    Polled::Ok
}

/// Why a link in a feed's content is not followed.
fn refused_link(link: &str) -> String {
    let shown: String = link.chars().take(200).collect();
    format!("link {shown} refused: not the feed's origin nor one listed in transport.follow")
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
            return Err((
                format!("answer of {len} bytes exceeds the {MAX_BODY_BYTES}-byte limit"),
                Vec::new(),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_appends_the_adapters_query() {
        let c = Cursor::new("http://h/v1.1/Observations?$top=1".into(), 1_764_190_800_000);
        assert_eq!(
            c.first_page(),
            format!("http://h/v1.1/Observations?$top=1&{}", filter_since(1_764_190_800_000))
        );
        let c = Cursor::new("http://h/v1.1/Datastreams('7')/Observations".into(), 0);
        assert!(c.first_page().starts_with(
            "http://h/v1.1/Datastreams('7')/Observations?$filter=phenomenonTime%20gt%201970-01-01T00:00:00.000Z&"
        ));
    }

    #[test]
    fn the_watermark_moves_only_when_a_sequence_ends_and_never_back_or_far_ahead() {
        let now = 1_764_190_800_000;
        let mut c = Cursor::new("http://h/Observations".into(), now - 600_000);
        c.saw(Some(now - 60_000), now);
        c.saw(Some(now - 300_000), now);
        c.saw(None, now);
        assert_eq!(
            c.watermark,
            now - 600_000,
            "pages may come in any order: wait for the end"
        );
        c.resume = Some("http://h/Observations?$skip=2".into());
        c.finish();
        assert_eq!(
            (c.watermark, c.pending, c.resume.as_deref()),
            (now - 60_000, None, None)
        );
        // A sensor with its clock a day ahead does not blind the feed; slightly ahead is fine.
        c.saw(Some(now + 86_400_000), now);
        c.saw(Some(now + 1_000), now);
        c.finish();
        assert_eq!(c.watermark, now + 1_000);
        // An empty sequence and an older time leave it where it is.
        c.finish();
        c.saw(Some(now - 1), now);
        c.finish();
        assert_eq!(c.watermark, now + 1_000);
    }
}
