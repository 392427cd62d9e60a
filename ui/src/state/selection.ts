/**
 * Selection state: which observation the operator clicked and what the details panel shows.
 *
 * Fetching an observation is asynchronous, so answers can arrive out of order; the updaters
 * ignore an answer for an id that is no longer the one being loaded.
 */
import type { ApiError, MapDiffDto, ObservationDto } from "../ipc/backend";

export type Selection =
  | { readonly status: "none" }
  | { readonly status: "loading"; readonly id: string; readonly previous: ObservationDto | null }
  | { readonly status: "loaded"; readonly id: string; readonly observation: ObservationDto }
  | { readonly status: "failed"; readonly id: string; readonly error: ApiError };

export const NO_SELECTION: Selection = { status: "none" };

/** Starts loading `id`. While a refresh of the same id loads, the old details stay visible. */
export function select(s: Selection, id: string): Selection {
  const previous = s.status === "loaded" && s.id === id ? s.observation : null;
  return { status: "loading", id, previous };
}

export function selectionLoaded(s: Selection, id: string, observation: ObservationDto): Selection {
  if (s.status !== "loading" || s.id !== id) return s;
  return { status: "loaded", id, observation };
}

export function selectionFailed(s: Selection, id: string, error: ApiError): Selection {
  if (s.status !== "loading" || s.id !== id) return s;
  return { status: "failed", id, error };
}

export function clearSelection(): Selection {
  return NO_SELECTION;
}

export function selectedId(s: Selection): string | null {
  return s.status === "none" ? null : s.id;
}

/** The observation to show: the loaded one, or the one being refreshed. */
export function shownObservation(s: Selection): ObservationDto | null {
  if (s.status === "loaded") return s.observation;
  if (s.status === "loading") return s.previous;
  return null;
}

/**
 * True when the details panel should fetch the loaded entity again: `diff` carries a newer
 * observation of it, or it is a reset (after a seek) whose picture has the entity in another
 * state or not at all, since the replay may have jumped backwards.
 */
export function needsRefresh(s: Selection, diff: MapDiffDto): boolean {
  if (s.status !== "loaded") return false;
  const shown = s.observation.observedMs;
  if (diff.reset) {
    const now = diff.upserts.findLast((f) => f.id === s.id);
    return now === undefined || now.observedMs !== shown;
  }
  return diff.upserts.some((f) => f.id === s.id && f.observedMs > shown);
}
