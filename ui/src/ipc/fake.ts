/**
 * A `Backend` with canned data, for unit tests and for running the UI in a plain browser
 * (`npm run dev`, `npm run preview`). It imitates the engine closely enough to exercise every
 * panel: a replay clock that plays, pauses, changes speed and seeks, diffs that carry only
 * what changed, observations with nested payloads, and a feed title that tries HTML injection.
 * Dispatch (backends, previews, the outbox) lives in `fakeDispatch.ts`.
 */
import type {
  Backend,
  ChartDto,
  ClockDto,
  ExerciseDto,
  InjectDto,
  InjectRequestDto,
  NewIncidentDto,
  CallDto,
  AreaQueryDto,
  AreaAnswerDto,
  FeedHealthDto,
  IncidentDetailDto,
  IncidentEntryDto,
  IncidentsDiffDto,
  Layer,
  LayerAgeDto,
  LifecycleStatus,
  MapDiffDto,
  MapFeatureDto,
  MemberDto,
  ObservationDto,
  OperatorDto,
  OperatorRole,
  RosterEntryDto,
  QuarantineDto,
  QuarantineEntryDto,
  ScenarioDto,
  OutboxDto,
} from "./backend";
import { createFakeDispatch, type FakeDispatchOptions, type Place } from "./fakeDispatch";

const MINUTE = 60_000;
/** 2026-11-26 17:00:00 in Helsinki (15:00 UTC). */
const START_MS = Date.UTC(2026, 10, 26, 15, 0, 0);
const END_MS = START_MS + 60 * MINUTE;

export const FAKE_SCENARIO: ScenarioDto = {
  name: "Helsinki centre: storm evening (fake)",
  description: "Canned observations for running the UI without the desktop shell.",
  map: "helsinki",
  view: [24.9443, 60.1717, 14.6],
  startMs: START_MS,
  endMs: END_MS,
  feeds: [
    { id: "hsl-rt", name: "HSL vehicle positions", layer: "transport", format: "gtfs-rt" },
    { id: "signals", name: "Traffic signal faults", layer: "transport", format: "json" },
    { id: "cctv", name: "CCTV health and analytics", layer: "security", format: "json" },
    { id: "grid", name: "Helen grid telemetry", layer: "utility", format: "mqtt" },
    { id: "water", name: "HSY water network", layer: "utility", format: "json" },
    { id: "alerts", name: "Public alerts (CAP)", layer: "alerts", format: "cap" },
  ],
  live: false,
  site: null,
  exerciseSite: false,
  zones: [
    {
      id: "station",
      name: "Helsinki Central station",
      shape: {
        type: "Polygon",
        coordinates: [
          [
            [24.9395, 60.17],
            [24.944, 60.17],
            [24.944, 60.1735],
            [24.9395, 60.1735],
            [24.9395, 60.17],
          ],
        ],
      },
    },
  ],
  incidentTypes: [
    { id: "power_outage", label: "Power outage" },
    { id: "obstruction", label: "Obstruction" },
    { id: "citizen_reports", label: "Citizen reports" },
  ],
  injects: [
    {
      id: "substation-trip",
      title: "Substation trip",
      kind: "substation.trip",
      layer: "utility",
      severity: "extreme",
      assetType: "substation",
      snapM: 400,
    },
    {
      id: "citizen-report",
      title: "Citizen reports an outage",
      kind: "report.outage",
      layer: "alerts",
      severity: "minor",
      assetType: null,
      snapM: 150,
    },
  ],
};

/** Refused input, as the quarantine browser lists it; one tries HTML injection. */
export const FAKE_QUARANTINE: readonly QuarantineEntryDto[] = [
  {
    feed: "tape",
    seq: 88,
    place: "tape.ndjson:88",
    reason: "not a tape record: expected `,` or `}` at line 1 column 30",
    receivedMs: START_MS,
    preview: "",
    bodyBytes: 0,
  },
  {
    feed: "cctv",
    seq: 140,
    place: "features[2].geometry",
    reason: "coordinates [0, 91] are out of range",
    receivedMs: START_MS + 4 * MINUTE,
    preview: '{"type":"FeatureCollection","features":[{"id":"<img src=x onerror=alert(3)>"}]}',
    bodyBytes: 2048,
  },
  {
    feed: "grid",
    seq: 201,
    place: "$",
    reason: "not JSON: expected value at line 1 column 1 (line 1, column 1)",
    receivedMs: START_MS + 9 * MINUTE,
    preview: "NaN",
    bodyBytes: 3,
  },
];

type Canned = Omit<ObservationDto, "receivedMs" | "feedName"> & { lagMs: number };

const at = (min: number, s = 0) => START_MS + min * MINUTE + s * 1000;

