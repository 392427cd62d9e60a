import { describe, expect, it } from "vitest";
import { areaQuery, boxFromCorners, boxSize } from "./areaQuery";

describe("what happened here", () => {
  it("makes a box from two corners dragged either way, and none from a line", () => {
    expect(boxFromCorners([24.95, 60.17], [24.94, 60.18])).toEqual([24.94, 60.17, 24.95, 60.18]);
    expect(boxFromCorners([24.94, 60.17], [24.94, 60.18])).toBeNull();
  });

  it("asks from the range's start, never before the scenario's, up to the clock", () => {
    const box = [24.94, 60.17, 24.95, 60.18] as const;
    const clock = { startMs: 0, nowMs: 40 * 60_000 };
    expect(areaQuery(box, "15m", null, clock)).toMatchObject({ fromMs: 25 * 60_000, toMs: 40 * 60_000, layer: null });
    expect(areaQuery(box, "1h", "utility", clock)).toMatchObject({ fromMs: 0, layer: "utility" });
    expect(areaQuery(box, "all", null, { startMs: 5, nowMs: 9 })).toMatchObject({ fromMs: 5, toMs: 9 });
    expect(areaQuery(box, "all", null, clock)).toMatchObject({ west: 24.94, south: 60.17, east: 24.95, north: 60.18 });
  });

  it("says how big the box is on the ground", () => {
    expect(boxSize([24.94, 60.17, 24.95, 60.18])).toBe("550 m × 1.1 km");
  });
});
