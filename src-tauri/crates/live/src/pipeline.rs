//! The ingest pipeline: decode a received message with its feed's adapter, keep what is good,
//! quarantine what is not, and append both to the store in group commits.

use std::collections::HashMap;
use std::path::Path;

use cityops_core::model::{Layer, Millis, Observation};
use cityops_core::picture::Picture;
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::{TapeIssue, TapeMessage};

use cityops_decoders::{self as feeds, AdapterConfigError, FeedAdapters, MessageContext};
use cityops_store::{QuarantineEntry, RunId, Store, StoreError};

/// Rows buffered before a group commit is forced.
pub const BATCH_ROWS: usize = 5_000;

/// What a run has ingested so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Messages read.
    pub messages: u64,
    /// Observations accepted, per layer.
    pub accepted: HashMap<Layer, u64>,
    /// Pieces refused (whole messages, single features, tape lines).
    pub rejected: u64,
}

/// A declared feed and its adapters: one for a declared format, one per format of the
/// extension table for a drop folder declared `auto`.
struct Feed {
    spec: FeedSpec,
    adapters: FeedAdapters,
}

/// What became of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageOutcome {
    /// Observations accepted from it.
    pub accepted: usize,
    /// Every refused part, as "place: reason".
    pub rejected: Vec<String>,
    /// The largest arrival lag (received minus observed) among its observations.
    pub lag_ms: Option<i64>,
}

/// Feeds messages into the store.
pub struct Pipeline {
    store: Store,
    run: RunId,
    feeds: HashMap<String, Feed>,
    pending: Vec<Observation>,
    pending_quarantine: Vec<QuarantineEntry>,
    /// Sources (feed, key) whose messages are in this batch, committed with it.
    pending_delivered: Vec<(String, String)>,
    frontier: Option<(u64, Millis)>,
    stats: IngestStats,
    /// The store refused the last commit (a full disk, a read-only file): what is buffered
    /// stays buffered, and only an explicit [`Pipeline::flush`] tries again.
    refusing: bool,
}

impl Pipeline {
    /// A pipeline writing into `run` of `store`, for the given feeds; `base_dir` resolves the
    /// relative paths their mappings name.
    pub fn new(store: Store, run: RunId, specs: &[FeedSpec], base_dir: &Path) -> Result<Pipeline, AdapterConfigError> {
        let mut feeds = HashMap::new();
        for spec in specs {
            let adapters = feeds::adapters_for(spec, base_dir)?;
            feeds.insert(
                spec.id.clone(),
                Feed {
                    spec: spec.clone(),
                    adapters,
                },
            );
        }
        Ok(Pipeline {
            store,
            run,
            feeds,
            pending: Vec::with_capacity(BATCH_ROWS),
            pending_quarantine: Vec::new(),
            pending_delivered: Vec::new(),
            frontier: None,
            stats: IngestStats::default(),
            refusing: false,
        })
    }

    /// The store, for queries. Call [`Pipeline::flush`] first to see everything ingested.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store back, for a pipeline with other feeds (a site's configuration arrived).
    /// Call [`Pipeline::flush`] first: what is buffered is dropped.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// The run being written.
    pub fn run(&self) -> RunId {
        self.run
    }

    /// Counts so far.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// Rows buffered and not yet committed. While the store refuses commits this grows, and a
    /// live ingest stops taking messages at a bound so the transports wait instead.
    pub fn buffered(&self) -> usize {
        self.pending.len() + self.pending_quarantine.len()
    }

    /// The store refused the last commit and nothing has been committed since.
    pub fn refusing(&self) -> bool {
        self.refusing
    }

    /// Quarantines refused tape lines (they carry no time, so they are stamped `at`).
    pub fn quarantine_tape_issues(&mut self, file: &str, issues: &[TapeIssue], at: Millis) {
        for issue in issues {
            self.stats.rejected += 1;
            self.pending_quarantine.push(QuarantineEntry {
                feed: "tape".into(),
                seq: issue.line,
                place: format!("{file}:{}", issue.line),
                reason: issue.reason.to_string(),
                received_ms: at,
                body: Vec::new(),
            });
        }
    }

    /// Quarantines a failure of a feed's transport (an HTTP 500, a hung server, a TCP peer that
    /// sent garbage): there is no message to decode, but the operator must see it.
    pub fn quarantine_transport_failure(
        &mut self,
        feed: &str,
        reason: &str,
        at: Millis,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.stats.rejected += 1;
        self.pending_quarantine.push(QuarantineEntry {
            feed: feed.to_owned(),
            seq: 0,
            place: "transport".into(),
            reason: reason.to_owned(),
            received_ms: at,
            body,
        });
        self.flush_if_full()
    }

