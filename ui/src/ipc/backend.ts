/**
 * The one interface through which the UI reaches the engine.
 *
 * Panels and state never see this; only `App.svelte` holds a `Backend`. Two implementations
 * exist: `tauri.ts` (the desktop shell, over Tauri IPC) and `fake.ts` (canned data, for unit
 * tests and for running the UI in a plain browser). `index.ts` picks one at startup.
 */
import type { ApiError } from "./gen/ApiError";
import type { ApiErrorCode } from "./gen/ApiErrorCode";
import type { MapDiffDto } from "./gen/MapDiffDto";
import type { ObservationDto } from "./gen/ObservationDto";
import type { ScenarioDto } from "./gen/ScenarioDto";

export type { ApiError, ApiErrorCode };
export type { ClockDto } from "./gen/ClockDto";
export type { FeedDto } from "./gen/FeedDto";
export type { JsonValue } from "./gen/serde_json/JsonValue";
export type { Layer } from "./gen/Layer";
export type { LayerAgeDto } from "./gen/LayerAgeDto";
export type { MapDiffDto } from "./gen/MapDiffDto";
export type { MapFeatureDto } from "./gen/MapFeatureDto";
export type { ObservationDto } from "./gen/ObservationDto";
export type { ScenarioDto } from "./gen/ScenarioDto";
export type { Severity } from "./gen/Severity";

export interface Backend {
  /** A short name for the status strip ("desktop" or "fake"). */
  readonly kind: "tauri" | "fake";
  /** The loaded scenario: its name, time span, initial view and feeds. */
  scenario(): Promise<ScenarioDto>;
  /**
   * Starts the stream of map diffs. The first diff is a reset carrying the whole current
   * picture; later ones carry only what changed, plus the clock.
   */
  subscribe(onDiff: (d: MapDiffDto) => void): Promise<void>;
  play(): Promise<void>;
  pause(): Promise<void>;
  /** Replay speed as a multiple of real time; `null` means as fast as possible. */
  setSpeed(speed: number | null): Promise<void>;
  /** Moves the replay clock to `ms` (Unix epoch milliseconds). */
  seek(ms: number): Promise<void>;
  /** The newest observation of the entity with this id, with its full payload. */
  observation(id: string): Promise<ObservationDto>;
}

const CODES: readonly ApiErrorCode[] = ["notFound", "invalidInput", "internal"];

/** True for the `{ code, message }` objects that backend calls reject with. */
export function isApiError(e: unknown): e is ApiError {
  if (typeof e !== "object" || e === null) return false;
  const o = e as Record<string, unknown>;
  return typeof o.message === "string" && CODES.includes(o.code as ApiErrorCode);
}

/**
 * Turns whatever a backend call rejected with into an `ApiError`. The Tauri side always sends
 * `ApiError`, but a failure inside the IPC layer itself (a missing command, a serialisation
 * error) arrives as a plain string or `Error`.
 */
export function toApiError(e: unknown): ApiError {
  if (isApiError(e)) return e;
  if (e instanceof Error) return { code: "internal", message: e.message };
  if (typeof e === "string") return { code: "internal", message: e };
  return { code: "internal", message: String(e) };
}
