//! Feed health: per feed, whether it is connected, when it last delivered, how fast, how late,
//! what was refused and whether it has gone stale. Transports and the ingest task update it;
//! the CLI and the UI read snapshots.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_core::scenario::FeedSpec;
pub use cityops_dto::{FeedHealthDto, StorageHealthDto};

/// How many refusal reasons a feed keeps.
const REASONS_KEPT: usize = 5;
/// The window over which the message rate is counted.
const RATE_WINDOW_MS: Millis = 60_000;
/// A feed counts as overloaded while its transport waited for the ingest this recently.
const OVERLOAD_WINDOW_MS: Millis = 10_000;

#[derive(Debug)]
struct Entry {
    dto: FeedHealthDto,
    started_ms: Millis,
    stale_after: Duration,
    recent: VecDeque<Millis>,
    /// When the transport last waited for the ingest.
    last_wait_ms: Option<Millis>,
}

/// The shared health board of all feeds, and of the store they go to.
#[derive(Clone, Default)]
pub struct Health {
    feeds: Arc<Mutex<BTreeMap<String, Entry>>>,
    storage: Arc<Mutex<StorageHealthDto>>,
}

impl Health {
    fn with<R>(&self, feed: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        feeds.get_mut(feed).map(f)
    }

    /// Registers a feed, arriving by `transport`, at `now`.
    pub fn register(&self, spec: &FeedSpec, transport: &str, stale_after: Duration, now: Millis) {
        let id = spec.id.as_str();
        let dto = FeedHealthDto {
            id: id.to_owned(),
            name: if spec.name.is_empty() {
                id.to_owned()
            } else {
                spec.name.clone()
            },
            layer: spec.layer,
            format: spec.format.as_str().to_owned(),
            transport: transport.to_owned(),
            connected: false,
            last_message_ms: None,
            messages_per_minute: 0,
            lag_ms: None,
            rejected: 0,
            last_reasons: Vec::new(),
            stale: false,
            failures: 0,
            last_error: None,
            overloaded: false,
            held_back_ms: 0,
        };
        let entry = Entry {
            dto,
            started_ms: now,
            stale_after,
            recent: VecDeque::new(),
            last_wait_ms: None,
        };
        self.feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), entry);
    }

    /// The transport connected (or a poll succeeded).
    pub fn connected(&self, feed: &str) {
        self.with(feed, |e| {
            e.dto.connected = true;
            e.dto.last_error = None;
        });
    }

    /// The transport failed; it will retry.
    pub fn failed(&self, feed: &str, error: &str) {
        self.with(feed, |e| {
            if e.dto.connected || e.dto.last_error.is_none() {
                e.dto.failures += 1;
            }
            e.dto.connected = false;
            e.dto.last_error = Some(error.to_owned());
        });
    }

    /// A message arrived and went through the pipeline.
    pub fn message(&self, feed: &str, at: Millis, lag_ms: Option<i64>, rejected: &[String]) {
        self.with(feed, |e| {
            e.dto.last_message_ms = Some(at);
            e.recent.push_back(at);
            if lag_ms.is_some() {
                e.dto.lag_ms = lag_ms;
            }
            for r in rejected {
                e.dto.rejected += 1;
                e.dto.last_reasons.push(r.clone());
            }
            let excess = e.dto.last_reasons.len().saturating_sub(REASONS_KEPT);
            e.dto.last_reasons.drain(..excess);
        });
    }

    /// The transport waited `waited` at `at` to hand a message to the ingest (its queue was
    /// full).
    pub fn waited(&self, feed: &str, at: Millis, waited: Duration) {
        self.with(feed, |e| {
            e.last_wait_ms = Some(at);
            e.dto.held_back_ms += waited.as_millis() as u64;
        });
    }

    /// A commit to the store failed at `at` with `fault`; `held` rows wait in memory.
    pub fn storage_failed(&self, path: &str, fault: &str, held: usize, at: Millis) {
        let mut s = self.storage.lock().unwrap_or_else(|p| p.into_inner());
        if s.fault.is_none() {
            s.faults += 1;
            s.since_ms = Some(at);
        }
        s.fault = Some(fault.to_owned());
        s.path = path.to_owned();
        s.held = held as u64;
    }

    /// A commit succeeded: everything held is stored.
    pub fn storage_ok(&self) {
        let mut s = self.storage.lock().unwrap_or_else(|p| p.into_inner());
        s.fault = None;
        s.since_ms = None;
        s.held = 0;
    }

    /// The store's health.
    pub fn storage(&self) -> StorageHealthDto {
        self.storage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A refusal that is not a message (a failed poll, a broken stream).
    pub fn refused(&self, feed: &str, reason: &str) {
        self.with(feed, |e| {
            e.dto.rejected += 1;
            e.dto.last_reasons.push(reason.to_owned());
            let excess = e.dto.last_reasons.len().saturating_sub(REASONS_KEPT);
            e.dto.last_reasons.drain(..excess);
        });
    }

    /// Every feed's health at `now`, in id order.
    pub fn snapshot(&self, now: Millis) -> Vec<FeedHealthDto> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        feeds
            .values_mut()
            .map(|e| {
                while e.recent.front().is_some_and(|t| *t <= now - RATE_WINDOW_MS) {
                    e.recent.pop_front();
                }
                e.dto.messages_per_minute = e.recent.len() as u32;
                let since = e.dto.last_message_ms.unwrap_or(e.started_ms);
                e.dto.stale = now - since > e.stale_after.as_millis() as i64;
                e.dto.overloaded = e.last_wait_ms.is_some_and(|t| now - t < OVERLOAD_WINDOW_MS);
                e.dto.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::Layer;

    #[test]
    fn rate_staleness_and_failures() {
        let h = Health::default();
        let spec = FeedSpec {
            id: "a".into(),
            layer: Layer::Utility,
            format: cityops_core::tape::FeedFormat::GeoJson,
            name: String::new(),
            mapping: serde_json::Value::Null,
        };
        h.register(&spec, "http-poll", Duration::from_secs(30), 0);
        assert!(!h.snapshot(10_000)[0].stale);
        assert!(h.snapshot(31_000)[0].stale, "never delivered within its interval");
        h.connected("a");
        for t in [40_000, 50_000, 95_000] {
            h.message("a", t, Some(1_500), &[]);
        }
        let s = &h.snapshot(100_000)[0];
        assert_eq!(
            (s.messages_per_minute, s.stale, s.lag_ms, s.connected, s.name.as_str()),
            (2, false, Some(1_500), true, "a")
        );
        h.failed("a", "connection refused");
        h.failed("a", "connection refused");
        let reasons: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        h.message("a", 101_000, None, &reasons);
        let s = &h.snapshot(200_000)[0];
        assert_eq!((s.failures, s.connected, s.rejected, s.stale), (1, false, 7, true));
        assert_eq!(s.last_reasons, ["r2", "r3", "r4", "r5", "r6"]);
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        h.waited("a", 201_000, Duration::from_millis(250));
        h.waited("a", 202_000, Duration::from_millis(250));
        let s = &h.snapshot(205_000)[0];
        assert_eq!((s.overloaded, s.held_back_ms), (true, 500));
        assert!(!h.snapshot(213_000)[0].overloaded, "ten quiet seconds end the overload");
    }

    #[test]
    fn a_storage_fault_counts_once_until_it_clears() {
        let h = Health::default();
        h.storage_failed("/d/c.db", "the disk holding the database is full", 10, 1_000);
        h.storage_failed("/d/c.db", "the disk holding the database is full", 30, 2_000);
        let s = h.storage();
        assert_eq!(
            (s.faults, s.since_ms, s.held, s.path.as_str()),
            (1, Some(1_000), 30, "/d/c.db")
        );
        h.storage_ok();
        h.storage_failed("/d/c.db", "the database is read-only", 1, 5_000);
        assert_eq!((h.storage().faults, h.storage().since_ms), (2, Some(5_000)));
        h.storage_ok();
        assert_eq!((h.storage().fault, h.storage().held, h.storage().faults), (None, 0, 2));
    }
}