/** Entities may appear several times: later observations of the same id update it. */
const CANNED: Canned[] = [
  {
    id: "hsl:tram:3:1021",
    feed: "hsl-rt",
    layer: "transport",
    kind: "tram",
    severity: "normal",
    lon: 24.9412,
    lat: 60.1702,
    title: "Tram 3 to Olympiaterminaali, on time",
    observedMs: at(1),
    lagMs: 1800,
    fields: {
      route: "3",
      vehicle: 1021,
      delaySeconds: 12,
      occupancy: "MANY_SEATS_AVAILABLE",
      position: { bearing: 118, speedKmh: 17.5 },
    },
  },
  {
    id: "hsl:tram:3:1021",
    feed: "hsl-rt",
    layer: "transport",
    kind: "tram",
    severity: "minor",
    lon: 24.9447,
    lat: 60.1689,
    title: "Tram 3 to Olympiaterminaali, 3 min late",
    observedMs: at(7),
    lagMs: 2100,
    fields: {
      route: "3",
      vehicle: 1021,
      delaySeconds: 185,
      occupancy: "FEW_SEATS_AVAILABLE",
      position: { bearing: 131, speedKmh: 9.1 },
    },
  },
  {
    id: "hsl:tram:3:1021",
    feed: "hsl-rt",
    layer: "transport",
    kind: "tram",
    severity: "moderate",
    lon: 24.9481,
    lat: 60.1671,
    title: "Tram 3 to Olympiaterminaali, 6 min late",
    observedMs: at(16),
    lagMs: 1900,
    fields: {
      route: "3",
      vehicle: 1021,
      delaySeconds: 372,
      occupancy: "STANDING_ROOM_ONLY",
      position: { bearing: 140, speedKmh: 4.2 },
    },
  },
  {
    id: "hsl:bus:55:7733",
    feed: "hsl-rt",
    layer: "transport",
    kind: "bus",
    severity: "normal",
    lon: 24.9458,
    lat: 60.1748,
    title: "Bus 55 to Koskela, on time",
    observedMs: at(2),
    lagMs: 1500,
    fields: { route: "55", vehicle: 7733, delaySeconds: -20, occupancy: "MANY_SEATS_AVAILABLE" },
  },
  {
    id: "hsl:stop:H0302",
    feed: "hsl-rt",
    layer: "transport",
    kind: "stop",
    severity: "moderate",
    lon: 24.9432,
    lat: 60.1711,
    title: "Rautatientori: three buses bunched",
    observedMs: at(5),
    lagMs: 4000,
    fields: { stop: "H0302", name: "Rautatientori", bunched: ["55", "55", "23"], headwaySeconds: [40, 55] },
  },
  {
    id: "signals:4411",
    feed: "signals",
    layer: "transport",
    kind: "traffic_signal",
    severity: "severe",
    lon: 24.9386,
    lat: 60.1697,
    title: "Signal fault: Mannerheimintie / Kaivokatu, flashing amber",
    observedMs: at(10),
    lagMs: 9000,
    fields: { controller: "HEL-4411", state: "FLASHING_AMBER", since: "2026-11-26T17:09:51+02:00", lanesAffected: 6 },
  },
  {
    id: "cctv:kluuvi-12",
    feed: "cctv",
    layer: "security",
    kind: "camera",
    severity: "minor",
    lon: 24.9469,
    lat: 60.1696,
    title: "Camera offline: Kluuvikatu 3",
    observedMs: at(2, 30),
    lagMs: 3000,
    fields: { camera: "kluuvi-12", status: "OFFLINE", lastFrame: "2026-11-26T17:02:11+02:00" },
  },
  {
    id: "cctv:espa-4",
    feed: "cctv",
    layer: "security",
    kind: "crowd",
    severity: "moderate",
    lon: 24.9478,
    lat: 60.1677,
    title: "Crowd density high near the Esplanadi stage",
    observedMs: at(8),
    lagMs: 2500,
    fields: { camera: "espa-4", personsPerM2: 2.7, trend: "rising", zone: { name: "Esplanadi stage", areaM2: 850 } },
  },
  {
    id: "cctv:xss-probe",
    feed: "cctv",
    layer: "security",
    kind: "camera",
    severity: "normal",
    lon: 24.9421,
    lat: 60.1744,
    title: "<img src=x onerror=alert(1)>",
    observedMs: at(0, 30),
    lagMs: 700,
    fields: {
      note: "<script>alert('fields are text')</script>",
      "<b>key</b>": "keys are text too",
      nested: { html: "<img src=x onerror=alert(2)>", list: [1, "<i>two</i>", null, true] },
    },
  },
  {
    id: "grid:substation:kaisaniemi",
    feed: "grid",
    layer: "utility",
    kind: "substation",
    severity: "severe",
    lon: 24.9462,
    lat: 60.1759,
    title: "Substation Kaisaniemi: feeder 2 voltage dip",
    observedMs: at(4),
    lagMs: 1200,
    fields: { substation: "Kaisaniemi", feeder: 2, voltageKv: 9.1, nominalKv: 10.5, customersAffected: 1430 },
  },
  {
    id: "water:hydrant:117",
    feed: "water",
    layer: "utility",
    kind: "hydrant",
    severity: "minor",
    lon: 24.9401,
    lat: 60.1661,
    title: "Hydrant 117: pressure low",
    observedMs: at(11),
    lagMs: 15000,
    fields: { hydrant: 117, pressureBar: 2.1, expectedBar: 4.5 },
  },
  {
    id: "water:main:22",
    feed: "water",
    layer: "utility",
    kind: "pipe",
    severity: "moderate",
    lon: 24.9502,
    lat: 60.1688,
    title: "Water main 22: pressure drop, Aleksanterinkatu",
    observedMs: at(25),
    lagMs: 20000,
    fields: { main: 22, pressureBar: 3.0, dropPerMinute: 0.4 },
  },
  {
    id: "alerts:roadworks:881",
    feed: "alerts",
    layer: "alerts",
    kind: "roadworks",
    severity: "normal",
    lon: 24.9371,
    lat: 60.1726,
    title: "Roadworks, Arkadiankatu: one lane closed",
    observedMs: at(1, 30),
    lagMs: 60000,
    fields: { cap: { msgType: "Alert", urgency: "Future", certainty: "Observed" }, until: "2026-11-30" },
  },
  {
    id: "alerts:fmi:wind",
    feed: "alerts",
    layer: "alerts",
    kind: "weather",
    severity: "extreme",
    lon: 24.9443,
    lat: 60.1717,
    title: "Wind warning: gusts up to 25 m/s on the coast",
    observedMs: at(3),
    lagMs: 30000,
    fields: {
      cap: { msgType: "Alert", urgency: "Immediate", severity: "Extreme", certainty: "Likely" },
      gustMs: 25,
      area: "Helsinki coast",
    },
  },
  {
    id: "alerts:112:fire-5",
    feed: "alerts",
    layer: "alerts",
    kind: "fire",
    severity: "extreme",
    lon: 24.9491,
    lat: 60.1736,
    title: "Fire alarm, Kaisaniemenkatu 5",
    observedMs: at(18),
    lagMs: 5000,
    fields: { unit: "RPE-301", address: "Kaisaniemenkatu 5", category: "building fire, small" },
  },
];

