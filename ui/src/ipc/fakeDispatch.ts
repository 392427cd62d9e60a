/**
 * The fake backend's dispatch side: five configured backends (one of each kind), previews that
 * render plausible bodies (an Open311 form, webhook and MQTT JSON, CoT and CAP XML), and an
 * in-memory outbox whose sender moves actions queued → sending → delivered over a few hundred
 * milliseconds, retrying while a backend is offline and failing after a retry budget.
 *
 * It imitates the engine's rules closely enough for the panels to be exercised: a preview token
 * is confirmed once, dangerous actions need two confirmations, public alerts need a supervisor
 * or trainer, retry only for failed actions, cancel only for queued or failed ones. Every change
 * is reported through `onChange` with the whole outbox, as the engine's diffs carry it.
 */
import type {
  ActionDto,
  ActionParams,
  ActionPreviewDto,
  ActionRequestDto,
  AlertSeverity,
  BackendDto,
  HeaderDto,
  OperatorDto,
  OutboxDto,
} from "./backend";

type Config = Omit<BackendDto, "exercise" | "reachable"> & { endpoint: string };

/** The fake's backend configuration, one of each kind. */
export const FAKE_BACKENDS: readonly Config[] = [
  {
    id: "city-works", name: "City works Open311", kind: "open311", action: "Open a service request for a field crew",
    dangerous: false, supervisorOnly: false, choices: ["utility-crew", "public-works", "tree-removal", "street-lighting"],
    endpoint: "http://127.0.0.1:8311/requests.json",
  },
  {
    id: "rescue-hook", name: "Helsinki Rescue Department", kind: "webhook", action: "Notify another agency's system",
    dangerous: false, supervisorOnly: false, choices: [], endpoint: "http://127.0.0.1:9000/hooks/rescue",
  },
  {
    id: "signal-control", name: "Traffic signal control", kind: "mqtt", action: "Command a device (signal, valve, feeder)",
    dangerous: true, supervisorOnly: false, choices: ["FLASH", "NORMAL", "DARK", "VALVE_CLOSE", "FEEDER_ISOLATE"],
    endpoint: "mqtt://127.0.0.1:1883",
  },
  {
    id: "tak", name: "Field units (TAK)", kind: "cot", action: "Task a field unit or place a marker",
    dangerous: false, supervisorOnly: false, choices: ["respond", "investigate", "marker"], endpoint: "tcp://127.0.0.1:8087",
  },
  {
    id: "alert-hub", name: "Public alert hub (CAP)", kind: "cap", action: "Publish a public alert",
    dangerous: true, supervisorOnly: true, choices: [], endpoint: "http://127.0.0.1:9000/hooks/alert-hub",
  },
];

export type FakeDispatchOptions = {
  /** Training or replay: every backend is marked exercise, and CAP alerts say `Exercise`. */
  exercise?: boolean;
  /** Real milliseconds from queued to sending and from sending to the backend's answer. */
  stepMs?: number;
  /** Real milliseconds between attempts while a backend is unreachable. */
  retryMs?: number;
  /** Attempts before an unreachable backend's action is marked failed. */
  retryBudget?: number;
  /** Backends (by id) that start unreachable. */
  offline?: readonly string[];
};

/** Where an action is aimed: a position and a label for summaries. */
export type Place = { lon: number; lat: number; label: string };

export type FakeDispatchDeps = {
  operator: () => OperatorDto | null;
  /** Locates a request (its incident's root cause, or the point); throws an ApiError if it cannot. */
  locate: (request: ActionRequestDto) => Place;
  onChange: (outbox: OutboxDto) => void;
  /** The scenario clock now, stamped on committed actions (the exercise's timeline). */
  nowMs?: () => number;
};

type Pending = { preview: ActionPreviewDto; request: ActionRequestDto; armed: boolean };

const ERR = {
  invalid: (message: string) => ({ code: "invalidInput" as const, message }),
  notFound: (message: string) => ({ code: "notFound" as const, message }),
  forbidden: (message: string) => ({ code: "forbidden" as const, message }),
};

