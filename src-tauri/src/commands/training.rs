//! Exercise commands: each a one-line adapter onto the engine, except opening the trainer
//! view, which is a window and so the shell's business.

use cityops_engine::dto::{ApiError, ApiErrorCode, ChartDto, ExerciseDto, InjectDto, InjectRequestDto};
use cityops_engine::Engine;
use tauri::{AppHandle, Manager, State, WebviewUrl, WebviewWindowBuilder};

/// The label of the trainer view's window (its capability is `capabilities/trainer.json`).
pub const TRAINER: &str = "trainer";

/// The after-action report of the run so far, as one HTML document, with the map image (a
/// base64 PNG of the main incident's area) if the UI sends one.
#[tauri::command]
pub async fn report(engine: State<'_, Engine>, map_png: Option<String>) -> Result<String, ApiError> {
    Ok(engine.report(map_png).await?)
}

/// The shift's KPI charts up to the clock.
#[tauri::command]
pub async fn kpi(engine: State<'_, Engine>) -> Result<Vec<ChartDto>, ApiError> {
    Ok(engine.kpi().await?)
}

/// A trainer's inject at the clock's time.
#[tauri::command]
pub async fn inject(engine: State<'_, Engine>, request: InjectRequestDto) -> Result<InjectDto, ApiError> {
    Ok(engine.inject(request).await?)
}

/// The exercise so far: injects, live score, end.
#[tauri::command]
pub async fn exercise(engine: State<'_, Engine>) -> Result<ExerciseDto, ApiError> {
    Ok(engine.exercise().await?)
}

/// Ends the exercise and returns its report.
#[tauri::command]
pub async fn end_exercise(engine: State<'_, Engine>, by: Option<String>, map_png: Option<String>) -> Result<String, ApiError> {
    Ok(engine.end_exercise(by, map_png).await?)
}

/// Opens the trainer view in its own window (or brings it forward), and gives it the clock.
/// The window's close hands the clock back (see `lib.rs`).
#[tauri::command]
pub async fn open_trainer_view(app: AppHandle, engine: State<'_, Engine>) -> Result<(), ApiError> {
    let failed = |e: tauri::Error| ApiError { code: ApiErrorCode::Internal, message: format!("cannot open the trainer view: {e}") };
    if let Some(w) = app.get_webview_window(TRAINER) {
        return w.set_focus().map_err(failed);
    }
    engine.set_trainer_view(true)?;
    let title = format!("cityops trainer: {}", engine.scenario().name);
    WebviewWindowBuilder::new(&app, TRAINER, WebviewUrl::App("index.html?view=trainer".into()))
        .title(title)
        .inner_size(1280.0, 800.0)
        .build()
        .map_err(failed)?;
    Ok(())
}

/// Closes the trainer view and hands the clock back to the trainee's window.
#[tauri::command]
pub async fn close_trainer_view(app: AppHandle, engine: State<'_, Engine>) -> Result<(), ApiError> {
    engine.set_trainer_view(false)?;
    if let Some(w) = app.get_webview_window(TRAINER) {
        w.destroy().map_err(|e| ApiError { code: ApiErrorCode::Internal, message: format!("cannot close the trainer view: {e}") })?;
    }
    Ok(())
}
