//! The outbox without a window: `cityops dispatch` commits actions from the command line and
//! `cityops send` delivers what is queued, for a spare workstation, a server, and the crash
//! tests that kill the process mid-burst.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use cityops_core::dispatch::Place;
use cityops_core::model::GeoPoint;

use super::{BackendSpec, Outbox};
use crate::error::OutboxError;
use cityops_dto::{ActionParams, ActionRequestDto, OperatorDto};
use cityops_store::Store;

/// What to commit.
#[derive(Debug, Clone)]
pub struct Burst {
    pub backend: String,
    pub operator: OperatorDto,
    pub params: ActionParams,
    pub at: GeoPoint,
    pub label: String,
    pub incident: Option<String>,
    /// How many copies (each its own action with its own key).
    pub count: u32,
}

/// Commits `burst.count` actions, each durably and on its own; after each commit its key is
/// printed on a line of `out` and flushed, so whoever reads `out` knows it is on disk.
/// Senders run meanwhile (unless `send` is false) and keep going once all are committed.
pub fn commit_burst(
    db: &Path,
    specs: Vec<BackendSpec>,
    burst: &Burst,
    send: bool,
    out: &mut impl Write,
) -> Result<Outbox, OutboxError> {
    let mut outbox = if send {
        Outbox::start(db, specs, false)?
    } else {
        Outbox::idle(db, specs)?
    };
    commit_into(&mut outbox, burst, out)?;
    Ok(outbox)
}

/// Commits `burst.count` actions into `outbox`, printing each key once on disk (see
/// [`commit_burst`]); returns the keys.
pub fn commit_into(outbox: &mut Outbox, burst: &Burst, out: &mut impl Write) -> Result<Vec<String>, OutboxError> {
    let place = Place {
        point: burst.at,
        label: burst.label.clone(),
        area: None,
    };
    let mut keys = Vec::with_capacity(burst.count as usize);
    for _ in 0..burst.count {
        let request = ActionRequestDto {
            backend: burst.backend.clone(),
            incident: burst.incident.clone(),
            at: None,
            params: burst.params.clone(),
        };
        let preview = outbox.preview(request, &place, &burst.operator, chrono::Utc::now().timestamp_millis())?;
        if preview.confirmations >= 2 {
            outbox.arm(&preview.token, &burst.operator)?;
        }
        let action = outbox.confirm(&preview.token, &burst.operator, None)?;
        keys.push(action.key.clone());
        writeln!(out, "{}", action.key)
            .and_then(|_| out.flush())
            .map_err(|e| OutboxError::Io {
                path: "stdout".into(),
                source: e,
            })?;
    }
    Ok(keys)
}

/// Delivers until nothing is queued or in flight, or `timeout` passes; returns the counts of
/// actions still queued and failed.
pub async fn send_until_idle(
    db: &Path,
    outbox: Option<Outbox>,
    specs: Vec<BackendSpec>,
    timeout: Duration,
) -> Result<(u32, u32), OutboxError> {
    let _outbox = match outbox {
        Some(o) => o,
        None => Outbox::start(db, specs, false)?,
    };
    let store = Store::open(db)?;
    let started = Instant::now();
    loop {
        let (queued, failed) = store.action_counts()?;
        if queued == 0 || started.elapsed() >= timeout {
            return Ok((queued, failed));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
