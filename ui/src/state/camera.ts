/**
 * Camera state: where the operator is looking. Kept apart from data and selection so a data
 * update never moves the map, and the map's own movements never touch data.
 */
export type CameraState = {
  readonly center: readonly [number, number];
  readonly zoom: number;
  readonly bearing: number;
  readonly pitch: number;
};

/** Central Helsinki, used until the scenario says otherwise. */
export const DEFAULT_CAMERA: CameraState = { center: [24.9443, 60.1717], zoom: 14, bearing: 0, pitch: 0 };

/** The scenario's `view` is `[lon, lat, zoom]`. */
export function cameraFromView(view: readonly [number, number, number]): CameraState {
  return { center: [view[0], view[1]], zoom: view[2], bearing: 0, pitch: 0 };
}

/** Returns `s` itself when nothing changed, so callers can skip work by identity. */
export function setCamera(s: CameraState, next: Partial<CameraState>): CameraState {
  const merged: CameraState = { ...s, ...next };
  const same =
    merged.center[0] === s.center[0] &&
    merged.center[1] === s.center[1] &&
    merged.zoom === s.zoom &&
    merged.bearing === s.bearing &&
    merged.pitch === s.pitch;
  return same ? s : merged;
}