const FEED_NAMES = new Map(FAKE_SCENARIO.feeds.map((f) => [f.id, f.name]));

function toObservation(c: Canned): ObservationDto {
  const { lagMs, ...rest } = c;
  return { ...rest, feedName: FEED_NAMES.get(c.feed) ?? c.feed, receivedMs: c.observedMs + lagMs };
}

function toFeature(o: ObservationDto): MapFeatureDto {
  return {
    id: o.id,
    layer: o.layer,
    kind: o.kind,
    severity: o.severity,
    lon: o.lon,
    lat: o.lat,
    title: o.title,
    observedMs: o.observedMs,
  };
}

export const FAKE_OBSERVATIONS: readonly ObservationDto[] = CANNED.map(toObservation).sort(
  (a, b) => a.observedMs - b.observedMs,
);

/** A canned incident: an entry and its members (by observation id) with explanations. */
type FakeIncident = {
  entry: IncidentEntryDto;
  members: { id: string; rule: string; text: string }[];
  sop: string[];
  ticked: Set<number>;
  notes: { atMs: number; operator: string; text: string }[];
};

function fakeIncidents(observations: readonly ObservationDto[]): FakeIncident[] {
  const pos = (id: string) => observations.find((o) => o.id === id);
  // Numbered in the order they are made, as the engine numbers incidents as they open.
  let n = 0;
  const make = (
    id: string,
    title: string,
    type: string,
    severity: IncidentEntryDto["severity"],
    openedMs: number,
    members: FakeIncident["members"],
    sop: string[],
  ): FakeIncident => {
    const ps = members.map((m) => pos(m.id)).filter((o): o is ObservationDto => o !== undefined);
    const layers = [...new Set(ps.map((o) => o.layer))];
    return {
      entry: {
        id,
        number: `HEL-2026-${String(++n).padStart(6, "0")}`,
        title,
        incidentType: type,
        severity,
        status: "new",
        active: true,
        openedMs,
        clearedMs: null,
        members: members.length,
        openMembers: members.length,
        layers,
        rootCause: members[0].id,
        rootCleared: false,
        manual: false,
        area: {
          west: Math.min(...ps.map((o) => o.lon)),
          south: Math.min(...ps.map((o) => o.lat)),
          east: Math.max(...ps.map((o) => o.lon)),
          north: Math.max(...ps.map((o) => o.lat)),
        },
        acknowledgedBy: null,
        owner: null,
        escalatedMs: null,
      },
      members,
      sop,
      ticked: new Set(),
      notes: [],
    };
  };
  return [
    make(
      "inc/grid/1/0",
      "Power outage: Substation Kaisaniemi",
      "power_outage",
      "extreme",
      at(4),
      [
        {
          id: "grid:substation:kaisaniemi",
          rule: "seed",
          text: "substation Kaisaniemi reported a voltage dip; it opened this incident and is its probable root cause",
        },
        {
          id: "signals:4411",
          rule: "supplied-by-tripped-substation",
          text: "signal 4411 went dark 6 min after substation Kaisaniemi dipped; it is fed by that substation",
        },
        {
          id: "cctv:kluuvi-12",
          rule: "supplied-by-tripped-substation",
          text: "camera kluuvi-12 went offline 1 min before substation Kaisaniemi dipped; it is fed by that substation",
        },
        {
          id: "hsl:tram:3:1021",
          rule: "delayed-at-dark-junction",
          text: "tram 3 was delayed 120 m from signal 4411, which went dark 3 min earlier",
        },
      ],
      [
        "Confirm the trip with the grid operator.",
        "Ask traffic police to control the dark junctions.",
        "Tell HSL traffic control.",
      ],
    ),
    make(
      "inc/alerts/2/0",
      "Weather warning: Helsinki coast",
      "weather_warning",
      "severe",
      at(3),
      [
        {
          id: "alerts:fmi:wind",
          rule: "seed",
          text: "wind warning was issued; it opened this incident and is its probable root cause",
        },
      ],
      ["Brief the shift on the warning."],
    ),
  ];
}

export type FakeOptions = {
  /** Where the replay clock starts; 10 minutes in by default so the map is not empty. */
  startAtMs?: number;
  /** Real milliseconds between clock ticks while playing. */
  tickMs?: number;
  /** Scenario milliseconds per tick at speed "max". */
  maxStepMs?: number;
  /** Initial speed; `null` is "max". */
  speed?: number | null;
  observations?: readonly ObservationDto[];
  scenario?: ScenarioDto;
  /** The dispatch side: exercise mode, sender timing, backends that start offline. */
  dispatch?: FakeDispatchOptions;
  /** Live mode: the feeds' health, sent with every diff (and the scenario says live). */
  health?: readonly FeedHealthDto[];
  quarantine?: readonly QuarantineEntryDto[];
  /**
   * Operators that exist before the app starts (as `cityops roster add` makes them). With a
   * roster the fake checks who acts as the engine does: sign-in by the roster (roles and
   * PINs), a signed-in operator for every action, supervisor-only actions refused to
   * operators already at the preview. Without one, as the panels' tests and the browser demo
   * play every role, anyone signs in with any role and previews need nobody signed in.
   */
  roster?: readonly FakeRosterEntry[];
};

