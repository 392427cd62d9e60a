/**
 * What every window (the operator's `App.svelte`, the trainer's `TrainerApp.svelte`, the wall
 * display's `WallApp.svelte`) does the same way: load the scenario, start the map on it and
 * follow the engine's diffs; and write a report that carries the map's picture of the main
 * incident.
 */
import type { AreaDto, Backend, MapDiffDto, ScenarioDto } from "./ipc/backend";
import { MapController, type MapControllerOptions } from "./map/mapController";
import { cameraFromView, DEFAULT_CAMERA, type CameraState } from "./state/camera";

type Fail = (e: unknown, what: string) => void;

/**
 * Loads the scenario and starts the map at its view; a failure of either is reported and
 * leaves it `null`, so the window still comes up and says what went wrong.
 */
export async function openScenarioMap(
  backend: Backend,
  options: Omit<MapControllerOptions, "camera" | "archive">,
  fail: Fail,
): Promise<{ scenario: ScenarioDto | null; camera: CameraState; map: MapController | null }> {
  let scenario: ScenarioDto | null = null;
  let camera = DEFAULT_CAMERA;
  try {
    scenario = await backend.scenario();
    camera = cameraFromView(scenario.view);
  } catch (e) {
    fail(e, "Loading the scenario failed");
  }
  let map: MapController | null = null;
  try {
    map = new MapController({ ...options, camera, archive: scenario?.map ?? null, zones: scenario?.zones ?? [] });
  } catch (e) {
    fail(e, "The map could not start");
  }
  return { scenario, camera, map };
}

type Opened = { scenario: ScenarioDto | null; camera: CameraState; map: MapController | null };

/**
 * For a window's `onMount`: opens the scenario's map, hands it to `opened` (where the window
 * keeps it and starts its own requests), then subscribes `onDiff`. Returns the unmount: a
 * window closed before the map was up destroys it instead of keeping it.
 */
export function mountScenarioMap(
  backend: Backend,
  options: Omit<MapControllerOptions, "camera" | "archive">,
  fail: Fail,
  opened: (o: Opened) => void,
  onDiff: (diff: MapDiffDto) => void,
): () => void {
  let disposed = false;
  let map: MapController | null = null;
  void (async () => {
    const o = await openScenarioMap(backend, options, fail);
    if (disposed) {
      o.map?.destroy();
      return;
    }
    map = o.map;
    opened(o);
    try {
      await backend.subscribe(onDiff);
    } catch (e) {
      fail(e, "Subscribing to the map failed");
    }
  })();
  return () => {
    disposed = true;
    map?.destroy();
  };
}

/** Has the backend write a report with the map's picture of `area` (none without a map). */
export async function reportWithMap(
  map: MapController | null,
  area: AreaDto | null,
  write: (png: string | null) => Promise<string>,
): Promise<string> {
  return write(map ? await map.snapshot(area) : null);
}
