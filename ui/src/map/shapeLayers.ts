/**
 * What observations cover when it is more than a point (a warning's area, a closed road): one
 * GeoJSON source per layer (`shapes-transport`, ...) holding the shapes the engine kept, drawn
 * as a translucent fill for areas and a line for their outlines and for lines, in the layer's
 * colour and under every point, so the area reads at a glance and the dots stay on top. The
 * point of each observation is still drawn (and clicked) as before; these layers are toggled
 * with their layer.
 *
 * Pure functions of data, unit-tested without a map.
 */
import type {
  ExpressionSpecification,
  FillLayerSpecification,
  LineLayerSpecification,
  StyleSpecification,
} from "maplibre-gl";
import type { Layer, Severity, Shape } from "../ipc/backend";
import { LAYERS, type LayerFeatures } from "../state/data";
import { LAYER_COLOURS, severityRank } from "./palette";

export type ShapeFeature = {
  type: "Feature";
  geometry: Shape;
  properties: { id: string; severity: Severity; rank: number };
};

/** A GeoJSON FeatureCollection of the shapes of one layer's observations. */
export type ShapeCollection = { type: "FeatureCollection"; features: ShapeFeature[] };

export function shapeSourceId(layer: Layer): string {
  return `shapes-${layer}`;
}

export function shapeFillId(layer: Layer): string {
  return `${shapeSourceId(layer)}-fill`;
}

export function shapeLineId(layer: Layer): string {
  return `${shapeSourceId(layer)}-line`;
}

export function emptyShapes(): ShapeCollection {
  return { type: "FeatureCollection", features: [] };
}

/** The shapes among a layer's features; points have none and are left out. */
export function toShapeCollection(features: LayerFeatures): ShapeCollection {
  const out = emptyShapes();
  for (const f of features.values()) {
    if (!f.shape) continue;
    out.features.push({
      type: "Feature",
      geometry: f.shape,
      properties: { id: f.id, severity: f.severity, rank: severityRank(f.severity) },
    });
  }
  return out;
}

const AREA: ExpressionSpecification = ["match", ["geometry-type"], ["Polygon", "MultiPolygon"], true, false];

/** The fill of a layer's areas: faint, stronger with severity; a normal one barely tints. */
export function shapeFill(layer: Layer, visible: boolean): FillLayerSpecification {
  return {
    id: shapeFillId(layer),
    type: "fill",
    source: shapeSourceId(layer),
    filter: AREA,
    layout: { visibility: visible ? "visible" : "none", "fill-sort-key": ["get", "rank"] },
    paint: {
      "fill-color": LAYER_COLOURS[layer],
      "fill-opacity": [
        "match",
        ["get", "severity"],
        "minor",
        0.06,
        "moderate",
        0.09,
        "severe",
        0.13,
        "extreme",
        0.18,
        0.03,
      ],
    },
  };
}

/** The outline of a layer's areas and its lines, wider with severity. */
export function shapeLine(layer: Layer, visible: boolean): LineLayerSpecification {
  return {
    id: shapeLineId(layer),
    type: "line",
    source: shapeSourceId(layer),
    layout: { visibility: visible ? "visible" : "none", "line-join": "round", "line-sort-key": ["get", "rank"] },
    paint: {
      "line-color": LAYER_COLOURS[layer],
      "line-width": ["match", ["get", "severity"], "minor", 1.5, "moderate", 2, "severe", 2.5, "extreme", 3, 1],
      "line-opacity": ["match", ["get", "severity"], "normal", 0.5, 0.9],
    },
  };
}

/** Adds the shape sources and layers to a style, below the first observation layer. */
export function withShapes(
  style: StyleSpecification,
  data: Readonly<Record<Layer, ShapeCollection>>,
  visible: Readonly<Record<Layer, boolean>>,
): StyleSpecification {
  const sources = { ...style.sources };
  for (const l of LAYERS) sources[shapeSourceId(l)] = { type: "geojson", data: data[l], promoteId: "id" };
  const shapes = LAYERS.flatMap((l) => [shapeFill(l, visible[l]), shapeLine(l, visible[l])]);
  const at = style.layers.findIndex((l) => l.id.startsWith("obs-"));
  const layers = [...style.layers];
  layers.splice(at < 0 ? layers.length : at, 0, ...shapes);
  return { ...style, sources, layers };
}
