/**
 * Owns the single MapLibre map.
 *
 * The map handle lives in this plain class and never in reactive state: Svelte must not proxy
 * or track it. `App.svelte` pushes state in (`setFeatures`, `setVisible`, `setTheme`,
 * `setSelected`) and gets user intent out through callbacks (`onSelect`, `onCamera`).
 */
import * as maplibregl from "maplibre-gl";
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";
import "maplibre-gl/dist/maplibre-gl.css";
import type { Layer, MapFeatureDto, ZoneDto } from "../ipc/backend";
import type { CameraState } from "../state/camera";
import { LAYERS, type FeaturesByLayer, type LayerFeatures } from "../state/data";
import type { Theme } from "../state/view";
import { basemapStyle, TILE_SCHEME } from "./basemap";
import { createFrameBatcher, type FrameBatcher } from "./frameBatcher";
import { AREA_SOURCE, areaCollection, paddedBounds, withArea, type AreaCollection } from "./incidentArea";
import { emptyShapes, shapeSourceId, toShapeCollection, withShapes, type ShapeCollection } from "./shapeLayers";
import { queryCollection, QUERY_SOURCE, withAreaQuery, type QueryCollection } from "./areaQuery";
import { boxFromCorners, type Box } from "../state/areaQuery";
import { withZones, zoneCollection, ZONE_LAYER_IDS, type ZoneCollection } from "./zoneLayers";
import type { AreaDto } from "../ipc/backend";
import {
  CLICKABLE_LAYER_IDS,
  composeStyle,
  emptyCollection,
  sourceId,
  styleLayerIds,
  toFeatureCollection,
  type ObservationCollection,
} from "./observationLayers";

declare global {
  interface Window {
    /** The map, for end-to-end tests (WebDriver `execute`). */
    __cityopsMap?: maplibregl.Map;
  }
}

/** How far (in pixels) from a click or the pointer an observation still counts as hit. */
const HIT_TOLERANCE_PX = 6;

let workerConfigured = false;

/**
 * MapLibre cannot work out its worker URL under the `tauri://` origin ("Worker failed to
 * load"), so point it at the worker module that Vite bundles next to the page.
 */
function configureWorker(): void {
  if (workerConfigured) return;
  maplibregl.setWorkerUrl(workerUrl);
  workerConfigured = true;
}

/**
 * Outside the desktop shell nothing serves `maptiles://`; answer every tile with an empty one
 * so a plain browser shows the observations over a blank basemap without a stream of errors.
 */
export function stubBasemapTiles(): void {
  maplibregl.addProtocol(TILE_SCHEME, async () => ({ data: new ArrayBuffer(0) }));
}

export type MapControllerOptions = {
  container: HTMLElement;
  theme: Theme;
  camera: CameraState;
  visible: Readonly<Record<Layer, boolean>>;
  /** The scenario's basemap archive (first path segment of tile URLs); `null` keeps the style's. */
  archive: string | null;
  onSelect: (id: string) => void;
  onCamera: (camera: CameraState) => void;
  /**
   * Every click on the map, with its place, before it selects anything: answers true when it
   * took the click (the trainer view places injects with it, the operator a new incident).
   */
  onClickAt?: (lon: number, lat: number) => boolean;
  /**
   * A box dragged on the map (west, south, east, north): with Shift held, or any drag while
   * box mode is on (`setBoxMode`). Without it, Shift and drag zoom to the box as MapLibre does.
   */
  onBox?: (box: Box) => void;
  /** The scenario's zones, drawn until `setZonesVisible(false)`. */
  zones?: readonly ZoneDto[];
};

type StateTarget = { source: string; id: string };

export class MapController {
  readonly #map: maplibregl.Map;
  readonly #batcher: FrameBatcher;
  readonly #onCamera: (camera: CameraState) => void;
  /** The latest features from state; pushed to the map on the next frame. */
  #wanted: FeaturesByLayer;
  /** The features the map's sources hold now, by identity (see `state/data.ts`). */
  readonly #pushed: Record<Layer, LayerFeatures | null>;
  /** The GeoJSON last given to each source, reused when the basemap style is swapped. */
  readonly #collections: Record<Layer, ObservationCollection>;
  /** The shapes last given to each layer's shape source, reused when the style is swapped. */
  readonly #shapes: Record<Layer, ShapeCollection>;
  #visible: Readonly<Record<Layer, boolean>>;
  #theme: Theme;
  readonly #archive: string | null;
  #selected: string | null = null;
  #area: AreaCollection = areaCollection(null);
  #selectedOn: StateTarget | null = null;
  #pin: maplibregl.Marker | null = null;
  #query: QueryCollection = queryCollection(null, []);
  #boxMode = false;
  readonly #zones: ZoneCollection;
  #zonesVisible = true;
  /** Where a box drag started, and the rectangle drawn while it goes on. */
  #drag: { start: maplibregl.Point; el: HTMLDivElement } | null = null;
  /** The click that ends a box drag is the drag's, not a selection. */
  #swallowClick = false;

