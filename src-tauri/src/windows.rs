//! The app's other windows: the trainer view and the read-only wall display. Opening and
//! closing them is the shell's business, not the engine's; their commands in
//! `commands::training` and `commands::wall` call these.

use cityops_engine::dto::{ApiError, ApiErrorCode};
use cityops_engine::Engine;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// The label of the trainer view's window (its capability is `capabilities/trainer.json`).
pub const TRAINER: &str = "trainer";

/// The label of the wall display's window. Its capability (`capabilities/wall.json`) grants
/// only reading the scenario and following the picture, so nothing shown there can act on an
/// incident or a backend.
pub const WALL: &str = "wall";

/// Opens the trainer view in its own window (or brings it forward), and gives it the clock.
/// The window's close hands the clock back (see `lib.rs`).
pub fn open_trainer_view(app: &AppHandle, engine: &Engine) -> Result<(), ApiError> {
    let failed = |e: tauri::Error| ApiError {
        code: ApiErrorCode::Internal,
        message: format!("cannot open the trainer view: {e}"),
    };
    if let Some(w) = app.get_webview_window(TRAINER) {
        return w.set_focus().map_err(failed);
    }
    engine.set_trainer_view(true)?;
    let title = format!("cityops trainer: {}", engine.scenario().name);
    WebviewWindowBuilder::new(app, TRAINER, WebviewUrl::App("index.html?view=trainer".into()))
        .title(title)
        .inner_size(1280.0, 800.0)
        .build()
        .map_err(failed)?;
    Ok(())
}

/// Closes the trainer view and hands the clock back to the trainee's window.
pub fn close_trainer_view(app: &AppHandle, engine: &Engine) -> Result<(), ApiError> {
    engine.set_trainer_view(false)?;
    if let Some(w) = app.get_webview_window(TRAINER) {
        w.destroy().map_err(|e| ApiError {
            code: ApiErrorCode::Internal,
            message: format!("cannot close the trainer view: {e}"),
        })?;
    }
    Ok(())
}

/// Opens the wall display (or brings it forward).
pub fn open_wall_display(app: &AppHandle, engine: &Engine) -> Result<(), ApiError> {
    let failed = |e: tauri::Error| ApiError {
        code: ApiErrorCode::Internal,
        message: format!("cannot open the wall display: {e}"),
    };
    if let Some(w) = app.get_webview_window(WALL) {
        return w.set_focus().map_err(failed);
    }
    WebviewWindowBuilder::new(app, WALL, WebviewUrl::App("index.html?view=wall".into()))
        .title(format!("cityops wall display: {}", engine.scenario().name))
        .inner_size(1600.0, 1000.0)
        .build()
        .map_err(failed)?;
    Ok(())
}
