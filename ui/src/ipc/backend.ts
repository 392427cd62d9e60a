/**
 * The one interface through which the UI reaches the engine.
 *
 * Panels and state never see this; only `App.svelte` holds a `Backend`. Two implementations
 * exist: `tauri.ts` (the desktop shell, over Tauri IPC) and `fake.ts` (canned data, for unit
 * tests and for running the UI in a plain browser). `index.ts` picks one at startup.
 */
import type { ActionDto } from "./gen/ActionDto";
import type { ActionPreviewDto } from "./gen/ActionPreviewDto";
import type { ActionRequestDto } from "./gen/ActionRequestDto";
import type { ApiError } from "./gen/ApiError";
import type { ApiErrorCode } from "./gen/ApiErrorCode";
import type { IncidentDetailDto } from "./gen/IncidentDetailDto";
import type { LifecycleStatus } from "./gen/LifecycleStatus";
import type { OperatorDto } from "./gen/OperatorDto";
import type { OperatorRole } from "./gen/OperatorRole";
import type { RosterEntryDto } from "./gen/RosterEntryDto";
import type { MapDiffDto } from "./gen/MapDiffDto";
import type { ObservationDto } from "./gen/ObservationDto";
import type { OutboxDto } from "./gen/OutboxDto";
import type { QuarantineDto } from "./gen/QuarantineDto";
import type { ScenarioDto } from "./gen/ScenarioDto";
import type { BackendDto } from "./gen/BackendDto";
import type { ChartDto } from "./gen/ChartDto";
import type { ExerciseDto } from "./gen/ExerciseDto";
import type { InjectDto } from "./gen/InjectDto";
import type { InjectRequestDto } from "./gen/InjectRequestDto";
import type { NewIncidentDto } from "./gen/NewIncidentDto";
import type { CallDto } from "./gen/CallDto";
import type { AreaQueryDto } from "./gen/AreaQueryDto";
import type { AreaAnswerDto } from "./gen/AreaAnswerDto";