/** An operator of the roster given to the fake, with their PIN in the clear (it is a fake). */
export type FakeRosterEntry = { name: string; role: OperatorRole; pin: string | null };

/** Wrong PINs in a row before a name is locked, and for how long (`store::MAX_WRONG_PINS`, `LOCKOUT_MS`). */
const MAX_WRONG_PINS = 5;
const LOCKOUT_MS = 5 * MINUTE;

/** What the fake offers beyond `Backend`, for tests and for trying the offline banner. */
export type FakeBackend = Backend & {
  readonly clock: ClockDto;
  /** Makes a dispatch backend unreachable, or brings it back. */
  setBackendOffline(id: string, offline: boolean): void;
  /** The body an action was committed with. */
  committedBody(id: number): string | null;
  /** Stops the dispatch sender's timers. */
  dispose(): void;
};

/** The newest observation per entity among those observed in `(fromMs, toMs]`. */
function newestPerEntity(list: readonly ObservationDto[], fromMs: number, toMs: number): ObservationDto[] {
  const byId = new Map<string, ObservationDto>();
  for (const o of list) if (o.observedMs > fromMs && o.observedMs <= toMs) byId.set(o.id, o);
  return [...byId.values()];
}

export function createFakeBackend(opts: FakeOptions = {}): FakeBackend {
  const health = opts.health ? [...opts.health] : null;
  const scenario = { ...(opts.scenario ?? FAKE_SCENARIO), live: health !== null };
  const refused = opts.quarantine ?? FAKE_QUARANTINE;
  // Injects add to the canned observations.
  const observations = [...(opts.observations ?? FAKE_OBSERVATIONS)];
  const tickMs = opts.tickMs ?? 250;
  const maxStepMs = opts.maxStepMs ?? 2 * MINUTE;
  let nowMs = opts.startAtMs ?? scenario.startMs + 10 * MINUTE;
  let playing = false;
  let speed: number | null = opts.speed === undefined ? 10 : opts.speed;
  let timer: ReturnType<typeof setInterval> | null = null;
  let endedMs: number | null = null;
  let endedBy: string | null = null;
  let trainerView = false;
  const injects: InjectDto[] = [];
  let calls = 0;
  const acknowledged = new Set<string>();
  const listeners: ((d: MapDiffDto) => void)[] = [];

  const clock = (): ClockDto => ({
    startMs: scenario.startMs,
    endMs: scenario.endMs,
    nowMs,
    playing,
    speed,
    // Pretend the tape has been read a quarter of an hour ahead of the clock.
    ingestedUntilMs: Math.min(scenario.endMs, nowMs + 15 * MINUTE),
    finished: nowMs >= scenario.endMs,
    endedMs,
    trainerView,
  });

  const layerAges = (): LayerAgeDto[] => {
    const layers: Layer[] = ["transport", "security", "utility", "alerts"];
    return layers.map((layer) => {
      const seen = newestPerEntity(observations, -Infinity, nowMs).filter((o) => o.layer === layer);
      const newest = seen.reduce<number | null>((m, o) => (m === null || o.observedMs > m ? o.observedMs : m), null);
      return { layer, newestObservedMs: newest, count: seen.length };
    });
  };

  const incidents = fakeIncidents(observations);
  let operator: OperatorDto | null = null;
  const roster = new Map<string, RosterEntryDto>();
  /** The roster's roles, PINs and wrong-PIN counts, when the fake was given a roster. */
  const pins = new Map<
    string,
    { role: OperatorRole; pin: string | null; failed: number; lockedUntilMs: number | null }
  >();
  for (const e of opts.roster ?? []) {
    pins.set(e.name, { role: e.role, pin: e.pin, failed: 0, lockedUntilMs: null });
    roster.set(e.name, { name: e.name, role: e.role, hasPin: e.pin !== null, lockedUntilMs: null });
  }
  const decisions: { into: string; from: FakeIncident }[] = [];
  const queue = () => incidents.filter((i) => !decisions.some((d) => d.from === i));
  const allIncidents = (): IncidentsDiffDto => ({ reset: true, upserts: queue().map((i) => i.entry), removed: [] });
  let pendingIncidents: IncidentsDiffDto | null = null;
  let pendingOutbox: OutboxDto | null = null;

  const emit = (reset: boolean, upserts: ObservationDto[]) => {
    const inc = reset ? allIncidents() : pendingIncidents;
    const outbox = reset ? dispatch.snapshot() : pendingOutbox;
    pendingIncidents = null;
    pendingOutbox = null;
    const diff: MapDiffDto = {
      reset,
      upserts: upserts.map(toFeature),
      clock: clock(),
      layers: layerAges(),
      incidents: inc,
      outbox,
      feeds: health,
      storage: null,
      site: null,
    };
    for (const l of listeners) l(diff);
  };

  /**
   * Where an action applies, as the engine finds it: the incident's root cause (else the
   * middle of its area), labelled with the incident's title, with its area when it has one;
   * else the point picked on the map.
   */
  const locate = (request: { incident: string | null; at: [number, number] | null }): Place => {
    if (request.incident !== null) {
      const inc = find(request.incident);
      const root = observations.find((o) => o.id === inc.entry.rootCause);
      const a = inc.entry.area;
      // A point-sized area is no polygon: CAP gets a circle around the point instead.
      const area: Place["area"] =
        a.east - a.west > 1e-6 && a.north - a.south > 1e-6
          ? [
              [a.west, a.south],
              [a.east, a.south],
              [a.east, a.north],
              [a.west, a.north],
              [a.west, a.south],
            ]
          : null;
      const [lon, lat] = root ? [root.lon, root.lat] : [(a.west + a.east) / 2, (a.south + a.north) / 2];
      return { lon, lat, label: inc.entry.title, area };
    }
    if (request.at === null)
      throw { code: "invalidInput", message: "the action needs a place: an incident or a point on the map" };
    const [lon, lat] = request.at;
    if (!(Number.isFinite(lon) && Number.isFinite(lat) && Math.abs(lon) <= 180 && Math.abs(lat) <= 90)) {
      throw { code: "invalidInput", message: `invalid input: ${lon},${lat} is not a valid position` };
    }
    return { lon, lat, label: `${lat.toFixed(5)}, ${lon.toFixed(5)}`, area: null };
  };

  const dispatch = createFakeDispatch(opts.dispatch ?? {}, {
    operator: () => operator,
    strict: () => opts.roster !== undefined,
    locate,
    committedFor: (id, who) => {
      // Confirming an action for an incident nobody dispatched to yet marks it dispatched.
      const inc = queue().find((i) => i.entry.id === id);
      if (inc && (inc.entry.status === "new" || inc.entry.status === "acknowledged")) {
        inc.entry = { ...inc.entry, status: "dispatched", acknowledgedBy: inc.entry.acknowledgedBy ?? who.name };
        pendingIncidents = { reset: false, upserts: [inc.entry], removed: [] };
      }
    },
    nowMs: () => nowMs,
    onChange: (o) => {
      pendingOutbox = o;
      emit(false, []);
    },
  });

  const stop = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };

  const tick = () => {
    const step = speed === null ? maxStepMs : tickMs * speed;
    const before = nowMs;
    nowMs = Math.min(scenario.endMs, nowMs + step);
    if (nowMs >= scenario.endMs) {
      playing = false;
      stop();
    }
    emit(false, newestPerEntity(observations, before, nowMs));
  };

  const backend = {
    kind: "fake" as const,
    get clock() {
      return clock();
    },
    scenario: async () => scenario,
    subscribe: async (onDiff: (d: MapDiffDto) => void) => {
      listeners.push(onDiff);
      onDiff({
        reset: true,
        upserts: newestPerEntity(observations, -Infinity, nowMs).map(toFeature),
        clock: clock(),
        layers: layerAges(),
        incidents: allIncidents(),
        outbox: dispatch.snapshot(),
        feeds: health,
        storage: null,
        site: null,
      });
    },
    play: async () => {
      if (nowMs >= scenario.endMs) return;
      playing = true;
      if (timer === null) timer = setInterval(tick, tickMs);
      emit(false, []);
    },
    pause: async () => {
      playing = false;
      stop();
      emit(false, []);
    },
    setSpeed: async (s: number | null) => {
      if (s !== null && !(Number.isFinite(s) && s > 0)) {
        throw { code: "invalidInput", message: `speed must be positive, got ${s}` };
      }
      speed = s;
      emit(false, []);
    },
    seek: async (ms: number) => {
      if (!Number.isFinite(ms)) throw { code: "invalidInput", message: `cannot seek to ${ms}` };
      nowMs = Math.min(scenario.endMs, Math.max(scenario.startMs, ms));
      if (nowMs >= scenario.endMs) {
        playing = false;
        stop();
      }
      emit(true, newestPerEntity(observations, -Infinity, nowMs));
    },
    observation: async (id: string) => {
      const found = newestPerEntity(observations, -Infinity, nowMs).find((o) => o.id === id);
      if (!found) throw { code: "notFound", message: `no observation of ${id} at this time` };
      return found;
    },
    signIn: async (name: string, role: OperatorDto["role"], pin: string | null) => {
      const trimmed = name.trim();
      if (!trimmed || Array.from(trimmed).length > 64 || /\p{Cc}/u.test(trimmed))
        throw { code: "invalidInput", message: "invalid input: an operator name is 1 to 64 printable characters" };
      if (pin !== null && Array.from(pin).length > 64)
        throw { code: "invalidInput", message: "invalid input: a PIN is at most 64 characters" };
      if (opts.roster !== undefined) signInByRoster(trimmed, role, pin === "" ? null : pin);
      operator = { name: trimmed, role };
      return operator;
    },
    signOut: async () => {
      operator = null;
    },
    // The fake signs anyone in with any role (its tests play every role); its roster only
    // keeps what a supervisor assigns, and like the engine answers supervisors alone.
    roster: async (): Promise<RosterEntryDto[]> => {
      if (operator?.role !== "supervisor") throw { code: "forbidden", message: "the roster is a supervisor's" };
      return [...roster.values()].sort((a, b) => a.name.localeCompare(b.name));
    },
    assignRole: async (name: string, role: OperatorDto["role"], pin: string | null) => {
      if (operator?.role !== "supervisor") throw { code: "forbidden", message: "roles are assigned by a supervisor" };
      const had = roster.get(name.trim())?.hasPin ?? false;
      // The engine's store refuses this, so it reaches the UI as invalid input.
      if (role !== "operator" && !pin && !had) throw { code: "invalidInput", message: `the ${role} role needs a PIN` };
      roster.set(name.trim(), { name: name.trim(), role, hasPin: had || !!pin, lockedUntilMs: null });
      const before = pins.get(name.trim());
      pins.set(name.trim(), { role, pin: pin || (before?.pin ?? null), failed: 0, lockedUntilMs: null });
    },
    operator: async () => operator,
    incident: async (id: string): Promise<IncidentDetailDto> => {
      const inc = find(id);
      const members: MemberDto[] = [inc, ...decisions.filter((d) => d.into === id).map((d) => d.from)].flatMap((i) =>
        i.members.map((m, n) => {
          const o = observations.find((x) => x.id === m.id)!;
          return {
            entity: m.id,
            layer: o.layer,
            kind: o.kind,
            severity: o.severity,
            lon: o.lon,
            lat: o.lat,
            observedMs: o.observedMs,
            reports: 1,
            rule: m.rule,
            confidence: m.rule === "seed" ? 1 : 0.9,
            explanation: m.text,
            distanceM: 0,
            timeGapS: 0,
            dependencyPath: [],
            duplicateOf: null,
            cleared: false,
            root: i === inc && n === 0,
          };
        }),
      );
      const layers: Layer[] = ["transport", "security", "utility", "alerts"];
      return {
        entry: inc.entry,
        root: members.find((m) => m.root) ?? null,
        groups: layers
          .map((layer) => ({ layer, members: members.filter((m) => m.layer === layer) }))
          .filter((g) => g.members.length > 0),
        timeline: [
          { atMs: inc.entry.openedMs, kind: "opened", text: `Opened: ${inc.members[0].text}`, operator: null },
          ...inc.notes.map((n) => ({ atMs: n.atMs, kind: "note", text: n.text, operator: n.operator })),
        ],
        sop: inc.sop.map((text, index) => ({
          index,
          text,
          ticked: inc.ticked.has(index),
          by: inc.ticked.has(index) ? (operator?.name ?? null) : null,
          // The fake's checklists have no required steps nor deadlines.
          required: false,
          dueMs: null,
          overdue: false,
        })),
        canUndo: decisions.length > 0,
      };
    },
    // In the engine's order: an ended exercise, who acts, on what, then the rules.
    transition: async (id: string, to: LifecycleStatus) => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      const who = signedIn();
      const inc = find(id);
      const order: LifecycleStatus[] = ["new", "acknowledged", "dispatched", "resolved", "closed"];
      if (order.indexOf(to) <= order.indexOf(inc.entry.status))
        throw {
          code: "invalidInput",
          message: `invalid input: incident ${id} is ${inc.entry.status}; it cannot become ${to}`,
        };
      if (to === "closed" && who.role === "operator")
        throw { code: "forbidden", message: "closing an incident is a supervisor's or trainer's call" };
      inc.entry = { ...inc.entry, status: to, acknowledgedBy: inc.entry.acknowledgedBy ?? who.name };
      if (to === "acknowledged") acknowledged.add(id);
      changed([inc.entry], []);
    },
    overrideResolve: async (id: string, reason: string) => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      const who = signedIn();
      if (who.role !== "supervisor")
        throw { code: "forbidden", message: "only a supervisor may override required SOP steps" };
      if (reason.trim() === "") throw { code: "invalidInput", message: "an override needs a reason" };
      const inc = find(id);
      inc.entry = { ...inc.entry, status: "resolved" };
      changed([inc.entry], []);
    },
    // Presence is a site's; the fake is one window.
    lookAt: async (_incident: string | null) => {},
    // The engine's rules: an operator takes an incident nobody else owns; a supervisor takes
    // any, or gives it.
    take: async (id: string, owner: string | null) => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      const who = signedIn();
      const inc = find(id);
      const to = owner ?? who.name;
      const supervisor = who.role === "supervisor";
      if (to !== who.name && !supervisor) throw { code: "forbidden", message: "ownership is given by a supervisor" };
      const current = inc.entry.owner;
      if (current === to)
        throw { code: "invalidInput", message: `invalid input: incident ${inc.entry.number} is ${to}'s already` };
      if (current !== null && !supervisor)
        throw {
          code: "invalidInput",
          message: `invalid input: incident ${id} is ${current}'s: a supervisor may give it to you`,
        };
      inc.entry = { ...inc.entry, owner: to };
      changed([inc.entry], []);
    },
    merge: async (into: string, from: string) => {
      signedIn();
      const target = find(into);
      const victim = find(from);
      if (target === victim) throw { code: "invalidInput", message: "an incident cannot be merged with itself" };
      decisions.push({ into, from: victim });
      target.entry = { ...target.entry, manual: true, members: target.entry.members + victim.entry.members };
      changed([target.entry], [from]);
    },
    split: async (_from: string, _entity: string): Promise<string> => {
      signedIn();
      throw { code: "invalidInput", message: "the fake backend does not split" };
    },
    reassign: async (_from: string, _entity: string, _to: string) => {
      signedIn();
      throw { code: "invalidInput", message: "the fake backend does not reassign" };
    },
    undo: async () => {
      signedIn();
      const d = decisions.pop();
      if (!d) throw { code: "invalidInput", message: "nothing to undo" };
      const target = find(d.into);
      target.entry = { ...target.entry, members: target.entry.members - d.from.entry.members };
      changed([target.entry, d.from.entry], []);
    },
    report: async (mapPng: string | null): Promise<string> => reportHtml(mapPng),
    kpi: async (): Promise<ChartDto[]> => {
      const seen = newestPerEntity(observations, -Infinity, nowMs);
      const bar = (n: number, i: number) =>
        `<rect x="${10 + i * 60}" y="${110 - n * 10}" width="40" height="${n * 10}" fill="#0096c7"/>`;
      const layers: Layer[] = ["transport", "security", "utility", "alerts"];
      const counts = layers.map((l) => seen.filter((o) => o.layer === l).length);
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="260" height="120">${counts.map(bar).join("")}</svg>`;
      return [
        {
          id: "observations-per-layer",
          title: "Observations per layer",
          svg,
          totals: Object.fromEntries(layers.map((l, i) => [l, counts[i]])),
        },
      ];
    },
    inject: async (r: InjectRequestDto): Promise<InjectDto> => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      if (r.trainer.trim() === "")
        throw { code: "invalidInput", message: "invalid input: an inject needs the trainer's name" };
      const spec = scenario.injects.find((i) => i.id === r.inject);
      if (!spec)
        throw { code: "notFound", message: `inject ${JSON.stringify(r.inject)} in the scenario's palette not found` };
      const n = injects.length + 1;
      const o: ObservationDto = {
        id: `inject/${n}`,
        feed: `inject.${spec.layer}`,
        feedName: `Trainer injects (${spec.layer})`,
        layer: spec.layer,
        kind: spec.kind,
        severity: spec.severity,
        lon: r.lon,
        lat: r.lat,
        title: spec.title,
        observedMs: nowMs,
        receivedMs: nowMs,
        fields: { inject: spec.id, trainer: r.trainer },
      };
      observations.push(o);
      const made: InjectDto = {
        n,
        inject: spec.id,
        scenarioMs: nowMs,
        trainer: r.trainer,
        entity: o.id,
        title: spec.title,
      };
      injects.push(made);
      emit(false, [o]);
      return made;
    },
    newIncident: async (r: NewIncidentDto): Promise<CallDto> => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      const who = signedIn();
      const type = scenario.incidentTypes.find((t) => t.id === r.incidentType);
      if (!type)
        throw { code: "invalidInput", message: `the rules have no incident type ${JSON.stringify(r.incidentType)}` };
      const text = r.description.trim();
      if (text === "" || text.length > 2000)
        throw { code: "invalidInput", message: "describe what was reported (1 to 2000 characters)" };
      if (r.severity === "normal")
        throw { code: "invalidInput", message: "a call's severity is minor or worse; normal opens no incident" };
      calls += 1;
      const title = text.split("\n")[0].trim();
      const o: ObservationDto = {
        id: `call/${calls}`,
        feed: `call.${r.layer}`,
        feedName: `Operators' calls (${r.layer})`,
        layer: r.layer,
        kind: `call.${r.incidentType}`,
        severity: r.severity,
        lon: r.lon,
        lat: r.lat,
        title,
        observedMs: nowMs,
        receivedMs: nowMs,
        fields: { description: text, operator: who.name },
      };
      observations.push(o);
      const inc: FakeIncident = {
        entry: {
          id: `inc/call.${r.layer}/${calls}/0`,
          number: `HEL-2026-${String(incidents.length + 1).padStart(6, "0")}`,
          title: `${type.label}: ${title}`,
          incidentType: type.id,
          severity: r.severity,
          status: "new",
          active: true,
          openedMs: nowMs,
          clearedMs: null,
          members: 1,
          openMembers: 1,
          layers: [r.layer],
          rootCause: o.id,
          rootCleared: false,
          manual: false,
          area: { west: r.lon, south: r.lat, east: r.lon, north: r.lat },
          acknowledgedBy: null,
          owner: null,
          escalatedMs: null,
        },
        members: [
          {
            id: o.id,
            rule: "seed",
            text: `${o.id} was reported to an operator by phone or radio (${type.id}); it opened this incident and is its probable root cause`,
          },
        ],
        sop: [],
        ticked: new Set(),
        notes: [],
      };
      incidents.push(inc);
      pendingIncidents = { reset: false, upserts: [inc.entry], removed: [] };
      emit(false, [o]);
      return { entity: o.id };
    },
    queryArea: async (q: AreaQueryDto): Promise<AreaAnswerDto> => {
      if (!(q.west < q.east && q.south < q.north))
        throw { code: "invalidInput", message: `${q.west},${q.south},${q.east},${q.north} is not a box` };
      const to = Math.min(q.toMs, nowMs);
      const found = observations.filter(
        (o) =>
          o.lon >= q.west &&
          o.lon <= q.east &&
          o.lat >= q.south &&
          o.lat <= q.north &&
          o.observedMs >= q.fromMs &&
          o.observedMs <= to &&
          o.receivedMs <= nowMs &&
          (q.layer === null || o.layer === q.layer),
      );
      const counts = new Map<string, { layer: Layer; count: number }>();
      for (const o of found) {
        const c = counts.get(o.kind) ?? { layer: o.layer, count: 0 };
        c.count += 1;
        counts.set(o.kind, c);
      }
      const newest = [...found].sort((a, b) => b.observedMs - a.observedMs);
      return {
        count: found.length,
        perKind: [...counts]
          .map(([kind, c]) => ({ kind, layer: c.layer, count: c.count }))
          .sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind)),
        observations: newest.slice(0, 500).map(toFeature),
        listedAll: found.length <= 500,
      };
    },
    exercise: async (): Promise<ExerciseDto> => ({ injects: [...injects], score: score(), endedMs, endedBy }),
    endExercise: async (by: string | null, mapPng: string | null): Promise<string> => {
      if (endedMs === null) {
        const who = by ?? operator?.name;
        if (!who) throw { code: "forbidden", message: "sign in first" };
        endedMs = nowMs;
        endedBy = who;
        playing = false;
        stop();
        emit(false, []);
      }
      return reportHtml(mapPng);
    },
    closeTrainerView: async () => {
      trainerView = false;
      emit(false, []);
    },
    openWallDisplay: async () => {
      // In a plain browser the wall display is the same page in another tab.
      if (typeof window !== "undefined" && typeof window.open === "function") {
        try {
          window.open(`${window.location.pathname}?view=wall`, "cityops-wall");
        } catch {
          // jsdom has no window.open.
        }
      }
    },
    openTrainerView: async () => {
      trainerView = true;
      emit(false, []);
      // In a plain browser the trainer view is the same page in another tab.
      if (typeof window !== "undefined" && typeof window.open === "function") {
        try {
          window.open(`${window.location.pathname}?view=trainer`, "cityops-trainer");
        } catch {
          // jsdom has no window.open; the flag above is what tests look at.
        }
      }
    },
    quarantine: async (feed: string | null): Promise<QuarantineDto> => {
      const matching = refused.filter((e) => feed === null || e.feed === feed);
      const counts = new Map<string, number>();
      for (const e of refused) counts.set(e.feed, (counts.get(e.feed) ?? 0) + 1);
      return {
        entries: [...matching].reverse(),
        total: matching.length,
        feeds: [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([f, count]) => ({ feed: f, count })),
      };
    },
    addNote: async (id: string, text: string) => {
      if (endedMs !== null) throw { code: "forbidden", message: "the exercise has ended" };
      const who = signedIn();
      const inc = find(id);
      const said = text.trim();
      if (said === "" || said.length > 4000) throw { code: "invalidInput", message: "a note is 1 to 4000 characters" };
      inc.notes.push({ atMs: clock().nowMs, operator: who.name, text: said });
      changed([inc.entry], []);
    },
    tickSop: async (id: string, step: number, ticked: boolean) => {
      signedIn();
      const inc = find(id);
      if (ticked) inc.ticked.add(step);
      else inc.ticked.delete(step);
      changed([inc.entry], []);
    },
    backends: dispatch.backends,
    previewAction: dispatch.previewAction,
    armAction: dispatch.armAction,
    confirmAction: dispatch.confirmAction,
    outbox: dispatch.outbox,
    retryAction: dispatch.retryAction,
    cancelAction: dispatch.cancelAction,
    setBackendOffline: (id: string, offline: boolean) => dispatch.setOffline(id, offline),
    committedBody: (id: number) => dispatch.committedBody(id),
    dispose: () => {
      stop();
      dispatch.dispose();
    },
  };

  /** The fake scores one objective: acknowledge the first incident. */
  function score(): ExerciseDto["score"] {
    const first = incidents[0]?.entry.id;
    const met = first !== undefined && acknowledged.has(first);
    return {
      points: met ? 1 : 0,
      maxPoints: 1,
      objectives: [
        {
          id: "ack-first",
          title: "Acknowledge the first incident",
          outcome: met ? "met" : "missed",
          points: met ? 1 : 0,
          detail: met ? "acknowledged" : "not acknowledged yet",
        },
      ],
    };
  }

  function reportHtml(mapPng: string | null): string {
    const s = score();
    const ended =
      endedMs === null ? "" : `<p class="meta">Exercise ended by ${(endedBy ?? "").replace(/[&<>"']/g, "")}.</p>`;
    // Only a PNG data URL is embedded, as the engine does.
    const map =
      mapPng !== null && /^data:image\/png;base64,[A-Za-z0-9+/=]+$/.test(mapPng)
        ? `<figure data-map="main-incident"><img alt="Map of the main incident's area" src="${mapPng}"/></figure>`
        : "";
    return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>After-action report</title></head><body><h1>After-action report: ${scenario.name.replace(/[&<>"']/g, "")}</h1>${ended}<p class="score">Run 1: <strong>${s?.points ?? 0} of ${s?.maxPoints ?? 0} points</strong></p>${map}</body></html>`;
  }

  function find(id: string): FakeIncident {
    const inc = queue().find((i) => i.entry.id === id);
    if (!inc) throw { code: "notFound", message: `incident ${JSON.stringify(id)} not found` };
    return inc;
  }

  /**
   * Checks a sign-in against the roster as the engine's store does, in its words: a name the
   * roster lacks may only be an operator (and joins the roster as one), other roles are the
   * roster's, and a PIN the roster holds (or the role needs) must be given and right.
   */
  function signInByRoster(name: string, role: OperatorRole, pin: string | null) {
    const row = pins.get(name);
    if (!row) {
      if (role !== "operator")
        throw {
          code: "forbidden",
          message: `${name} is not in the roster as ${role}: a supervisor assigns that role (the first one with \`cityops roster add\`)`,
        };
      pins.set(name, { role: "operator", pin, failed: 0, lockedUntilMs: null });
      roster.set(name, { name, role: "operator", hasPin: pin !== null, lockedUntilMs: null });
      return;
    }
    const now = Date.now();
    if (row.lockedUntilMs !== null && row.lockedUntilMs > now) {
      const until = new Date(row.lockedUntilMs).toISOString().slice(11, 19);
      throw { code: "forbidden", message: `${name} is locked until ${until} UTC after ${MAX_WRONG_PINS} wrong PINs` };
    }
    if (role !== row.role && role !== "operator")
      throw {
        code: "forbidden",
        message: `the roster has ${name} as ${row.role}, not ${role}: a supervisor assigns roles`,
      };
    if (row.pin === null) {
      if (role !== "operator") throw { code: "forbidden", message: `${name} signs in with a PIN as ${role}` };
      return;
    }
    if (pin === null) throw { code: "forbidden", message: `${name} signs in with a PIN as ${role}` };
    if (pin !== row.pin) {
      row.failed += 1;
      if (row.failed >= MAX_WRONG_PINS) {
        row.failed = 0;
        row.lockedUntilMs = now + LOCKOUT_MS;
        const until = new Date(row.lockedUntilMs).toISOString().slice(11, 19);
        throw { code: "forbidden", message: `${name} is locked until ${until} UTC after ${MAX_WRONG_PINS} wrong PINs` };
      }
      throw {
        code: "forbidden",
        message: `wrong PIN for ${name} (${MAX_WRONG_PINS - row.failed} more before the name is locked for ${LOCKOUT_MS / MINUTE} minutes)`,
      };
    }
    row.failed = 0;
    row.lockedUntilMs = null;
  }

  function signedIn(): OperatorDto {
    if (!operator)
      throw { code: "forbidden", message: "sign in first: every incident action is recorded with the operator's name" };
    return operator;
  }

  function changed(upserts: IncidentEntryDto[], removed: string[]) {
    pendingIncidents = { reset: false, upserts, removed };
    emit(false, []);
  }

  return backend;
}
