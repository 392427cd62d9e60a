//! Live ingest: every configured feed's transport runs as its own task and hands raw messages
//! to one ingest task, which numbers them, optionally records them as a tape, and feeds them
//! through the same [`Pipeline`] a replay uses. A feed that fails reconnects with backoff on
//! its own; it never blocks the others, because transports only ever `send` into a channel
//! and the ingest task never waits on a transport.
//!
//! Recording writes each message as a tape line *before* it is decoded, in the order the
//! messages are numbered, so replaying the tape gives the same observations as the live run.

pub mod config;
mod file_drop;
pub mod health;
mod http_poll;
mod mqtt;
pub mod pipeline;
mod tcp;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use cityops_core::model::Millis;
use cityops_core::picture::Picture;
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::{format_line, FeedFormat, TapeMessage};
use tokio::sync::{mpsc, watch};

use crate::config::{LiveConfig, Transport};
use crate::pipeline::{IngestStats, Pipeline};
use cityops_store::{RunId, Store};
pub use health::{FeedHealthDto, Health, StorageHealthDto};

/// What live ingest can fail at; the engine turns each into its own error of the same kind and
/// words.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A file could not be read or written (a recording, its manifest).
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A feed's adapter cannot be built from its spec.
    #[error(transparent)]
    Adapter(#[from] cityops_decoders::AdapterConfigError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] cityops_store::StoreError),
}

/// Messages buffered between the transports and the ingest task before transports wait.
const CHANNEL_CAPACITY: usize = 10_000;
/// Group-commit period of live ingest.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Rows held in memory while the store refuses commits (a full or read-only disk). Beyond it
/// the ingest stops taking messages, so its queue fills and the transports wait: memory stays
/// bounded and the sources keep what is not yet read.
pub const MAX_HELD_ROWS: usize = 200_000;
/// How often a store that refuses commits is tried again.
pub const RETRY_STORE: Duration = Duration::from_secs(1);

/// What a transport hands to the ingest task.
#[derive(Debug)]
pub enum Incoming {
    /// A message as it arrived. `format` is the format the transport resolved for this message
    /// (a drop folder declared `auto` reads it from the file's extension); `None` means the
    /// feed's declared format.
    Message {
        feed: usize,
        topic: Option<String>,
        format: Option<FeedFormat>,
        body: Vec<u8>,
        received_ms: Millis,
    },
    /// A drop-folder file read whole: one message, stored exactly once (see [`DropFile`]).
    File {
        feed: usize,
        format: Option<FeedFormat>,
        body: Vec<u8>,
        received_ms: Millis,
        file: DropFile,
    },
    /// A failure with no message to decode (an HTTP 500, a hung server, a broken stream).
    Failure {
        feed: usize,
        reason: String,
        body: Vec<u8>,
        at: Millis,
    },
}

/// A drop-folder file on its way: its key is committed with its observations, and only then is
/// it moved from `path` to `done` (`processed/`). A crash before the commit leaves the file to
/// be read again; a crash after it leaves a key that makes the next run move the file without
/// storing it twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropFile {
    /// The file's name, size and modification time: a later file of the same name differs.
    pub key: String,
    pub path: PathBuf,
    pub done: PathBuf,
}

impl Incoming {
    /// When it arrived (a message) or happened (a failure).
    pub fn arrived_ms(&self) -> Millis {
        match self {
            Incoming::Message { received_ms, .. } | Incoming::File { received_ms, .. } => *received_ms,
            Incoming::Failure { at, .. } => *at,
        }
    }
}

/// Wall-clock now, in milliseconds: live feeds are stamped with the time they arrive.
pub(crate) fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Options of a live run.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Record every message to this tape file (and a `scenario.toml` beside it).
    pub record: Option<PathBuf>,
    /// Send every message here too, as received (a site's publisher: `cityops ingest --nats`).
    pub tap: Option<mpsc::UnboundedSender<TapeMessage>>,
}

/// What a live run did.
#[derive(Debug, Clone)]
pub struct LiveSummary {
    /// The run in the database.
    pub run: RunId,
    /// Counts.
    pub stats: IngestStats,
}

