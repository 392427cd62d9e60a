/**
 * Outbox state: the configured backends and every action of this session with its delivery
 * status, replaced whole by each `OutboxDto` the engine sends (it sends the whole outbox after
 * any change). Pure updaters and selectors, like the rest of `state/`.
 */
import type { ActionDto, ActionStatus, BackendDto, OutboxDto } from "../ipc/backend";

export type OutboxState = {
  /** Newest first. */
  readonly actions: readonly ActionDto[];
  readonly backends: readonly BackendDto[];
  /** Actions waiting to be sent, as the engine counts them. */
  readonly queued: number;
  readonly failed: number;
  /** Every backend with pending actions is unreachable. */
  readonly offline: boolean;
  /** An outbox has arrived at least once (before that, counts are unknown rather than zero). */
  readonly loaded: boolean;
};

export function emptyOutbox(): OutboxState {
  return { actions: [], backends: [], queued: 0, failed: 0, offline: false, loaded: false };
}

/** Newest first; ids break ties, since two actions can be committed in one millisecond. */
function newestFirst(a: ActionDto, b: ActionDto): number {
  return b.createdMs - a.createdMs || b.id - a.id;
}

/**
 * Takes the outbox from a diff (or from the `outbox` call). `null` (nothing changed) keeps the
 * state as it is, so the same object comes back and nothing re-renders.
 */
export function applyOutbox(s: OutboxState, dto: OutboxDto | null): OutboxState {
  if (dto === null) return s;
  return {
    actions: [...dto.actions].sort(newestFirst),
    // An outbox without backends (say, from an engine with none configured yet) keeps the list.
    backends: dto.backends.length > 0 ? dto.backends : s.backends,
    queued: dto.queued,
    failed: dto.failed,
    offline: dto.offline,
    loaded: true,
  };
}

/** The backends from the `backends` call at start; the outbox refreshes their reachability later. */
export function setBackends(s: OutboxState, backends: readonly BackendDto[]): OutboxState {
  return { ...s, backends };
}

/** The actions taken for one incident, newest first. */
export function actionsOfIncident(s: OutboxState, incident: string | null, upToMs: number | null = null): ActionDto[] {
  if (incident === null) return [];
  // Scrubbed back in a replay, the incident shows what had been done by then, not later.
  return s.actions.filter(
    (a) => a.incident === incident && (upToMs === null || a.scenarioMs === null || a.scenarioMs <= upToMs),
  );
}

export type OutboxCounts = Readonly<Record<ActionStatus, number>> & { readonly pending: number };

/** Actions per status among those listed, and how many are still to be delivered. */
export function outboxCounts(s: OutboxState): OutboxCounts {
  const c: Record<ActionStatus, number> = { queued: 0, sending: 0, delivered: 0, sent: 0, failed: 0, cancelled: 0 };
  for (const a of s.actions) c[a.status] += 1;
  return { ...c, pending: c.queued + c.sending };
}

/** How many actions wait for the link; the engine's count, or the listed ones if it is larger. */
export function waiting(s: OutboxState): number {
  const c = outboxCounts(s);
  return Math.max(s.queued, c.pending);
}

/** The plain sentence for the offline banner, or `null` while some backend is reachable. */
export function offlineMessage(s: OutboxState): string | null {
  if (!s.offline) return null;
  const n = waiting(s);
  return `Offline: ${n} action${n === 1 ? "" : "s"} queued; they will be sent once each when the link returns`;
}

export function backendById(s: OutboxState, id: string): BackendDto | undefined {
  return s.backends.find((b) => b.id === id);
}

/** Retry is for failed actions only. */
export function canRetry(a: ActionDto): boolean {
  return a.status === "failed";
}

/** Cancel is for actions not yet sent: queued or failed. */
export function canCancel(a: ActionDto): boolean {
  return a.status === "queued" || a.status === "failed";
}
