/**
 * Incident state: the queue as the engine reports it, the operator's cursor in it, the queue
 * filters, and which entries should flash and sound the alarm.
 *
 * Every function here is pure: it returns a new state and never mutates its input.
 */
import type { IncidentEntryDto, IncidentsDiffDto, Layer, LifecycleStatus, Severity } from "../ipc/backend";

/**
 * `notClosed`: every incident nobody has closed; `active`: those still a problem (not cleared);
 * `cleared`: cleared, awaiting close. "Open" is not used: it meant the first in the queue and
 * the second in the charts.
 */
export type StatusFilter = "notClosed" | "active" | "cleared" | "all" | LifecycleStatus;
export type AreaFilter = "all" | "view";

export type QueueFilters = {
  readonly layer: Layer | "all";
  readonly status: StatusFilter;
  /** `view` keeps incidents whose area intersects the map's view. */
  readonly area: AreaFilter;
  /** Keeps incidents whose number (`HEL-2026-000123`, or part of it) or title holds this text. */
  readonly text: string;
};

export const DEFAULT_FILTERS: QueueFilters = { layer: "all", status: "notClosed", area: "all", text: "" };

/** The filters that are not one lifecycle status. */
const STATES: ReadonlySet<StatusFilter> = new Set(["notClosed", "active", "cleared", "all"]);

/** West, south, east, north in degrees. */
export type Bounds = readonly [number, number, number, number];

export type IncidentsState = {
  readonly entries: ReadonlyMap<string, IncidentEntryDto>;
  /** The entry `j`/`k` move and `a`/Enter act on. */
  readonly cursor: string | null;
  readonly filters: QueueFilters;
  /** Entries that flash once: new high-severity incidents. */
  readonly flashing: ReadonlySet<string>;
};

export function emptyIncidents(): IncidentsState {
  return { entries: new Map(), cursor: null, filters: DEFAULT_FILTERS, flashing: new Set() };
}

const SEVERITY_RANK: Record<Severity, number> = { normal: 0, minor: 1, moderate: 2, severe: 3, extreme: 4 };

/** A new incident at least this severe sounds the alarm and flashes. */
export function isHighSeverity(s: Severity): boolean {
  return SEVERITY_RANK[s] >= SEVERITY_RANK.severe;
}

export type IncidentsUpdate = {
  readonly state: IncidentsState;
  /** New high-severity incidents in this diff: the alarm sounds once for them. */
  readonly alarms: readonly IncidentEntryDto[];
};

/**
 * Folds the incident part of a diff into the state. A reset replaces the queue and never
 * alarms (it is a subscription or a seek, not news); otherwise an incident not seen before that
 * is severe or worse and still new alarms and flashes.
 */
export function applyIncidentsDiff(state: IncidentsState, diff: IncidentsDiffDto | null): IncidentsUpdate {
  if (diff === null) return { state, alarms: [] };
  const entries = new Map(diff.reset ? [] : state.entries);
  const alarms: IncidentEntryDto[] = [];
  for (const id of diff.removed) entries.delete(id);
  for (const e of diff.upserts) {
    const before = state.entries.get(e.id);
    const fresh = before === undefined;
    if (!diff.reset && fresh && e.active && e.status === "new" && isHighSeverity(e.severity)) alarms.push(e);
    // Nobody acknowledged it in time: the alarm sounds again, whatever its severity.
    else if (!diff.reset && e.escalatedMs !== null && (before?.escalatedMs ?? null) === null) alarms.push(e);
    entries.set(e.id, e);
  }
  const flashing = new Set([...state.flashing].filter((id) => entries.has(id)));
  for (const a of alarms) flashing.add(a.id);
  const cursor = state.cursor !== null && entries.has(state.cursor) ? state.cursor : null;
  return { state: { ...state, entries, cursor, flashing }, alarms };
}

/** The entry stops flashing (its one flash is over). */
export function flashDone(state: IncidentsState, id: string): IncidentsState {
  if (!state.flashing.has(id)) return state;
  const flashing = new Set(state.flashing);
  flashing.delete(id);
  return { ...state, flashing };
}

function intersects(e: IncidentEntryDto, b: Bounds): boolean {
  const a = e.area;
  return a.west <= b[2] && a.east >= b[0] && a.south <= b[3] && a.north >= b[1];
}

/** True when the entry passes the filters (`view` is the map's bounds, for the area filter). */
export function passes(e: IncidentEntryDto, f: QueueFilters, view: Bounds | null): boolean {
  if (f.layer !== "all" && !e.layers.includes(f.layer)) return false;
  const closed = e.status === "closed";
  if (f.status === "notClosed" && closed) return false;
  if (f.status === "active" && (closed || !e.active)) return false;
  if (f.status === "cleared" && (closed || e.active)) return false;
  if (!STATES.has(f.status) && e.status !== f.status) return false;
  if (f.area === "view" && view !== null && !intersects(e, view)) return false;
  const text = f.text.trim().toLowerCase();
  if (text !== "" && !e.number.toLowerCase().includes(text) && !e.title.toLowerCase().includes(text)) return false;
  return true;
}

/** The queue as shown: filtered, escalated first (nobody acknowledged them in time), then most
 *  severe first, then oldest first, then by id. */
export function rankedQueue(state: IncidentsState, view: Bounds | null): IncidentEntryDto[] {
  return [...state.entries.values()]
    .filter((e) => passes(e, state.filters, view))
    .sort(
      (a, b) =>
        Number(b.escalatedMs !== null) - Number(a.escalatedMs !== null) ||
        SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
        a.openedMs - b.openedMs ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
}

/** The entry under the cursor, or the top of the queue when the cursor is not in it. */
export function cursorEntry(state: IncidentsState, queue: readonly IncidentEntryDto[]): IncidentEntryDto | null {
  return queue.find((e) => e.id === state.cursor) ?? queue[0] ?? null;
}

/** Moves the cursor `step` entries down (negative: up) the shown queue, stopping at the ends. */
export function moveCursor(state: IncidentsState, queue: readonly IncidentEntryDto[], step: number): IncidentsState {
  if (queue.length === 0) return state;
  const at = queue.findIndex((e) => e.id === state.cursor);
  const next = at < 0 ? 0 : Math.min(queue.length - 1, Math.max(0, at + step));
  return queue[next].id === state.cursor ? state : { ...state, cursor: queue[next].id };
}

export function setCursor(state: IncidentsState, id: string): IncidentsState {
  return state.cursor === id ? state : { ...state, cursor: id };
}

export function setFilters(state: IncidentsState, patch: Partial<QueueFilters>): IncidentsState {
  return { ...state, filters: { ...state.filters, ...patch } };
}

/** The next lifecycle status after `s`, for the one-key "advance" actions; `null` at the end. */
export function nextStatus(s: LifecycleStatus): LifecycleStatus | null {
  const order: LifecycleStatus[] = ["new", "acknowledged", "dispatched", "resolved", "closed"];
  const i = order.indexOf(s);
  return i >= 0 && i < order.length - 1 ? order[i + 1] : null;
}
