/**
 * Text formatting for the panels. Scenario times are shown in the scenario's own time zone
 * (Europe/Helsinki), whatever zone the machine running the UI is set to.
 */
import type { JsonValue } from "../ipc/backend";

export const SCENARIO_TIME_ZONE = "Europe/Helsinki";

const partsFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: SCENARIO_TIME_ZONE,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
  weekday: "short",
});

type Parts = {
  year: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  second: string;
  weekday: string;
};

function parts(ms: number): Parts {
  const out: Record<string, string> = {};
  for (const p of partsFormat.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out as Parts;
}

/** "17:04:09" */
export function formatTime(ms: number): string {
  const p = parts(ms);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** "Thu 2026-11-26" */
export function formatDate(ms: number): string {
  const p = parts(ms);
  return `${p.weekday} ${p.year}-${p.month}-${p.day}`;
}

/** "2026-11-26 17:04:09" */
export function formatDateTime(ms: number): string {
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** A short duration: "0 s", "12 s", "4 min", "4 min 05 s" below 10 min, "2 h 05 min". */
export function formatDuration(ms: number): string {
  const totalS = Math.max(0, Math.floor(ms / 1000));
  if (totalS < 60) return `${totalS} s`;
  const m = Math.floor(totalS / 60);
  const s = totalS % 60;
  if (m < 10) return s === 0 ? `${m} min` : `${m} min ${String(s).padStart(2, "0")} s`;
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, "0")} min`;
}

/** "newest 12 s ago", or "no data". */
export function formatAge(ageMs: number | null): string {
  return ageMs === null ? "no data" : `newest ${formatDuration(ageMs)} ago`;
}

/** The delay from observation to reception; negative lags (clock skew) are shown signed. */
export function formatLag(observedMs: number, receivedMs: number): string {
  const lag = receivedMs - observedMs;
  if (lag < 0) return `−${formatDuration(-lag)} (received before observed)`;
  if (lag < 1000) return `${lag} ms`;
  return formatDuration(lag);
}

/** Speed as shown and as the `<select>` value: "1", "10", "60" or "max". */
export function speedValue(speed: number | null): string {
  return speed === null ? "max" : String(speed);
}

export function parseSpeed(value: string): number | null {
  if (value === "max") return null;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** Characters that reorder or hide text when a renderer applies them (bidirectional embeddings,
 * overrides and isolates, direction marks, zero-width characters). */
const CONTROLS = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Feed text as the operator must read it: every character that would reorder or hide what
 * follows (a right-to-left override turning "gpj.exe" into "exe.jpg") is shown as its code
 * point instead, so the text reads in the order it was sent. Markup needs nothing here:
 * Svelte interpolates text, never HTML.
 */
export function visibleControls(s: string): string {
  return s.replace(CONTROLS, (c) => `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

/** A payload value as text: strings as they are, anything nested as indented JSON. */
export function formatFieldValue(v: JsonValue | undefined): { text: string; block: boolean } {
  if (v === undefined) return { text: "", block: false };
  if (typeof v === "string") return { text: visibleControls(v), block: v.includes("\n") };
  if (v === null || typeof v !== "object") return { text: String(v), block: false };
  return { text: visibleControls(JSON.stringify(v, null, 2)), block: true };
}

/** Coordinates as "60.17170 N, 24.94430 E". */
export function formatLonLat(lon: number, lat: number): string {
  const ns = lat >= 0 ? "N" : "S";
  const ew = lon >= 0 ? "E" : "W";
  return `${Math.abs(lat).toFixed(5)} ${ns}, ${Math.abs(lon).toFixed(5)} ${ew}`;
}
