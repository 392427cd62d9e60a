/**
 * Dispatch and the outbox: the action dialog (for the open incident, else the selected point),
 * its preview, arm and confirm calls, and the outbox of actions with its retry and cancel.
 */
import {
  toApiError,
  type ActionDto,
  type ActionPreviewDto,
  type ActionRequestDto,
  type Backend,
  type OutboxDto,
} from "../ipc/backend";
import type { DispatchTarget } from "../state/dispatch";
import { shownIncident } from "../state/incidentDetail";
import { actionsOfIncident, applyOutbox, emptyOutbox, offlineMessage, setBackends, waiting } from "../state/outbox";
import { shownObservation } from "../state/selection";
import type { Report } from "./errors.svelte";
import { blurFocus } from "./focus";
import type { Incidents } from "./incidents.svelte";
import type { MapView } from "./mapView.svelte";
import type { Modals } from "./modals.svelte";
import type { Session } from "./session.svelte";

/** Rejects with an `ApiError`, which the action dialog shows as is. */
function asApiError<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => Promise.reject(toApiError(e)));
}

export type DispatchDeps = {
  readonly backend: Backend;
  readonly report: Report;
  readonly modals: Modals;
  readonly session: Session;
  readonly incidents: Incidents;
  readonly mapView: MapView;
};

export class Dispatch {
  outbox = $state.raw(emptyOutbox());
  outboxOpen = $state(false);
  #target = $state.raw<DispatchTarget | null>(null);
  readonly #d: DispatchDeps;

  /** The offline banner's text, or `null` while every backend is reachable. */
  readonly offlineText = $derived(offlineMessage(this.outbox));

  constructor(deps: DispatchDeps) {
    this.#d = deps;
  }

  /** What the action dialog dispatches for; `null` while it is closed. */
  get target(): DispatchTarget | null {
    return this.#target;
  }

  /** The header's outbox button. */
  get summary() {
    return {
      pending: waiting(this.outbox),
      failed: this.outbox.failed,
      offline: this.outbox.offline,
      open: this.outboxOpen,
    };
  }

  #setTarget(t: DispatchTarget | null) {
    this.#target = t;
    this.#d.modals.show("dispatch", t !== null, this.close);
  }

  /** The open incident, else the selected point on the map; `null` when neither. */
  targetNow(): DispatchTarget | null {
    const incident = this.#d.incidents.detail;
    if (incident.status !== "none") {
      const d = shownIncident(incident);
      return {
        incident: incident.id,
        at: null,
        title: d?.entry.title ?? incident.id,
        entity: d?.root?.entity ?? d?.entry.rootCause ?? null,
      };
    }
    const o = shownObservation(this.#d.mapView.selection);
    if (o) return { incident: null, at: [o.lon, o.lat], title: o.title, entity: o.id };
    return null;
  }

  /** Opens the action dialog (after a sign-in when nobody is signed in). */
  open = () => {
    const t = this.targetNow();
    if (!t) {
      this.#d.report("open an incident or select a point on the map first", "Nothing to dispatch for");
      return;
    }
    if (!this.#d.session.signedIn("dispatch", this.open)) return;
    blurFocus();
    this.#setTarget(t);
  };

  close = () => this.#setTarget(null);

  preview = (r: ActionRequestDto): Promise<ActionPreviewDto> => asApiError(this.#d.backend.previewAction(r));

  arm = (token: string): Promise<number> => asApiError(this.#d.backend.armAction(token));

  confirm = (token: string): Promise<ActionDto> => asApiError(this.#d.backend.confirmAction(token));

  done = (a: ActionDto) => {
    this.#setTarget(null);
    // An action for a point shows on no incident: show it in the outbox instead.
    if (a.incident === null) this.outboxOpen = true;
  };

  retry = (id: number) => this.#d.session.asOperator("retry the action", () => this.#d.backend.retryAction(id));

  cancel = (id: number) => this.#d.session.asOperator("cancel the action", () => this.#d.backend.cancelAction(id));

  toggleOutbox = () => {
    this.outboxOpen = !this.outboxOpen;
  };

  showOutbox = () => {
    this.outboxOpen = true;
  };

  closeOutbox = () => {
    this.outboxOpen = false;
  };

  /** The actions on incident `id`, up to the replay's clock (`null`: all of them). */
  actionsOf(id: string | null, upToMs: number | null): ActionDto[] {
    return actionsOfIncident(this.outbox, id, upToMs);
  }

  /** The outbox's diffs carry backends and actions; these answers only matter until the first one. */
  load() {
    const { backend, report } = this.#d;
    backend.backends().then(
      (list) => {
        if (this.outbox.backends.length === 0) this.outbox = setBackends(this.outbox, list);
      },
      (e) => report(e, "Loading the dispatch backends failed"),
    );
    backend.outbox().then(
      (o) => {
        if (!this.outbox.loaded) this.outbox = applyOutbox(this.outbox, o);
      },
      (e) => report(e, "Loading the outbox failed"),
    );
  }

  applyDiff(outbox: OutboxDto | null) {
    this.outbox = applyOutbox(this.outbox, outbox);
  }
}
