/**
 * The incidents: the ranked queue and its cursor and filters, the open incident's detail, the
 * workflow calls on them (lifecycle, checklist, merge, split, move, undo, all as the signed-in
 * operator) and the alarm a new severe incident sounds.
 */
import { createAlarm } from "../alarm";
import { toApiError, type AreaDto, type Backend, type IncidentsDiffDto, type LifecycleStatus } from "../ipc/backend";
import {
  applyIncidentsDiff,
  cursorEntry,
  emptyIncidents,
  flashDone,
  moveCursor,
  rankedQueue,
  setCursor,
  setFilters,
  type QueueFilters,
} from "../state/incidents";
import {
  incidentFailed,
  incidentLoaded,
  needsIncidentRefresh,
  NO_INCIDENT,
  openIncident,
  openIncidentId,
  shownIncident,
  type IncidentDetail,
} from "../state/incidentDetail";
import { blurFocus } from "./focus";
import type { MapView } from "./mapView.svelte";
import type { Session } from "./session.svelte";

export class Incidents {
  /** The queue's entries, cursor, filters and flashing entries. */
  list = $state.raw(emptyIncidents());
  /** The open incident's detail. */
  detail = $state.raw<IncidentDetail>(NO_INCIDENT);
  /** The alarm stays silent; new incidents still flash. */
  muted = $state(false);
  readonly #backend: Backend;
  readonly #session: Session;
  readonly #mapView: MapView;
  readonly #alarm = createAlarm();

  /** The queue as shown: filtered (by the map's view too) and ranked. */
  readonly queue = $derived.by(() => rankedQueue(this.list, this.#mapView.bounds));
  /** The entry under the cursor. */
  readonly current = $derived(cursorEntry(this.list, this.queue));

  constructor(backend: Backend, session: Session, mapView: MapView) {
    this.#backend = backend;
    this.#session = session;
    this.#mapView = mapView;
  }

  get openId(): string | null {
    return openIncidentId(this.detail);
  }

  get isOpen(): boolean {
    return this.detail.status !== "none";
  }

  /** The open incident's detail as shown (the previous one while it reloads). */
  get shown() {
    return shownIncident(this.detail);
  }

  /** The incident a lifecycle key acts on: the open one, else the one under the cursor. */
  get target(): string | null {
    return this.openId ?? this.current?.id ?? null;
  }

  /** Where `f` flies: the open incident's area, else the one under the cursor; `undefined` without either. */
  get area(): AreaDto | null | undefined {
    return this.shown?.entry.area ?? this.current?.area;
  }

  /** The other active incidents, which the open one can merge with or take members from. */
  get others() {
    return this.queue.filter((e) => e.id !== this.openId && e.active);
  }

  load(id: string, fly: boolean) {
    this.detail = openIncident(this.detail, id);
    this.#backend.incident(id).then(
      (d) => {
        const before = this.detail;
        this.detail = incidentLoaded(this.detail, id, d);
        if (this.detail !== before) this.#mapView.map?.setIncidentArea(d.entry.area, fly);
      },
      (e) => (this.detail = incidentFailed(this.detail, id, toApiError(e))),
    );
  }

  /** Tells the engine which incident is open, for the other workstations of a site. */
  #lookAt(id: string | null) {
    // Presence is a courtesy to the other workstations: a failure costs this one nothing.
    this.#backend.lookAt(id).catch(() => {});
  }

  pick = (id: string) => {
    this.list = setCursor(this.list, id);
    this.load(id, true);
    this.#lookAt(id);
    // A clicked queue entry must not keep the focus, or Enter would click it again.
    blurFocus();
  };

  openCursor = () => {
    if (this.current) this.pick(this.current.id);
  };

  close = () => {
    this.detail = NO_INCIDENT;
    this.#lookAt(null);
    this.#mapView.map?.setIncidentArea(null, false);
  };

  moveCursor = (step: 1 | -1) => {
    this.list = moveCursor(this.list, this.queue, step);
  };

  setFilters = (patch: Partial<QueueFilters>) => {
    this.list = setFilters(this.list, patch);
  };

  flashDone = (id: string) => {
    this.list = flashDone(this.list, id);
  };

  toggleMute = () => {
    this.muted = !this.muted;
  };

  focusArea = () => {
    const area = this.area;
    if (area) this.#mapView.map?.flyToArea(area);
  };

  /** Flies to a member of the open incident and opens its details. */
  showMember = (entity: string) => {
    const m = this.shown?.groups.flatMap((g) => g.members).find((x) => x.entity === entity);
    if (m) this.#mapView.map?.flyTo(m.lon, m.lat);
    this.#mapView.openDetails(entity);
  };

  transition = (id: string, to: LifecycleStatus) => {
    const what = to === "acknowledged" ? "acknowledge" : `mark the incident ${to}`;
    this.#session.asOperator(what, () => this.#backend.transition(id, to));
  };

  /** Takes the incident: the signed-in operator owns it, and every workstation shows it. */
  take = (id: string) => {
    this.#session.asOperator("take the incident", () => this.#backend.take(id, null));
  };

  /** Takes the lifecycle key's target (see `target`). */
  takeTarget = () => {
    const id = this.target;
    if (id) this.take(id);
  };

  /** Moves the lifecycle key's target (see `target`) to `to`. */
  transitionTarget = (to: LifecycleStatus) => {
    const id = this.target;
    if (!id) return;
    // The cursor stays on the incident acted on: acknowledged, it may leave the top of the
    // queue (an escalated one takes its place), and Enter must still open it.
    this.list = setCursor(this.list, id);
    this.transition(id, to);
  };

  tickSop = (id: string, step: number, ticked: boolean) =>
    this.#session.asOperator("tick the checklist", () => this.#backend.tickSop(id, step, ticked));

  /** A supervisor resolves past required SOP steps, for a reason; `done` runs once recorded. */
  override = (id: string, reason: string, done: () => void) =>
    this.#session.asOperator("resolve past required steps", () => this.#backend.overrideResolve(id, reason).then(done));

  /** Adds a note to the incident's log; `done` runs once it is recorded (the form then empties). */
  addNote = (id: string, text: string, done: () => void) =>
    this.#session.asOperator("add a note", () => this.#backend.addNote(id, text).then(done));

  merge = (into: string, from: string) => this.#session.asOperator("merge", () => this.#backend.merge(into, from));

  split = (from: string, entity: string) => this.#session.asOperator("split", () => this.#backend.split(from, entity));

  reassign = (from: string, entity: string, to: string) =>
    this.#session.asOperator("move the member", () => this.#backend.reassign(from, entity, to));

  undo = () => this.#session.asOperator("undo", () => this.#backend.undo());

  /** Folds the diff's incidents in, sounds the alarm for new severe ones, and reloads or closes the open one. */
  applyDiff(diff: IncidentsDiffDto | null) {
    const refresh = needsIncidentRefresh(this.detail, diff);
    const update = applyIncidentsDiff(this.list, diff);
    this.list = update.state;
    if (update.alarms.length > 0 && !this.muted) this.#alarm.play();
    if (refresh && this.detail.status !== "none") {
      const id = this.detail.id;
      if (this.list.entries.has(id)) this.load(id, false);
      else this.close();
    }
  }
}
