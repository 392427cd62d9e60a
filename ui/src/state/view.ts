/**
 * View settings: which observation layers are shown and which basemap theme is used.
 * Pure updaters, like the rest of `state/`.
 */
import type { Layer } from "../ipc/backend";
import { LAYERS } from "./data";

export type Theme = "night" | "day";

export type ViewState = {
  readonly visible: Readonly<Record<Layer, boolean>>;
  readonly theme: Theme;
  /** The scenario's zones are drawn. */
  readonly zones: boolean;
};

export function initialView(theme: Theme = "night"): ViewState {
  return { visible: { transport: true, security: true, utility: true, alerts: true }, theme, zones: true };
}

export function toggleZones(s: ViewState): ViewState {
  return { ...s, zones: !s.zones };
}

export function setLayerVisible(s: ViewState, layer: Layer, visible: boolean): ViewState {
  if (s.visible[layer] === visible) return s;
  return { ...s, visible: { ...s.visible, [layer]: visible } };
}

export function toggleLayer(s: ViewState, layer: Layer): ViewState {
  return setLayerVisible(s, layer, !s.visible[layer]);
}

/** The layer bound to hotkey `key` ("1" to "4"), if any. */
export function layerForKey(key: string): Layer | undefined {
  const i = Number.parseInt(key, 10);
  return String(i) === key && i >= 1 && i <= LAYERS.length ? LAYERS[i - 1] : undefined;
}

export function setTheme(s: ViewState, theme: Theme): ViewState {
  return s.theme === theme ? s : { ...s, theme };
}

export function toggleTheme(s: ViewState): ViewState {
  return setTheme(s, s.theme === "night" ? "day" : "night");
}
