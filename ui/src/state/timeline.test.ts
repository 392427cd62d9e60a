import { describe, expect, it } from "vitest";
import type { ActionDto, IncidentEntryDto } from "../ipc/backend";
import { timelineMarks } from "./timeline";

const entry = (id: string, openedMs: number): IncidentEntryDto => ({
  id,
  number: `HEL-2026-${id.padStart(6, "0")}`,
  title: `<b>${id}</b>`,
  incidentType: "power_outage",
  severity: "extreme",
  status: "new",
  active: true,
  openedMs,
  clearedMs: null,
  members: 1,
  openMembers: 1,
  layers: ["utility"],
  rootCause: null,
  rootCleared: false,
  manual: false,
  area: { west: 0, south: 0, east: 0, north: 0 },
  acknowledgedBy: null,
  owner: null,
  escalatedMs: null,
});
const action = (id: number, scenarioMs: number | null): ActionDto => ({
  id,
  key: `k${id}`,
  incident: "a",
  backend: "works",
  kind: "open311",
  summary: "Crew",
  destination: "POST x",
  status: "delivered",
  attempts: 1,
  reference: "SR-1",
  remoteStatus: null,
  lastError: null,
  nextAttemptMs: null,
  createdMs: 5,
  scenarioMs,
  operator: "Aino",
  exercise: true,
});

describe("timelineMarks", () => {
  it("puts incident openings and actions with a scenario time in time order", () => {
    const marks = timelineMarks([entry("b", 300), entry("a", 100)], [action(1, 200), action(2, null)]);
    expect(marks.map((m) => [m.atMs, m.kind])).toEqual([
      [100, "incident"],
      [200, "action"],
      [300, "incident"],
    ]);
    expect(marks[0].label).toBe("Opened: <b>a</b>");
    expect(marks[1].label).toBe("Crew (delivered)");
  });
});
