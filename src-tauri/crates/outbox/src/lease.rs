//! The sender's lease on a database: one process at a time delivers its outbox.
//!
//! Two senders on one database would both deliver: each reads the same head of a backend's
//! queue, and a starting one takes the other's in-flight actions for a crash's leftovers and
//! queues them again. So whoever sends holds an exclusive OS file lock on a file beside the
//! database (`<db>.outbox-lock`). The kernel releases it when the holder exits, even by
//! `kill -9`, so a lease is never left behind by a crash; and only the process holding it may
//! re-queue actions left `sending`, because only then is it certain nobody is sending them.
//! The file holds who has the lease (process id, program, since when), for the one waiting.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::OutboxError;

/// A held lease; dropping it releases the lock.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

/// The lock file of a database.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".outbox-lock");
    PathBuf::from(p)
}

impl Lease {
    /// Takes the lease if nobody holds it; otherwise says who does.
    pub fn try_acquire(db: &Path) -> Result<Result<Lease, String>, OutboxError> {
        let path = lock_path(db);
        let io = |source| OutboxError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                let exe = std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                let me = format!(
                    "process {} ({exe}) since {}",
                    std::process::id(),
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                file.set_len(0)
                    .and_then(|_| file.seek(SeekFrom::Start(0)))
                    .and_then(|_| file.write_all(me.as_bytes()))
                    .and_then(|_| file.flush())
                    .map_err(io)?;
                Ok(Ok(Lease { _file: file }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Advisory locks do not stop reading; the holder wrote its name when it locked.
                let _ = file.read_to_string(&mut holder);
                let holder: String = holder.chars().filter(|c| !c.is_control()).take(200).collect();
                Ok(Err(if holder.is_empty() {
                    "another process".into()
                } else {
                    holder
                }))
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_other_learns_who() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let first = Lease::try_acquire(&db).unwrap().expect("free");
        let holder = Lease::try_acquire(&db).unwrap().expect_err("held");
        assert!(holder.contains(&format!("process {}", std::process::id())), "{holder}");
        drop(first);
        Lease::try_acquire(&db).unwrap().expect("released with its holder");
    }
}
