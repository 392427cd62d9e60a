import { describe, expect, it } from "vitest";
import type { IncidentDetailDto } from "../ipc/backend";
import {
  incidentFailed,
  incidentLoaded,
  needsIncidentRefresh,
  NO_INCIDENT,
  openIncident,
  openIncidentId,
  shownIncident,
} from "./incidentDetail";

const detail = { entry: { id: "i1" } } as unknown as IncidentDetailDto;

describe("incident detail", () => {
  it("ignores answers for an incident no longer being opened", () => {
    const a = openIncident(NO_INCIDENT, "i1");
    const b = openIncident(a, "i2");
    expect(incidentLoaded(b, "i1", detail)).toBe(b);
    expect(incidentFailed(b, "i1", { code: "notFound", message: "gone" })).toBe(b);
    expect(openIncidentId(b)).toBe("i2");
  });

  it("keeps the old detail visible while the same incident refreshes", () => {
    const loaded = incidentLoaded(openIncident(NO_INCIDENT, "i1"), "i1", detail);
    expect(shownIncident(loaded)).toBe(detail);
    const refreshing = openIncident(loaded, "i1");
    expect(shownIncident(refreshing)).toBe(detail);
    expect(shownIncident(openIncident(loaded, "i2"))).toBeNull();
  });

  it("refreshes when the open incident changes or the queue resets", () => {
    const s = incidentLoaded(openIncident(NO_INCIDENT, "i1"), "i1", detail);
    expect(needsIncidentRefresh(s, null)).toBe(false);
    expect(needsIncidentRefresh(s, { reset: false, upserts: [], removed: [] })).toBe(false);
    expect(needsIncidentRefresh(s, { reset: true, upserts: [], removed: [] })).toBe(true);
    expect(needsIncidentRefresh(s, { reset: false, upserts: [], removed: ["i1"] })).toBe(true);
    expect(needsIncidentRefresh(NO_INCIDENT, { reset: true, upserts: [], removed: [] })).toBe(false);
  });
});
