import { describe, expect, it } from "vitest";
import type { StyleSpecification } from "maplibre-gl";
import { AREA_FILL, AREA_LINE, AREA_SOURCE, areaCollection, paddedBounds, withArea } from "./incidentArea";

describe("incident area", () => {
  it("pads a box so a single point still shows, more in longitude at Helsinki's latitude", () => {
    const [w, s, e, n] = paddedBounds({ west: 24.94, south: 60.17, east: 24.94, north: 60.17 });
    expect(e - w).toBeGreaterThan(n - s);
    expect(n - s).toBeCloseTo(0.0011, 6);
  });

  it("is an empty collection without an area and a closed ring with one", () => {
    expect(areaCollection(null).features).toEqual([]);
    const ring = areaCollection({ west: 1, south: 2, east: 3, north: 4 }).features[0].geometry.coordinates[0];
    expect(ring).toHaveLength(5);
    expect(ring[0]).toEqual(ring[4]);
  });

  it("goes under the observation layers", () => {
    const style = {
      version: 8,
      sources: {},
      layers: [
        { id: "bg", type: "background" },
        { id: "obs-transport", type: "circle", source: "x" },
      ],
    } as unknown as StyleSpecification;
    const out = withArea(style, areaCollection(null));
    expect(out.layers.map((l) => l.id)).toEqual(["bg", AREA_FILL, AREA_LINE, "obs-transport"]);
    expect(out.sources[AREA_SOURCE]).toBeDefined();
    expect(style.layers).toHaveLength(2);
  });
});