    /// Decodes and buffers one message, applying what it yields to `picture` if given.
    /// Nothing a message contains can fail the pipeline: bad input is quarantined. The outcome
    /// says what became of it, for feed health. An `Err` means the group commit this message
    /// triggered failed; the message itself is buffered all the same, and goes out with the
    /// next commit that succeeds.
    pub fn ingest(&mut self, msg: &TapeMessage, picture: Option<&mut Picture>) -> Result<MessageOutcome, StoreError> {
        self.stats.messages += 1;
        self.frontier = Some((msg.line, msg.time_ms));
        let mut outcome = MessageOutcome::default();
        let mut refuse = |pending: &mut Vec<QuarantineEntry>, place: String, reason: String| {
            outcome.rejected.push(format!("{place}: {reason}"));
            pending.push(QuarantineEntry {
                feed: msg.feed.clone(),
                seq: msg.line,
                place,
                reason,
                received_ms: msg.time_ms,
                body: msg.body.clone(),
            });
        };
        // The adapter of the message's format: the feed's one, or for an `auto` feed the one its
        // file extension selected.
        let feed = self.feeds.get_mut(&msg.feed);
        let index = feed
            .as_ref()
            .and_then(|f| f.adapters.iter().position(|(format, _)| *format == msg.format));
        match (feed, index) {
            (None, _) => {
                tracing::warn!(feed = %msg.feed, line = msg.line, "message from a feed that is not declared");
                refuse(
                    &mut self.pending_quarantine,
                    "$".into(),
                    format!("feed {:?} is not declared", msg.feed),
                );
            }
            (Some(Feed { spec, .. }), None) => {
                let reason = format!(
                    "format {} does not match the feed's declared {}",
                    msg.format.as_str(),
                    spec.format.as_str()
                );
                refuse(&mut self.pending_quarantine, "$".into(), reason);
            }
            (Some(Feed { spec, adapters }), Some(k)) => {
                let adapter = &mut adapters[k].1;
                let ctx = MessageContext {
                    feed: &spec.id,
                    layer: spec.layer,
                    seq: msg.line,
                    received_ms: msg.time_ms,
                    topic: msg.topic.as_deref(),
                };
                match feeds::checked_decode(adapter.as_mut(), ctx, &msg.body) {
                    Ok(decoded) => {
                        for r in decoded.rejected {
                            tracing::warn!(feed = %msg.feed, line = msg.line, place = %r.place, reason = %r.reason, "refused part of a message");
                            refuse(&mut self.pending_quarantine, r.place, r.reason);
                        }
                        let start = self.pending.len();
                        self.pending.extend(decoded.observations);
                        let added = &self.pending[start..];
                        *self.stats.accepted.entry(spec.layer).or_default() += added.len() as u64;
                        outcome.accepted = added.len();
                        outcome.lag_ms = added.iter().map(|o| o.received_ms - o.observed_ms).max();
                        if let Some(p) = picture {
                            p.apply(added);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(feed = %msg.feed, line = msg.line, error = %e, "refused message");
                        refuse(&mut self.pending_quarantine, e.place, e.reason);
                    }
                }
            }
        }
        self.stats.rejected += outcome.rejected.len() as u64;
        self.flush_if_full()?;
        Ok(outcome)
    }

    /// Ingests a message that is not part of the tape (a trainer's inject): like
    /// [`Pipeline::ingest`], but the run's frontier stays where the tape put it.
    pub fn ingest_extra(
        &mut self,
        msg: &TapeMessage,
        picture: Option<&mut Picture>,
    ) -> Result<MessageOutcome, StoreError> {
        let frontier = self.frontier;
        let outcome = self.ingest(msg, picture);
        self.frontier = frontier;
        outcome
    }

    fn flush_if_full(&mut self) -> Result<(), StoreError> {
        // While the store refuses, every message would retry a commit that fails the same way;
        // the caller's periodic flush retries instead.
        if !self.refusing && self.buffered() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Marks the source `key` of `feed` delivered once the messages ingested so far are
    /// committed (in the same transaction as they are).
    pub fn mark_delivered(&mut self, feed: &str, key: String) {
        self.pending_delivered.push((feed.to_owned(), key));
    }

    /// Commits everything buffered, with the new frontier, in one transaction. If the store
    /// refuses, everything stays buffered (the transaction rolled back), to be committed whole
    /// by a later call.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty()
            && self.pending_quarantine.is_empty()
            && self.pending_delivered.is_empty()
            && self.frontier.is_none()
        {
            return Ok(());
        }
        let frontier = self.frontier.unwrap_or((0, Millis::MIN));
        if let Err(e) = self.store.append_delivered(
            self.run,
            &self.pending,
            &self.pending_quarantine,
            &self.pending_delivered,
            frontier,
        ) {
            self.refusing = true;
            return Err(e);
        }
        self.refusing = false;
        self.frontier = None;
        self.pending.clear();
        self.pending_quarantine.clear();
        self.pending_delivered.clear();
        Ok(())
    }
}
