/**
 * What both windows (the operator's `App.svelte` and the trainer's `TrainerApp.svelte`) do the
 * same way: load the scenario and start the map on it, and write a report that carries the
 * map's picture of the main incident.
 */
import type { AreaDto, Backend, ScenarioDto } from "./ipc/backend";
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
    map = new MapController({ ...options, camera, archive: scenario?.map ?? null });
  } catch (e) {
    fail(e, "The map could not start");
  }
  return { scenario, camera, map };
}

/** Has the backend write a report with the map's picture of `area` (none without a map). */
export async function reportWithMap(map: MapController | null, area: AreaDto | null, write: (png: string | null) => Promise<string>): Promise<string> {
  return write(map ? await map.snapshot(area) : null);
}
