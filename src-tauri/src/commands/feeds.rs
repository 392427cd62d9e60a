//! Feed commands: each a one-line adapter onto the engine. Feed health needs no command: it
//! travels in the diff stream (see `replay::subscribe`).

use cityops_engine::dto::{ApiError, QuarantineDto};
use cityops_engine::Engine;
use tauri::State;

/// The newest quarantined entries of the current run, of one feed if `feed` is given.
#[tauri::command]
pub async fn quarantine(engine: State<'_, Engine>, feed: Option<String>) -> Result<QuarantineDto, ApiError> {
    Ok(engine.quarantine(feed).await?)
}