/// Runs every configured feed until `stop` turns true, then drains, commits and returns.
pub async fn run(
    config: LiveConfig,
    store: Store,
    options: LiveOptions,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> Result<LiveSummary, LiveError> {
    let (mut pipeline, _) = open_pipeline(&config, store, false)?;
    let run = pipeline.run();
    let mut ingest = Ingest::new(&config, options.record.as_deref(), health.clone())?;
    if let Some(tap) = options.tap {
        ingest.tap(tap);
    }
    let Transports { mut rx, tasks } = spawn_transports(&config, &health, stop.clone());
    let mut store_watch = StoreWatch::default();

    let mut flush = tokio::time::interval(FLUSH_EVERY);
    loop {
        let room = !pipeline.refusing() || pipeline.buffered() < MAX_HELD_ROWS;
        tokio::select! {
            incoming = rx.recv(), if room => match incoming {
                Some(incoming) => held_on_disk_fault(ingest.handle(incoming, &mut pipeline, None))?,
                None => break,
            },
            _ = flush.tick() => {
                if !store_watch.waiting() {
                    let flushed = ingest.flush(&mut pipeline);
                    store_watch.settle(flushed, &pipeline, &health, now_ms())?;
                }
            }
            _ = stop.changed() => if *stop.borrow() { break },
        }
    }
    // Transports see the same stop signal; take what they had already sent.
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(incoming) = rx.try_recv() {
        ingest.handle(incoming, &mut pipeline, None)?;
    }
    ingest.flush(&mut pipeline)?;
    Ok(LiveSummary {
        run,
        stats: pipeline.stats().clone(),
    })
}

/// Hands `incoming` from the transport of `feed` to the ingest. When the ingest's queue is full
/// the transport waits, which holds its source back (a broker or a TCP peer keeps what is not
/// read yet, a folder keeps its files), and the wait shows in the feed's health as overload.
/// False if the ingest has stopped.
pub(crate) async fn hand_over(tx: &mpsc::Sender<Incoming>, health: &Health, feed: &str, incoming: Incoming) -> bool {
    match tx.try_send(incoming) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(incoming)) => {
            let started = std::time::Instant::now();
            let sent = tx.send(incoming).await.is_ok();
            health.waited(feed, now_ms(), started.elapsed());
            sent
        }
    }
}

/// A store that may refuse commits (a full or read-only disk), as the ingest loops of
/// `cityops ingest` and of the desktop's live mode both watch it: when to try again, and what
/// the health board and the log say when it starts and stops refusing.
#[derive(Default)]
pub struct StoreWatch {
    /// When a commit was last refused, while the store keeps refusing.
    failed_at: Option<std::time::Instant>,
}

impl StoreWatch {
    /// The store refused less than [`RETRY_STORE`] ago: do not try yet.
    pub fn waiting(&self) -> bool {
        self.failed_at.is_some_and(|t| t.elapsed() < RETRY_STORE)
    }

    /// Takes the outcome of a commit at `now`: `Ok(true)` if it went through, `Ok(false)` if
    /// the disk refused it (reported, to be retried), the error itself for anything else.
    pub fn settle(
        &mut self,
        committed: Result<(), LiveError>,
        pipeline: &Pipeline,
        health: &Health,
        now: Millis,
    ) -> Result<bool, LiveError> {
        let db = pipeline.store().path();
        match committed {
            Ok(()) => {
                if self.failed_at.take().is_some() {
                    tracing::info!(db, "the store takes writes again; everything held is stored");
                    health.storage_ok();
                }
                Ok(true)
            }
            Err(e) => {
                let fault = storage_fault(&e).ok_or(e)?;
                let held = pipeline.buffered();
                if self.failed_at.is_none() {
                    tracing::error!(
                        db,
                        fault,
                        held,
                        "cannot store; holding what arrives in memory and retrying"
                    );
                }
                self.failed_at = Some(std::time::Instant::now());
                health.storage_failed(db, fault, held, now);
                Ok(false)
            }
        }
    }
}

/// The operator's sentence for an error that a full or read-only disk caused, if it is one.
fn storage_fault(e: &LiveError) -> Option<&'static str> {
    match e {
        LiveError::Store(e) => e.disk_fault(),
        _ => None,
    }
}

/// `Ok` for a message the pipeline buffered although the commit it triggered was refused by
/// the disk: the periodic flush reports and retries that.
pub fn held_on_disk_fault(r: Result<(), LiveError>) -> Result<(), LiveError> {
    match r {
        Err(e) if storage_fault(&e).is_none() => Err(e),
        _ => Ok(()),
    }
}

/// Starts a new run for `config` in `store` and the pipeline that writes it, with one adapter
/// per configured feed.
pub fn open_pipeline(config: &LiveConfig, store: Store, resume: bool) -> Result<(Pipeline, bool), LiveError> {
    let source = format!("live:{}", config.path.display());
    // The desktop carries on with the configuration's latest run, so a restarted app (after a
    // crash, say) shows the same observations, incidents and operators' work.
    let existing = if resume { store.latest_run_of(&source)? } else { None };
    let run = match existing {
        Some(run) => run,
        None => store.begin_run(&source, &chrono::Utc::now().to_rfc3339())?,
    };
    let mut specs: Vec<_> = config.feeds.iter().map(|f| f.spec.clone()).collect();
    // Operators' calls arrive on built-in feeds (see `cityops_core::call`).
    specs.extend(cityops_core::call::feed_specs());
    Ok((
        Pipeline::new(store, run, &specs, &config.base_dir())?,
        existing.is_some(),
    ))
}

