/**
 * Feed state: the health of live feeds (from the diff stream) and the quarantine browser (asked
 * for on demand). Pure updaters, like the other state modules: each returns a new state.
 *
 * Everything a feed sends, and so every reason and preview here, is untrusted text.
 */
import type {
  ApiError,
  FeedHealthDto,
  MapDiffDto,
  QuarantineDto,
  SiteStatusDto,
  StorageHealthDto,
} from "../ipc/backend";

/** How a feed is doing, worst first: the panel marks each differently. */
export type FeedStatus = "disconnected" | "stale" | "connected";

export function feedStatus(f: FeedHealthDto): FeedStatus {
  if (!f.connected) return "disconnected";
  return f.stale ? "stale" : "connected";
}

/** `null` in a replay (the engine sends no health there), else every feed in id order. */
export type HealthState = readonly FeedHealthDto[] | null;

/** Folds a diff's feed health in; diffs without it leave the health as it was. */
export function applyHealth(state: HealthState, diff: MapDiffDto): HealthState {
  return diff.feeds ?? state;
}

/** Whether the store takes what arrives: `null` until the engine says (and always in a replay). */
export type StorageState = StorageHealthDto | null;

/** Folds a diff's storage health in; diffs without it leave it as it was. */
export function applyStorage(state: StorageState, diff: MapDiffDto): StorageState {
  return diff.storage ?? state;
}

/** A workstation's link to its site: `null` unless the app follows a site. */
export type SiteState = SiteStatusDto | null;

/** Folds a diff's site status in; diffs without it leave it as it was. */
export function applySite(state: SiteState, diff: MapDiffDto): SiteState {
  return diff.site ?? state;
}

/** The header's words for the link: the site and where this workstation stands in it. */
export function siteSummary(site: SiteStatusDto, formatTime: (ms: number) => string): string {
  const waiting = site.waiting === 1 ? "1 decision waiting" : `${site.waiting} decisions waiting`;
  if (!site.connected) {
    const since = site.offlineSinceMs === null ? "" : ` since ${formatTime(site.offlineSinceMs)}`;
    return `offline${since}, ${waiting}`;
  }
  const behind = site.behind === 0 ? "up to date" : `${site.behind} behind`;
  return site.waiting > 0 ? `${behind}, ${waiting}` : behind;
}

/** Refusals over every feed: when it grows, an open quarantine browser has news. */
export function rejectedTotal(state: HealthState): number {
  return (state ?? []).reduce((n, f) => n + f.rejected, 0);
}

/** Feeds by status, for the panel's summary line. */
export function statusCounts(state: HealthState): Record<FeedStatus, number> {
  const out: Record<FeedStatus, number> = { disconnected: 0, stale: 0, connected: 0 };
  for (const f of state ?? []) out[feedStatus(f)] += 1;
  return out;
}

export type QuarantineView =
  | { readonly status: "closed" }
  | {
      readonly status: "loading" | "loaded" | "failed";
      /** The feed shown, or `null` for every feed. */
      readonly feed: string | null;
      /** The last page received (kept while a refresh loads). */
      readonly page: QuarantineDto | null;
      readonly error: ApiError | null;
      /** Increments per request, so an answer to an older request is ignored. */
      readonly request: number;
    };

export const QUARANTINE_CLOSED: QuarantineView = { status: "closed" };

/** Opens the browser (or refreshes it, or switches its feed): a request is due. */
export function requestQuarantine(v: QuarantineView, feed: string | null): QuarantineView {
  const page = v.status === "closed" ? null : v.page;
  const request = v.status === "closed" ? 1 : v.request + 1;
  return { status: "loading", feed, page, error: null, request };
}

/** The answer to request `request`; ignored when the browser closed or asked again since. */
export function quarantineLoaded(v: QuarantineView, request: number, page: QuarantineDto): QuarantineView {
  if (v.status === "closed" || v.request !== request) return v;
  return { ...v, status: "loaded", page, error: null };
}

export function quarantineFailed(v: QuarantineView, request: number, error: ApiError): QuarantineView {
  if (v.status === "closed" || v.request !== request) return v;
  return { ...v, status: "failed", error };
}
