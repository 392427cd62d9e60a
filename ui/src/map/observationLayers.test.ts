import { validateStyleMin } from "@maplibre/maplibre-gl-style-spec";
import type { StyleSpecification } from "maplibre-gl";
import { describe, expect, it } from "vitest";
import type { MapFeatureDto } from "../ipc/backend";
import { applyDiff, emptyData } from "../state/data";
import { initialView, toggleLayer } from "../state/view";
import { basemapStyle } from "./basemap";
import {
  CLICKABLE_LAYER_IDS,
  composeStyle,
  emptyCollection,
  observationLayers,
  toFeatureCollection,
  type ObservationCollection,
} from "./observationLayers";

const empty = {
  transport: emptyCollection(),
  security: emptyCollection(),
  utility: emptyCollection(),
  alerts: emptyCollection(),
};

function feature(id: string, extra: Partial<MapFeatureDto> = {}): MapFeatureDto {
  return {
    id,
    layer: "utility",
    kind: "substation",
    severity: "severe",
    lon: 24.95,
    lat: 60.17,
    title: "<b>t</b>",
    observedMs: 5,
    ...extra,
  };
}

describe("observation layers", () => {
  it("has one source per layer and a circle layer with the same id", () => {
    const style = composeStyle(basemapStyle("night"), empty, initialView().visible);
    for (const l of ["transport", "security", "utility", "alerts"]) {
      const id = `obs-${l}`;
      expect(style.sources[id]).toMatchObject({ type: "geojson", promoteId: "id" });
      expect(style.layers.find((x) => x.id === id)).toMatchObject({ type: "circle", source: id });
    }
    expect(CLICKABLE_LAYER_IDS).toEqual(["obs-transport", "obs-security", "obs-utility", "obs-alerts"]);
  });

  it("draws the observations above the whole basemap", () => {
    const base = basemapStyle("night");
    const style = composeStyle(base, empty, initialView().visible);
    expect(style.layers.slice(0, base.layers.length)).toEqual(base.layers);
    expect(style.layers.slice(base.layers.length).every((l) => l.id.startsWith("obs-"))).toBe(true);
  });

  it("keeps the basemap's sources, attribution and fonts", () => {
    for (const theme of ["night", "day"] as const) {
      const base = basemapStyle(theme);
      const style = composeStyle(base, empty, initialView().visible);
      const attributions = Object.values(style.sources).map((s) => ("attribution" in s ? s.attribution : undefined));
      expect(attributions).toContain("© OpenStreetMap contributors");
      expect(style["font-faces"]).toEqual(base["font-faces"]);
    }
  });

  it("hides both style layers of a toggled-off layer", () => {
    const layers = observationLayers(toggleLayer(initialView(), "alerts").visible);
    const vis = Object.fromEntries(layers.map((l) => [l.id, l.layout?.visibility]));
    expect(vis["obs-alerts"]).toBe("none");
    expect(vis["obs-alerts-ring"]).toBe("none");
    expect(vis["obs-transport"]).toBe("visible");
  });

  it("validates against the style specification, for both themes, with data", () => {
    const data = applyDiff(emptyData(), {
      reset: true,
      upserts: [feature("a"), feature("b", { layer: "alerts", severity: "extreme" })],
      clock: {
        startMs: 0,
        endMs: 10,
        nowMs: 5,
        playing: false,
        speed: 1,
        ingestedUntilMs: 5,
        finished: false,
        endedMs: null,
        trainerView: false,
      },
      layers: [],
      incidents: null,
      outbox: null,
      feeds: null,
      storage: null,
      site: null,
    });
    const collections: Record<string, ObservationCollection> = {};
    for (const [l, m] of Object.entries(data.features)) collections[l] = toFeatureCollection(m);
    for (const theme of ["night", "day"] as const) {
      const style = composeStyle(basemapStyle(theme), collections as typeof empty, initialView().visible, theme);
      const errors = validateStyleMin(style as StyleSpecification).map((e) => e.message);
      expect(errors).toEqual([]);
    }
  });

  it("turns features into GeoJSON points keyed by entity id", () => {
    const fc = toFeatureCollection(new Map([["a", feature("a")]]));
    expect(fc).toEqual({
      type: "FeatureCollection",
      features: [
        {
          type: "Feature",
          geometry: { type: "Point", coordinates: [24.95, 60.17] },
          properties: {
            id: "a",
            layer: "utility",
            kind: "substation",
            severity: "severe",
            rank: 3,
            title: "<b>t</b>",
            observedMs: 5,
          },
        },
      ],
    });
  });
});
