// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActionDto, FeedHealthDto, MapDiffDto } from "../ipc/backend";
import { createFakeBackend, type FakeBackend } from "../ipc/fake";
import { ErrorLine } from "./errors.svelte";
import { Exercise } from "./exercise.svelte";
import { Feeds } from "./feeds.svelte";
import { MapView } from "./mapView.svelte";
import { Modals } from "./modals.svelte";
import { OperatorWindow } from "./operator.svelte";
import { Replay } from "./replay.svelte";
import { Session } from "./session.svelte";

const feed = (rejected: number, patch: Partial<FeedHealthDto> = {}): FeedHealthDto => ({
  id: "grid",
  name: "grid",
  layer: "utility",
  format: "mqtt-json",
  transport: "mqtt",
  connected: true,
  lastMessageMs: null,
  messagesPerMinute: 0,
  lagMs: null,
  rejected,
  lastReasons: [],
  stale: false,
  failures: 0,
  lastError: null,
  overloaded: false,
  heldBackMs: 0,
  ...patch,
});

const diff = (feeds: FeedHealthDto[] | null): MapDiffDto => ({
  reset: false,
  upserts: [],
  layers: [],
  incidents: null,
  outbox: null,
  feeds,
  storage: null,
  site: null,
  clock: {
    startMs: 0,
    endMs: 1,
    nowMs: 1,
    playing: true,
    speed: 1,
    ingestedUntilMs: 1,
    finished: false,
    endedMs: null,
    trainerView: false,
  },
});

