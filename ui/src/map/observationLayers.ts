/**
 * The observation layers: one GeoJSON source per layer (`obs-transport`, ...) and, on each,
 * a circle layer with the same id plus a ring layer (`obs-transport-ring`) that marks severe
 * and extreme observations. Feature ids are the observation (entity) ids, promoted from the
 * `id` property so selection can use feature-state.
 *
 * Everything here is a pure function of data, so it is unit-tested without a map.
 */
import type {
  CircleLayerSpecification,
  ExpressionSpecification,
  GeoJSONSourceSpecification,
  LayerSpecification,
  StyleSpecification,
} from "maplibre-gl";
import type { Layer, MapFeatureDto } from "../ipc/backend";
import { LAYERS, type LayerFeatures } from "../state/data";
import type { Theme } from "../state/view";
import { LAYER_COLOURS, severityRank } from "./palette";
import { shapeFillId, shapeLineId } from "./shapeLayers";

export type ObservationProps = {
  id: string;
  layer: Layer;
  kind: string;
  severity: MapFeatureDto["severity"];
  rank: number;
  title: string;
  observedMs: number;
};

export type ObservationFeature = {
  type: "Feature";
  geometry: { type: "Point"; coordinates: [number, number] };
  properties: ObservationProps;
};

/** A GeoJSON FeatureCollection of observation points. */
export type ObservationCollection = { type: "FeatureCollection"; features: ObservationFeature[] };

export function sourceId(layer: Layer): string {
  return `obs-${layer}`;
}

/** The circle layer has the same id as its source; the ring layer adds `-ring`. */
export function circleLayerId(layer: Layer): string {
  return sourceId(layer);
}

export function ringLayerId(layer: Layer): string {
  return `${sourceId(layer)}-ring`;
}

/** Every style layer that belongs to one observation layer (toggled together). */
export function styleLayerIds(layer: Layer): string[] {
  return [shapeFillId(layer), shapeLineId(layer), ringLayerId(layer), circleLayerId(layer)];
}

export const CLICKABLE_LAYER_IDS: readonly string[] = LAYERS.map(circleLayerId);

export function toFeatureCollection(features: LayerFeatures): ObservationCollection {
  const out: ObservationCollection = { type: "FeatureCollection", features: [] };
  for (const f of features.values()) {
    out.features.push({
      type: "Feature",
      geometry: { type: "Point", coordinates: [f.lon, f.lat] },
      properties: {
        id: f.id,
        layer: f.layer,
        kind: f.kind,
        severity: f.severity,
        rank: severityRank(f.severity),
        title: f.title,
        observedMs: f.observedMs,
      },
    });
  }
  return out;
}

export function emptyCollection(): ObservationCollection {
  return { type: "FeatureCollection", features: [] };
}

export function sourceSpec(data: ObservationCollection): GeoJSONSourceSpecification {
  // Points only: a small buffer and maxzoom 14 keep worker tiling cheap.
  return { type: "geojson", data, promoteId: "id", buffer: 64, maxzoom: 14, tolerance: 0 };
}

const selected: ExpressionSpecification = ["boolean", ["feature-state", "selected"], false];

/** Base radius by severity, in pixels at zoom 14; the selected feature grows a little. */
const radius: ExpressionSpecification = [
  "+",
  ["match", ["get", "severity"], "minor", 5, "moderate", 6.5, "severe", 8, "extreme", 10, 4],
  ["case", selected, 2.5, 0],
];

const scaledRadius = (r: ExpressionSpecification | number, ringOffset = 0): ExpressionSpecification => [
  "interpolate",
  ["linear"],
  ["zoom"],
  11,
  ["+", ["*", 0.6, r], ringOffset * 0.6],
  14,
  ["+", r, ringOffset],
  17,
  ["+", ["*", 1.5, r], ringOffset * 1.5],
];

/** Outline of severe and extreme dots: bright on the night map, dark on the day map. */
const STRONG_OUTLINE: Record<Theme, string> = { night: "#f4f7fb", day: "#111722" };
/** Outline of the lesser dots, separating them from the basemap. */
const SOFT_OUTLINE: Record<Theme, string> = { night: "#05080d", day: "#3a4250" };
const SELECTED_OUTLINE: Record<Theme, string> = { night: "#ffffff", day: "#000000" };

export function circleLayer(layer: Layer, visible: boolean, theme: Theme = "night"): CircleLayerSpecification {
  const colour = LAYER_COLOURS[layer];
  return {
    id: circleLayerId(layer),
    type: "circle",
    source: sourceId(layer),
    layout: {
      visibility: visible ? "visible" : "none",
      // Higher severity draws on top.
      "circle-sort-key": ["get", "rank"],
    },
    paint: {
      "circle-color": colour,
      "circle-radius": scaledRadius(radius),
      "circle-opacity": [
        "match",
        ["get", "severity"],
        "minor",
        0.72,
        "moderate",
        0.86,
        "severe",
        0.95,
        "extreme",
        1,
        0.5,
      ],
      "circle-stroke-color": [
        "case",
        selected,
        SELECTED_OUTLINE[theme],
        ["match", ["get", "severity"], ["severe", "extreme"], STRONG_OUTLINE[theme], SOFT_OUTLINE[theme]],
      ],
      "circle-stroke-width": [
        "case",
        selected,
        3,
        ["match", ["get", "severity"], "minor", 1, "moderate", 1.5, "severe", 2, "extreme", 2.5, 0.75],
      ],
      "circle-stroke-opacity": ["case", selected, 1, ["match", ["get", "severity"], "normal", 0.5, 0.9]],
      "circle-pitch-alignment": "map",
    },
  };
}

/** A ring around severe (faint) and extreme (bright) observations, and around the selection. */
export function ringLayer(layer: Layer, visible: boolean, theme: Theme = "night"): CircleLayerSpecification {
  const colour = LAYER_COLOURS[layer];
  return {
    id: ringLayerId(layer),
    type: "circle",
    source: sourceId(layer),
    layout: { visibility: visible ? "visible" : "none", "circle-sort-key": ["get", "rank"] },
    paint: {
      "circle-color": colour,
      "circle-opacity": ["case", selected, 0.18, ["match", ["get", "severity"], "extreme", 0.16, 0]],
      "circle-radius": scaledRadius(radius, 7),
      "circle-stroke-color": ["case", selected, SELECTED_OUTLINE[theme], colour],
      "circle-stroke-width": ["case", selected, 1.5, ["match", ["get", "severity"], "extreme", 2, "severe", 1, 0]],
      "circle-stroke-opacity": [
        "case",
        selected,
        0.9,
        ["match", ["get", "severity"], "extreme", 0.85, "severe", 0.45, 0],
      ],
      "circle-pitch-alignment": "map",
    },
  };
}

export function observationLayers(
  visible: Readonly<Record<Layer, boolean>>,
  theme: Theme = "night",
): LayerSpecification[] {
  return LAYERS.flatMap((l) => [ringLayer(l, visible[l], theme), circleLayer(l, visible[l], theme)]);
}

/**
 * The basemap style with the observation sources and layers added on top. Used both for the
 * first style and for every day/night swap, so observations survive a basemap change.
 */
export function composeStyle(
  base: StyleSpecification,
  data: Readonly<Record<Layer, ObservationCollection>>,
  visible: Readonly<Record<Layer, boolean>>,
  theme: Theme = "night",
): StyleSpecification {
  const sources = { ...base.sources };
  for (const l of LAYERS) sources[sourceId(l)] = sourceSpec(data[l]);
  return { ...base, sources, layers: [...base.layers, ...observationLayers(visible, theme)] };
}
