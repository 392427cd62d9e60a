/**
 * Picks the backend at startup: the Tauri one inside the desktop shell (which defines
 * `window.__TAURI_INTERNALS__` before any page script runs), the fake one in a plain browser.
 */
import type { Backend } from "./backend";
import { createFakeBackend, type FakeOptions } from "./fake";
import { createTauriBackend } from "./tauri";

export function insideTauri(w: object = window): boolean {
  return "__TAURI_INTERNALS__" in w;
}

/**
 * The fake's options from the page's query string: `?offline=city-works,tak` starts those
 * dispatch backends unreachable, `?exercise` marks every backend as exercise.
 */
export function fakeOptionsFrom(search: string): FakeOptions {
  const q = new URLSearchParams(search);
  const offline = (q.get("offline") ?? "").split(",").filter((x) => x !== "");
  return { dispatch: { offline, exercise: q.has("exercise") } };
}

export function createBackend(): Backend {
  return insideTauri() ? createTauriBackend() : createFakeBackend(fakeOptionsFrom(window.location.search));
}
