/**
 * The fake backend's dispatch side: five configured backends (one of each kind), previews that
 * render the bytes the engine would (an Open311 form, webhook and MQTT JSON, CoT and CAP XML),
 * and an in-memory outbox whose sender moves actions queued → sending → delivered over a few
 * hundred milliseconds, retrying while a backend is offline and failing after a retry budget
 * (in an exercise, like the engine's, it records every action as delivered and sends nothing).
 *
 * It follows the engine's rules and words, which the contract suite (`fixtures/contract/`)
 * checks against both: a preview token is confirmed once, dangerous actions need two
 * confirmations, public alerts need a supervisor or trainer, retry only for failed actions,
 * cancel only for queued or failed ones. Every change is reported through `onChange` with the
 * whole outbox, as the engine's diffs carry it.
 */
import type {
  ActionDto,
  ActionParams,
  ActionPreviewDto,
  ActionRequestDto,
  BackendDto,
  HeaderDto,
  OperatorDto,
  OutboxDto,
} from "./backend";

/**
 * One backend as a backends file describes it (`fixtures/backends/README.md`), with the
 * file's keys in camelCase; `secretEnv` names the variable of its secret (the Open311 API key,
 * or the webhook's and alert hub's signing secret), which the fake never has.
 */
export type FakeBackendConfig = {
  id: string;
  name: string;
  kind: BackendDto["kind"];
  choices: string[];
  url?: string;
  host?: string;
  port?: number;
  commandTopic?: string;
  responseTopic?: string;
  secretEnv?: string;
  supervisorOnly?: boolean;
};

/** The fake's backends, one of each kind; the contract suite (`fixtures/contract/`) configures the same ids, kinds and choices. */
export const FAKE_BACKENDS: readonly FakeBackendConfig[] = [
  {
    id: "city-works",
    name: "City works Open311",
    kind: "open311",
    url: "http://127.0.0.1:8311",
    secretEnv: "CITYOPS_OPEN311_KEY",
    choices: ["utility-crew", "public-works", "tree-removal", "street-lighting"],
  },
  {
    id: "rescue-hook",
    name: "Helsinki Rescue Department",
    kind: "webhook",
    url: "http://127.0.0.1:9000/hooks/rescue",
    secretEnv: "CITYOPS_WEBHOOK_SECRET",
    choices: [],
  },
  {
    id: "signal-control",
    name: "Traffic signal control",
    kind: "mqtt",
    host: "127.0.0.1",
    port: 1883,
    commandTopic: "city/devices/{device}/cmd",
    responseTopic: "city/devices/{device}/reply",
    choices: ["FLASH", "NORMAL", "DARK", "VALVE_CLOSE", "FEEDER_ISOLATE"],
  },
  {
    id: "tak",
    name: "Field units (TAK)",
    kind: "cot",
    host: "127.0.0.1",
    port: 8087,
    choices: ["t-x-i", "b-m-p-s-p-i", "a-f-G-U-C"],
  },
  {
    id: "alert-hub",
    name: "Public alert hub (CAP)",
    kind: "cap",
    url: "http://127.0.0.1:9000/hooks/alert-hub",
    secretEnv: "CITYOPS_CAP_SECRET",
    choices: [],
  },
];

/** What each kind of action does, in words, as the engine says it (`BackendKind::action`). */
const ACTION: Record<BackendDto["kind"], string> = {
  open311: "Open a service request for a field crew",
  webhook: "Notify another agency's system",
  mqtt: "Command a device",
  cot: "Task a field unit",
  cap: "Publish a public alert",
};

