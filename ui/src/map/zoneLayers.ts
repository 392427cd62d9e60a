/**
 * The zones a control room watches (a station perimeter, a tunnel): a dashed outline, a faint
 * fill and the zone's name, drawn under the observations and toggled on their own (key `z`).
 * The scenario lists them once; they do not change while it runs.
 */
import type {
  FillLayerSpecification,
  LineLayerSpecification,
  StyleSpecification,
  SymbolLayerSpecification,
} from "maplibre-gl";
import type { ZoneDto } from "../ipc/backend";
import type { Theme } from "../state/view";

export const ZONE_SOURCE = "zones";
export const ZONE_LAYER_IDS = ["zones-fill", "zones-line", "zones-label"] as const;

/** Light on the night map, dark on the day map: a zone is not a layer's, so none of their colours. */
const ZONE_COLOUR: Record<Theme, string> = { night: "#e8edf5", day: "#2b3340" };

export type ZoneCollection = {
  type: "FeatureCollection";
  features: { type: "Feature"; id: string; properties: { id: string; name: string }; geometry: ZoneDto["shape"] }[];
};

export function zoneCollection(zones: readonly ZoneDto[]): ZoneCollection {
  return {
    type: "FeatureCollection",
    features: zones.map((z) => ({
      type: "Feature",
      id: z.id,
      properties: { id: z.id, name: z.name },
      geometry: z.shape,
    })),
  };
}

/** Adds the zones' source and layers to a style, below the first observation layer. */
export function withZones(
  style: StyleSpecification,
  data: ZoneCollection,
  visible: boolean,
  theme: Theme,
): StyleSpecification {
  const visibility = visible ? "visible" : "none";
  const colour = ZONE_COLOUR[theme];
  const fill: FillLayerSpecification = {
    id: "zones-fill",
    type: "fill",
    source: ZONE_SOURCE,
    layout: { visibility },
    paint: { "fill-color": colour, "fill-opacity": 0.06 },
  };
  const line: LineLayerSpecification = {
    id: "zones-line",
    type: "line",
    source: ZONE_SOURCE,
    layout: { visibility },
    paint: { "line-color": colour, "line-width": 2, "line-dasharray": [4, 2], "line-opacity": 0.8 },
  };
  const label: SymbolLayerSpecification = {
    id: "zones-label",
    type: "symbol",
    source: ZONE_SOURCE,
    layout: {
      visibility,
      "text-field": ["get", "name"],
      "text-font": ["Noto Sans Bold"],
      "text-size": 12,
      "symbol-placement": "point",
    },
    paint: {
      "text-color": colour,
      "text-halo-color": theme === "night" ? "#05080d" : "#ffffff",
      "text-halo-width": 1.5,
    },
  };
  const at = style.layers.findIndex((l) => l.id.startsWith("obs-") || l.id.startsWith("shapes-"));
  const layers = [...style.layers];
  layers.splice(at < 0 ? layers.length : at, 0, fill, line, label);
  return { ...style, sources: { ...style.sources, [ZONE_SOURCE]: { type: "geojson", data } }, layers };
}
