//! Dispatch commands: each a one-line adapter onto the engine's outbox.

use cityops_engine::dto::{ActionDto, ActionPreviewDto, ActionRequestDto, ApiError, BackendDto, OutboxDto};
use cityops_engine::Engine;
use tauri::State;

/// The configured backends, as operators pick them.
#[tauri::command]
pub async fn backends(engine: State<'_, Engine>) -> Result<Vec<BackendDto>, ApiError> {
    Ok(engine.backends().await?)
}

/// Exactly what confirming will send, to whom.
#[tauri::command]
pub async fn preview_action(engine: State<'_, Engine>, request: ActionRequestDto) -> Result<ActionPreviewDto, ApiError> {
    Ok(engine.preview_action(request).await?)
}

/// The first confirmation of a dangerous action; the engine counts it and answers how many the
/// action needs in all.
#[tauri::command]
pub async fn arm_action(engine: State<'_, Engine>, token: String) -> Result<u8, ApiError> {
    Ok(engine.arm_action(token).await?)
}

/// Commits a previewed action durably (a dangerous one only after `arm_action`).
#[tauri::command]
pub async fn confirm_action(engine: State<'_, Engine>, token: String) -> Result<ActionDto, ApiError> {
    Ok(engine.confirm_action(token).await?)
}

#[tauri::command]
pub async fn outbox(engine: State<'_, Engine>) -> Result<OutboxDto, ApiError> {
    Ok(engine.outbox().await?)
}

#[tauri::command]
pub async fn retry_action(engine: State<'_, Engine>, id: i64) -> Result<(), ApiError> {
    Ok(engine.retry_action(id).await?)
}

#[tauri::command]
pub async fn cancel_action(engine: State<'_, Engine>, id: i64) -> Result<(), ApiError> {
    Ok(engine.cancel_action(id).await?)
}
