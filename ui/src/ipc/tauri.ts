/**
 * The desktop implementation of `Backend`: one Tauri command per method.
 *
 * Invariant: this folder is the only code that imports `@tauri-apps/api`. Command names and
 * argument keys must match the `#[tauri::command]` functions in `src-tauri` (Tauri turns the
 * Rust snake_case parameter names into the camelCase keys used here).
 */
import { Channel, invoke } from "@tauri-apps/api/core";
import { toApiError, type Backend } from "./backend";
import type { MapDiffDto } from "./gen/MapDiffDto";
import type { ObservationDto } from "./gen/ObservationDto";
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
  };
}
