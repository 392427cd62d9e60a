//! A drop folder: every file that appears in it is one message of the feed. A file is read once
//! its size has stopped changing (writers may still be copying it); once its observations are
//! committed the ingest side moves it to `processed/` inside the folder (see [`DropFile`]: a
//! crash at any point neither loses nor doubles it); a file over the size
//! limit is moved to `rejected/` and quarantined. `notify` wakes the scan as soon as something
//! changes; a slow periodic scan catches events a file system does not report.
//!
//! A folder declared `format = "auto"` takes each file's format from its extension
//! ([`FeedFormat::from_extension`]); a file whose extension the table does not list is moved to
//! `rejected/` and quarantined with a reason naming it, and the message of a file that was read
//! carries its resolved format onto the tape.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use cityops_core::tape::FeedFormat;

use super::{hand_over, now_ms, DropFile, Health, Incoming};
use crate::config::LiveFeed;
use cityops_decoders::MAX_BODY_BYTES;

/// How long a file's size must stay the same before it is read.
const SETTLE: Duration = Duration::from_millis(300);
/// The scan period when no event arrives.
const RESCAN: Duration = Duration::from_secs(2);

pub(super) async fn run(
    i: usize,
    feed: LiveFeed,
    dir: PathBuf,
    tx: mpsc::Sender<Incoming>,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    let id = feed.spec.id.clone();
    for sub in ["processed", "rejected"] {
        if let Err(e) = std::fs::create_dir_all(dir.join(sub)) {
            let reason = format!("drop folder {}: {e}", dir.display());
            health.failed(&id, &reason);
            let _ = tx
                .send(Incoming::Failure {
                    feed: i,
                    reason,
                    body: Vec::new(),
                    at: now_ms(),
                })
                .await;
            return;
        }
    }
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        let _ = wake_tx.try_send(());
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|_| w));
    match &watcher {
        Ok(_) => health.connected(&id),
        // Without events the periodic scan still works, only slower; say so.
        Err(e) => health.failed(
            &id,
            &format!("cannot watch {}: {e}; scanning every {RESCAN:?}", dir.display()),
        ),
    }
    // Sizes seen at the previous scan, to tell a finished file from one still being written.
    let mut sizes: HashMap<PathBuf, (u64, tokio::time::Instant)> = HashMap::new();
    // Files sent and not yet moved away by the ingest side: not to be read again meanwhile.
    let mut sent: HashSet<PathBuf> = HashSet::new();
    loop {
        let listed = files(&dir);
        sent.retain(|p| listed.iter().any(|(l, _)| l == p));
        for (path, size) in listed {
            if sent.contains(&path) {
                continue;
            }
            let now = tokio::time::Instant::now();
            let settled = match sizes.get(&path) {
                Some((s, since)) if *s == size => now.duration_since(*since) >= SETTLE,
                _ => {
                    sizes.insert(path.clone(), (size, now));
                    false
                }
            };
            if !settled {
                continue;
            }
            sizes.remove(&path);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let format = match feed.spec.format {
                FeedFormat::ByExtension => resolve(&path),
                declared => Ok(declared),
            };
            let incoming = if size as usize > MAX_BODY_BYTES {
                let _ = std::fs::rename(&path, dir.join("rejected").join(&name));
                Incoming::Failure {
                    feed: i,
                    reason: format!("file {name}: {size} bytes exceeds the {MAX_BODY_BYTES}-byte limit"),
                    body: Vec::new(),
                    at: now_ms(),
                }
            } else if let Err(reason) = format {
                let _ = std::fs::rename(&path, dir.join("rejected").join(&name));
                Incoming::Failure {
                    feed: i,
                    reason: format!("file {name}: {reason}"),
                    body: Vec::new(),
                    at: now_ms(),
                }
            } else {
                match std::fs::read(&path) {
                    Ok(body) => {
                        sent.insert(path.clone());
                        let file = DropFile {
                            key: key(&name, &path, size),
                            done: dir.join("processed").join(&name),
                            path,
                        };
                        Incoming::File {
                            feed: i,
                            format: format.ok(),
                            body,
                            received_ms: now_ms(),
                            file,
                        }
                    }
                    Err(e) => Incoming::Failure {
                        feed: i,
                        reason: format!("file {name}: {e}"),
                        body: Vec::new(),
                        at: now_ms(),
                    },
                }
            };
            if !hand_over(&tx, &health, &id, incoming).await {
                return;
            }
        }
        // Poll quickly while files are settling, slowly otherwise.
        let period = if sizes.is_empty() { RESCAN } else { SETTLE / 2 };
        tokio::select! {
            _ = wake.recv() => {}
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => if *stop.borrow() { return },
        }
    }
}

/// A file's delivery key: its name, size and modification time, so that a new file dropped
/// under an old name is a new message.
fn key(name: &str, path: &Path, size: u64) -> String {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{name}:{size}:{modified}")
}

/// Why an `auto` folder cannot read a file; `known` lists the extensions it reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum UnknownFormat {
    /// The file's extension names no format.
    #[error("unknown extension .{ext}: format = \"auto\" reads {known}")]
    Extension { ext: String, known: String },
    /// The file has no extension.
    #[error("no extension: format = \"auto\" reads {known}")]
    NoExtension { known: String },
}

/// The format an `auto` folder reads a file as, or why it cannot.
fn resolve(path: &Path) -> Result<FeedFormat, UnknownFormat> {
    let known = || {
        FeedFormat::EXTENSIONS
            .iter()
            .flat_map(|(_, exts)| exts.iter().map(|e| format!(".{e}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match path.extension().map(|e| e.to_string_lossy()) {
        Some(ext) => FeedFormat::from_extension(&ext).ok_or_else(|| UnknownFormat::Extension {
            ext: ext.into_owned(),
            known: known(),
        }),
        None => Err(UnknownFormat::NoExtension { known: known() }),
    }
}

/// Regular, visible files directly in `dir`, oldest name first, with their sizes.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| (e.path(), meta.len()))
        })
        .collect();
    out.sort();
    out
}