export type { ApiError, ApiErrorCode, RosterEntryDto };
export type { ClockDto } from "./gen/ClockDto";
export type { FeedDto } from "./gen/FeedDto";
export type { FeedHealthDto } from "./gen/FeedHealthDto";
export type { StorageHealthDto } from "./gen/StorageHealthDto";
export type { SiteStatusDto } from "./gen/SiteStatusDto";
export type { PresenceDto } from "./gen/PresenceDto";
export type { QuarantineDto } from "./gen/QuarantineDto";
export type { QuarantineEntryDto } from "./gen/QuarantineEntryDto";
export type { QuarantineFeedDto } from "./gen/QuarantineFeedDto";
export type { JsonValue } from "./gen/serde_json/JsonValue";
export type { Layer } from "./gen/Layer";
export type { LayerAgeDto } from "./gen/LayerAgeDto";
export type { MapDiffDto } from "./gen/MapDiffDto";
export type { MapFeatureDto } from "./gen/MapFeatureDto";
export type { ObservationDto } from "./gen/ObservationDto";
export type { ScenarioDto } from "./gen/ScenarioDto";
export type { IncidentTypeDto } from "./gen/IncidentTypeDto";
export type { NewIncidentDto } from "./gen/NewIncidentDto";
export type { CallDto } from "./gen/CallDto";
export type { AreaQueryDto } from "./gen/AreaQueryDto";
export type { AreaAnswerDto } from "./gen/AreaAnswerDto";
export type { KindCountDto } from "./gen/KindCountDto";
export type { Severity } from "./gen/Severity";
export type { Shape } from "./gen/Shape";
export type { ZoneDto } from "./gen/ZoneDto";
export type { AreaDto } from "./gen/AreaDto";
export type { IncidentDetailDto } from "./gen/IncidentDetailDto";
export type { IncidentEntryDto } from "./gen/IncidentEntryDto";
export type { IncidentsDiffDto } from "./gen/IncidentsDiffDto";
export type { LayerGroupDto } from "./gen/LayerGroupDto";
export type { LifecycleStatus } from "./gen/LifecycleStatus";
export type { MemberDto } from "./gen/MemberDto";
export type { OperatorDto } from "./gen/OperatorDto";
export type { OperatorRole } from "./gen/OperatorRole";
export type { SopStepDto } from "./gen/SopStepDto";
export type { TimelineEntryDto } from "./gen/TimelineEntryDto";
export type { ActionDto } from "./gen/ActionDto";
export type { ActionParams } from "./gen/ActionParams";
export type { ActionPreviewDto } from "./gen/ActionPreviewDto";
export type { ActionRequestDto } from "./gen/ActionRequestDto";
export type { ActionStatus } from "./gen/ActionStatus";
export type { AlertSeverity } from "./gen/AlertSeverity";
export type { BackendDto } from "./gen/BackendDto";
export type { BackendKind } from "./gen/BackendKind";
export type { HeaderDto } from "./gen/HeaderDto";
export type { OutboxDto } from "./gen/OutboxDto";
export type { ChartDto } from "./gen/ChartDto";
export type { ExerciseDto } from "./gen/ExerciseDto";
export type { InjectDto } from "./gen/InjectDto";
export type { InjectOptionDto } from "./gen/InjectOptionDto";
export type { InjectRequestDto } from "./gen/InjectRequestDto";
export type { ObjectiveScoreDto } from "./gen/ObjectiveScoreDto";
export type { ScoreDto } from "./gen/ScoreDto";

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
  /** Signs an operator in; every incident action is stamped with their name and role. */
  signIn(name: string, role: OperatorRole, pin: string | null): Promise<OperatorDto>;
  signOut(): Promise<void>;
  /** The operator roster; only a signed-in supervisor may see it. */
  roster(): Promise<RosterEntryDto[]>;
  /**
   * Gives an operator a role (and a PIN) in the roster; only a signed-in supervisor may. The
   * supervisor and trainer roles need a PIN, given now or already set.
   */
  assignRole(name: string, role: OperatorRole, pin: string | null): Promise<void>;
  /** The signed-in operator, or `null`. */
  operator(): Promise<OperatorDto | null>;
  /** Members by layer with explanations, timeline, root cause, area and SOP of one incident. */
  incident(id: string): Promise<IncidentDetailDto>;
  /** Moves an incident forward in its lifecycle (closing needs a supervisor or trainer). */
  transition(id: string, to: LifecycleStatus): Promise<void>;
  /**
   * Takes an incident (`owner` null: the signed-in operator owns it), or, as a supervisor,
   * gives it to `owner`. Another operator's incident is refused with whose it is.
   */
  take(id: string, owner: string | null): Promise<void>;
  /** Says which incident this window has open (null: none), for a site's other workstations. */
  lookAt(incident: string | null): Promise<void>;
  /** Moves every member of `from` into `into`. */
  merge(into: string, from: string): Promise<void>;
  /** Splits one member out into an incident of its own; resolves to the new incident's id. */
  split(from: string, entity: string): Promise<string>;
  /** Moves one member from one incident to another. */
  reassign(from: string, entity: string, to: string): Promise<void>;
  /** Takes back the latest merge, split or reassignment. */
  undo(): Promise<void>;
  tickSop(id: string, step: number, ticked: boolean): Promise<void>;
  /** A supervisor resolves the incident past its required SOP steps, for `reason`. */
  overrideResolve(id: string, reason: string): Promise<void>;
  /** Adds a note to the incident's narrative log, as the signed-in operator. */
  addNote(id: string, text: string): Promise<void>;
  /**
   * Enters a phone call or radio report as an incident, as the signed-in operator; it opens in
   * the queue once the engine has correlated the second it was entered in.
   */
  newIncident(request: NewIncidentDto): Promise<CallDto>;
  /** What was observed in a box between two scenario times, up to the clock, with counts per kind. */
  queryArea(query: AreaQueryDto): Promise<AreaAnswerDto>;

  // Dispatch: preview, confirm, and follow actions through the durable outbox.
  /** The configured backends, as the operator picks them. */
  backends(): Promise<BackendDto[]>;
  /** Renders exactly what confirming would send (destination, headers, body, key); sends nothing. */
  previewAction(request: ActionRequestDto): Promise<ActionPreviewDto>;
  /**
   * The first confirmation of a dangerous action (`confirmations` 2 in its preview). The
   * engine counts it: `confirmAction` commits such an action only after this. Resolves to how
   * many confirmations the action needs in all.
   */
  armAction(token: string): Promise<number>;
  /**
   * Commits a previewed action durably to the outbox (a dangerous one only after
   * `armAction`). Public alerts are refused (`forbidden`) for the operator role. A preview's
   * token can be confirmed once.
   */
  confirmAction(token: string): Promise<ActionDto>;
  /** The whole outbox now; later changes arrive in `MapDiffDto.outbox`. */
  outbox(): Promise<OutboxDto>;
  /** Sends a failed action again. */
  retryAction(id: number): Promise<void>;
  /** Cancels a queued or failed action; it will never be sent. */
  cancelAction(id: number): Promise<void>;
  /** The newest refused input of the current run, of one feed or (`null`) of every feed. */
  quarantine(feed: string | null): Promise<QuarantineDto>;
  /**
   * The after-action report of this run so far (score, timeline, charts) as one HTML
   * document; `mapPng` (a PNG data URL of the main incident's area) is embedded in it.
   */
  report(mapPng: string | null): Promise<string>;

  // Exercises: the trainer's view, injects, the live score and the end of the exercise.
  /** The shift's KPI charts up to the clock (SVG drawn by the engine). */
  kpi(): Promise<ChartDto[]>;
  /** A trainer's inject from the scenario's palette, at the place picked, made now. */
  inject(request: InjectRequestDto): Promise<InjectDto>;
  /** Injects so far, the live score and whether the exercise has ended. */
  exercise(): Promise<ExerciseDto>;
  /**
   * Ends the exercise (by the named trainer, else the signed-in operator): the trainee's
   * record closes; resolves to the after-action report with `mapPng` embedded.
   */
  endExercise(by: string | null, mapPng: string | null): Promise<string>;
  /** Opens the trainer view (its own window in the desktop shell), which takes the clock. */
  openTrainerView(): Promise<void>;
  /** Closes the trainer view and gives the clock back to the trainee's window. */
  closeTrainerView(): Promise<void>;
  /** Opens the read-only wall display (its own window in the desktop shell). */
  openWallDisplay(): Promise<void>;
}

const CODES: readonly ApiErrorCode[] = ["notFound", "invalidInput", "forbidden", "internal"];

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
