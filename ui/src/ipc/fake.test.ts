import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { applyDiff, emptyData, featureCount } from "../state/data";
import { isApiError, toApiError, type MapDiffDto } from "./backend";
import { createFakeBackend, FAKE_SCENARIO } from "./fake";
import { fakeOptionsFrom, insideTauri } from "./index";

const START = FAKE_SCENARIO.startMs;
const MIN = 60_000;

describe("fake backend", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends the current picture as a reset on subscribe", async () => {
    const b = createFakeBackend({ startAtMs: START + 10 * MIN });
    const diffs: MapDiffDto[] = [];
    await b.subscribe((d) => diffs.push(d));
    expect(diffs).toHaveLength(1);
    expect(diffs[0].reset).toBe(true);
    expect(diffs[0].upserts.length).toBeGreaterThan(3);
    expect(diffs[0].upserts.every((f) => f.observedMs <= START + 10 * MIN)).toBe(true);
    // One feature per entity: the tram seen twice by then appears once.
    const ids = diffs[0].upserts.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(diffs[0].clock).toMatchObject({ startMs: START, nowMs: START + 10 * MIN, playing: false, speed: 10 });
  });

  it("plays, sending incremental diffs, and stops at the end", async () => {
    const b = createFakeBackend({ startAtMs: START, tickMs: 100, speed: null, maxStepMs: 10 * MIN });
    let state = emptyData();
    const diffs: MapDiffDto[] = [];
    await b.subscribe((d) => {
      diffs.push(d);
      state = applyDiff(state, d);
    });
    await b.play();
    expect(state.clock?.playing).toBe(true);
    vi.advanceTimersByTime(100);
    expect(state.clock?.nowMs).toBe(START + 10 * MIN);
    expect(diffs.at(-1)?.reset).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(state.clock).toMatchObject({ nowMs: FAKE_SCENARIO.endMs, playing: false, finished: true });
    const total = ["transport", "security", "utility", "alerts"].reduce(
      (n, l) => n + featureCount(state, l as "alerts"),
      0,
    );
    expect(total).toBe(new Set(diffs.flatMap((d) => d.upserts.map((f) => f.id))).size);
    expect(state.ages.alerts.count).toBe(featureCount(state, "alerts"));
  });

  it("pauses, changes speed and seeks with a reset", async () => {
    const b = createFakeBackend({ startAtMs: START + 30 * MIN });
    const diffs: MapDiffDto[] = [];
    await b.subscribe((d) => diffs.push(d));
    await b.setSpeed(60);
    expect(diffs.at(-1)?.clock.speed).toBe(60);
    await b.pause();
    expect(diffs.at(-1)?.clock.playing).toBe(false);
    await b.seek(START + 2 * MIN);
    const last = diffs.at(-1);
    expect(last?.reset).toBe(true);
    expect(last?.clock.nowMs).toBe(START + 2 * MIN);
    expect(last?.upserts.every((f) => f.observedMs <= START + 2 * MIN)).toBe(true);
  });

  it("returns the newest observation of an entity, and notFound otherwise", async () => {
    const b = createFakeBackend({ startAtMs: START + 10 * MIN });
    const tram = await b.observation("hsl:tram:3:1021");
    expect(tram.title).toContain("3 min late");
    expect(tram.feedName).toBe("HSL vehicle positions");
    await expect(b.observation("alerts:112:fire-5")).rejects.toEqual({ code: "notFound", message: expect.any(String) });
    await expect(b.setSpeed(-1)).rejects.toMatchObject({ code: "invalidInput" });
  });
});

describe("backend errors", () => {
  it("recognises and normalises ApiError", () => {
    expect(isApiError({ code: "notFound", message: "x" })).toBe(true);
    expect(isApiError({ code: "weird", message: "x" })).toBe(false);
    expect(toApiError("command replay_play not found")).toEqual({
      code: "internal",
      message: "command replay_play not found",
    });
    expect(toApiError(new Error("boom"))).toEqual({ code: "internal", message: "boom" });
    expect(toApiError({ code: "invalidInput", message: "bad" })).toEqual({ code: "invalidInput", message: "bad" });
  });

  it("detects the desktop shell by its IPC internals", () => {
    expect(insideTauri({})).toBe(false);
    expect(insideTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
  });

  it("reads the fake's dispatch options from the query string", () => {
    expect(fakeOptionsFrom("")).toEqual({ dispatch: { offline: [], exercise: false } });
    expect(fakeOptionsFrom("?offline=city-works,tak&exercise")).toEqual({
      dispatch: { offline: ["city-works", "tak"], exercise: true },
    });
  });
});

describe("fake backend feeds", () => {
  it("sends feed health in every diff only in live mode, and filters the quarantine by feed", async () => {
    const replay = createFakeBackend();
    const seen: MapDiffDto[] = [];
    await replay.subscribe((d) => seen.push(d));
    expect((await replay.scenario()).live).toBe(false);
    expect(seen[0].feeds).toBeNull();

    const health = [
      {
        id: "grid",
        name: "Grid",
        layer: "utility" as const,
        format: "mqtt-json",
        transport: "mqtt",
        connected: false,
        lastMessageMs: null,
        messagesPerMinute: 0,
        lagMs: null,
        rejected: 1,
        lastReasons: ["$: not JSON"],
        stale: false,
        failures: 1,
        lastError: "refused",
        overloaded: false,
        heldBackMs: 0,
      },
    ];
    const live = createFakeBackend({ health });
    const diffs: MapDiffDto[] = [];
    await live.subscribe((d) => diffs.push(d));
    expect((await live.scenario()).live).toBe(true);
    expect(diffs[0].feeds).toEqual(health);

    const grid = await live.quarantine("grid");
    expect(grid.total).toBe(1);
    expect(grid.entries.every((e) => e.feed === "grid")).toBe(true);
    const all = await live.quarantine(null);
    expect(all.entries.length).toBe(all.total);
    expect(all.feeds.reduce((n, f) => n + f.count, 0)).toBe(all.total);
  });
});
