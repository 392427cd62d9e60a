import { describe, expect, it } from "vitest";
import { lookingAt } from "./presence";

describe("lookingAt", () => {
  it("names who has each incident open, and skips workstations with nobody or nothing open", () => {
    const said = lookingAt([
      { workstation: "ws-a", operator: "Aino", incident: "inc/1" },
      { workstation: "ws-b", operator: "Bo", incident: "inc/1" },
      { workstation: "ws-c", operator: "Cai", incident: "inc/2" },
      { workstation: "ws-d", operator: null, incident: "inc/3" },
      { workstation: "ws-e", operator: "Eve", incident: null },
    ]);
    expect(said.get("inc/1")).toBe("Aino, Bo have it open");
    expect(said.get("inc/2")).toBe("Cai has it open");
    expect(said.has("inc/3")).toBe(false);
    expect(said.size).toBe(2);
  });
});