/** Where a backend's actions go, as the engine shows it (`BackendSpec::destination`). */
function destination(c: FakeBackendConfig, device: string | null): string {
  switch (c.kind) {
    case "open311":
      return `POST ${(c.url ?? "").replace(/\/+$/, "")}/requests.json`;
    case "webhook":
    case "cap":
      return `POST ${c.url ?? ""}`;
    case "mqtt":
      return `mqtt://${c.host ?? ""}:${c.port ?? 1883} ${(c.commandTopic ?? "").replaceAll("{device}", device ?? "{device}")}`;
    case "cot":
      return `tcp://${c.host ?? ""}:${c.port ?? 8087}`;
  }
}

export type FakeDispatchOptions = {
  /** Training or replay: every backend is marked exercise, and CAP alerts say `Exercise`. */
  exercise?: boolean;
  /** The backends file's backends; `FAKE_BACKENDS` by default. */
  backends?: readonly FakeBackendConfig[];
  /** The backends file's `sender` (CAP `sender`, CoT and webhook source). */
  sender?: string;
  /** Real milliseconds from queued to sending and from sending to the backend's answer. */
  stepMs?: number;
  /** Real milliseconds between attempts while a backend is unreachable. */
  retryMs?: number;
  /** Attempts before an unreachable backend's action is marked failed. */
  retryBudget?: number;
  /** Backends (by id) that start unreachable. */
  offline?: readonly string[];
};

/**
 * Where an action applies: a position, a label for people, and the incident's area as a
 * closed ring of `[lon, lat]` when it has one (CAP then gets a polygon instead of a circle).
 */
export type Place = { lon: number; lat: number; label: string; area: [number, number][] | null };

export type FakeDispatchDeps = {
  operator: () => OperatorDto | null;
  /**
   * True when who acts is checked as the engine checks it (a signed-in operator for every
   * action, supervisor-only backends refused to operators already at the preview). The
   * panels' tests play roles without signing in, so the fake lets them unless it has a roster.
   */
  strict?: () => boolean;
  /** Locates a request (its incident's root cause, or the point); throws an ApiError if it cannot. */
  locate: (request: ActionRequestDto) => Place;
  /** An action for this incident was committed: the engine marks a new or acknowledged one dispatched. */
  committedFor?: (incident: string, operator: OperatorDto) => void;
  onChange: (outbox: OutboxDto) => void;
  /** The scenario clock now, stamped on committed actions (the exercise's timeline). */
  nowMs?: () => number;
};

type Pending = {
  preview: ActionPreviewDto;
  request: ActionRequestDto;
  operator: string;
  armed: boolean;
  scenarioMs: number | null;
};

const ERR = {
  invalid: (message: string) => ({ code: "invalidInput" as const, message }),
  notFound: (message: string) => ({ code: "notFound" as const, message }),
  forbidden: (message: string) => ({ code: "forbidden" as const, message }),
};

/**
 * Escapes text for XML element content and attribute values. Control characters XML 1.0
 * cannot carry are dropped, as the engine drops them (`dispatch::xml_escape`).
 */
export function xmlEscape(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(
    /[<>&"']|[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? "",
  );
}

/** `application/x-www-form-urlencoded` of one component, byte for byte as the engine encodes it. */
function formComponent(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.*]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** A number as serde_json writes a float: integral values keep their `.0`. */
function jsonFloat(x: number): string {
  return Number.isInteger(x) ? `${x}.0` : JSON.stringify(x);
}

/** A JSON object with its keys sorted, as serde_json's `json!` writes one. */
function sortedJson(o: Record<string, unknown>): string {
  const parts = Object.keys(o)
    .sort()
    .map((k) => {
      const v = o[k];
      const text =
        typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Raw)
          ? sortedJson(v as Record<string, unknown>)
          : v instanceof Raw
            ? v.text
            : JSON.stringify(v);
      return `${JSON.stringify(k)}:${text}`;
    });
  return `{${parts.join(",")}}`;
}

/** Text already in JSON form. */
class Raw {
  constructor(readonly text: string) {}
}

/** RFC 3339 to the second with a `+00:00` zone (CAP wants an explicit offset). */
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19) + "+00:00";
/** RFC 3339 to the millisecond with a `Z` zone, as CoT writes times. */
const isoZ = (ms: number) => new Date(ms).toISOString();