/// The running transports of a configuration and the channel they deliver into.
pub struct Transports {
    /// Everything the transports received, in the order they sent it.
    pub rx: mpsc::Receiver<Incoming>,
    /// One task per feed; each ends when `stop` turns true.
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Registers every feed on the health board and spawns its transport on the current runtime.
pub fn spawn_transports(config: &LiveConfig, health: &Health, stop: watch::Receiver<bool>) -> Transports {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let started = now_ms();
    let mut tasks = Vec::new();
    for (i, feed) in config.feeds.iter().enumerate() {
        health.register(&feed.spec, feed.transport.kind(), feed.stale_after, started);
        let (feed, tx, health, stop) = (feed.clone(), tx.clone(), health.clone(), stop.clone());
        let base = config.base_dir();
        tasks.push(tokio::spawn(async move {
            match feed.transport.clone() {
                Transport::HttpPoll { .. } => http_poll::run(i, feed, tx, health, stop).await,
                Transport::Mqtt { .. } => mqtt::run(i, feed, &base, tx, health, stop).await,
                Transport::Tcp { .. } => tcp::run(i, feed, &base, tx, health, stop).await,
                Transport::FileDrop { dir } => file_drop::run(i, feed, base.join(dir), tx, health, stop).await,
            }
        }));
    }
    Transports { rx, tasks }
}

/// The ingest side of live feeds, shared by `cityops ingest` and the desktop's live mode: numbers
/// each message, records it (before decoding), sends it through the pipeline and keeps the
/// feed's health.
pub struct Ingest {
    feeds: Vec<FeedSpec>,
    seq: u64,
    recorder: Option<Recorder>,
    /// Where every message also goes as received, before decoding (a site's publisher).
    tap: Option<mpsc::UnboundedSender<TapeMessage>>,
    health: Health,
    /// Files whose messages are buffered or committed, to move once committed.
    settling: Vec<DropFile>,
}

impl Ingest {
    pub fn new(config: &LiveConfig, record: Option<&std::path::Path>, health: Health) -> Result<Ingest, LiveError> {
        let recorder = match record {
            Some(path) => Some(Recorder::create(path, config)?),
            None => None,
        };
        Ok(Ingest {
            feeds: config.feeds.iter().map(|f| f.spec.clone()).collect(),
            seq: 0,
            recorder,
            tap: None,
            health,
            settling: Vec::new(),
        })
    }

    /// Sends every message from now on to `tap` too, as received (before decoding), in the
    /// order the ingest takes them.
    pub fn tap(&mut self, tap: mpsc::UnboundedSender<TapeMessage>) {
        self.tap = Some(tap);
    }

