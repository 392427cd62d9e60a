/**
 * Which dialog or overlay is on top, as a small data structure: a stack of the open ones in the
 * order they opened, each with a fixed priority. The app asks it who gets the keys instead of
 * testing every dialog's flag in turn.
 */

/** The app's dialogs and overlays that take the keyboard while they are open. */
export type ModalId =
  "signIn" | "dispatch" | "newIncident" | "confirmEnd" | "roster" | "help" | "report" | "quarantine";

export type ModalSpec = {
  /**
   * Higher is on top whatever the order they opened in: a dialog that asks for input must keep
   * the keys even when an overlay opened after it.
   */
  readonly priority: number;
  /** The dialog answers its own keys (its fields, Escape, Tab), so the app's keys stay out. */
  readonly ownsKeys: boolean;
  /** The keys that close it while the app answers the keys for it. */
  readonly closeKeys: readonly string[];
};

export const MODALS: Readonly<Record<ModalId, ModalSpec>> = {
  signIn: { priority: 3, ownsKeys: true, closeKeys: [] },
  dispatch: { priority: 3, ownsKeys: true, closeKeys: [] },
  // Not a backdrop: the map stays clickable to place the incident, but the app's keys stay out.
  newIncident: { priority: 3, ownsKeys: true, closeKeys: [] },
  confirmEnd: { priority: 3, ownsKeys: true, closeKeys: [] },
  roster: { priority: 3, ownsKeys: true, closeKeys: [] },
  help: { priority: 2, ownsKeys: false, closeKeys: ["Escape", "?"] },
  report: { priority: 1, ownsKeys: false, closeKeys: ["Escape"] },
  quarantine: { priority: 0, ownsKeys: false, closeKeys: ["Escape", "q"] },
};

/** The open modals, the first opened first. */
export type ModalStack = readonly ModalId[];

export const NO_MODALS: ModalStack = [];

/** Opens `id` (again): it becomes the latest of its priority. */
export function push(stack: ModalStack, id: ModalId): ModalStack {
  return [...stack.filter((m) => m !== id), id];
}

/** Closes `id`, or without one the modal on top; the same stack when nothing changes. */
export function pop(stack: ModalStack, id: ModalId | null = top(stack)): ModalStack {
  return id !== null && stack.includes(id) ? stack.filter((m) => m !== id) : stack;
}

/** The modal that gets the keys: the highest priority, of those the latest opened. */
export function top(stack: ModalStack): ModalId | null {
  let best: ModalId | null = null;
  for (const id of stack) if (best === null || MODALS[id].priority >= MODALS[best].priority) best = id;
  return best;
}

export function isOpen(stack: ModalStack, id: ModalId): boolean {
  return stack.includes(id);
}
