/**
 * The feeds: their health and the storage's, from the diffs, and the quarantine browser (what
 * the pipeline refused), which reloads by itself when new refusals arrive while it is open.
 */
import { toApiError, type Backend, type MapDiffDto } from "../ipc/backend";
import {
  applyHealth,
  applySite,
  applyStorage,
  QUARANTINE_CLOSED,
  quarantineFailed,
  quarantineLoaded,
  rejectedTotal,
  requestQuarantine,
  type HealthState,
  type QuarantineView,
  type SiteState,
  type StorageState,
} from "../state/feeds";
import type { Modals } from "./modals.svelte";

export class Feeds {
  health = $state.raw<HealthState>(null);
  storage = $state.raw<StorageState>(null);
  /** A workstation's link to its site, `null` elsewhere. */
  site = $state.raw<SiteState>(null);
  #quarantine = $state.raw<QuarantineView>(QUARANTINE_CLOSED);
  readonly #backend: Backend;
  readonly #modals: Modals;

  constructor(backend: Backend, modals: Modals) {
    this.#backend = backend;
    this.#modals = modals;
  }

  /** The quarantine browser: closed, loading, loaded or failed. */
  get quarantine(): QuarantineView {
    return this.#quarantine;
  }

  get quarantineOpen(): boolean {
    return this.#quarantine.status !== "closed";
  }

  #setQuarantine(v: QuarantineView) {
    this.#quarantine = v;
    this.#modals.show("quarantine", v.status !== "closed", this.closeQuarantine);
  }

  /** Opens the browser on `feed` (all feeds for `null`) or reloads it. */
  loadQuarantine = (feed: string | null) => {
    this.#setQuarantine(requestQuarantine(this.#quarantine, feed));
    const request = this.#quarantine.status === "closed" ? 0 : this.#quarantine.request;
    this.#backend.quarantine(feed).then(
      (page) => this.#setQuarantine(quarantineLoaded(this.#quarantine, request, page)),
      (e) => this.#setQuarantine(quarantineFailed(this.#quarantine, request, toApiError(e))),
    );
  };

  refreshQuarantine = () => {
    if (this.#quarantine.status !== "closed") this.loadQuarantine(this.#quarantine.feed);
  };

  closeQuarantine = () => this.#setQuarantine(QUARANTINE_CLOSED);

  toggleQuarantine = () => {
    if (this.#quarantine.status === "closed") this.loadQuarantine(null);
    else this.closeQuarantine();
  };

  applyDiff(diff: MapDiffDto) {
    const refusedBefore = rejectedTotal(this.health);
    this.health = applyHealth(this.health, diff);
    this.storage = applyStorage(this.storage, diff);
    this.site = applySite(this.site, diff);
    // New refusals while the browser is open: show them without a click.
    if (rejectedTotal(this.health) > refusedBefore) this.refreshQuarantine();
  }
}
