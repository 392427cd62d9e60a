/**
 * The header's error line: the latest failure in words, gone after ten seconds so an old
 * failure does not read as a new one. Every controller reports through `report`.
 */
import { toApiError } from "../ipc/backend";

/** How a controller reports a failed backend call: the error and what was being done. */
export type Report = (e: unknown, what: string) => void;

export class ErrorLine {
  /** The message shown in the header, or `null`. */
  message = $state.raw<string | null>(null);
  #timer: ReturnType<typeof setTimeout> | undefined;

  report: Report = (e, what) => {
    const err = toApiError(e);
    console.error(`${what}:`, err);
    this.message = `${what}: ${err.message}`;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => (this.message = null), 10_000);
  };

  dismiss = () => {
    this.message = null;
  };

  dispose() {
    clearTimeout(this.#timer);
  }
}
