/**
 * The operator window's keys as one data table: for each row of the help overlay, the keys it
 * binds, the modifiers, when each binding applies and what it does. `resolveKey` is the whole
 * decision, pure, so it is tested without a window; the app only runs the action it returns.
 */
import type { Layer, LifecycleStatus } from "../ipc/backend";
import { LAYERS } from "./data";
import { MODALS, type ModalId } from "./modals";

/** What a key does; the app has one handler per kind. */
export type KeyAction =
  | { readonly kind: "cursor"; readonly step: 1 | -1 }
  | { readonly kind: "openCursor" }
  | { readonly kind: "transition"; readonly to: LifecycleStatus }
  | { readonly kind: "take" }
  | { readonly kind: "undo" }
  | { readonly kind: "focusArea" }
  | { readonly kind: "mute" }
  | { readonly kind: "dispatch" }
  | { readonly kind: "newIncident" }
  | { readonly kind: "areaQuery" }
  | { readonly kind: "closeAreaQuery" }
  | { readonly kind: "outbox" }
  | { readonly kind: "quarantine" }
  | { readonly kind: "help" }
  | { readonly kind: "kpi" }
  | { readonly kind: "endExercise" }
  | { readonly kind: "trainerView" }
  | { readonly kind: "wallDisplay" }
  | { readonly kind: "play" }
  | { readonly kind: "closeDetails" }
  | { readonly kind: "closeIncident" }
  | { readonly kind: "layer"; readonly layer: Layer }
  | { readonly kind: "zones" }
  /** Closes the modal on top (help, report, quarantine). */
  | { readonly kind: "closeModal" }
  /** Taken from the browser and otherwise ignored (a held Space must not click a button). */
  | { readonly kind: "swallow" };

export type KeyKind = KeyAction["kind"];

/** What the window looks like when a key arrives, as far as the bindings care. */
export type KeyContext = {
  /** An incident is under the queue's cursor. */
  readonly cursor: boolean;
  /** An incident a lifecycle key acts on: the open one, else the one under the cursor. */
  readonly target: boolean;
  /** `f` has an incident to fly to (the open one, else the one under the cursor). */
  readonly area: boolean;
  /** An observation's details are open. */
  readonly details: boolean;
  /** An incident's detail is open. */
  readonly incidentOpen: boolean;
  /** "What happened here?" is open, or waiting for its box. */
  readonly areaQueryOpen: boolean;
  /** The scenario is an exercise (a replay), not live work. */
  readonly exercise: boolean;
  /** The exercise has ended. */
  readonly ended: boolean;
  /** The modal on top, if any. */
  readonly modal: ModalId | null;
};

export type Condition = Exclude<keyof KeyContext, "modal">;

export type Modifier = "ctrl" | "meta" | "alt";

/** A key press as the table reads it: the event's fields plus where the focus is. */
export type KeyInput = {
  readonly key: string;
  readonly code: string;
  readonly repeat: boolean;
  readonly ctrl: boolean;
  readonly meta: boolean;
  readonly alt: boolean;
  /** `field`: a text field or list owns its keys; `button`: a focused button answers Enter itself. */
  readonly focus: "field" | "button" | "other";
};

export type KeyBinding = {
  /** `KeyboardEvent.key` values. */
  readonly keys: readonly string[];
  /** `KeyboardEvent.code` values that match too (Space may arrive as key " " or code "Space"). */
  readonly codes?: readonly string[];
  /** The modifiers that must be held; none by default, and no other may be. */
  readonly modifiers?: readonly Modifier[];
  /** The binding applies only when this holds... */
  readonly when?: Condition;
  /** ...and this does not. */
  readonly unless?: Condition;
  /** A held key's repeats: `act` again, `swallow` them, or by default leave them to the browser. */
  readonly repeat?: "act" | "swallow";
  /** A focused button answers this key itself. */
  readonly notOnButton?: boolean;
  readonly action: KeyAction;
};

/** One row of the help overlay: its label, its text and the bindings behind it. */
export type KeyRow = { readonly label: string; readonly help: string; readonly bindings: readonly KeyBinding[] };

const transition = (key: string, to: LifecycleStatus): KeyBinding => ({
  keys: [key],
  when: "target",
  action: { kind: "transition", to },
});

