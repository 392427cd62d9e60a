import { describe, expect, it } from "vitest";
import type { IncidentEntryDto, IncidentsDiffDto } from "../ipc/backend";
import {
  applyIncidentsDiff,
  cursorEntry,
  emptyIncidents,
  flashDone,
  moveCursor,
  nextStatus,
  rankedQueue,
  setCursor,
  setFilters,
  type StatusFilter,
} from "./incidents";

function entry(id: string, patch: Partial<IncidentEntryDto> = {}): IncidentEntryDto {
  return {
    id,
    number: `HEL-2026-${id.padStart(6, "0")}`,
    title: `Incident ${id}`,
    incidentType: "power_outage",
    severity: "moderate",
    status: "new",
    active: true,
    openedMs: 1000,
    clearedMs: null,
    members: 3,
    openMembers: 3,
    layers: ["utility"],
    rootCause: "way/1",
    rootCleared: false,
    manual: false,
    area: { west: 24.94, south: 60.16, east: 24.95, north: 60.17 },
    acknowledgedBy: null,
    owner: null,
    escalatedMs: null,
    ...patch,
  };
}

const diff = (upserts: IncidentEntryDto[], patch: Partial<IncidentsDiffDto> = {}): IncidentsDiffDto => ({
  reset: false,
  upserts,
  removed: [],
  ...patch,
});

