use cityops_engine::dto::ScenarioDto;
use cityops_engine::Engine;
use tauri::State;

/// The loaded scenario.
#[tauri::command]
pub fn scenario(engine: State<'_, Engine>) -> ScenarioDto {
    engine.scenario()
}
