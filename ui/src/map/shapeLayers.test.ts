import { validateStyleMin } from "@maplibre/maplibre-gl-style-spec";
import { describe, expect, it } from "vitest";
import type { MapFeatureDto } from "../ipc/backend";
import { initialView, toggleLayer } from "../state/view";
import { basemapStyle } from "./basemap";
import { composeStyle, emptyCollection, styleLayerIds } from "./observationLayers";
import { emptyShapes, toShapeCollection, withShapes } from "./shapeLayers";

const warning: MapFeatureDto = {
  id: "warning/storm",
  layer: "alerts",
  kind: "weather.warning",
  severity: "severe",
  lon: 24.945,
  lat: 60.172,
  title: "Storm warning",
  observedMs: 5,
  shape: {
    type: "Polygon",
    coordinates: [
      [
        [24.93, 60.16],
        [24.96, 60.16],
        [24.96, 60.18],
        [24.93, 60.18],
        [24.93, 60.16],
      ],
    ],
  },
};
const point: MapFeatureDto = { ...warning, id: "report/1", kind: "report.outage", shape: undefined };

const points = {
  transport: emptyCollection(),
  security: emptyCollection(),
  utility: emptyCollection(),
  alerts: emptyCollection(),
};

describe("shape layers", () => {
  it("keeps the shapes of a layer's features and leaves points out", () => {
    const c = toShapeCollection(
      new Map([
        [warning.id, warning],
        [point.id, point],
      ]),
    );
    expect(c.features).toHaveLength(1);
    expect(c.features[0].geometry).toEqual(warning.shape);
    expect(c.features[0].properties).toEqual({ id: "warning/storm", severity: "severe", rank: 3 });
  });

  it("draws areas under every point, valid for MapLibre, and toggles them with their layer", () => {
    const shapes = {
      transport: emptyShapes(),
      security: emptyShapes(),
      utility: emptyShapes(),
      alerts: toShapeCollection(new Map([[warning.id, warning]])),
    };
    const visible = toggleLayer(initialView(), "transport").visible;
    const style = withShapes(composeStyle(basemapStyle("night"), points, visible), shapes, visible);
    expect(validateStyleMin(style)).toEqual([]);
    const ids = style.layers.map((l) => l.id);
    const firstPoint = ids.findIndex((id) => id.startsWith("obs-"));
    for (const id of ["shapes-alerts-fill", "shapes-alerts-line"]) {
      expect(ids.indexOf(id)).toBeGreaterThan(-1);
      expect(ids.indexOf(id)).toBeLessThan(firstPoint);
    }
    expect(style.layers.find((l) => l.id === "shapes-transport-fill")?.layout?.visibility).toBe("none");
    expect(style.layers.find((l) => l.id === "shapes-alerts-fill")?.layout?.visibility).toBe("visible");
    expect(styleLayerIds("alerts")).toEqual(expect.arrayContaining(["shapes-alerts-fill", "shapes-alerts-line"]));
  });
});
