import { describe, expect, it } from "vitest";
import type { MapDiffDto, ObservationDto } from "../ipc/backend";
import {
  clearSelection,
  needsRefresh,
  NO_SELECTION,
  select,
  selectedId,
  selectionFailed,
  selectionLoaded,
  shownObservation,
} from "./selection";

const T0 = Date.UTC(2026, 10, 26, 15, 0, 0);

function obs(id: string, observedMs = T0): ObservationDto {
  return {
    id,
    feed: "f",
    feedName: "Feed",
    layer: "transport",
    kind: "k",
    severity: "minor",
    lon: 0,
    lat: 0,
    title: id,
    observedMs,
    receivedMs: observedMs + 100,
    fields: {},
  };
}

function diff(ids: [string, number][], reset = false): MapDiffDto {
  return {
    reset,
    upserts: ids.map(([id, observedMs]) => ({
      id,
      layer: "transport",
      kind: "k",
      severity: "minor",
      lon: 0,
      lat: 0,
      title: id,
      observedMs,
    })),
    clock: {
      startMs: T0,
      endMs: T0 + 1,
      nowMs: T0,
      playing: false,
      speed: 1,
      ingestedUntilMs: T0,
      finished: false,
      endedMs: null,
      trainerView: false,
    },
    layers: [],
    incidents: null,
    outbox: null,
    feeds: null,
    storage: null,
    site: null,
  };
}

describe("selection", () => {
  it("loads the selected observation", () => {
    const s1 = select(NO_SELECTION, "a");
    expect(s1).toEqual({ status: "loading", id: "a", previous: null });
    expect(selectedId(s1)).toBe("a");
    const s2 = selectionLoaded(s1, "a", obs("a"));
    expect(s2).toEqual({ status: "loaded", id: "a", observation: obs("a") });
    expect(shownObservation(s2)).toEqual(obs("a"));
  });

  it("ignores an answer for an id that is no longer selected", () => {
    const s = select(select(NO_SELECTION, "a"), "b");
    expect(selectionLoaded(s, "a", obs("a"))).toBe(s);
    expect(selectionFailed(s, "a", { code: "notFound", message: "gone" })).toBe(s);
    expect(selectionLoaded(clearSelection(), "a", obs("a"))).toEqual(NO_SELECTION);
  });

  it("records a failure", () => {
    const s = selectionFailed(select(NO_SELECTION, "a"), "a", { code: "notFound", message: "gone" });
    expect(s).toEqual({ status: "failed", id: "a", error: { code: "notFound", message: "gone" } });
    expect(shownObservation(s)).toBeNull();
  });

  it("keeps showing the old details while the same id refreshes", () => {
    const loaded = selectionLoaded(select(NO_SELECTION, "a"), "a", obs("a"));
    const refreshing = select(loaded, "a");
    expect(shownObservation(refreshing)).toEqual(obs("a"));
    // A different id starts blank.
    expect(shownObservation(select(loaded, "b"))).toBeNull();
  });

  it("clears", () => {
    expect(selectedId(clearSelection())).toBeNull();
  });

  it("asks for a refresh when a diff brings a newer observation of the selected entity", () => {
    const loaded = selectionLoaded(select(NO_SELECTION, "a"), "a", obs("a", T0 + 10));
    expect(needsRefresh(loaded, diff([["a", T0 + 20]]))).toBe(true);
    expect(needsRefresh(loaded, diff([["a", T0 + 10]]))).toBe(false);
    expect(needsRefresh(loaded, diff([["b", T0 + 99]]))).toBe(false);
    // After a seek backwards the entity's state is older: refresh too.
    expect(needsRefresh(loaded, diff([["a", T0 + 5]], true))).toBe(true);
    // ... or the entity is not in the picture at all any more.
    expect(needsRefresh(loaded, diff([["b", T0 + 5]], true))).toBe(true);
    expect(needsRefresh(loaded, diff([["a", T0 + 10]], true))).toBe(false);
    expect(needsRefresh(select(NO_SELECTION, "a"), diff([["a", T0 + 20]]))).toBe(false);
  });
});
