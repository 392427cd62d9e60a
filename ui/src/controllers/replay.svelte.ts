/**
 * The scenario and its clock: what was loaded, the observations the diffs bring, and play,
 * pause, speed and seek. Also the header's status line, which reads the clock (and, live, the
 * feeds).
 */
import type { Backend, MapDiffDto, ScenarioDto } from "../ipc/backend";
import { clockControls, type ClockControls } from "../clockControls";
import type { StatusTone } from "../panels/Header.svelte";
import { applyDiff, emptyData } from "../state/data";
import { statusCounts, type HealthState } from "../state/feeds";
import type { Report } from "./errors.svelte";

export type Status = { readonly text: string; readonly tone: StatusTone };

export class Replay {
  scenario = $state.raw<ScenarioDto | null>(null);
  /** The observations on the map and the clock, replaced by the pure updaters in state/. */
  data = $state.raw(emptyData());
  readonly controls: ClockControls;

  constructor(backend: Backend, report: Report) {
    this.controls = clockControls(
      backend,
      () => this.data,
      (d) => (this.data = d),
      report,
    );
  }

  get clock() {
    return this.data.clock;
  }

  get live(): boolean {
    return this.scenario?.live ?? false;
  }

  /** A replay is an exercise; live work is not. */
  get exercise(): boolean {
    return this.scenario !== null && !this.scenario.live;
  }

  get ended(): boolean {
    return this.data.clock?.endedMs != null;
  }

  get nowMs(): number | null {
    return this.data.clock?.nowMs ?? null;
  }

  /** A trainer view holds the clock: this window shows it without controls. */
  get locked(): boolean {
    return this.data.clock?.trainerView ?? false;
  }

  applyDiff(diff: MapDiffDto) {
    this.data = applyDiff(this.data, diff);
  }

  /** The clock is the trainee's to move unless it is live or a trainer view holds it. */
  togglePlay = () => {
    if (this.scenario?.live || this.data.clock?.trainerView) return;
    void this.controls.togglePlay();
  };

  /** The header's status: live feed trouble, the end of the exercise or the replay's state. */
  status(health: HealthState): Status {
    const c = this.data.clock;
    if (!c) return { text: "connecting…", tone: "idle" };
    if (this.scenario?.live) {
      const n = statusCounts(health);
      if (n.disconnected > 0)
        return { text: `live: ${n.disconnected} feed${n.disconnected > 1 ? "s" : ""} down`, tone: "warn" };
      if (n.stale > 0) return { text: `live: ${n.stale} feed${n.stale > 1 ? "s" : ""} stale`, tone: "warn" };
      return { text: "live", tone: "ok" };
    }
    if (c.endedMs !== null) return { text: "exercise ended", tone: "idle" };
    if (c.finished) return { text: "replay finished", tone: "idle" };
    if (c.playing) return { text: `playing ${c.speed === null ? "max" : `${c.speed}x`}`, tone: "ok" };
    return { text: "paused", tone: "warn" };
  }
}