  constructor(o: MapControllerOptions) {
    configureWorker();
    this.#onCamera = o.onCamera;
    this.#visible = o.visible;
    this.#theme = o.theme;
    this.#archive = o.archive;
    this.#wanted = { transport: new Map(), security: new Map(), utility: new Map(), alerts: new Map() };
    this.#pushed = { transport: null, security: null, utility: null, alerts: null };
    this.#collections = {
      transport: emptyCollection(),
      security: emptyCollection(),
      utility: emptyCollection(),
      alerts: emptyCollection(),
    };
    this.#shapes = {
      transport: emptyShapes(),
      security: emptyShapes(),
      utility: emptyShapes(),
      alerts: emptyShapes(),
    };
    this.#zones = zoneCollection(o.zones ?? []);
    this.#batcher = createFrameBatcher(() => this.#flush());

    const map = new maplibregl.Map({
      container: o.container,
      style: this.#style(),
      center: [o.camera.center[0], o.camera.center[1]],
      zoom: o.camera.zoom,
      bearing: o.camera.bearing,
      pitch: o.camera.pitch,
      attributionControl: false,
      // With a box handler, Shift and drag asks "what happened here?" instead of zooming.
      boxZoom: !o.onBox,
      // Lets reports and end-to-end tests read the canvas back (toDataURL, pixel checks).
      canvasContextAttributes: { preserveDrawingBuffer: true },
    });
    this.#map = map;
    // Bottom-left: the details panel covers the right edge and the replay bar the bottom.
    map.addControl(new maplibregl.AttributionControl({ compact: false }), "bottom-left");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), "top-right");

    // A full style reload (a day/night swap the style diff could not apply) recreates the
    // sources and drops feature-state; restore what the map should show.
    map.on("style.load", () => {
      this.#selectedOn = null;
      this.#applyVisibility();
      this.#batcher.schedule();
    });
    if (o.onBox) this.#boxDrags(o.onBox);
    map.on("click", (e) => {
      if (this.#swallowClick) {
        this.#swallowClick = false;
        return;
      }
      if (o.onClickAt?.(e.lngLat.lng, e.lngLat.lat)) return;
      const id = this.#hit(e.point);
      if (id !== null) o.onSelect(id);
    });
    map.on("mousemove", (e) => {
      map.getCanvas().style.cursor = this.#hit(e.point) !== null ? "pointer" : "";
    });
    map.on("mouseout", () => {
      map.getCanvas().style.cursor = "";
    });
    map.on("moveend", () => this.#onCamera(this.camera()));
    map.on("error", (e) => console.warn("map:", e.error?.message ?? e));

    window.__cityopsMap = map;
  }

  /** Hands the latest features to the map; the actual `setData` happens on the next frame. */
  setFeatures(features: FeaturesByLayer): void {
    if (features === this.#wanted) return;
    this.#wanted = features;
    this.#batcher.schedule();
  }

  setVisible(visible: Readonly<Record<Layer, boolean>>): void {
    if (visible === this.#visible) return;
    this.#visible = visible;
    this.#applyVisibility();
  }

  /** Swaps the basemap, keeping the observation sources, their data and the selection. */
  setTheme(theme: Theme): void {
    if (theme === this.#theme) return;
    this.#theme = theme;
    this.#syncCollections();
    // With `diff` the style is patched in place where possible, so the observation sources
    // (and their feature-state) survive; otherwise `style.load` restores them.
    this.#map.setStyle(this.#style(), { diff: true });
    this.#map.once("idle", () => {
      this.#selectedOn = null;
      this.#applySelection();
    });
  }

  /** Shows or hides the scenario's zones. */
  setZonesVisible(on: boolean): void {
    this.#zonesVisible = on;
    for (const id of ZONE_LAYER_IDS) {
      if (this.#map.getLayer(id)) this.#map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
    }
  }

  /** Box mode: the next drag draws a box instead of moving the map. */
  setBoxMode(on: boolean): void {
    this.#boxMode = on;
    if (on) this.#map.dragPan.disable();
    else if (this.#drag === null) this.#map.dragPan.enable();
    this.#map.getCanvas().style.cursor = on ? "crosshair" : "";
  }

  /** Shows the box asked about and rings the observations it listed (`null` clears both). */
  setQueryResults(box: Box | null, hits: readonly MapFeatureDto[]): void {
    this.#query = queryCollection(box, hits);
    this.#map.getSource<maplibregl.GeoJSONSource>(QUERY_SOURCE)?.setData(this.#query);
  }

  /** Draws the rectangle of a box drag and reports the box when the mouse is released. */
  #boxDrags(onBox: (box: Box) => void): void {
    const map = this.#map;
    map.on("mousedown", (e) => {
      if (!(this.#boxMode || e.originalEvent.shiftKey) || e.originalEvent.button !== 0) return;
      // Stops MapLibre's own drag for this gesture.
      e.preventDefault();
      map.dragPan.disable();
      const el = document.createElement("div");
      el.className = "box-drag";
      el.dataset.testid = "box-drag";
      map.getCanvasContainer().appendChild(el);
      this.#drag = { start: e.point, el };
    });
    map.on("mousemove", (e) => {
      const d = this.#drag;
      if (!d) return;
      const [x0, y0, x1, y1] = [d.start.x, d.start.y, e.point.x, e.point.y];
      Object.assign(d.el.style, {
        left: `${Math.min(x0, x1)}px`,
        top: `${Math.min(y0, y1)}px`,
        width: `${Math.abs(x1 - x0)}px`,
        height: `${Math.abs(y1 - y0)}px`,
      });
    });
    map.on("mouseup", (e) => {
      const d = this.#drag;
      if (!d) return;
      this.#drag = null;
      d.el.remove();
      if (!this.#boxMode) map.dragPan.enable();
      // A click without a drag is a click.
      if (Math.abs(e.point.x - d.start.x) < 4 && Math.abs(e.point.y - d.start.y) < 4) return;
      this.#swallowClick = true;
      const a = map.unproject(d.start);
      const b = map.unproject(e.point);
      const box = boxFromCorners([a.lng, a.lat], [b.lng, b.lat]);
      if (box) onBox(box);
    });
  }

  /** Shows a pin where a new incident is being placed (`null` removes it). */
  setPin(at: readonly [number, number] | null): void {
    if (at === null) {
      this.#pin?.remove();
      this.#pin = null;
      return;
    }
    if (this.#pin === null) {
      const el = document.createElement("div");
      el.className = "new-incident-pin";
      el.dataset.testid = "new-incident-pin";
      // MapLibre positions the marker's element with its own transform: the shape is a child.
      el.appendChild(document.createElement("div"));
      this.#pin = new maplibregl.Marker({ element: el, anchor: "bottom" });
    }
    this.#pin.setLngLat([at[0], at[1]]).addTo(this.#map);
  }

  /** Highlights an incident's affected area (`null` clears it); `fly` moves the camera to it. */
  setIncidentArea(area: AreaDto | null, fly: boolean): void {
    this.#area = areaCollection(area);
    this.#map.getSource<maplibregl.GeoJSONSource>(AREA_SOURCE)?.setData(this.#area);
    if (area && fly) this.flyToArea(area);
  }

  /** Flies to an area, leaving room for the panels over the map's edges. */
  flyToArea(area: AreaDto): void {
    const [w, s, e, n] = paddedBounds(area);
    const c = this.#map.getContainer().getBoundingClientRect();
    // The queue covers the left edge and the detail the right one; the header and the replay
    // bar cover the top and bottom.
    const padding = { top: 60, bottom: 90, left: Math.min(320, c.width * 0.25), right: Math.min(460, c.width * 0.3) };
    this.#map.fitBounds(
      [
        [w, s],
        [e, n],
      ],
      { padding, maxZoom: 17, duration: 900 },
    );
  }

  /**
   * A PNG data URL of the map showing `area` (the camera jumps there, without animation, and
   * the picture is read once the map has drawn every tile); `null` if the canvas cannot be read.
   * The camera then goes back to where the operator had it.
   */
  async snapshot(area: AreaDto | null): Promise<string | null> {
    const map = this.#map;
    const before = this.camera();
    try {
      if (area) {
        const [w, s, e, n] = paddedBounds(area);
        map.fitBounds(
          [
            [w, s],
            [e, n],
          ],
          { padding: 40, maxZoom: 17, duration: 0 },
        );
      }
      await new Promise<void>((resolve) => {
        // A map with tiles still loading waits for them, but never longer than a few seconds.
        const timer = setTimeout(resolve, 4000);
        map.once("idle", () => {
          clearTimeout(timer);
          resolve();
        });
        map.triggerRepaint();
      });
      return map.getCanvas().toDataURL("image/png");
    } catch (e) {
      console.warn("map: cannot read the canvas", e);
      return null;
    } finally {
      this.jumpTo(before);
    }
  }

  /** Flies to a point (a member the operator picked in the incident detail). */
  flyTo(lon: number, lat: number): void {
    this.#map.flyTo({ center: [lon, lat], zoom: Math.max(this.#map.getZoom(), 16.5), duration: 700 });
  }

  /** West, south, east, north of what the map shows. */
  bounds(): [number, number, number, number] {
    const b = this.#map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  }

  setSelected(id: string | null): void {
    this.#selected = id;
    this.#applySelection();
  }

  jumpTo(camera: CameraState): void {
    this.#map.jumpTo({
      center: [camera.center[0], camera.center[1]],
      zoom: camera.zoom,
      bearing: camera.bearing,
      pitch: camera.pitch,
    });
  }

  camera(): CameraState {
    const c = this.#map.getCenter();
    return {
      center: [c.lng, c.lat],
      zoom: this.#map.getZoom(),
      bearing: this.#map.getBearing(),
      pitch: this.#map.getPitch(),
    };
  }

  destroy(): void {
    this.#batcher.cancel();
    if (window.__cityopsMap === this.#map) delete window.__cityopsMap;
    this.#map.remove();
  }

  #style(): maplibregl.StyleSpecification {
    // The camera belongs to the operator, not to the basemap: drop the style's own view so a
    // style swap never moves the map.
    const { center: _c, zoom: _z, bearing: _b, pitch: _p, ...base } = basemapStyle(this.#theme, this.#archive);
    const style = composeStyle(base, this.#collections, this.#visible, this.#theme);
    const zoned = withZones(
      withShapes(style, this.#shapes, this.#visible),
      this.#zones,
      this.#zonesVisible,
      this.#theme,
    );
    return withAreaQuery(withArea(zoned, this.#area), this.#query);
  }

  /** Brings the stored collections up to date without touching the map. */
  #syncCollections(): void {
    for (const layer of LAYERS) {
      const want = this.#wanted[layer];
      if (want === this.#pushed[layer]) continue;
      this.#collections[layer] = toFeatureCollection(want);
      this.#shapes[layer] = toShapeCollection(want);
      this.#pushed[layer] = want;
    }
  }

  #flush(): void {
    for (const layer of LAYERS) {
      const want = this.#wanted[layer];
      if (want === this.#pushed[layer]) continue;
      const source = this.#map.getSource<maplibregl.GeoJSONSource>(sourceId(layer));
      // No source while the style is (re)loading; `style.load` schedules another flush.
      if (!source) continue;
      const collection = toFeatureCollection(want);
      void source.setData(collection);
      this.#collections[layer] = collection;
      const shapes = toShapeCollection(want);
      // Most updates move points only: the shape source is set again only when it had or has
      // shapes.
      if (shapes.features.length > 0 || this.#shapes[layer].features.length > 0) {
        void this.#map.getSource<maplibregl.GeoJSONSource>(shapeSourceId(layer))?.setData(shapes);
      }
      this.#shapes[layer] = shapes;
      this.#pushed[layer] = want;
    }
    this.#applySelection();
  }

  #applyVisibility(): void {
    for (const layer of LAYERS) {
      for (const id of styleLayerIds(layer)) {
        if (this.#map.getLayer(id))
          this.#map.setLayoutProperty(id, "visibility", this.#visible[layer] ? "visible" : "none");
      }
    }
  }

  /** Moves the `selected` feature-state to the selected entity, wherever it is now. */
  #applySelection(): void {
    let target: StateTarget | null = null;
    if (this.#selected !== null) {
      const layer = LAYERS.find((l) => this.#pushed[l]?.has(this.#selected as string));
      if (layer) target = { source: sourceId(layer), id: this.#selected };
    }
    const current = this.#selectedOn;
    if (current?.source === target?.source && current?.id === target?.id) return;
    if (current && this.#map.getSource(current.source)) {
      this.#map.setFeatureState(current, { selected: false });
    }
    this.#selectedOn = null;
    if (target && this.#map.getSource(target.source)) {
      this.#map.setFeatureState(target, { selected: true });
      this.#selectedOn = target;
    }
  }

  /** The id of the observation nearest to a screen point (within a few pixels), or `null`. */
  #hit(p: maplibregl.Point): string | null {
    const layers = CLICKABLE_LAYER_IDS.filter((id) => this.#map.getLayer(id));
    if (layers.length === 0) return null;
    const t = HIT_TOLERANCE_PX;
    const found = this.#map.queryRenderedFeatures(
      [
        [p.x - t, p.y - t],
        [p.x + t, p.y + t],
      ],
      { layers },
    );
    let best: { id: string; rank: number; d: number } | null = null;
    for (const f of found) {
      const id = f.properties?.id;
      if (typeof id !== "string" || f.geometry.type !== "Point") continue;
      const rank = Number(f.properties?.rank ?? 0);
      const sp = this.#map.project(f.geometry.coordinates as [number, number]);
      const d = Math.hypot(sp.x - p.x, sp.y - p.y);
      // Nearest wins; among (nearly) equally near ones, the more severe.
      if (!best || d < best.d - 1 || (Math.abs(d - best.d) <= 1 && rank > best.rank)) best = { id, rank, d };
    }
    return best?.id ?? null;
  }
}
