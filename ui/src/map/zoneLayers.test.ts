import { validateStyleMin } from "@maplibre/maplibre-gl-style-spec";
import { describe, expect, it } from "vitest";
import { FAKE_SCENARIO } from "../ipc/fake";
import { initialView } from "../state/view";
import { basemapStyle } from "./basemap";
import { composeStyle, emptyCollection } from "./observationLayers";
import { withZones, zoneCollection } from "./zoneLayers";

const points = {
  transport: emptyCollection(),
  security: emptyCollection(),
  utility: emptyCollection(),
  alerts: emptyCollection(),
};

describe("zone layers", () => {
  it("draws the zones with their names under the observations, valid for MapLibre", () => {
    const data = zoneCollection(FAKE_SCENARIO.zones);
    expect(data.features[0]).toMatchObject({ id: "station", properties: { name: "Helsinki Central station" } });
    for (const theme of ["night", "day"] as const) {
      const style = withZones(
        composeStyle(basemapStyle(theme), points, initialView().visible, theme),
        data,
        true,
        theme,
      );
      expect(validateStyleMin(style)).toEqual([]);
      const ids = style.layers.map((l) => l.id);
      expect(ids.indexOf("zones-label")).toBeLessThan(ids.findIndex((id) => id.startsWith("obs-")));
    }
    const hidden = withZones(composeStyle(basemapStyle("night"), points, initialView().visible), data, false, "night");
    expect(hidden.layers.find((l) => l.id === "zones-line")?.layout?.visibility).toBe("none");
  });
});
