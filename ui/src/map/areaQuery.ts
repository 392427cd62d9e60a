/**
 * The answer to "what happened here?" on the map: the box the operator drew (a dashed outline)
 * and a ring around every observation it listed, above the dots so older observations that no
 * longer show on the picture are marked too. Kept in the style so a basemap swap keeps it.
 */
import type { CircleLayerSpecification, LineLayerSpecification, StyleSpecification } from "maplibre-gl";
import type { MapFeatureDto } from "../ipc/backend";
import type { Box } from "../state/areaQuery";
import { boxRing } from "./incidentArea";

export const QUERY_SOURCE = "area-query";
export const QUERY_BOX = "area-query-box";
export const QUERY_HITS = "area-query-hits";

export type QueryCollection = {
  type: "FeatureCollection";
  features: {
    type: "Feature";
    properties: { part: "box" | "hit" };
    geometry: { type: "Polygon"; coordinates: number[][][] } | { type: "Point"; coordinates: number[] };
  }[];
};

/** The box and the listed observations as one collection; empty without a box. */
export function queryCollection(box: Box | null, hits: readonly MapFeatureDto[]): QueryCollection {
  if (box === null) return { type: "FeatureCollection", features: [] };
  const ring = boxRing(...box);
  return {
    type: "FeatureCollection",
    features: [
      { type: "Feature", properties: { part: "box" }, geometry: { type: "Polygon", coordinates: [ring] } },
      ...hits.map((h) => ({
        type: "Feature" as const,
        properties: { part: "hit" as const },
        geometry: { type: "Point" as const, coordinates: [h.lon, h.lat] },
      })),
    ],
  };
}

/** Adds the query's source and layers on top of the style. */
export function withAreaQuery(style: StyleSpecification, data: QueryCollection): StyleSpecification {
  const box: LineLayerSpecification = {
    id: QUERY_BOX,
    type: "line",
    source: QUERY_SOURCE,
    filter: ["==", ["get", "part"], "box"],
    paint: { "line-color": "#ffffff", "line-width": 2, "line-dasharray": [2, 2], "line-opacity": 0.9 },
  };
  const hits: CircleLayerSpecification = {
    id: QUERY_HITS,
    type: "circle",
    source: QUERY_SOURCE,
    filter: ["==", ["get", "part"], "hit"],
    paint: {
      "circle-radius": 9,
      "circle-opacity": 0,
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1.5,
      "circle-stroke-opacity": 0.85,
    },
  };
  return {
    ...style,
    sources: { ...style.sources, [QUERY_SOURCE]: { type: "geojson", data } },
    layers: [...style.layers, box, hits],
  };
}
