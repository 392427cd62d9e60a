/**
 * "What happened here?": `h` (or Shift and drag at any time) lets the operator drag a box on
 * the map; the engine answers what was observed in it over the chosen time range, across
 * layers or one, with counts per kind. The box and the observations listed are marked on the
 * map; the range and the layer can be changed, and the question is asked again.
 */
import { toApiError, type AreaAnswerDto, type Backend, type ClockDto, type Layer } from "../ipc/backend";
import { areaQuery, type AreaRange, type Box } from "../state/areaQuery";
import type { MapView } from "./mapView.svelte";

export type AreaQueryDeps = {
  readonly backend: Backend;
  readonly mapView: MapView;
  /** The replay clock: the range ends at its time. */
  readonly clock: () => ClockDto | null;
};

export class AreaQuery {
  box = $state.raw<Box | null>(null);
  range = $state<AreaRange>("15m");
  layer = $state<Layer | null>(null);
  answer = $state.raw<AreaAnswerDto | null>(null);
  problem = $state<string | null>(null);
  /** `h` pressed: the next drag draws the box. */
  armed = $state(false);
  /** Answers to an older question are dropped. */
  #asked = 0;
  readonly #d: AreaQueryDeps;

  constructor(deps: AreaQueryDeps) {
    this.#d = deps;
  }

  /** `h`: the next drag draws a box (again: back to moving the map). */
  toggleArmed = () => {
    this.armed = !this.armed;
    this.#d.mapView.map?.setBoxMode(this.armed);
  };

  /** A box was drawn: ask about it. */
  ask = (box: Box) => {
    this.box = box;
    if (this.armed) this.toggleArmed();
    void this.#run();
  };

  setRange = (range: AreaRange) => {
    this.range = range;
    void this.#run();
  };

  setLayer = (layer: Layer | null) => {
    this.layer = layer;
    void this.#run();
  };

  close = () => {
    this.#asked += 1;
    this.box = null;
    this.answer = null;
    this.problem = null;
    if (this.armed) this.toggleArmed();
    this.#d.mapView.map?.setQueryResults(null, []);
  };

  async #run() {
    const clock = this.#d.clock();
    if (this.box === null || clock === null) return;
    const asked = ++this.#asked;
    const box = this.box;
    try {
      const answer = await this.#d.backend.queryArea(areaQuery(box, this.range, this.layer, clock));
      if (asked !== this.#asked) return;
      this.answer = answer;
      this.problem = null;
      this.#d.mapView.map?.setQueryResults(box, answer.observations);
    } catch (e) {
      if (asked === this.#asked) this.problem = toApiError(e).message;
    }
  }
}
