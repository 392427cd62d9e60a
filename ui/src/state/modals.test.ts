import { describe, expect, it } from "vitest";
import { isOpen, MODALS, NO_MODALS, pop, push, top, type ModalId } from "./modals";

describe("modal stack", () => {
  it("is empty at first and has no top", () => {
    expect(NO_MODALS).toEqual([]);
    expect(top(NO_MODALS)).toBeNull();
    expect(pop(NO_MODALS)).toBe(NO_MODALS);
  });

  it("puts the latest of equal priority on top and pops back to the one below", () => {
    const s = push(push(NO_MODALS, "roster"), "signIn");
    expect(top(s)).toBe("signIn");
    expect(top(pop(s))).toBe("roster");
    expect(pop(pop(s))).toEqual([]);
  });

  it("keeps a higher priority on top whatever opened later", () => {
    // The help opened over the report still takes Escape first, as it always did.
    expect(top(push(push(NO_MODALS, "help"), "report"))).toBe("help");
    expect(top(push(push(NO_MODALS, "report"), "help"))).toBe("help");
    expect(top(push(push(NO_MODALS, "quarantine"), "report"))).toBe("report");
    // A dialog with fields keeps the keys over every overlay.
    expect(top(push(push(NO_MODALS, "dispatch"), "help"))).toBe("dispatch");
  });

  it("opens each modal once: pushing again moves it up among its equals", () => {
    const s = push(push(push(NO_MODALS, "signIn"), "roster"), "signIn");
    expect(s).toEqual(["roster", "signIn"]);
    expect(top(s)).toBe("signIn");
  });

  it("closes a named modal below the top and leaves the stack alone for a closed one", () => {
    const s = push(push(NO_MODALS, "quarantine"), "help");
    expect(pop(s, "quarantine")).toEqual(["help"]);
    expect(pop(s, "report")).toBe(s);
    expect(isOpen(s, "quarantine")).toBe(true);
    expect(isOpen(pop(s, "quarantine"), "quarantine")).toBe(false);
  });

  it("ranks the dialogs with fields above the overlays the app closes itself", () => {
    const owning = (Object.keys(MODALS) as ModalId[]).filter((id) => MODALS[id].ownsKeys);
    const closable = (Object.keys(MODALS) as ModalId[]).filter((id) => !MODALS[id].ownsKeys);
    expect(owning.sort()).toEqual(["confirmEnd", "dispatch", "newIncident", "roster", "signIn"]);
    for (const o of owning) for (const c of closable) expect(MODALS[o].priority).toBeGreaterThan(MODALS[c].priority);
    for (const c of closable) expect(MODALS[c].closeKeys).toContain("Escape");
  });
});
