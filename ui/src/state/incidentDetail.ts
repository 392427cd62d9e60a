/**
 * Incident detail state: which incident is open and what the detail panel shows. Answers can
 * arrive out of order; an answer for an incident no longer being opened is ignored.
 */
import type { ApiError, IncidentDetailDto, IncidentsDiffDto } from "../ipc/backend";

export type IncidentDetail =
  | { readonly status: "none" }
  | { readonly status: "loading"; readonly id: string; readonly previous: IncidentDetailDto | null }
  | { readonly status: "loaded"; readonly id: string; readonly detail: IncidentDetailDto }
  | { readonly status: "failed"; readonly id: string; readonly error: ApiError };

export const NO_INCIDENT: IncidentDetail = { status: "none" };

/** Starts loading `id`; while the same incident refreshes, its old detail stays visible. */
export function openIncident(s: IncidentDetail, id: string): IncidentDetail {
  const previous =
    s.status === "loaded" && s.id === id ? s.detail : s.status === "loading" && s.id === id ? s.previous : null;
  return { status: "loading", id, previous };
}

export function incidentLoaded(s: IncidentDetail, id: string, detail: IncidentDetailDto): IncidentDetail {
  if (s.status !== "loading" || s.id !== id) return s;
  return { status: "loaded", id, detail };
}

export function incidentFailed(s: IncidentDetail, id: string, error: ApiError): IncidentDetail {
  if (s.status !== "loading" || s.id !== id) return s;
  return { status: "failed", id, error };
}

export function openIncidentId(s: IncidentDetail): string | null {
  return s.status === "none" ? null : s.id;
}

/** The detail to show: the loaded one, or the one being refreshed. */
export function shownIncident(s: IncidentDetail): IncidentDetailDto | null {
  if (s.status === "loaded") return s.detail;
  if (s.status === "loading") return s.previous;
  return null;
}

/** True when the open incident changed (or the queue was reset) and the detail should reload. */
export function needsIncidentRefresh(s: IncidentDetail, diff: IncidentsDiffDto | null): boolean {
  if (diff === null || s.status === "none") return false;
  return diff.reset || diff.removed.includes(s.id) || diff.upserts.some((e) => e.id === s.id);
}