let backend: FakeBackend;
afterEach(() => {
  backend?.dispose();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("ErrorLine", () => {
  it("shows a failure in words and forgets it after ten seconds", () => {
    vi.useFakeTimers();
    vi.spyOn(console, "error").mockImplementation(() => {});
    const errors = new ErrorLine();
    errors.report("the link is down", "Play failed");
    expect(errors.message).toBe("Play failed: the link is down");
    vi.advanceTimersByTime(9_999);
    expect(errors.message).not.toBeNull();
    vi.advanceTimersByTime(1);
    expect(errors.message).toBeNull();
  });
});

describe("Session", () => {
  it("asks for a sign-in first, then runs the action once signed in", async () => {
    backend = createFakeBackend();
    const modals = new Modals();
    const session = new Session(backend, () => {}, modals);
    const action = vi.fn(() => Promise.resolve());
    session.asOperator("merge", action);
    expect(action).not.toHaveBeenCalled();
    expect(session.signIn?.reason).toBe("Sign in to merge.");
    expect(modals.top).toBe("signIn");
    await session.submitSignIn("Aino", "operator", null);
    expect(session.operator?.name).toBe("Aino");
    expect(action).toHaveBeenCalledTimes(1);
    expect(modals.top).toBeNull();
  });

  it("asks again when the engine forgot the session, and reports other refusals", async () => {
    backend = createFakeBackend();
    const report = vi.fn();
    const session = new Session(backend, report, new Modals());
    await session.submitSignIn("Aino", "operator", null);
    session.asOperator("split", () => Promise.reject({ code: "forbidden", message: "Sign in again." }));
    await vi.waitFor(() => expect(session.signIn?.reason).toBe("Sign in again."));
    expect(session.operator).toBeNull();
    session.cancelSignIn();
    await session.submitSignIn("Aino", "operator", null);
    session.asOperator("undo", () => Promise.reject({ code: "conflict", message: "nothing to undo" }));
    await vi.waitFor(() =>
      expect(report).toHaveBeenCalledWith({ code: "conflict", message: "nothing to undo" }, "Could not undo"),
    );
  });
});

describe("Feeds", () => {
  it("reloads an open quarantine when new refusals arrive, and not a closed one", async () => {
    backend = createFakeBackend();
    const quarantine = vi.spyOn(backend, "quarantine");
    const modals = new Modals();
    const feeds = new Feeds(backend, modals);
    feeds.applyDiff(diff([feed(1)]));
    expect(quarantine).not.toHaveBeenCalled();
    feeds.loadQuarantine("grid");
    expect(modals.top).toBe("quarantine");
    await vi.waitFor(() => expect(feeds.quarantine.status).toBe("loaded"));
    feeds.applyDiff(diff([feed(1)]));
    expect(quarantine).toHaveBeenCalledTimes(1);
    feeds.applyDiff(diff([feed(2)]));
    expect(quarantine).toHaveBeenCalledTimes(2);
    expect(quarantine).toHaveBeenLastCalledWith("grid");
    modals.closeTop();
    expect(feeds.quarantineOpen).toBe(false);
    feeds.applyDiff(diff([feed(3)]));
    expect(quarantine).toHaveBeenCalledTimes(2);
  });
});

describe("Replay", () => {
  it("says live feed trouble in the status line", async () => {
    backend = createFakeBackend();
    const replay = new Replay(backend, () => {});
    expect(replay.status(null)).toEqual({ text: "connecting…", tone: "idle" });
    replay.applyDiff(diff(null));
    expect(replay.status(null)).toEqual({ text: "playing 1x", tone: "ok" });
    replay.scenario = { ...(await backend.scenario()), live: true };
    expect(replay.status([feed(0, { connected: false }), feed(0, { connected: false })]).text).toBe(
      "live: 2 feeds down",
    );
    expect(replay.status([feed(0, { stale: true })]).text).toBe("live: 1 feed stale");
    expect(replay.exercise).toBe(false);
  });
});

describe("Exercise", () => {
  it("refreshes the KPI charts every ten seconds while they are shown", async () => {
    vi.useFakeTimers();
    backend = createFakeBackend();
    const kpi = vi.spyOn(backend, "kpi");
    const modals = new Modals();
    const session = new Session(backend, () => {}, modals);
    const exercise = new Exercise({
      backend,
      report: () => {},
      modals,
      session,
      mapView: new MapView(backend),
      mainArea: () => null,
    });
    exercise.toggleKpi();
    expect(exercise.kpi).toBeNull();
    await vi.waitFor(() => expect(exercise.kpi?.length).toBeGreaterThan(0));
    vi.advanceTimersByTime(10_000);
    expect(kpi).toHaveBeenCalledTimes(2);
    exercise.toggleKpi();
    expect(exercise.kpi).toBeUndefined();
    vi.advanceTimersByTime(30_000);
    expect(kpi).toHaveBeenCalledTimes(2);
    exercise.dispose();
  });

  it("asks for a sign-in before asking to end, and closes the question on cancel", async () => {
    backend = createFakeBackend();
    const modals = new Modals();
    const session = new Session(backend, () => {}, modals);
    const exercise = new Exercise({
      backend,
      report: () => {},
      modals,
      session,
      mapView: new MapView(backend),
      mainArea: () => null,
    });
    exercise.askEnd();
    expect(session.signIn?.reason).toBe("Sign in to end the exercise.");
    expect(exercise.confirmingEnd).toBe(false);
    await session.submitSignIn("Aino", "operator", null);
    expect(exercise.confirmingEnd).toBe(true);
    expect(modals.top).toBe("confirmEnd");
    exercise.cancelEnd();
    expect(exercise.confirmingEnd).toBe(false);
    expect((await backend.exercise()).endedMs).toBeNull();
  });
});

describe("Dispatch", () => {
  it("shows an action for a point in the outbox, since it belongs to no incident", () => {
    backend = createFakeBackend();
    const w = new OperatorWindow(backend);
    w.dispatch.done({ incident: null } as ActionDto);
    expect(w.dispatch.outboxOpen).toBe(true);
    w.dispatch.closeOutbox();
    w.dispatch.done({ incident: "inc/1" } as ActionDto);
    expect(w.dispatch.outboxOpen).toBe(false);
  });
});
