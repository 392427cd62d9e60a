//! Incident and operator commands: each a one-line adapter onto the engine.

use cityops_engine::dto::{ApiError, IncidentDetailDto, LifecycleStatus, OperatorDto, OperatorRole, RosterEntryDto};
use cityops_engine::Engine;
use tauri::State;

/// Signs an operator in (name, role and an optional PIN); their name stamps every action.
#[tauri::command]
pub async fn sign_in(engine: State<'_, Engine>, name: String, role: OperatorRole, pin: Option<String>) -> Result<OperatorDto, ApiError> {
    Ok(engine.sign_in(name, role, pin).await?)
}

/// The operator roster; the engine answers only a signed-in supervisor.
#[tauri::command]
pub async fn roster(engine: State<'_, Engine>) -> Result<Vec<RosterEntryDto>, ApiError> {
    Ok(engine.roster().await?)
}

/// Gives an operator a role and PIN in the roster; the engine answers only a supervisor.
#[tauri::command]
pub async fn assign_role(engine: State<'_, Engine>, name: String, role: OperatorRole, pin: Option<String>) -> Result<(), ApiError> {
    Ok(engine.assign_role(name, role, pin).await?)
}

#[tauri::command]
pub async fn sign_out(engine: State<'_, Engine>) -> Result<(), ApiError> {
    Ok(engine.sign_out().await?)
}

/// The signed-in operator, or null.
#[tauri::command]
pub async fn operator(engine: State<'_, Engine>) -> Result<Option<OperatorDto>, ApiError> {
    Ok(engine.operator().await?)
}

/// Members by layer with explanations, timeline, root cause, area and SOP of one incident.
#[tauri::command]
pub async fn incident(engine: State<'_, Engine>, id: String) -> Result<IncidentDetailDto, ApiError> {
    Ok(engine.incident_detail(id).await?)
}

#[tauri::command]
pub async fn incident_transition(engine: State<'_, Engine>, id: String, to: LifecycleStatus) -> Result<(), ApiError> {
    Ok(engine.incident_transition(id, to).await?)
}

#[tauri::command]
pub async fn incident_merge(engine: State<'_, Engine>, into: String, from: String) -> Result<(), ApiError> {
    Ok(engine.incident_merge(into, from).await?)
}

/// Returns the id of the incident made for the member.
#[tauri::command]
pub async fn incident_split(engine: State<'_, Engine>, from: String, entity: String) -> Result<String, ApiError> {
    Ok(engine.incident_split(from, entity).await?)
}

#[tauri::command]
pub async fn incident_reassign(engine: State<'_, Engine>, from: String, entity: String, to: String) -> Result<(), ApiError> {
    Ok(engine.incident_reassign(from, entity, to).await?)
}

#[tauri::command]
pub async fn incident_undo(engine: State<'_, Engine>) -> Result<(), ApiError> {
    Ok(engine.incident_undo().await?)
}

#[tauri::command]
pub async fn incident_tick_sop(engine: State<'_, Engine>, id: String, step: u32, ticked: bool) -> Result<(), ApiError> {
    Ok(engine.incident_tick_sop(id, step, ticked).await?)
}
