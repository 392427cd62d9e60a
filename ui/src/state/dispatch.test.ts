import { describe, expect, it } from "vitest";
import type { ActionPreviewDto, BackendDto } from "../ipc/backend";
import { confirmAgainText, draftFor, missing, paramsOf, requestOf, targetLabel, type DispatchTarget } from "./dispatch";

const backend = (patch: Partial<BackendDto> = {}): BackendDto => ({
  id: "city-works",
  name: "City works",
  kind: "open311",
  action: "Open a service request",
  dangerous: false,
  supervisorOnly: false,
  choices: ["utility-crew", "public-works"],
  exercise: false,
  reachable: null,
  ...patch,
});
const incident: DispatchTarget = {
  incident: "inc/1",
  at: null,
  title: "Power outage: Kaisaniemi",
  entity: "grid:substation:kaisaniemi",
};
const point: DispatchTarget = { incident: null, at: [24.9386, 60.1697], title: "Signal fault", entity: "signals:4411" };

describe("dispatch draft", () => {
  it("prefills from the target and the backend's first choice", () => {
    const d = draftFor(incident, backend());
    expect(paramsOf("open311", d)).toEqual({
      kind: "serviceRequest",
      serviceCode: "utility-crew",
      description: "Power outage: Kaisaniemi",
    });
    expect(paramsOf("mqtt", draftFor(point, backend({ kind: "mqtt", choices: ["FLASH"] })))).toEqual({
      kind: "deviceCommand",
      device: "signals:4411",
      command: "FLASH",
    });
    const cap = paramsOf("cap", d);
    expect(cap).toMatchObject({
      kind: "publicAlert",
      headline: "Power outage: Kaisaniemi",
      severity: "severe",
      expiresMinutes: 60,
    });
  });

  it("says what is missing before a preview", () => {
    const d = draftFor(incident, backend());
    expect(missing(paramsOf("open311", d))).toBeNull();
    expect(missing(paramsOf("open311", { ...d, description: "  " }))).toBe("Describe the work.");
    expect(missing(paramsOf("cot", d))).toBe("Name the unit (callsign or uid).");
    expect(missing(paramsOf("cap", d))).toBe("Tell the public what to do.");
    expect(missing(paramsOf("cap", { ...d, instruction: "Stay in", expiresMinutes: 1 }))).toBe(
      "An alert lasts at least 5 minutes.",
    );
  });

  it("sends the incident, or the point when there is none", () => {
    const p = paramsOf("open311", draftFor(incident, backend()));
    expect(requestOf(backend(), incident, p)).toEqual({
      backend: "city-works",
      incident: "inc/1",
      at: null,
      params: p,
    });
    expect(requestOf(backend(), point, p).at).toEqual([24.9386, 60.1697]);
    expect(targetLabel(point)).toBe("Point 60.16970 N, 24.93860 E (Signal fault)");
    expect(targetLabel(incident)).toBe("Incident: Power outage: Kaisaniemi");
  });

  it("names the dangerous act in the second confirmation", () => {
    const preview = { summary: "s", exercise: false } as ActionPreviewDto;
    expect(confirmAgainText(preview, { kind: "deviceCommand", device: "signal HEL-4411", command: "FLASH" })).toBe(
      "Send device command FLASH to signal HEL-4411 — confirm again",
    );
    expect(
      confirmAgainText(
        { ...preview, exercise: true },
        {
          kind: "publicAlert",
          headline: "Storm",
          description: "",
          instruction: "",
          severity: "severe",
          expiresMinutes: 60,
        },
      ),
    ).toBe('Publish public alert "Storm" (severe) to the public (exercise) — confirm again');
  });
});