describe("incident queue", () => {
  it("ranks by severity, then age, and hides closed incidents by default", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff(
        [
          entry("a", { severity: "moderate", openedMs: 1 }),
          entry("b", { severity: "extreme", openedMs: 5 }),
          entry("c", { severity: "moderate", openedMs: 0 }),
          entry("d", { severity: "extreme", openedMs: 9, status: "closed" }),
        ],
        { reset: true },
      ),
    );
    expect(rankedQueue(state, null).map((e) => e.id)).toEqual(["b", "c", "a"]);
    expect(rankedQueue(setFilters(state, { status: "all" }), null).map((e) => e.id)).toEqual(["b", "d", "c", "a"]);
    expect(rankedQueue(setFilters(state, { status: "closed" }), null).map((e) => e.id)).toEqual(["d"]);
  });

  it("tells active incidents from cleared ones awaiting close, and neither is called open", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff(
        [
          entry("live", { status: "acknowledged" }),
          entry("waits", { status: "resolved", active: false, clearedMs: 50 }),
          entry("done", { status: "closed", active: false, clearedMs: 40 }),
          entry("shut", { status: "closed" }),
        ],
        { reset: true },
      ),
    );
    const ids = (status: StatusFilter) =>
      rankedQueue(setFilters(state, { status }), null)
        .map((e) => e.id)
        .sort();
    expect(ids("notClosed")).toEqual(["live", "waits"]);
    expect(ids("active")).toEqual(["live"]);
    expect(ids("cleared")).toEqual(["waits"]);
    expect(ids("all")).toEqual(["done", "live", "shut", "waits"]);
    expect(ids("resolved")).toEqual(["waits"]);
  });

  it("filters by layer and by the map's view", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff([
        entry("u", { layers: ["utility", "transport"] }),
        entry("far", { layers: ["alerts"], area: { west: 25.5, south: 61, east: 25.6, north: 61.1 } }),
      ]),
    );
    expect(rankedQueue(setFilters(state, { layer: "transport" }), null).map((e) => e.id)).toEqual(["u"]);
    const view = [24.9, 60.1, 25.0, 60.2] as const;
    expect(rankedQueue(setFilters(state, { area: "view" }), view).map((e) => e.id)).toEqual(["u"]);
    expect(rankedQueue(state, view).map((e) => e.id)).toHaveLength(2);
  });

  it("sounds the alarm again when an incident escalates, and puts escalated ones on top", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff([entry("old", { severity: "extreme", openedMs: 0 }), entry("minor", { severity: "minor" })]),
    );
    // Nobody acknowledged the minor one in time: it escalates, and the alarm sounds for it.
    const later = applyIncidentsDiff(state, diff([entry("minor", { severity: "minor", escalatedMs: 5000 })]));
    expect(later.alarms.map((e) => e.id)).toEqual(["minor"]);
    expect(later.state.flashing.has("minor")).toBe(true);
    expect(rankedQueue(later.state, null).map((e) => e.id)).toEqual(["minor", "old"]);
    // Told again that it is escalated, the alarm stays quiet; a reset never sounds it.
    const again = applyIncidentsDiff(later.state, diff([entry("minor", { severity: "minor", escalatedMs: 5000 })]));
    expect(again.alarms).toEqual([]);
    const reset = applyIncidentsDiff(state, {
      reset: true,
      upserts: [entry("minor", { severity: "minor", escalatedMs: 5000 })],
      removed: [],
    });
    expect(reset.alarms).toEqual([]);
  });

  it("finds incidents by their number or part of it, and by title", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff([
        entry("123", { title: "Power outage: Kaisankuja" }),
        entry("9", { number: "HEL-2025-000123", title: "Signals dark: Mikonkatu" }),
        entry("7", { title: "Camera offline" }),
      ]),
    );
    const found = (text: string) => rankedQueue(setFilters(state, { text }), null).map((e) => e.id);
    expect(found("HEL-2026-000123")).toEqual(["123"]);
    expect(found(" hel-2026-000123 ")).toEqual(["123"]);
    expect(found("000123")).toEqual(["123", "9"]);
    expect(found("2025")).toEqual(["9"]);
    expect(found("mikon")).toEqual(["9"]);
    expect(found("")).toHaveLength(3);
    expect(found("nothing like it")).toEqual([]);
  });

  it("sounds the alarm and flashes only for a new severe incident outside resets", () => {
    let s = emptyIncidents();
    const first = applyIncidentsDiff(s, diff([entry("old", { severity: "extreme" })], { reset: true }));
    expect(first.alarms).toEqual([]);
    s = first.state;
    const news = applyIncidentsDiff(
      s,
      diff([
        entry("x", { severity: "severe" }),
        entry("y", { severity: "minor" }),
        entry("old", { severity: "extreme", members: 9 }),
      ]),
    );
    expect(news.alarms.map((e) => e.id)).toEqual(["x"]);
    expect([...news.state.flashing]).toEqual(["x"]);
    expect(news.state.entries.get("old")?.members).toBe(9);
    // An update of the same incident does not alarm again; the flash ends once.
    const again = applyIncidentsDiff(news.state, diff([entry("x", { severity: "extreme" })]));
    expect(again.alarms).toEqual([]);
    expect(flashDone(again.state, "x").flashing.size).toBe(0);
    expect(emptyIncidents()).toEqual(emptyIncidents());
  });

  it("removes merged incidents and drops a cursor on them", () => {
    let { state } = applyIncidentsDiff(emptyIncidents(), diff([entry("a"), entry("b")]));
    state = setCursor(state, "b");
    const before = state;
    state = applyIncidentsDiff(state, diff([], { removed: ["b"] })).state;
    expect([...state.entries.keys()]).toEqual(["a"]);
    expect(state.cursor).toBeNull();
    expect(before.entries.size).toBe(2);
    expect(applyIncidentsDiff(state, null).state).toBe(state);
  });

  it("moves the cursor with j/k semantics and stops at the ends", () => {
    const { state } = applyIncidentsDiff(
      emptyIncidents(),
      diff([entry("a", { openedMs: 1 }), entry("b", { openedMs: 2 }), entry("c", { openedMs: 3 })]),
    );
    const q = rankedQueue(state, null);
    expect(cursorEntry(state, q)?.id).toBe("a");
    let s = moveCursor(state, q, 1);
    expect(s.cursor).toBe("a");
    s = moveCursor(s, q, 1);
    s = moveCursor(s, q, 1);
    expect(s.cursor).toBe("c");
    expect(moveCursor(s, q, 1)).toBe(s);
    expect(moveCursor(s, q, -5).cursor).toBe("a");
    expect(moveCursor(s, [], 1)).toBe(s);
  });

  it("knows the next lifecycle step", () => {
    expect(nextStatus("new")).toBe("acknowledged");
    expect(nextStatus("resolved")).toBe("closed");
    expect(nextStatus("closed")).toBeNull();
  });
});
