use cityops_engine::dto::{ApiError, MapDiffDto, ObservationDto};
use cityops_engine::Engine;
use tauri::ipc::Channel;
use tauri::State;

/// Streams the picture to the UI: the whole of it at once, then one coalesced diff per tick.
#[tauri::command]
pub fn subscribe(engine: State<'_, Engine>, on_diff: Channel<MapDiffDto>) -> Result<(), ApiError> {
    Ok(engine.subscribe(Box::new(move |diff| on_diff.send(diff).is_ok()))?)
}

#[tauri::command]
pub fn replay_play(engine: State<'_, Engine>) -> Result<(), ApiError> {
    Ok(engine.play()?)
}

#[tauri::command]
pub fn replay_pause(engine: State<'_, Engine>) -> Result<(), ApiError> {
    Ok(engine.pause()?)
}

/// `speed` null runs as fast as the pipeline goes.
#[tauri::command]
pub fn replay_speed(engine: State<'_, Engine>, speed: Option<f64>) -> Result<(), ApiError> {
    Ok(engine.set_speed(speed)?)
}

#[tauri::command]
pub fn replay_seek(engine: State<'_, Engine>, ms: i64) -> Result<(), ApiError> {
    Ok(engine.seek(ms)?)
}

/// The full current observation of one entity, for the details panel.
#[tauri::command]
pub async fn observation(engine: State<'_, Engine>, id: String) -> Result<ObservationDto, ApiError> {
    Ok(engine.observation(id).await?)
}
