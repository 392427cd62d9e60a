/**
 * The desktop implementation of `Backend`: one Tauri command per method.
 *
 * Invariant: this folder is the only code that imports `@tauri-apps/api`. Command names and
 * argument keys must match the `#[tauri::command]` functions in `src-tauri` (Tauri turns the
 * Rust snake_case parameter names into the camelCase keys used here).
 */
import { Channel, invoke } from "@tauri-apps/api/core";
import { toApiError, type Backend } from "./backend";
import type { ActionDto } from "./gen/ActionDto";
import type { ActionPreviewDto } from "./gen/ActionPreviewDto";
import type { BackendDto } from "./gen/BackendDto";
import type { ChartDto } from "./gen/ChartDto";
import type { ExerciseDto } from "./gen/ExerciseDto";
import type { InjectDto } from "./gen/InjectDto";
import type { IncidentDetailDto } from "./gen/IncidentDetailDto";
import type { MapDiffDto } from "./gen/MapDiffDto";
import type { OperatorDto } from "./gen/OperatorDto";
import type { RosterEntryDto } from "./gen/RosterEntryDto";
import type { ObservationDto } from "./gen/ObservationDto";
import type { OutboxDto } from "./gen/OutboxDto";
import type { QuarantineDto } from "./gen/QuarantineDto";
import type { ScenarioDto } from "./gen/ScenarioDto";

/** Calls a command and rejects with an `ApiError` whatever went wrong. */
async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toApiError(e);
  }
}

export function createTauriBackend(): Backend {
  // The channel must stay referenced for as long as the subscription lives, or its callback
  // could be collected; keep it here rather than in a local of `subscribe`.
  let channel: Channel<MapDiffDto> | null = null;
  return {
    kind: "tauri",
    scenario: () => call<ScenarioDto>("scenario"),
    subscribe: async (onDiff) => {
      channel = new Channel<MapDiffDto>();
      channel.onmessage = onDiff;
      await call<void>("subscribe", { onDiff: channel });
    },
    play: () => call<void>("replay_play"),
    pause: () => call<void>("replay_pause"),
    setSpeed: (speed) => call<void>("replay_speed", { speed }),
    seek: (ms) => call<void>("replay_seek", { ms }),
    observation: (id) => call<ObservationDto>("observation", { id }),
    signIn: (name, role, pin) => call<OperatorDto>("sign_in", { name, role, pin }),
    roster: () => call<RosterEntryDto[]>("roster"),
    assignRole: (name, role, pin) => call<void>("assign_role", { name, role, pin }),
    signOut: () => call<void>("sign_out"),
    operator: () => call<OperatorDto | null>("operator"),
    incident: (id) => call<IncidentDetailDto>("incident", { id }),
    transition: (id, to) => call<void>("incident_transition", { id, to }),
    merge: (into, from) => call<void>("incident_merge", { into, from }),
    split: (from, entity) => call<string>("incident_split", { from, entity }),
    reassign: (from, entity, to) => call<void>("incident_reassign", { from, entity, to }),
    undo: () => call<void>("incident_undo"),
    tickSop: (id, step, ticked) => call<void>("incident_tick_sop", { id, step, ticked }),
    backends: () => call<BackendDto[]>("backends"),
    previewAction: (request) => call<ActionPreviewDto>("preview_action", { request }),
    armAction: (token) => call<number>("arm_action", { token }),
    confirmAction: (token) => call<ActionDto>("confirm_action", { token }),
    outbox: () => call<OutboxDto>("outbox"),
    retryAction: (id) => call<void>("retry_action", { id }),
    cancelAction: (id) => call<void>("cancel_action", { id }),
    quarantine: (feed) => call<QuarantineDto>("quarantine", { feed }),
    report: (mapPng) => call<string>("report", { mapPng }),
    kpi: () => call<ChartDto[]>("kpi"),
    inject: (request) => call<InjectDto>("inject", { request }),
    exercise: () => call<ExerciseDto>("exercise"),
    endExercise: (by, mapPng) => call<string>("end_exercise", { by, mapPng }),
    openTrainerView: () => call<void>("open_trainer_view"),
    closeTrainerView: () => call<void>("close_trainer_view"),
    openWallDisplay: () => call<void>("open_wall_display"),
  };
}
