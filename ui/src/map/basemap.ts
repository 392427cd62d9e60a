/**
 * The basemap styles (OpenMapTiles schema), written by the map build in `maps/styles/`.
 * Their vector tiles come from the shell's `maptiles` URI scheme and their fonts from
 * `/fonts/*.woff2`, which the Vite config serves in development and copies into `dist/fonts/`.
 */
import type { StyleSpecification } from "maplibre-gl";
import dayJson from "@maps/styles/day.json";
import nightJson from "@maps/styles/night.json";
import type { Theme } from "../state/view";

const STYLES: Record<Theme, StyleSpecification> = {
  night: nightJson as unknown as StyleSpecification,
  day: dayJson as unknown as StyleSpecification,
};

/** The URI scheme of the basemap's vector tiles, registered by the desktop shell. */
export const TILE_SCHEME = "maptiles";

const SCHEME_PREFIX = `${TILE_SCHEME}://localhost/`;

/**
 * Where the shell serves tiles: `maptiles://localhost/` on Linux and macOS; WebView2 on
 * Windows reaches custom schemes as `http://maptiles.localhost/`.
 */
export function tileUrlBase(userAgent: string = globalThis.navigator?.userAgent ?? ""): string {
  return /Windows/.test(userAgent) ? `http://${TILE_SCHEME}.localhost/` : SCHEME_PREFIX;
}

/**
 * The basemap style for a theme, with its tile URLs pointed at `archive` (the scenario's
 * `map`, the first path segment of tile URLs) under `base`.
 */
export function basemapStyle(
  theme: Theme,
  archive: string | null = null,
  base: string = tileUrlBase(),
): StyleSpecification {
  const style = STYLES[theme];
  const sources: StyleSpecification["sources"] = {};
  for (const [id, src] of Object.entries(style.sources)) {
    if ((src.type === "vector" || src.type === "raster") && src.tiles) {
      const tiles = src.tiles.map((url) => rewriteTileUrl(url, archive, base));
      sources[id] = { ...src, tiles };
    } else {
      sources[id] = src;
    }
  }
  return { ...style, sources };
}

/** `maptiles://localhost/helsinki/{z}/{x}/{y}` → `<base><archive>/{z}/{x}/{y}`. */
export function rewriteTileUrl(url: string, archive: string | null, base: string): string {
  if (!url.startsWith(SCHEME_PREFIX)) return url;
  const rest = url.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf("/");
  const path = archive !== null && slash > 0 ? `${encodeURIComponent(archive)}${rest.slice(slash)}` : rest;
  return base + path;
}
