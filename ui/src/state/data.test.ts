import { describe, expect, it } from "vitest";
import type { ClockDto, LayerAgeDto, MapDiffDto, MapFeatureDto } from "../ipc/backend";
import { applyDiff, emptyData, featureCount, findFeature, layerAgeMs, patchClock, type DataState } from "./data";

const T0 = Date.UTC(2026, 10, 26, 15, 0, 0);

function clock(nowMs: number, extra: Partial<ClockDto> = {}): ClockDto {
  return {
    startMs: T0,
    endMs: T0 + 3_600_000,
    nowMs,
    playing: true,
    speed: 10,
    ingestedUntilMs: nowMs,
    finished: false,
    endedMs: null,
    trainerView: false,
    ...extra,
  };
}

function feature(id: string, layer: MapFeatureDto["layer"], extra: Partial<MapFeatureDto> = {}): MapFeatureDto {
  return { id, layer, kind: "k", severity: "normal", lon: 24.94, lat: 60.17, title: id, observedMs: T0, ...extra };
}

function diff(
  upserts: MapFeatureDto[],
  opts: { reset?: boolean; nowMs?: number; layers?: LayerAgeDto[] } = {},
): MapDiffDto {
  return {
    reset: opts.reset ?? false,
    upserts,
    clock: clock(opts.nowMs ?? T0),
    layers: opts.layers ?? [],
    incidents: null,
    outbox: null,
    feeds: null,
    storage: null,
    site: null,
  };
}

/** The state as plain data, to compare with `toEqual` readably. */
function ids(s: DataState): Record<string, string[]> {
  return Object.fromEntries(Object.entries(s.features).map(([l, m]) => [l, [...m.keys()].sort()]));
}

