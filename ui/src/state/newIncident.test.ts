import { describe, expect, it } from "vitest";
import type { IncidentEntryDto } from "../ipc/backend";
import { callRequest, incidentOfCall, newForm, placeAt, placeText } from "./newIncident";

const types = [
  { id: "obstruction", label: "Obstruction" },
  { id: "power_outage", label: "Power outage" },
];

describe("the new incident form", () => {
  it("asks for a description and a place on the map before it makes a request", () => {
    let f = newForm(types, [24.94, 60.17]);
    expect(f.incidentType).toBe("obstruction");
    expect(callRequest(f)).toBe("Describe what was reported.");
    f = { ...f, description: "  Tree across the tracks  " };
    expect(callRequest(f)).toBe("Click the map where it is.");
    f = placeAt(f, 24.93012, 60.18151);
    expect(placeText(f)).toBe("60.18151, 24.93012");
    expect(callRequest(f)).toEqual({
      incidentType: "obstruction",
      layer: "alerts",
      severity: "moderate",
      description: "Tree across the tracks",
      lon: 24.93012,
      lat: 60.18151,
    });
  });

  it("refuses a description over the engine's limit and a form without types", () => {
    const f = placeAt({ ...newForm(types, [0, 0]), description: "x".repeat(2001) }, 1, 2);
    expect(callRequest(f)).toMatch(/longer than 2000/);
    expect(callRequest(placeAt({ ...newForm([], [0, 0]), description: "x" }, 1, 2))).toBe("Pick the type of incident.");
  });

  it("finds the incident a call opened by its root cause", () => {
    const e = (id: string, rootCause: string) => ({ id, rootCause }) as IncidentEntryDto;
    const entries = [e("inc/a", "way/1"), e("inc/b", "call/2")];
    expect(incidentOfCall(entries, "call/2")?.id).toBe("inc/b");
    expect(incidentOfCall(entries, "call/3")).toBeNull();
  });
});
