/**
 * The operator's window put together: one controller per domain, the diffs fanned out to them,
 * the keys run through the key map, and the map mounted. `App.svelte` renders this and wires
 * the panels to it; it holds no state of its own.
 */
import type { Backend, MapDiffDto } from "../ipc/backend";
import { mountScenarioMap } from "../shell";
import { keyInput, resolveKey, swallowsKeyUp, type KeyAction, type KeyContext, type KeyKind } from "../state/keymap";
import { Dispatch } from "./dispatch.svelte";
import { ErrorLine } from "./errors.svelte";
import { Exercise } from "./exercise.svelte";
import { Feeds } from "./feeds.svelte";
import { Incidents } from "./incidents.svelte";
import { MapView } from "./mapView.svelte";
import { Modals } from "./modals.svelte";
import { NewIncident } from "./newIncident.svelte";
import { AreaQuery } from "./areaQuery.svelte";
import { Replay } from "./replay.svelte";
import { Session } from "./session.svelte";

/** One handler per kind of key action, so a new kind cannot be forgotten. */
type KeyHandlers = { readonly [K in KeyKind]: (a: Extract<KeyAction, { kind: K }>) => void };

export class OperatorWindow {
  readonly errors = new ErrorLine();
  readonly modals = new Modals();
  readonly backend: Backend;
  readonly session: Session;
  readonly replay: Replay;
  readonly mapView: MapView;
  readonly feeds: Feeds;
  readonly incidents: Incidents;
  readonly dispatch: Dispatch;
  readonly exercise: Exercise;
  readonly newIncident: NewIncident;
  readonly areaQuery: AreaQuery;
  readonly #keys: KeyHandlers;

  /** The header's status line. */
  readonly status = $derived.by(() => this.replay.status(this.feeds.health));

  constructor(backend: Backend) {
    const report = this.errors.report;
    const modals = this.modals;
    this.backend = backend;
    this.session = new Session(backend, report, modals);
    this.replay = new Replay(backend, report);
    this.mapView = new MapView(backend);
    this.feeds = new Feeds(backend, modals);
    this.incidents = new Incidents(backend, this.session, this.mapView);
    const { session, mapView, incidents } = this;
    this.dispatch = new Dispatch({ backend, report, modals, session, incidents, mapView });
    this.exercise = new Exercise({
      backend,
      report,
      modals,
      session,
      mapView,
      // The report pictures the open incident's area, else the top of the queue's.
      mainArea: () => incidents.shown?.entry.area ?? incidents.queue[0]?.area ?? null,
    });
    const { replay, feeds, dispatch, exercise } = this;
    this.newIncident = new NewIncident({
      backend,
      report,
      modals,
      session,
      mapView,
      incidents,
      types: () => replay.scenario?.incidentTypes ?? [],
    });
    const { newIncident } = this;
    this.areaQuery = new AreaQuery({ backend, mapView, clock: () => replay.clock });
    const { areaQuery } = this;
    this.#keys = {
      cursor: (a) => incidents.moveCursor(a.step),
      openCursor: () => incidents.openCursor(),
      transition: (a) => incidents.transitionTarget(a.to),
      take: () => incidents.takeTarget(),
      undo: () => incidents.undo(),
      focusArea: () => incidents.focusArea(),
      mute: () => incidents.toggleMute(),
      dispatch: () => dispatch.open(),
      newIncident: () => newIncident.open(),
      areaQuery: () => areaQuery.toggleArmed(),
      closeAreaQuery: () => areaQuery.close(),
      outbox: () => dispatch.toggleOutbox(),
      quarantine: () => feeds.toggleQuarantine(),
      help: () => this.openHelp(),
      kpi: () => exercise.toggleKpi(),
      endExercise: () => exercise.askEnd(),
      trainerView: () => exercise.openTrainerView(),
      wallDisplay: () => exercise.openWallDisplay(),
      play: () => replay.togglePlay(),
      closeDetails: () => mapView.closeDetails(),
      closeIncident: () => incidents.close(),
      layer: (a) => mapView.toggleLayer(a.layer),
      zones: () => mapView.toggleZones(),
      closeModal: () => modals.closeTop(),
      swallow: () => {},
    };
  }

  get helpOpen(): boolean {
    return this.modals.isOpen("help");
  }

  openHelp = () => this.modals.open("help");

  closeHelp = () => this.modals.close("help");

  /** What the key map's conditions read. */
  keyContext(): KeyContext {
    const { incidents, mapView, replay } = this;
    return {
      cursor: incidents.current !== null,
      target: incidents.target !== null,
      area: incidents.area !== undefined,
      details: mapView.detailsOpen,
      incidentOpen: incidents.isOpen,
      areaQueryOpen: this.areaQuery.box !== null || this.areaQuery.armed,
      exercise: replay.exercise,
      ended: replay.ended,
      modal: this.modals.top,
    };
  }

  onKeydown = (e: KeyboardEvent) => {
    const action = resolveKey(keyInput(e), this.keyContext());
    if (action === null) return;
    e.preventDefault();
    (this.#keys[action.kind] as (a: KeyAction) => void)(action);
  };

  onKeyup = (e: KeyboardEvent) => {
    if (swallowsKeyUp(keyInput(e))) e.preventDefault();
  };

  onDiff = (diff: MapDiffDto) => {
    const refresh = this.mapView.needsRefresh(diff);
    this.replay.applyDiff(diff);
    this.dispatch.applyDiff(diff.outbox);
    this.mapView.applyDiff(this.replay.data, refresh);
    this.feeds.applyDiff(diff);
    this.incidents.applyDiff(diff.incidents);
    this.newIncident.afterDiff();
  };

  /** Starts the map in `container` and follows the engine; returns the unmount. */
  mount(container: HTMLDivElement): () => void {
    const { backend, mapView } = this;
    const unmount = mountScenarioMap(
      backend,
      {
        container,
        theme: mapView.view.theme,
        visible: mapView.view.visible,
        onSelect: mapView.openDetails,
        onCamera: mapView.moveCamera,
        // While the new incident form is open, a click places the incident.
        onClickAt: this.newIncident.place,
        onBox: this.areaQuery.ask,
      },
      this.errors.report,
      (opened) => {
        this.replay.scenario = opened.scenario;
        mapView.attach(opened.map, opened.camera, this.replay.data);
        this.session.load();
        this.dispatch.load();
      },
      this.onDiff,
    );
    return () => {
      unmount();
      this.errors.dispose();
      this.exercise.dispose();
      mapView.map = null;
    };
  }
}