describe("applyDiff", () => {
  it("starts empty with no clock", () => {
    const s = emptyData();
    expect(ids(s)).toEqual({ transport: [], security: [], utility: [], alerts: [] });
    expect(s.clock).toBeNull();
    expect(layerAgeMs(s, "transport")).toBeNull();
  });

  it("adds upserts to their layers", () => {
    const s = applyDiff(
      emptyData(),
      diff([feature("a", "transport"), feature("b", "alerts"), feature("c", "transport")]),
    );
    expect(ids(s)).toEqual({ transport: ["a", "c"], security: [], utility: [], alerts: ["b"] });
    expect(featureCount(s, "transport")).toBe(2);
  });

  it("replaces a feature with the same id", () => {
    const s1 = applyDiff(emptyData(), diff([feature("a", "transport", { title: "old", lon: 1 })]));
    const s2 = applyDiff(s1, diff([feature("a", "transport", { title: "new", lon: 2 })]));
    expect(featureCount(s2, "transport")).toBe(1);
    expect(findFeature(s2, "a")).toMatchObject({ title: "new", lon: 2 });
  });

  it("moves a feature whose layer changed", () => {
    const s1 = applyDiff(emptyData(), diff([feature("x", "security"), feature("y", "security")]));
    const s2 = applyDiff(s1, diff([feature("x", "alerts", { severity: "extreme" })]));
    expect(ids(s2)).toEqual({ transport: [], security: ["y"], utility: [], alerts: ["x"] });
    expect(findFeature(s2, "x")?.severity).toBe("extreme");
  });

  it("keeps the last of several upserts of one id in a diff", () => {
    const s = applyDiff(
      emptyData(),
      diff([feature("a", "transport", { title: "1" }), feature("a", "utility", { title: "2" })]),
    );
    expect(ids(s)).toEqual({ transport: [], security: [], utility: ["a"], alerts: [] });
    expect(findFeature(s, "a")?.title).toBe("2");
  });

  it("replaces everything on reset", () => {
    const s1 = applyDiff(
      emptyData(),
      diff([feature("a", "transport"), feature("b", "utility")], {
        layers: [{ layer: "utility", newestObservedMs: T0, count: 1 }],
      }),
    );
    const s2 = applyDiff(
      s1,
      diff([feature("c", "security")], {
        reset: true,
        layers: [{ layer: "security", newestObservedMs: T0, count: 1 }],
      }),
    );
    expect(ids(s2)).toEqual({ transport: [], security: ["c"], utility: [], alerts: [] });
    // Ages of layers the reset does not mention are cleared too.
    expect(s2.ages.utility).toEqual({ newestObservedMs: null, count: 0 });
    expect(s2.ages.security).toEqual({ newestObservedMs: T0, count: 1 });
  });

  it("a reset with no upserts empties the map", () => {
    const s1 = applyDiff(emptyData(), diff([feature("a", "transport")]));
    expect(ids(applyDiff(s1, diff([], { reset: true })))).toEqual({
      transport: [],
      security: [],
      utility: [],
      alerts: [],
    });
  });

  it("never mutates its input and copies only the layers it touches", () => {
    const s1 = applyDiff(emptyData(), diff([feature("a", "transport"), feature("b", "alerts")]));
    const before = ids(s1);
    const s2 = applyDiff(s1, diff([feature("a", "transport", { title: "moved" })]));
    expect(ids(s1)).toEqual(before);
    expect(findFeature(s1, "a")?.title).toBe("a");
    expect(s2.features.transport).not.toBe(s1.features.transport);
    expect(s2.features.alerts).toBe(s1.features.alerts);
    expect(s2.features.security).toBe(s1.features.security);
  });

  it("a clock-only diff keeps every layer map", () => {
    const s1 = applyDiff(emptyData(), diff([feature("a", "transport")]));
    const s2 = applyDiff(s1, diff([], { nowMs: T0 + 5000 }));
    expect(s2.features).toEqual(s1.features);
    for (const l of ["transport", "security", "utility", "alerts"] as const)
      expect(s2.features[l]).toBe(s1.features[l]);
    expect(s2.clock?.nowMs).toBe(T0 + 5000);
  });

  it("takes the clock from every diff", () => {
    const s1 = applyDiff(emptyData(), {
      ...diff([]),
      clock: clock(T0 + 1000, { playing: false, speed: null, finished: true }),
    });
    expect(s1.clock).toEqual(clock(T0 + 1000, { playing: false, speed: null, finished: true }));
  });

  it("merges layer ages and counts, keeping layers a diff does not mention", () => {
    const s1 = applyDiff(
      emptyData(),
      diff([], {
        layers: [
          { layer: "transport", newestObservedMs: T0 + 1000, count: 3 },
          { layer: "alerts", newestObservedMs: T0 + 2000, count: 1 },
        ],
      }),
    );
    const s2 = applyDiff(s1, diff([], { layers: [{ layer: "transport", newestObservedMs: T0 + 9000, count: 4 }] }));
    expect(s2.ages).toEqual({
      transport: { newestObservedMs: T0 + 9000, count: 4 },
      security: { newestObservedMs: null, count: 0 },
      utility: { newestObservedMs: null, count: 0 },
      alerts: { newestObservedMs: T0 + 2000, count: 1 },
    });
  });

  it("measures layer age on the scenario clock, not wall time", () => {
    const s = applyDiff(
      emptyData(),
      diff([], { nowMs: T0 + 12_000, layers: [{ layer: "utility", newestObservedMs: T0, count: 1 }] }),
    );
    expect(layerAgeMs(s, "utility")).toBe(12_000);
    expect(layerAgeMs(s, "security")).toBeNull();
    // An observation stamped after the clock (skew) reads as fresh, not negative.
    const skewed = applyDiff(s, diff([], { nowMs: T0 - 5000 }));
    expect(layerAgeMs(skewed, "utility")).toBe(0);
  });
});

describe("patchClock", () => {
  it("changes only the clock, and nothing before the first diff", () => {
    expect(patchClock(emptyData(), { playing: true }).clock).toBeNull();
    const s1 = applyDiff(emptyData(), diff([feature("a", "transport")]));
    const s2 = patchClock(s1, { playing: false, speed: 60 });
    expect(s2.clock).toEqual({ ...s1.clock, playing: false, speed: 60 });
    expect(s2.features).toBe(s1.features);
    expect(s1.clock?.playing).toBe(true);
  });
});
