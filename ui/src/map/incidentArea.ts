/**
 * The open incident's affected area on the map: a GeoJSON polygon (its bounding box, padded so
 * a single-point incident still shows) drawn as a translucent fill under the observations and a
 * bright outline. Kept in the style itself so a basemap swap keeps it.
 */
import type { FillLayerSpecification, LineLayerSpecification, StyleSpecification } from "maplibre-gl";
import type { AreaDto } from "../ipc/backend";

export const AREA_SOURCE = "incident-area";
export const AREA_FILL = "incident-area-fill";
export const AREA_LINE = "incident-area-line";

/** Padding around the members, in degrees of latitude (about 60 m); longitude is scaled. */
const PAD_DEG = 0.00055;

export type AreaCollection = {
  type: "FeatureCollection";
  features: {
    type: "Feature";
    properties: Record<string, never>;
    geometry: { type: "Polygon"; coordinates: number[][][] };
  }[];
};

/** The closed ring of a box west, south, east, north. */
export function boxRing(w: number, s: number, e: number, n: number): number[][] {
  return [
    [w, s],
    [e, s],
    [e, n],
    [w, n],
    [w, s],
  ];
}

/** The padded box as a GeoJSON collection; empty without an area. */
export function areaCollection(area: AreaDto | null): AreaCollection {
  if (area === null) return { type: "FeatureCollection", features: [] };
  const ring = boxRing(...paddedBounds(area));
  return {
    type: "FeatureCollection",
    features: [{ type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [ring] } }],
  };
}

/** West, south, east, north of the area with the padding added. */
export function paddedBounds(a: AreaDto): [number, number, number, number] {
  const padLon = PAD_DEG / Math.max(0.2, Math.cos((((a.south + a.north) / 2) * Math.PI) / 180));
  return [a.west - padLon, a.south - PAD_DEG, a.east + padLon, a.north + PAD_DEG];
}

/** Adds the area's source and layers to a style, below the first observation layer. */
export function withArea(style: StyleSpecification, data: AreaCollection): StyleSpecification {
  const fill: FillLayerSpecification = {
    id: AREA_FILL,
    type: "fill",
    source: AREA_SOURCE,
    paint: { "fill-color": "#ff3b5c", "fill-opacity": 0.12 },
  };
  const line: LineLayerSpecification = {
    id: AREA_LINE,
    type: "line",
    source: AREA_SOURCE,
    paint: { "line-color": "#ff3b5c", "line-width": 2.5, "line-dasharray": [3, 1.5], "line-opacity": 0.95 },
  };
  const at = style.layers.findIndex((l) => l.id.startsWith("obs-"));
  const layers = [...style.layers];
  layers.splice(at < 0 ? layers.length : at, 0, fill, line);
  return { ...style, sources: { ...style.sources, [AREA_SOURCE]: { type: "geojson", data } }, layers };
}
