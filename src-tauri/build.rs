//! Declares the app's commands to Tauri's access control: each gets an `allow-<command>`
//! permission, and a window may call only the commands its capability
//! (`capabilities/*.json`) grants. A command missing here cannot be granted at all.

/// Every `#[tauri::command]` of the shell, in `snake_case` (kept equal to the
/// `generate_handler!` list in `src/lib.rs`; `tests/e2e` proves a window is refused what its
/// capability leaves out).
const COMMANDS: &[&str] = &[
    "scenario",
    "backends",
    "preview_action",
    "arm_action",
    "confirm_action",
    "outbox",
    "retry_action",
    "cancel_action",
    "subscribe",
    "replay_play",
    "replay_pause",
    "replay_speed",
    "replay_seek",
    "observation",
    "quarantine",
    "report",
    "kpi",
    "inject",
    "exercise",
    "end_exercise",
    "open_trainer_view",
    "close_trainer_view",
    "open_wall_display",
    "sign_in",
    "roster",
    "assign_role",
    "sign_out",
    "operator",
    "incident",
    "incident_transition",
    "incident_merge",
    "incident_split",
    "incident_reassign",
    "incident_undo",
    "incident_tick_sop",
];

fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)))
        .expect("the Tauri build step failed");
}
