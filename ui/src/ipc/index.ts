/**
 * Picks the backend at startup: the Tauri one inside the desktop shell (which defines
 * `window.__TAURI_INTERNALS__` before any page script runs), the fake one in a plain browser.
 */
import type { Backend } from "./backend";
import { createFakeBackend } from "./fake";
import { createTauriBackend } from "./tauri";

export function insideTauri(w: object = window): boolean {
  return "__TAURI_INTERNALS__" in w;
}

export function createBackend(): Backend {
  return insideTauri() ? createTauriBackend() : createFakeBackend();
}