/** The keys, in the order the help overlay lists them; also the README's table. */
export const KEYMAP: readonly KeyRow[] = [
  {
    label: "j / k",
    help: "Next / previous incident in the queue",
    bindings: [
      // Holding j or k runs through the queue; the arrows move one step per press.
      { keys: ["j"], repeat: "act", action: { kind: "cursor", step: 1 } },
      { keys: ["ArrowDown"], action: { kind: "cursor", step: 1 } },
      { keys: ["k"], repeat: "act", action: { kind: "cursor", step: -1 } },
      { keys: ["ArrowUp"], action: { kind: "cursor", step: -1 } },
    ],
  },
  {
    label: "Enter",
    help: "Open the incident under the cursor (the map flies to its area)",
    bindings: [{ keys: ["Enter"], when: "cursor", notOnButton: true, action: { kind: "openCursor" } }],
  },
  {
    label: "a",
    help: "Acknowledge the incident (open or under the cursor)",
    bindings: [transition("a", "acknowledged")],
  },
  {
    label: "c",
    help: "Claim the incident: it is yours, and every workstation shows you on it",
    bindings: [{ keys: ["c"], when: "target", action: { kind: "take" } }],
  },
  { label: "d", help: "Mark the incident dispatched", bindings: [transition("d", "dispatched")] },
  {
    label: "s",
    help: "Dispatch…: send an action (crew, device, unit, alert) for the open incident or the selected point",
    bindings: [{ keys: ["s"], action: { kind: "dispatch" } }],
  },
  {
    label: "n",
    help: "New incident: enter a phone call or radio report (click the map to place it)",
    bindings: [{ keys: ["n"], unless: "ended", action: { kind: "newIncident" } }],
  },
  {
    label: "h",
    help: "What happened here: drag a box on the map (Shift and drag works at any time) to list what was observed in it",
    bindings: [{ keys: ["h"], action: { kind: "areaQuery" } }],
  },
  { label: "o", help: "Show or hide the outbox", bindings: [{ keys: ["o"], action: { kind: "outbox" } }] },
  { label: "r", help: "Resolve", bindings: [transition("r", "resolved")] },
  { label: "x", help: "Close (supervisor or trainer)", bindings: [transition("x", "closed")] },
  { label: "u", help: "Undo the latest merge or split", bindings: [{ keys: ["u"], action: { kind: "undo" } }] },
  {
    label: "f",
    help: "Focus the map on the incident's area",
    bindings: [{ keys: ["f"], when: "area", action: { kind: "focusArea" } }],
  },
  { label: "m", help: "Mute or unmute the alarm", bindings: [{ keys: ["m"], action: { kind: "mute" } }] },
  {
    label: "q",
    help: "Open or close the quarantine browser (refused input)",
    bindings: [{ keys: ["q"], action: { kind: "quarantine" } }],
  },
  { label: "g", help: "Show or hide the shift's KPI charts", bindings: [{ keys: ["g"], action: { kind: "kpi" } }] },
  {
    label: "e",
    help: "End the exercise (asks first) and open its report",
    bindings: [{ keys: ["e"], when: "exercise", unless: "ended", action: { kind: "endExercise" } }],
  },
  {
    label: "t",
    help: "Open the trainer view: clock, injects, live score",
    bindings: [{ keys: ["t"], when: "exercise", action: { kind: "trainerView" } }],
  },
  {
    label: "w",
    help: "Open the wall display: the map and incident queue, read only, for the big screen",
    bindings: [{ keys: ["w"], action: { kind: "wallDisplay" } }],
  },
  {
    label: "Esc",
    help: "Close help, a dialog or the quarantine, then observation details, then what happened here, then the incident",
    // Help, the dialogs and the quarantine close through the modal stack before these apply.
    bindings: [
      { keys: ["Escape"], when: "details", repeat: "act", action: { kind: "closeDetails" } },
      { keys: ["Escape"], when: "areaQueryOpen", repeat: "act", action: { kind: "closeAreaQuery" } },
      { keys: ["Escape"], when: "incidentOpen", repeat: "act", action: { kind: "closeIncident" } },
    ],
  },
  {
    label: "Space",
    help: "Play / pause the replay",
    // Taken even when held, so a focused button or checkbox does not act on the same press.
    bindings: [{ keys: [" "], codes: ["Space"], repeat: "swallow", action: { kind: "play" } }],
  },
  {
    label: "1-4",
    help: "Toggle the transport, security, utility and alerts layers",
    bindings: LAYERS.map((layer, i) => ({ keys: [String(i + 1)], action: { kind: "layer", layer } })),
  },
  { label: "z", help: "Show or hide the zones", bindings: [{ keys: ["z"], action: { kind: "zones" } }] },
  { label: "?", help: "This help", bindings: [{ keys: ["?"], action: { kind: "help" } }] },
];

function modifiersMatch(input: KeyInput, wanted: readonly Modifier[] = []): boolean {
  return (["ctrl", "meta", "alt"] as const).every((m) => input[m] === wanted.includes(m));
}

function matches(b: KeyBinding, input: KeyInput, ctx: KeyContext): boolean {
  if (!b.keys.includes(input.key) && !(b.codes ?? []).includes(input.code)) return false;
  if (!modifiersMatch(input, b.modifiers)) return false;
  if (b.notOnButton && input.focus === "button") return false;
  if (b.when && !ctx[b.when]) return false;
  return !(b.unless && ctx[b.unless]);
}

/**
 * What a key press does, or `null` when the window leaves it alone (the browser keeps its
 * default). Text fields and lists own their keys; a dialog with fields owns every key; an
 * overlay on top takes only its closing keys.
 */
export function resolveKey(input: KeyInput, ctx: KeyContext): KeyAction | null {
  if (input.focus === "field") return null;
  if (ctx.modal !== null) {
    const spec = MODALS[ctx.modal];
    if (spec.ownsKeys || !modifiersMatch(input)) return null;
    return spec.closeKeys.includes(input.key) ? { kind: "closeModal" } : null;
  }
  for (const row of KEYMAP) {
    for (const b of row.bindings) {
      if (!matches(b, input, ctx)) continue;
      if (!input.repeat || b.repeat === "act") return b.action;
      return b.repeat === "swallow" ? { kind: "swallow" } : null;
    }
  }
  return null;
}

/** A button "clicks" on Space's key-up; Space already acted on key-down, so the up is taken. */
export function swallowsKeyUp(input: KeyInput): boolean {
  return (input.key === " " || input.code === "Space") && input.focus !== "field";
}

/** Reads a DOM key event. Text fields and lists own their keys; checkboxes and buttons do not. */
export function keyInput(e: KeyboardEvent): KeyInput {
  const t = e.target;
  let focus: KeyInput["focus"] = "other";
  if (t instanceof HTMLElement) {
    if (t.isContentEditable || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) focus = "field";
    else if (t instanceof HTMLInputElement && !["checkbox", "radio", "range", "button"].includes(t.type))
      focus = "field";
    else if (t instanceof HTMLButtonElement) focus = "button";
  }
  return { key: e.key, code: e.code, repeat: e.repeat, ctrl: e.ctrlKey, meta: e.metaKey, alt: e.altKey, focus };
}
