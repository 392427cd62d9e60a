// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { KEYMAP, keyInput, resolveKey, swallowsKeyUp, type KeyContext, type KeyInput } from "./keymap";

const IDLE: KeyContext = {
  cursor: false,
  target: false,
  area: false,
  details: false,
  incidentOpen: false,
  areaQueryOpen: false,
  exercise: false,
  ended: false,
  modal: null,
};

/** A queue with an incident under the cursor in a running exercise. */
const BUSY: KeyContext = { ...IDLE, cursor: true, target: true, area: true, exercise: true };

function press(key: string, more: Partial<KeyInput> = {}): KeyInput {
  return { key, code: "", repeat: false, ctrl: false, meta: false, alt: false, focus: "other", ...more };
}

describe("keymap", () => {
  it("moves the cursor with j/k and the arrows; only j and k repeat while held", () => {
    expect(resolveKey(press("j"), IDLE)).toEqual({ kind: "cursor", step: 1 });
    expect(resolveKey(press("ArrowDown"), IDLE)).toEqual({ kind: "cursor", step: 1 });
    expect(resolveKey(press("k", { repeat: true }), IDLE)).toEqual({ kind: "cursor", step: -1 });
    expect(resolveKey(press("ArrowUp", { repeat: true }), IDLE)).toBeNull();
  });

  it("opens the incident under the cursor on Enter, unless a button has the focus", () => {
    expect(resolveKey(press("Enter"), BUSY)).toEqual({ kind: "openCursor" });
    expect(resolveKey(press("Enter"), IDLE)).toBeNull();
    expect(resolveKey(press("Enter", { focus: "button" }), BUSY)).toBeNull();
    expect(resolveKey(press("Enter", { repeat: true }), BUSY)).toBeNull();
  });

  it("moves an incident through its lifecycle only when there is one to act on", () => {
    expect(resolveKey(press("a"), BUSY)).toEqual({ kind: "transition", to: "acknowledged" });
    expect(resolveKey(press("d"), BUSY)).toEqual({ kind: "transition", to: "dispatched" });
    expect(resolveKey(press("r"), BUSY)).toEqual({ kind: "transition", to: "resolved" });
    expect(resolveKey(press("x"), BUSY)).toEqual({ kind: "transition", to: "closed" });
    expect(resolveKey(press("a"), IDLE)).toBeNull();
    // A held key acknowledges once.
    expect(resolveKey(press("a", { repeat: true }), BUSY)).toBeNull();
  });

  it("answers the one-key commands whatever the queue holds", () => {
    const kinds = ["u", "m", "s", "o", "q", "?", "g", "w"].map((k) => resolveKey(press(k), IDLE)?.kind);
    expect(kinds).toEqual(["undo", "mute", "dispatch", "outbox", "quarantine", "help", "kpi", "wallDisplay"]);
  });

  it("focuses the map only with an area to fly to", () => {
    expect(resolveKey(press("f"), BUSY)).toEqual({ kind: "focusArea" });
    expect(resolveKey(press("f"), IDLE)).toBeNull();
  });

  it("ends an exercise and opens the trainer view only in an exercise, and ends it once", () => {
    expect(resolveKey(press("e"), BUSY)).toEqual({ kind: "endExercise" });
    expect(resolveKey(press("e"), { ...BUSY, ended: true })).toBeNull();
    expect(resolveKey(press("e"), { ...BUSY, exercise: false })).toBeNull();
    expect(resolveKey(press("t"), { ...BUSY, ended: true })).toEqual({ kind: "trainerView" });
    expect(resolveKey(press("t"), IDLE)).toBeNull();
  });

  it("closes the observation details first, then the incident, on Escape", () => {
    const both = { ...BUSY, details: true, incidentOpen: true };
    expect(resolveKey(press("Escape"), both)).toEqual({ kind: "closeDetails" });
    expect(resolveKey(press("Escape", { repeat: true }), { ...both, details: false })).toEqual({
      kind: "closeIncident",
    });
    expect(resolveKey(press("Escape"), BUSY)).toBeNull();
  });

  it("plays on Space by key or code, and swallows a held Space without playing again", () => {
    expect(resolveKey(press(" "), IDLE)).toEqual({ kind: "play" });
    expect(resolveKey(press("Unidentified", { code: "Space" }), IDLE)).toEqual({ kind: "play" });
    expect(resolveKey(press(" ", { repeat: true }), IDLE)).toEqual({ kind: "swallow" });
    expect(swallowsKeyUp(press(" "))).toBe(true);
    expect(swallowsKeyUp(press(" ", { focus: "field" }))).toBe(false);
    expect(swallowsKeyUp(press("a"))).toBe(false);
  });

  it("toggles the layers with 1-4, once per press", () => {
    expect(["1", "2", "3", "4"].map((k) => resolveKey(press(k), IDLE))).toEqual([
      { kind: "layer", layer: "transport" },
      { kind: "layer", layer: "security" },
      { kind: "layer", layer: "utility" },
      { kind: "layer", layer: "alerts" },
    ]);
    expect(resolveKey(press("5"), IDLE)).toBeNull();
    expect(resolveKey(press("1", { repeat: true }), IDLE)).toBeNull();
  });

  it("leaves keys with Ctrl, Meta or Alt and keys typed into fields alone", () => {
    expect(resolveKey(press("j", { ctrl: true }), BUSY)).toBeNull();
    expect(resolveKey(press("a", { meta: true }), BUSY)).toBeNull();
    expect(resolveKey(press("1", { alt: true }), BUSY)).toBeNull();
    expect(resolveKey(press("a", { focus: "field" }), BUSY)).toBeNull();
    expect(resolveKey(press("Escape", { focus: "field" }), { ...BUSY, modal: "help" })).toBeNull();
  });

  it("gives a dialog with fields every key, and an overlay only its closing keys", () => {
    for (const modal of ["signIn", "dispatch", "confirmEnd", "roster"] as const) {
      expect(resolveKey(press("Escape"), { ...BUSY, modal })).toBeNull();
      expect(resolveKey(press("a"), { ...BUSY, modal })).toBeNull();
    }
    expect(resolveKey(press("?"), { ...BUSY, modal: "help" })).toEqual({ kind: "closeModal" });
    expect(resolveKey(press("Escape"), { ...BUSY, modal: "report" })).toEqual({ kind: "closeModal" });
    expect(resolveKey(press("q"), { ...BUSY, modal: "report" })).toBeNull();
    expect(resolveKey(press("q"), { ...BUSY, modal: "quarantine" })).toEqual({ kind: "closeModal" });
    expect(resolveKey(press("j"), { ...BUSY, modal: "quarantine" })).toBeNull();
    expect(resolveKey(press("Escape", { ctrl: true }), { ...BUSY, modal: "help" })).toBeNull();
  });

  it("lists every row once, with the texts the help overlay shows", () => {
    const labels = KEYMAP.map((r) => r.label);
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels).toEqual([
      "j / k",
      "Enter",
      "a",
      "c",
      "d",
      "s",
      "n",
      "h",
      "o",
      "r",
      "x",
      "u",
      "f",
      "m",
      "q",
      "g",
      "e",
      "t",
      "w",
      "Esc",
      "Space",
      "1-4",
      "z",
      "?",
    ]);
    expect(KEYMAP[0].help).toBe("Next / previous incident in the queue");
    expect(KEYMAP[2].help).toContain("Acknowledge");
    expect(KEYMAP.every((r) => r.bindings.length > 0 && r.help.length > 0)).toBe(true);
  });

  it("reads where the focus is from a DOM event", () => {
    const on = (el: HTMLElement, key = "a") => {
      let seen: KeyInput | null = null;
      el.addEventListener("keydown", (e) => (seen = keyInput(e)));
      el.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, ctrlKey: true }));
      return seen as KeyInput | null;
    };
    const text = document.createElement("input");
    const box = document.createElement("input");
    box.type = "checkbox";
    expect(on(text)?.focus).toBe("field");
    expect(on(box)?.focus).toBe("other");
    expect(on(document.createElement("select"))?.focus).toBe("field");
    expect(on(document.createElement("textarea"))?.focus).toBe("field");
    expect(on(document.createElement("button"), "Enter")).toMatchObject({ key: "Enter", focus: "button", ctrl: true });
  });
});