/** The first line of a text, at most 80 characters. */
const firstLine = (s: string) =>
  Array.from(s.split("\n")[0] ?? "")
    .slice(0, 80)
    .join("");

/** A stand-in for an HMAC: 64 hex digits that depend on every byte of the body. */
function fakeSignature(body: string): string {
  let out = "";
  for (let round = 0; round < 8; round++) {
    let h = 0x811c9dc5 ^ round;
    for (let i = 0; i < body.length; i++) h = Math.imul(h ^ body.charCodeAt(i), 0x01000193) >>> 0;
    out += h.toString(16).padStart(8, "0");
  }
  return out;
}

/** `n` random bytes in lowercase hex, as the engine makes keys and tokens. */
function randomHex(n: number): string {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const KIND_OF_PARAMS: Record<ActionParams["kind"], BackendDto["kind"]> = {
  serviceRequest: "open311",
  notify: "webhook",
  deviceCommand: "mqtt",
  taskUnit: "cot",
  publicAlert: "cap",
};

/** The longest free text and identifier a field may carry (`dispatch::MAX_TEXT`, `MAX_ID`). */
const MAX_TEXT = 2000;
const MAX_ID = 128;

/** The reference an exercise records instead of a backend's answer. */
const EXERCISE_REFERENCE = "exercise: recorded, not sent";

export function createFakeDispatch(opts: FakeDispatchOptions, deps: FakeDispatchDeps) {
  const exercise = opts.exercise ?? false;
  const configs = opts.backends ?? FAKE_BACKENDS;
  const sender = opts.sender ?? "cityops@control-room.hel.example";
  const stepMs = opts.stepMs ?? 200;
  const retryMs = opts.retryMs ?? 2000;
  const retryBudget = opts.retryBudget ?? 5;
  const offline = new Set(opts.offline ?? []);
  const reachable = new Map<string, boolean | null>(configs.map((b) => [b.id, null]));
  const previews = new Map<string, Pending>();
  const strict = () => deps.strict?.() ?? false;

  /** The signed-in operator, as the engine requires one for every action. */
  function signedIn(): OperatorDto {
    const op = deps.operator();
    if (!op) throw ERR.forbidden("sign in first");
    return op;
  }

  /** The pending preview of `token`, checked as the engine checks it at every confirmation. */
  function pendingFor(token: string): Pending {
    const op = signedIn();
    const pending = previews.get(token);
    if (!pending) throw ERR.notFound("preview (preview the action again) not found");
    if (strict() && pending.operator !== op.name) throw ERR.forbidden("the action was previewed by another operator");
    // The role is checked again at each step: whoever previewed may have signed out.
    if (pending.preview.backend.supervisorOnly && op.role === "operator")
      throw ERR.forbidden(`${pending.preview.backend.name} needs a supervisor`);
    return pending;
  }
  const actions: ActionDto[] = [];
  const bodies = new Map<number, Pending>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const references = new Map<string, number>();
  let nextId = 1;

  const dto = (c: FakeBackendConfig): BackendDto => ({
    id: c.id,
    name: c.name,
    kind: c.kind,
    action: ACTION[c.kind],
    dangerous: c.kind === "mqtt" || c.kind === "cap",
    // Public alerts are always a supervisor's call, whatever the file says.
    supervisorOnly: (c.supervisorOnly ?? false) || c.kind === "cap",
    choices: [...c.choices],
    exercise,
    reachable: reachable.get(c.id) ?? null,
  });
  const config = (id: string): FakeBackendConfig => {
    const c = configs.find((b) => b.id === id);
    if (!c) throw ERR.notFound(`backend ${JSON.stringify(id)} not found`);
    return c;
  };

  function snapshot(): OutboxDto {
    const list = [...actions].sort((a, b) => b.createdMs - a.createdMs || b.id - a.id).slice(0, 200);
    const pending = actions.filter((a) => a.status === "queued" || a.status === "sending");
    const pendingBackends = new Set(pending.map((a) => a.backend));
    return {
      actions: list.map((a) => ({ ...a })),
      queued: actions.filter((a) => a.status === "queued").length,
      failed: actions.filter((a) => a.status === "failed").length,
      // An exercise never connects, so it is never offline.
      offline: !exercise && pendingBackends.size > 0 && [...pendingBackends].every((id) => reachable.get(id) === false),
      backends: configs.map(dto),
    };
  }

  const changed = () => deps.onChange(snapshot());

  function later(ms: number, f: () => void) {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  }

  function reference(kind: BackendDto["kind"]): string {
    const n = (references.get(kind) ?? 0) + 1;
    references.set(kind, n);
    const six = String(n).padStart(6, "0");
    switch (kind) {
      case "open311":
        return `SR-${six}`;
      case "webhook":
        return `RX-${six}`;
      case "mqtt":
        return "ack";
      case "cot":
        return `tak-${six}`;
      case "cap":
        return `hub-${six}`;
    }
  }

  /** Starts the oldest due action of every backend that has none in flight: in order, once each. */
  function pump() {
    const now = Date.now();
    const busy = new Set(actions.filter((a) => a.status === "sending").map((a) => a.backend));
    const due = actions
      .filter((a) => a.status === "queued" && (a.nextAttemptMs === null || a.nextAttemptMs <= now))
      .sort((a, b) => a.id - b.id);
    for (const a of due) {
      if (busy.has(a.backend)) continue;
      // A backend's actions leave in commit order: a later one never overtakes an earlier one.
      const earlier = actions.some((b) => b.backend === a.backend && b.status === "queued" && b.id < a.id);
      if (earlier) continue;
      busy.add(a.backend);
      a.status = "sending";
      a.attempts += 1;
      a.nextAttemptMs = null;
      later(stepMs, () => answer(a));
    }
    changed();
  }

  function answer(a: ActionDto) {
    if (a.status !== "sending") return;
    const c = config(a.backend);
    if (exercise) {
      // An exercise opens no connection: the sender records the action as delivered.
      a.status = "delivered";
      a.reference = EXERCISE_REFERENCE;
      a.lastError = null;
    } else if (offline.has(a.backend)) {
      reachable.set(a.backend, false);
      a.lastError = `connection refused: ${c.url ? c.url.replace(/^\w+:\/\//, "").replace(/\/.*$/, "") : `${c.host}:${c.port}`}`;
      if (a.attempts >= retryBudget) {
        a.status = "failed";
        a.lastError = `gave up after ${a.attempts} attempts: ${a.lastError}`;
      } else {
        a.status = "queued";
        a.nextAttemptMs = Date.now() + retryMs;
        later(retryMs, pump);
      }
    } else {
      reachable.set(a.backend, true);
      a.status = "delivered";
      a.reference = reference(c.kind);
      a.remoteStatus = c.kind === "open311" ? "open" : null;
      a.lastError = null;
    }
    pump();
  }

  /** The exact bytes, as the engine's core renders them (`dispatch::render`). */
  function render(
    request: ActionRequestDto,
    place: Place,
    key: string,
    nowMs: number,
    operator: string,
  ): { summary: string; body: string; device: string | null } {
    const p = request.params;
    const incident = request.incident;
    switch (p.kind) {
      case "serviceRequest": {
        const form: [string, string][] = [
          ["service_code", p.serviceCode],
          ["lat", place.lat.toFixed(6)],
          ["long", place.lon.toFixed(6)],
          ["address_string", place.label],
          ["description", p.description],
          ["attribute[cityops_key]", key],
        ];
        if (incident !== null) form.push(["attribute[cityops_incident]", incident]);
        return {
          summary: `Service request ${p.serviceCode} at ${place.label}`,
          body: form.map(([k, v]) => `${formComponent(k)}=${formComponent(v)}`).join("&"),
          device: null,
        };
      }
      case "notify": {
        const body = sortedJson({
          key,
          sent: iso(nowMs),
          sender,
          operator,
          exercise,
          incident,
          place: { label: place.label, lon: new Raw(jsonFloat(place.lon)), lat: new Raw(jsonFloat(place.lat)) },
          message: p.message,
        });
        return { summary: `Notify: ${firstLine(p.message)}`, body, device: null };
      }
      case "deviceCommand": {
        const body = sortedJson({
          key,
          device: p.device,
          command: p.command,
          sent: iso(nowMs),
          operator,
          exercise,
          incident,
        });
        return { summary: `Command ${p.command} to ${p.device}`, body, device: p.device };
      }
      case "taskUnit": {
        const time = isoZ(nowMs);
        const body =
          `<?xml version="1.0" encoding="UTF-8"?>\n` +
          `<event version="2.0" uid="cityops-${xmlEscape(key)}" type="${xmlEscape(p.task)}" how="h-g-i-g-o" time="${time}" start="${time}" stale="${isoZ(nowMs + 3_600_000)}">` +
          `<point lat="${place.lat.toFixed(6)}" lon="${place.lon.toFixed(6)}" hae="9999999.0" ce="9999999.0" le="9999999.0"/>` +
          `<detail><contact callsign="${xmlEscape(place.label)}"/>` +
          `<marti><dest callsign="${xmlEscape(p.unit)}"/></marti>` +
          `<link uid="${xmlEscape(sender)}" relation="p-p" type="a-f-G-U-C"/>` +
          `<remarks source="${xmlEscape(sender)}">${xmlEscape(p.remarks)}${exercise ? " (EXERCISE)" : ""}</remarks>` +
          `<__cityops key="${xmlEscape(key)}" incident="${xmlEscape(incident ?? "")}" operator="${xmlEscape(operator)}"/>` +
          `</detail></event>`;
        return { summary: `Task ${p.unit}: ${p.task} at ${place.label}`, body, device: null };
      }
      case "publicAlert": {
        const severity = p.severity.charAt(0).toUpperCase() + p.severity.slice(1);
        // CAP polygons are "lat,lon" pairs separated by spaces; without an area, a 500 m circle.
        const shape =
          place.area !== null && place.area.length >= 4
            ? `<polygon>${place.area.map(([lon, lat]) => `${lat.toFixed(5)},${lon.toFixed(5)}`).join(" ")}</polygon>`
            : `<circle>${place.lat.toFixed(5)},${place.lon.toFixed(5)} 0.5</circle>`;
        const body =
          `<?xml version="1.0" encoding="UTF-8"?>\n` +
          `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">` +
          `<identifier>cityops-${xmlEscape(key)}</identifier><sender>${xmlEscape(sender)}</sender><sent>${iso(nowMs)}</sent>` +
          `<status>${exercise ? "Exercise" : "Actual"}</status><msgType>Alert</msgType><scope>Public</scope>` +
          (exercise ? "<note>EXERCISE EXERCISE EXERCISE: a training exercise, not a real alert.</note>" : "") +
          `<info><language>en-GB</language><category>Infra</category><event>${xmlEscape(firstLine(p.headline))}</event>` +
          `<urgency>Immediate</urgency><severity>${severity}</severity><certainty>Observed</certainty>` +
          `<expires>${iso(nowMs + p.expiresMinutes * 60_000)}</expires><senderName>${xmlEscape(sender)}</senderName><headline>${xmlEscape(p.headline)}</headline>` +
          `<description>${xmlEscape(p.description)}</description>` +
          (p.instruction.trim() === "" ? "" : `<instruction>${xmlEscape(p.instruction)}</instruction>`) +
          `<area><areaDesc>${xmlEscape(place.label)}</areaDesc>${shape}</area></info></alert>`;
        return { summary: `Public alert: ${firstLine(p.headline)}`, body, device: null };
      }
    }
  }

  /** The engine's checks of the parameters (`dispatch::validate`), with its words. */
  function validate(c: FakeBackendConfig, p: ActionParams) {
    if (KIND_OF_PARAMS[p.kind] !== c.kind)
      throw ERR.invalid(`backend ${c.id} takes ${c.kind} actions, not ${KIND_OF_PARAMS[p.kind]}`);
    const text = (field: string, v: string, required: boolean) => {
      if (required && v.trim() === "") throw ERR.invalid(`${field}: is required`);
      if (Array.from(v).length > MAX_TEXT) throw ERR.invalid(`${field}: is longer than ${MAX_TEXT} characters`);
    };
    const ident = (field: string, v: string, choices: readonly string[]) => {
      if (v.trim() === "") throw ERR.invalid(`${field}: is required`);
      // eslint-disable-next-line no-control-regex
      if (new TextEncoder().encode(v).length > MAX_ID || /[\u0000-\u001f\u007f-\u009f/+#]/.test(v))
        throw ERR.invalid(`${field}: ${JSON.stringify(v)} is not a valid identifier`);
      if (choices.length > 0 && !choices.includes(v))
        throw ERR.invalid(`${field}: ${JSON.stringify(v)} is not one of ${choices.join(", ")}`);
    };
    switch (p.kind) {
      case "serviceRequest":
        ident("serviceCode", p.serviceCode, c.choices);
        text("description", p.description, true);
        break;
      case "notify":
        text("message", p.message, true);
        break;
      case "deviceCommand":
        ident("device", p.device, []);
        ident("command", p.command, c.choices);
        break;
      case "taskUnit":
        ident("unit", p.unit, []);
        ident("task", p.task, c.choices);
        text("remarks", p.remarks, false);
        break;
      case "publicAlert":
        text("headline", p.headline, true);
        if (Array.from(p.headline).length > 160)
          throw ERR.invalid("headline: CAP headlines should stay under 160 characters");
        text("description", p.description, true);
        text("instruction", p.instruction, false);
        if (!(Number.isInteger(p.expiresMinutes) && p.expiresMinutes >= 1 && p.expiresMinutes <= 7 * 24 * 60))
          throw ERR.invalid("expiresMinutes: must be between 1 minute and 7 days");
        break;
    }
  }

  /** The headers the engine adds: content type and key over HTTP, and a webhook's or alert's signature. */
  function headers(c: FakeBackendConfig, body: string, key: string): HeaderDto[] {
    const out: HeaderDto[] = [];
    const contentType = {
      open311: "application/x-www-form-urlencoded",
      webhook: "application/json",
      cap: "application/cap+xml",
    } as const;
    if (c.kind === "open311" || c.kind === "webhook" || c.kind === "cap") {
      out.push({ name: "Content-Type", value: contentType[c.kind] }, { name: "Idempotency-Key", value: key });
    }
    if ((c.kind === "webhook" || c.kind === "cap") && c.secretEnv !== undefined) {
      // The fake holds no secret. An exercise never sends, so the engine previews it unsigned
      // and says why; outside one the fake shows a stand-in signature.
      const value = exercise
        ? `(exercise: not signed; environment variable ${c.secretEnv} (the backend's secret) is not set)`
        : `sha256=${fakeSignature(body)}`;
      out.push({ name: "X-Cityops-Signature", value });
    }
    return out;
  }

  return {
    backends: async (): Promise<BackendDto[]> => configs.map(dto),

    // In the engine's order: who asks, where, which backend, whether they may, what.
    previewAction: async (request: ActionRequestDto): Promise<ActionPreviewDto> => {
      const op = strict() ? signedIn() : deps.operator();
      if (request.incident === null && request.at === null)
        throw ERR.invalid("the action needs a place: an incident or a point on the map");
      const place = deps.locate(request);
      const c = config(request.backend);
      const backend = dto(c);
      if (strict() && backend.supervisorOnly && op?.role === "operator")
        throw ERR.forbidden(`${c.name} needs a supervisor`);
      validate(c, request.params);
      const key = randomHex(16);
      const nowMs = deps.nowMs?.() ?? Date.now();
      const r = render(request, place, key, nowMs, op?.name ?? "unknown");
      // The Open311 API key is added when sending and never shown; the preview says it is there.
      const body = c.kind === "open311" && c.secretEnv !== undefined ? `${r.body}&api_key=********` : r.body;
      const preview: ActionPreviewDto = {
        token: `preview-${randomHex(12)}`,
        backend,
        key,
        summary: r.summary,
        destination: destination(c, r.device),
        headers: headers(c, r.body, key),
        body,
        confirmations: backend.dangerous ? 2 : 1,
        exercise,
      };
      previews.set(preview.token, {
        preview,
        request,
        operator: op?.name ?? "",
        armed: false,
        scenarioMs: deps.nowMs?.() ?? null,
      });
      return preview;
    },

    armAction: async (token: string): Promise<number> => {
      const pending = pendingFor(token);
      pending.armed = true;
      return pending.preview.confirmations;
    },

    confirmAction: async (token: string): Promise<ActionDto> => {
      const pending = pendingFor(token);
      const op = signedIn();
      const { preview, request } = pending;
      if (preview.confirmations >= 2 && !pending.armed)
        throw ERR.invalid(
          `invalid input: ${preview.summary} needs ${preview.confirmations} confirmations: confirm it once first`,
        );
      previews.delete(token);
      const action: ActionDto = {
        id: nextId++,
        key: preview.key,
        incident: request.incident,
        backend: preview.backend.id,
        kind: preview.backend.kind,
        summary: preview.summary,
        destination: preview.destination,
        status: "queued",
        attempts: 0,
        reference: null,
        remoteStatus: null,
        lastError: null,
        nextAttemptMs: null,
        createdMs: Date.now(),
        scenarioMs: pending.scenarioMs,
        operator: op.name,
        exercise,
      };
      actions.push(action);
      bodies.set(action.id, pending);
      if (request.incident !== null) deps.committedFor?.(request.incident, op);
      changed();
      later(stepMs, pump);
      return { ...action };
    },

    outbox: async (): Promise<OutboxDto> => snapshot(),

    retryAction: async (id: number): Promise<void> => {
      if (strict()) signedIn();
      const a = actions.find((x) => x.id === id);
      if (!a) throw ERR.invalid(`action ${id} does not exist`);
      if (a.status !== "failed") throw ERR.invalid(`action ${id} is ${a.status}; only failed actions can be retried`);
      a.status = "queued";
      a.nextAttemptMs = null;
      pump();
    },

    cancelAction: async (id: number): Promise<void> => {
      if (strict()) signedIn();
      const a = actions.find((x) => x.id === id);
      if (!a) throw ERR.invalid(`action ${id} does not exist`);
      if (a.status !== "queued" && a.status !== "failed")
        throw ERR.invalid(`action ${id} is ${a.status}; only queued or failed actions can be cancelled`);
      a.status = "cancelled";
      a.nextAttemptMs = null;
      changed();
    },

    /** Makes a backend unreachable, or brings it back (its queued actions then go out at once). */
    setOffline(id: string, down: boolean) {
      config(id);
      if (down) offline.add(id);
      else {
        offline.delete(id);
        for (const a of actions) if (a.backend === id && a.status === "queued") a.nextAttemptMs = null;
        pump();
      }
    },

    /** The bytes an action was committed with (what the backend will receive). */
    committedBody(id: number): string | null {
      return bodies.get(id)?.preview.body ?? null;
    },

    snapshot,

    dispose() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
