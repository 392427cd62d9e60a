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
