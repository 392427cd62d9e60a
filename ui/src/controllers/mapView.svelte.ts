/**
 * The map and what is shown on it: the layers and theme, the camera, and the observation whose
 * details are open. The MapLibre map itself stays outside reactive state on purpose (see
 * map/mapController.ts); the camera is what the queue's area filter follows.
 */
import { toApiError, type Backend, type Layer, type MapDiffDto } from "../ipc/backend";
import type { MapController } from "../map/mapController";
import { DEFAULT_CAMERA, setCamera, type CameraState } from "../state/camera";
import type { DataState } from "../state/data";
import type { Bounds } from "../state/incidents";
import {
  clearSelection,
  needsRefresh,
  NO_SELECTION,
  select,
  selectedId,
  selectionFailed,
  selectionLoaded,
  type Selection,
} from "../state/selection";
import { initialView, toggleLayer, toggleTheme, toggleZones } from "../state/view";

export class MapView {
  view = $state.raw(initialView());
  camera = $state.raw<CameraState>(DEFAULT_CAMERA);
  /** The observation whose details are open. */
  selection = $state.raw<Selection>(NO_SELECTION);
  /** Not reactive: the map is driven by calls, never rendered from state. */
  map: MapController | null = null;
  readonly #backend: Backend;

  /** The map's view, for the queue's area filter; follows the camera. */
  readonly bounds = $derived.by((): Bounds | null => {
    void this.camera;
    return this.map?.bounds() ?? null;
  });

  constructor(backend: Backend) {
    this.#backend = backend;
  }

  get detailsOpen(): boolean {
    return this.selection.status !== "none";
  }

  /** Takes the map once it is up and shows on it what the state already holds. */
  attach(map: MapController | null, camera: CameraState, data: DataState) {
    this.map = map;
    this.camera = camera;
    map?.setFeatures(data.features);
    map?.setSelected(selectedId(this.selection));
  }

  moveCamera = (c: Partial<CameraState>) => {
    this.camera = setCamera(this.camera, c);
  };

  toggleLayer = (layer: Layer) => {
    this.view = toggleLayer(this.view, layer);
    this.map?.setVisible(this.view.visible);
  };

  toggleZones = () => {
    this.view = toggleZones(this.view);
    this.map?.setZonesVisible(this.view.zones);
  };

  toggleTheme = () => {
    this.view = toggleTheme(this.view);
    this.map?.setTheme(this.view.theme);
  };

  openDetails = (id: string) => {
    this.selection = select(this.selection, id);
    this.map?.setSelected(id);
    this.#backend.observation(id).then(
      (o) => (this.selection = selectionLoaded(this.selection, id, o)),
      (e) => (this.selection = selectionFailed(this.selection, id, toApiError(e))),
    );
  };

  closeDetails = () => {
    this.selection = clearSelection();
    this.map?.setSelected(null);
  };

  /** Whether `diff` changes the open observation; asked before the diff is applied. */
  needsRefresh(diff: MapDiffDto): boolean {
    return needsRefresh(this.selection, diff);
  }

  /** Draws the diff's observations and reloads the open details when the diff changed them. */
  applyDiff(data: DataState, refresh: boolean) {
    this.map?.setFeatures(data.features);
    if (refresh && this.selection.status === "loaded") this.openDetails(this.selection.id);
  }
}
