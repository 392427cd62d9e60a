// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import { createFakeBackend, type FakeBackend } from "../ipc/fake";
import { OperatorWindow } from "./operator.svelte";

/** A window on the fake backend that follows its diffs, without a map or any rendering. */
async function open(backend: FakeBackend = createFakeBackend()): Promise<OperatorWindow> {
  const w = new OperatorWindow(backend);
  w.replay.scenario = await backend.scenario();
  await backend.subscribe(w.onDiff);
  await vi.waitFor(() => expect(w.incidents.queue.length).toBeGreaterThan(0));
  return w;
}

function press(w: OperatorWindow, key: string, init: KeyboardEventInit = {}): KeyboardEvent {
  const e = new KeyboardEvent("keydown", { key, cancelable: true, ...init });
  w.onKeydown(e);
  return e;
}

let backend: FakeBackend;
afterEach(() => backend?.dispose());

describe("OperatorWindow keys and modals", () => {
  it("opens the help with ?, keeps the queue's keys out while it is up, and closes it with ? or Escape", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    expect(press(w, "?").defaultPrevented).toBe(true);
    expect(w.helpOpen).toBe(true);
    expect(w.modals.top).toBe("help");
    const cursor = w.incidents.list.cursor;
    expect(press(w, "j").defaultPrevented).toBe(false);
    expect(w.incidents.list.cursor).toBe(cursor);
    press(w, "?");
    expect(w.helpOpen).toBe(false);
    press(w, "?");
    expect(press(w, "Escape").defaultPrevented).toBe(true);
    expect(w.modals.top).toBeNull();
  });

  it("toggles the quarantine with q and closes it with Escape", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    press(w, "q");
    expect(w.feeds.quarantineOpen).toBe(true);
    await vi.waitFor(() => expect(w.feeds.quarantine.status).toBe("loaded"));
    press(w, "q");
    expect(w.feeds.quarantineOpen).toBe(false);
    press(w, "q");
    press(w, "Escape");
    expect(w.feeds.quarantine.status).toBe("closed");
    expect(w.modals.stack).toEqual([]);
  });

  it("asks for a sign-in before acknowledging, leaves the keys to the dialog, and acknowledges after it", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    press(w, "j");
    const id = w.incidents.target;
    expect(id).not.toBeNull();
    press(w, "a");
    expect(w.session.signIn?.reason).toBe("Sign in to acknowledge.");
    expect(w.modals.top).toBe("signIn");
    // The dialog's fields own the keys: q is typed, not a quarantine.
    expect(press(w, "q").defaultPrevented).toBe(false);
    expect(w.feeds.quarantineOpen).toBe(false);
    await w.session.submitSignIn("Aino", "operator", null);
    expect(w.session.signIn).toBeNull();
    expect(w.modals.top).toBeNull();
    await vi.waitFor(() => expect(w.incidents.list.entries.get(id ?? "")?.status).toBe("acknowledged"));
  });

  it("opens the incident under the cursor on Enter and closes it with Escape", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    press(w, "Enter");
    expect(w.incidents.isOpen).toBe(true);
    await vi.waitFor(() => expect(w.incidents.detail.status).toBe("loaded"));
    expect(press(w, "Escape").defaultPrevented).toBe(true);
    expect(w.incidents.isOpen).toBe(false);
    expect(press(w, "Escape").defaultPrevented).toBe(false);
  });

  it("says what is missing when there is nothing to dispatch for", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    backend = createFakeBackend();
    const w = await open(backend);
    press(w, "s");
    expect(w.errors.message).toContain("Nothing to dispatch for: open an incident or select a point");
    expect(w.dispatch.target).toBeNull();
  });

  it("swallows a held Space and the key-up of Space outside fields", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    expect(press(w, " ", { repeat: true }).defaultPrevented).toBe(true);
    expect(backend.clock.playing).toBe(false);
    const up = new KeyboardEvent("keyup", { key: " ", cancelable: true });
    w.onKeyup(up);
    expect(up.defaultPrevented).toBe(true);
  });
});

describe("OperatorWindow new incident", () => {
  it("asks for a sign-in, places the call by a map click, enters it and opens its incident", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    const before = w.incidents.list.entries.size;
    expect(w.newIncident.place(24.93, 60.18)).toBe(false);
    press(w, "n");
    expect(w.session.signIn?.reason).toBe("Sign in to enter an incident.");
    expect(w.newIncident.form).toBeNull();
    await w.session.submitSignIn("Aino", "operator", null);
    expect(w.newIncident.form).not.toBeNull();
    expect(w.modals.top).toBe("newIncident");
    // The app's keys stay out while the form is open.
    expect(press(w, "j").defaultPrevented).toBe(false);
    w.newIncident.edit({ incidentType: "obstruction", severity: "severe", description: "Tree across the tracks" });
    await w.newIncident.submit();
    expect(w.newIncident.problem).toBe("Click the map where it is.");
    expect(w.newIncident.place(24.9301, 60.1815)).toBe(true);
    await w.newIncident.submit();
    expect(w.newIncident.form).toBeNull();
    expect(w.modals.top).toBeNull();
    await vi.waitFor(() => expect(w.incidents.list.entries.size).toBe(before + 1));
    await vi.waitFor(() => expect(w.incidents.openId).not.toBeNull());
    const opened = w.incidents.list.entries.get(w.incidents.openId!);
    expect(opened?.title).toBe("Obstruction: Tree across the tracks");
    expect(opened?.rootCause).toBe("call/1");
  });

  it("shows the engine's refusal in the form and keeps what was typed", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    await backend.signIn("Aino", "operator", null);
    w.session.load();
    await vi.waitFor(() => expect(w.session.operator).not.toBeNull());
    press(w, "n");
    w.newIncident.edit({ incidentType: "alien_landing", description: "Lights over the bay" });
    w.newIncident.place(24.95, 60.16);
    await w.newIncident.submit();
    expect(w.newIncident.problem).toContain("alien_landing");
    expect(w.newIncident.form?.description).toBe("Lights over the bay");
    w.newIncident.close();
    expect(w.modals.stack).toEqual([]);
  });
});

describe("OperatorWindow what happened here", () => {
  it("answers a box with counts per kind, asks again for another range or layer, and closes on Escape", async () => {
    backend = createFakeBackend();
    const w = await open(backend);
    press(w, "h");
    expect(w.areaQuery.armed).toBe(true);
    // The whole canned centre, at the fake's clock.
    w.areaQuery.ask([24.9, 60.15, 25.0, 60.2]);
    expect(w.areaQuery.armed).toBe(false);
    w.areaQuery.setRange("all");
    await vi.waitFor(() => expect(w.areaQuery.answer).not.toBeNull());
    const all = w.areaQuery.answer!;
    expect(all.count).toBeGreaterThan(0);
    expect(all.perKind.reduce((n, k) => n + k.count, 0)).toBe(all.count);
    expect(all.observations.every((o) => o.observedMs <= (backend.clock.nowMs ?? 0))).toBe(true);
    w.areaQuery.setLayer("utility");
    await vi.waitFor(() => expect(w.areaQuery.answer?.perKind.every((k) => k.layer === "utility")).toBe(true));
    expect(w.areaQuery.answer!.count).toBeLessThan(all.count);
    expect(press(w, "Escape").defaultPrevented).toBe(true);
    expect(w.areaQuery.box).toBeNull();
    expect(w.areaQuery.answer).toBeNull();
  });
});