    /// Numbers messages on from `seq` (a resumed run's last), so their observations and the
    /// incidents they open never take the ids of earlier ones.
    pub fn continue_after(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Takes one thing a transport delivered; observations also go onto `picture` if given.
    pub fn handle(
        &mut self,
        incoming: Incoming,
        pipeline: &mut Pipeline,
        picture: Option<&mut Picture>,
    ) -> Result<(), LiveError> {
        match incoming {
            Incoming::Message {
                feed,
                topic,
                format,
                body,
                received_ms,
            } => self.message(feed, topic, format, body, received_ms, pipeline, picture)?,
            Incoming::File {
                feed,
                format,
                body,
                received_ms,
                file,
            } => {
                let id = self.feeds[feed].id.clone();
                if pipeline.store().is_delivered(&id, &file.key)? {
                    tracing::info!(feed = %id, file = %file.path.display(), "stored before a restart; moved without storing it again");
                } else {
                    let buffered = self.message(feed, None, format, body, received_ms, pipeline, picture);
                    // A refused commit leaves the message buffered: its key joins it, so the
                    // file is stored once and moved once, by the commit that succeeds.
                    if buffered.as_ref().is_err_and(|e| storage_fault(e).is_none()) {
                        return buffered;
                    }
                    pipeline.mark_delivered(&id, file.key.clone());
                    self.settling.push(file);
                    return buffered;
                }
                self.settling.push(file);
            }
            Incoming::Failure { feed, reason, body, at } => {
                let id = &self.feeds[feed].id;
                tracing::warn!(feed = %id, %reason, "transport failure");
                self.health.refused(id, &reason);
                pipeline.quarantine_transport_failure(id, &reason, at, body)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        feed: usize,
        topic: Option<String>,
        format: Option<FeedFormat>,
        body: Vec<u8>,
        received_ms: Millis,
        pipeline: &mut Pipeline,
        picture: Option<&mut Picture>,
    ) -> Result<(), LiveError> {
        let spec = &self.feeds[feed];
        self.seq += 1;
        // The resolved format goes on the tape line, so a replay decodes each message with the
        // adapter the live run used.
        let format = format.unwrap_or(spec.format);
        let msg = TapeMessage {
            line: self.seq,
            time_ms: received_ms,
            feed: spec.id.clone(),
            format,
            topic,
            body,
        };
        if let Some(r) = &mut self.recorder {
            r.write(&msg)?;
        }
        if let Some(tap) = &self.tap {
            // A tap whose receiver has gone takes nothing more; the local run goes on.
            if tap.send(msg.clone()).is_err() {
                self.tap = None;
            }
        }
        // An error here is a refused commit; the message is buffered and counts as received.
        let outcome = pipeline.ingest(&msg, picture);
        let (lag_ms, rejected) = outcome
            .as_ref()
            .map_or((None, &[][..]), |o| (o.lag_ms, o.rejected.as_slice()));
        self.health.message(&spec.id, received_ms, lag_ms, rejected);
        outcome?;
        Ok(())
    }

    /// Commits what the pipeline buffered and flushes the recording.
    pub fn flush(&mut self, pipeline: &mut Pipeline) -> Result<(), LiveError> {
        pipeline.flush()?;
        if let Some(r) = &mut self.recorder {
            r.flush()?;
        }
        self.settle();
        Ok(())
    }

    /// Moves the drop-folder files whose messages are committed (call after the pipeline
    /// flushed) out of their folder.
    pub fn settle(&mut self) {
        for f in self.settling.drain(..) {
            if let Err(e) = std::fs::rename(&f.path, &f.done) {
                // The key is stored: a file left behind is moved, not stored, next time.
                tracing::warn!(file = %f.path.display(), error = %e, "cannot move a stored file to processed/");
            }
        }
    }
}

/// Writes received messages as a tape, and a manifest beside it so the folder replays as a
/// scenario.
struct Recorder {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl Recorder {
    fn create(path: &std::path::Path, config: &LiveConfig) -> Result<Recorder, LiveError> {
        let io = |source| LiveError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let manifest_path = path.with_file_name(cityops_core::scenario::MANIFEST);
        if !manifest_path.exists() {
            let manifest = recorded_manifest(config, path, now_ms());
            std::fs::write(&manifest_path, manifest).map_err(|source| LiveError::Io {
                path: manifest_path.clone(),
                source,
            })?;
        }
        Ok(Recorder {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
        })
    }

    fn write(&mut self, msg: &TapeMessage) -> Result<(), LiveError> {
        writeln!(self.out, "{}", format_line(msg)).map_err(|source| LiveError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn flush(&mut self) -> Result<(), LiveError> {
        self.out.flush().map_err(|source| LiveError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The manifest of a recording (or of a site the feeds run into): the configured feeds,
/// starting at `start_ms`, with its tape at `tape`.
pub fn recorded_manifest(config: &LiveConfig, tape: &std::path::Path, start_ms: Millis) -> String {
    let mut doc = toml::Table::new();
    let start = chrono::DateTime::from_timestamp_millis(start_ms).unwrap_or_default();
    doc.insert("name".into(), format!("Recording of {}", config.path.display()).into());
    doc.insert(
        "description".into(),
        format!("Live feeds recorded by cityops from {}.", config.path.display()).into(),
    );
    doc.insert("map".into(), config.map.clone().into());
    doc.insert(
        "start".into(),
        start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into(),
    );
    doc.insert(
        "tape".into(),
        tape.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into(),
    );
    doc.insert(
        "view".into(),
        toml::Value::Array(config.view.iter().map(|v| toml::Value::Float(*v)).collect()),
    );
    let feeds = config
        .feeds
        .iter()
        .map(|f| {
            let mut t = toml::Table::new();
            t.insert("id".into(), f.spec.id.clone().into());
            t.insert("layer".into(), f.spec.layer.as_str().into());
            t.insert("format".into(), f.spec.format.as_str().into());
            t.insert("name".into(), f.spec.name.clone().into());
            if let Ok(toml::Value::Table(m)) = toml::Value::try_from(&f.spec.mapping) {
                t.insert("mapping".into(), toml::Value::Table(m));
            }
            toml::Value::Table(t)
        })
        .collect();
    doc.insert("feeds".into(), toml::Value::Array(feeds));
    toml::to_string(&doc).expect("a table of strings and numbers always serializes")
}