/** Escapes text for XML element content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

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

const KIND_OF_PARAMS: Record<ActionParams["kind"], BackendDto["kind"]> = {
  serviceRequest: "open311",
  notify: "webhook",
  deviceCommand: "mqtt",
  taskUnit: "cot",
  publicAlert: "cap",
};

const SEVERITIES: readonly AlertSeverity[] = ["extreme", "severe", "moderate", "minor"];

export function createFakeDispatch(opts: FakeDispatchOptions, deps: FakeDispatchDeps) {
  const exercise = opts.exercise ?? false;
  const stepMs = opts.stepMs ?? 200;
  const retryMs = opts.retryMs ?? 2000;
  const retryBudget = opts.retryBudget ?? 5;
  const offline = new Set(opts.offline ?? []);
  const reachable = new Map<string, boolean | null>(FAKE_BACKENDS.map((b) => [b.id, null]));
  const previews = new Map<string, Pending>();

  /** The pending preview of `token`, checked as the engine checks it at every confirmation. */
  function pendingFor(token: string): Pending {
    const op = deps.operator();
    if (!op) throw ERR.forbidden("sign in first: every action is recorded with the operator's name");
    const pending = previews.get(token);
    if (!pending) throw ERR.notFound("this preview was already confirmed or has expired; preview the action again");
    if (pending.preview.backend.supervisorOnly && op.role === "operator") throw ERR.forbidden(`${pending.preview.backend.action}: only a supervisor or trainer may send this`);
    return pending;
  }
  const actions: ActionDto[] = [];
  const bodies = new Map<number, Pending>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const references = new Map<string, number>();
  let nextToken = 1;
  let nextId = 1;

  const dto = (c: Config): BackendDto => {
    const { endpoint: _endpoint, ...rest } = c;
    return { ...rest, exercise, reachable: reachable.get(c.id) ?? null };
  };
  const config = (id: string): Config => {
    const c = FAKE_BACKENDS.find((b) => b.id === id);
    if (!c) throw ERR.notFound(`no backend ${JSON.stringify(id)} is configured`);
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
      offline: pendingBackends.size > 0 && [...pendingBackends].every((id) => reachable.get(id) === false),
      backends: FAKE_BACKENDS.map(dto),
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
      case "open311": return `SR-${six}`;
      case "webhook": return `RX-${six}`;
      case "mqtt": return "ack";
      case "cot": return `tak-${six}`;
      case "cap": return `hub-${six}`;
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
    if (offline.has(a.backend)) {
      reachable.set(a.backend, false);
      a.lastError = `connection refused: ${c.endpoint.replace(/^\w+:\/\//, "").replace(/\/.*$/, "")}`;
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

  function render(c: Config, request: ActionRequestDto, place: Place, key: string): { summary: string; destination: string; headers: HeaderDto[]; body: string } {
    const p = request.params;
    const op = deps.operator()?.name ?? "unknown";
    const sent = new Date().toISOString().replace(/\.\d{3}Z$/, "+00:00");
    const lat = place.lat.toFixed(6);
    const lon = place.lon.toFixed(6);
    const idem: HeaderDto = { name: "Idempotency-Key", value: key };
    switch (p.kind) {
      case "serviceRequest": {
        const body = new URLSearchParams({
          service_code: p.serviceCode, lat, long: lon, description: p.description, address_string: place.label,
          "attribute[incident]": request.incident ?? "", "attribute[operator]": op,
        }).toString();
        return {
          summary: `Service request ${p.serviceCode} at ${place.label}`, destination: `POST ${c.endpoint}`,
          headers: [{ name: "Content-Type", value: "application/x-www-form-urlencoded" }, idem], body,
        };
      }
      case "notify": {
        const body = JSON.stringify({ key, sent, incident: request.incident, location: { lon: place.lon, lat: place.lat, label: place.label }, message: p.message, operator: op }, null, 2);
        return {
          summary: `Notify ${c.name}: ${p.message.slice(0, 60)}`, destination: `POST ${c.endpoint}`,
          headers: [{ name: "Content-Type", value: "application/json" }, idem, { name: "X-Cityops-Signature", value: `sha256=${fakeSignature(body)}` }],
          body,
        };
      }
      case "deviceCommand": {
        const topic = `city/devices/${p.device}`;
        const body = JSON.stringify({ key, device: p.device, command: p.command, incident: request.incident, issued: sent, operator: op }, null, 2);
        return {
          summary: `Device command ${p.command} to ${p.device}`, destination: `${c.endpoint} ${topic}/cmd`,
          headers: [{ name: "QoS", value: "1" }, { name: "Response-Topic", value: `${topic}/reply` }, { name: "Correlation-Data", value: key }, { name: "Content-Type", value: "application/json" }],
          body,
        };
      }
      case "taskUnit": {
        const stale = new Date(Date.now() + 30 * 60_000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
        const type = p.task === "marker" ? "b-m-p-s-m" : "t-x-t-a";
        const body = [
          `<?xml version="1.0" encoding="UTF-8"?>`,
          `<event version="2.0" uid="${xmlEscape(key)}" type="${type}" how="h-g-i-g-o" time="${sent}" start="${sent}" stale="${stale}">`,
          `  <point lat="${lat}" lon="${lon}" hae="0" ce="25" le="9999999"/>`,
          `  <detail>`,
          `    <contact callsign="cityops ${xmlEscape(op)}"/>`,
          `    <tasking unit="${xmlEscape(p.unit)}" task="${xmlEscape(p.task)}"${request.incident ? ` incident="${xmlEscape(request.incident)}"` : ""}/>`,
          `    <remarks>${xmlEscape(p.remarks)}</remarks>`,
          `  </detail>`,
          `</event>`,
        ].join("\n");
        return { summary: `Task ${p.unit}: ${p.task} at ${place.label}`, destination: c.endpoint, headers: [{ name: "Protocol", value: "TAK stream, CoT XML" }], body };
      }
      case "publicAlert": {
        const expires = new Date(Date.now() + p.expiresMinutes * 60_000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
        const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
        const body = [
          `<?xml version="1.0" encoding="UTF-8"?>`,
          `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`,
          `  <identifier>${xmlEscape(key)}</identifier>`,
          `  <sender>cityops@hel.fi</sender>`,
          `  <sent>${sent}</sent>`,
          `  <status>${exercise ? "Exercise" : "Actual"}</status>`,
          `  <msgType>Alert</msgType>`,
          `  <scope>Public</scope>`,
          `  <info>`,
          `    <language>en-GB</language>`,
          `    <category>Safety</category>`,
          `    <event>${xmlEscape(p.headline)}</event>`,
          `    <urgency>Immediate</urgency>`,
          `    <severity>${cap(p.severity)}</severity>`,
          `    <certainty>Observed</certainty>`,
          `    <expires>${expires}</expires>`,
          `    <senderName>City of Helsinki control room</senderName>`,
          `    <headline>${xmlEscape(p.headline)}</headline>`,
          `    <description>${xmlEscape(p.description)}</description>`,
          `    <instruction>${xmlEscape(p.instruction)}</instruction>`,
          `    <area>`,
          `      <areaDesc>${xmlEscape(place.label)}</areaDesc>`,
          `      <circle>${lat},${lon} 0.5</circle>`,
          `    </area>`,
          `  </info>`,
          `</alert>`,
        ].join("\n");
        return {
          summary: `Public alert "${p.headline}" for ${place.label}`, destination: `POST ${c.endpoint}`,
          headers: [{ name: "Content-Type", value: "application/cap+xml" }, idem], body,
        };
      }
    }
  }

  function validate(c: Config, p: ActionParams) {
    if (KIND_OF_PARAMS[p.kind] !== c.kind) throw ERR.invalid(`${c.name} takes ${c.kind} actions, not ${p.kind}`);
    const need = (what: string, v: string) => {
      if (v.trim() === "") throw ERR.invalid(`${what} is required`);
    };
    const choice = (what: string, v: string) => {
      if (!c.choices.includes(v)) throw ERR.invalid(`${what} ${JSON.stringify(v)} is not one ${c.name} offers`);
    };
    switch (p.kind) {
      case "serviceRequest": choice("service code", p.serviceCode); need("a description", p.description); break;
      case "notify": need("a message", p.message); break;
      case "deviceCommand": need("a device", p.device); choice("command", p.command); break;
      case "taskUnit": need("a unit", p.unit); choice("task", p.task); break;
      case "publicAlert":
        need("a headline", p.headline); need("a description", p.description); need("an instruction", p.instruction);
        if (!SEVERITIES.includes(p.severity)) throw ERR.invalid(`severity ${p.severity} is not a CAP severity`);
        if (!(Number.isInteger(p.expiresMinutes) && p.expiresMinutes >= 5 && p.expiresMinutes <= 24 * 60)) throw ERR.invalid("an alert expires in 5 minutes to 24 hours");
        break;
    }
  }

  return {
    backends: async (): Promise<BackendDto[]> => FAKE_BACKENDS.map(dto),

    previewAction: async (request: ActionRequestDto): Promise<ActionPreviewDto> => {
      const c = config(request.backend);
      validate(c, request.params);
      if (request.incident === null && request.at === null) throw ERR.invalid("an action needs an incident or a point on the map");
      const place = deps.locate(request);
      const token = `preview-${nextToken++}`;
      const key = `cityops-${Date.now().toString(36)}-${String(nextId + previews.size).padStart(6, "0")}`;
      const r = render(c, request, place, key);
      const preview: ActionPreviewDto = { token, backend: dto(c), key, ...r, confirmations: c.dangerous ? 2 : 1, exercise };
      previews.set(token, { preview, request, armed: false });
      return preview;
    },

    armAction: async (token: string): Promise<number> => {
      const pending = pendingFor(token);
      pending.armed = true;
      return pending.preview.confirmations;
    },

    confirmAction: async (token: string): Promise<ActionDto> => {
      const pending = pendingFor(token);
      const op = deps.operator()!;
      const { preview, request } = pending;
      if (preview.confirmations >= 2 && !pending.armed) throw ERR.invalid(`${preview.backend.action} needs ${preview.confirmations} confirmations: confirm it once first`);
      previews.delete(token);
      const action: ActionDto = {
        id: nextId++, key: preview.key, incident: request.incident, backend: preview.backend.id, kind: preview.backend.kind,
        summary: preview.summary, destination: preview.destination, status: "queued", attempts: 0, reference: null, remoteStatus: null,
        lastError: null, nextAttemptMs: null, createdMs: Date.now(), scenarioMs: deps.nowMs?.() ?? null, operator: op.name, exercise,
      };
      actions.push(action);
      bodies.set(action.id, pending);
      changed();
      later(stepMs, pump);
      return { ...action };
    },

    outbox: async (): Promise<OutboxDto> => snapshot(),

    retryAction: async (id: number): Promise<void> => {
      const a = actions.find((x) => x.id === id);
      if (!a) throw ERR.notFound(`no action ${id}`);
      if (a.status !== "failed") throw ERR.invalid(`action ${id} is ${a.status}; only a failed action can be retried`);
      a.status = "queued";
      a.nextAttemptMs = null;
      pump();
    },

    cancelAction: async (id: number): Promise<void> => {
      const a = actions.find((x) => x.id === id);
      if (!a) throw ERR.notFound(`no action ${id}`);
      if (a.status !== "queued" && a.status !== "failed") throw ERR.invalid(`action ${id} is ${a.status}; only a queued or failed action can be cancelled`);
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
