//! The wall display: a read-only window for the control room's big screen. Its capability
//! (`capabilities/wall.json`) grants only reading the scenario and following the picture, so
//! nothing shown there can act on an incident or a backend.

use cityops_engine::dto::{ApiError, ApiErrorCode};
use cityops_engine::Engine;
use tauri::{AppHandle, Manager, State, WebviewUrl, WebviewWindowBuilder};

/// The label of the wall display's window.
pub const WALL: &str = "wall";

/// Opens the wall display (or brings it forward).
#[tauri::command]
pub async fn open_wall_display(app: AppHandle, engine: State<'_, Engine>) -> Result<(), ApiError> {
    let failed = |e: tauri::Error| ApiError { code: ApiErrorCode::Internal, message: format!("cannot open the wall display: {e}") };
    if let Some(w) = app.get_webview_window(WALL) {
        return w.set_focus().map_err(failed);
    }
    WebviewWindowBuilder::new(&app, WALL, WebviewUrl::App("index.html?view=wall".into()))
        .title(format!("cityops wall display: {}", engine.scenario().name))
        .inner_size(1600.0, 1000.0)
        .build()
        .map_err(failed)?;
    Ok(())
}
