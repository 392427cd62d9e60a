/**
 * Entering a phone call or a radio report as an incident (`n`): the form beside the map, its
 * place set by clicking the map (a pin shows it), and the request to the engine. Once the
 * incident the call opened reaches the queue, it is opened, so the operator carries on there.
 */
import { toApiError, type Backend, type IncidentTypeDto } from "../ipc/backend";
import { callRequest, incidentOfCall, newForm, placeAt, type NewIncidentForm } from "../state/newIncident";
import type { Report } from "./errors.svelte";
import { blurFocus } from "./focus";
import type { Incidents } from "./incidents.svelte";
import type { MapView } from "./mapView.svelte";
import type { Modals } from "./modals.svelte";
import type { Session } from "./session.svelte";

export type NewIncidentDeps = {
  readonly backend: Backend;
  readonly report: Report;
  readonly modals: Modals;
  readonly session: Session;
  readonly mapView: MapView;
  readonly incidents: Incidents;
  /** The rules' incident types (none before the scenario loads, or without rules). */
  readonly types: () => readonly IncidentTypeDto[];
};

export class NewIncident {
  /** The open form; `null` while closed. */
  form = $state.raw<NewIncidentForm | null>(null);
  /** Why the last submit was not taken, shown in the form. */
  problem = $state.raw<string | null>(null);
  busy = $state(false);
  /** The call entered last, until its incident reaches the queue. */
  #waiting: string | null = null;
  readonly #d: NewIncidentDeps;

  constructor(deps: NewIncidentDeps) {
    this.#d = deps;
  }

  open = () => {
    const { report, session, modals, mapView } = this.#d;
    const types = this.#d.types();
    if (types.length === 0) {
      report("the scenario names no rules file, so there are no incident types", "No new incident");
      return;
    }
    if (!session.signedIn("enter an incident", this.open)) return;
    blurFocus();
    this.form = newForm(types, mapView.camera.center);
    this.problem = null;
    modals.show("newIncident", true, this.close);
  };

  close = () => {
    this.form = null;
    this.problem = null;
    this.#d.modals.close("newIncident");
    this.#d.mapView.map?.setPin(null);
  };

  edit = (patch: Partial<NewIncidentForm>) => {
    if (this.form) this.form = { ...this.form, ...patch };
  };

  /** A click on the map while the form is open places the incident there; true when taken. */
  place = (lon: number, lat: number): boolean => {
    if (!this.form) return false;
    this.form = placeAt(this.form, lon, lat);
    this.problem = null;
    this.#d.mapView.map?.setPin([lon, lat]);
    return true;
  };

  submit = async () => {
    if (!this.form || this.busy) return;
    const request = callRequest(this.form);
    if (typeof request === "string") {
      this.problem = request;
      return;
    }
    this.busy = true;
    try {
      const made = await this.#d.backend.newIncident(request);
      this.#waiting = made.entity;
      this.close();
      // The incident may be in the queue already (a fast engine's diff came first).
      this.afterDiff();
    } catch (e) {
      this.problem = toApiError(e).message;
    } finally {
      this.busy = false;
    }
  };

  /** After each diff: opens the incident the call entered here opened, once it is queued. */
  afterDiff() {
    if (this.#waiting === null) return;
    const entry = incidentOfCall(this.#d.incidents.list.entries.values(), this.#waiting);
    if (entry) {
      this.#waiting = null;
      this.#d.incidents.pick(entry.id);
    }
  }
}
