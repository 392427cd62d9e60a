/**
 * The exercise and the shift's reports: the after-action report (with the map's picture of the
 * main incident), ending the exercise (asked first), the KPI charts refreshed while shown, and
 * the trainer view and wall display windows.
 */
import { toApiError, type AreaDto, type Backend, type ChartDto } from "../ipc/backend";
import { reportWithMap } from "../shell";
import type { Report } from "./errors.svelte";
import { blurFocus } from "./focus";
import type { MapView } from "./mapView.svelte";
import type { Modals } from "./modals.svelte";
import type { Session } from "./session.svelte";

export type ExerciseDeps = {
  readonly backend: Backend;
  readonly report: Report;
  readonly modals: Modals;
  readonly session: Session;
  readonly mapView: MapView;
  /** The area the report's map picture shows: the main incident's. */
  readonly mainArea: () => AreaDto | null;
};

export class Exercise {
  #reportHtml = $state.raw<string | null | undefined>(undefined);
  /** The KPI charts: `undefined` while closed, `null` until the first answer. */
  kpi = $state.raw<ChartDto[] | null | undefined>(undefined);
  kpiError = $state.raw<string | null>(null);
  #kpiTimer: ReturnType<typeof setInterval> | undefined;
  readonly #d: ExerciseDeps;

  constructor(deps: ExerciseDeps) {
    this.#d = deps;
  }

  /** The after-action report: `undefined` while closed, `null` while it is being written. */
  get reportHtml(): string | null | undefined {
    return this.#reportHtml;
  }

  /** The "End the exercise?" question is open. */
  get confirmingEnd(): boolean {
    return this.#d.modals.isOpen("confirmEnd");
  }

  #setReport(html: string | null | undefined) {
    this.#reportHtml = html;
    this.#d.modals.show("report", html !== undefined, this.closeReport);
  }

  /** Shows a report the backend writes, with the map's picture of the main incident's area. */
  #showReport(write: (png: string | null) => Promise<string>, what: string) {
    this.#setReport(null);
    reportWithMap(this.#d.mapView.map, this.#d.mainArea(), write).then(
      (html) => {
        if (this.#reportHtml === null) this.#setReport(html);
      },
      (e) => {
        this.#setReport(undefined);
        this.#d.report(e, what);
      },
    );
  }

  openReport = () => this.#showReport((png) => this.#d.backend.report(png), "Cannot write the report");

  closeReport = () => this.#setReport(undefined);

  /** Asks before ending the exercise (after a sign-in when nobody is signed in). */
  askEnd = () => {
    if (!this.#d.session.signedIn("end the exercise", this.askEnd)) return;
    blurFocus();
    this.#d.modals.open("confirmEnd");
  };

  cancelEnd = () => this.#d.modals.close("confirmEnd");

  end = () => {
    this.#d.modals.close("confirmEnd");
    this.#showReport((png) => this.#d.backend.endExercise(null, png), "Cannot end the exercise");
  };

  #loadKpi() {
    this.#d.backend.kpi().then(
      (charts) => {
        if (this.kpi !== undefined) {
          this.kpi = charts;
          this.kpiError = null;
        }
      },
      (e) => (this.kpiError = toApiError(e).message),
    );
  }

  toggleKpi = () => {
    clearInterval(this.#kpiTimer);
    if (this.kpi !== undefined) {
      this.kpi = undefined;
      return;
    }
    this.kpi = null;
    this.#loadKpi();
    // The same charts as the report, refreshed while they are on screen.
    this.#kpiTimer = setInterval(() => this.#loadKpi(), 10_000);
  };

  openTrainerView = () => {
    this.#d.backend.openTrainerView().catch((e) => this.#d.report(e, "Cannot open the trainer view"));
  };

  openWallDisplay = () => {
    this.#d.backend.openWallDisplay().catch((e) => this.#d.report(e, "Cannot open the wall display"));
  };

  dispose() {
    clearInterval(this.#kpiTimer);
  }
}
