//! Exercise commands: each a one-line adapter onto the engine.

use cityops_engine::dto::ApiError;
use cityops_engine::Engine;
use tauri::State;

/// The after-action report of the run so far, as one HTML document.
#[tauri::command]
pub async fn report(engine: State<'_, Engine>) -> Result<String, ApiError> {
    Ok(engine.report().await?)
}
