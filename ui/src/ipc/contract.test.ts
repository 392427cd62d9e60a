/**
 * The contract suite (`fixtures/contract/`) against the fake backend. The same cases run
 * against the real engine in `src-tauri/crates/engine/tests/contract.rs`, so the rules the
 * fake imitates (lifecycle order, roles, dispatch validation, rendered previews, the outbox's
 * statuses) cannot drift from the engine without one of the two failing.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { isApiError, type IncidentEntryDto, type MapDiffDto } from "./backend";
import { createFakeBackend, FAKE_SCENARIO, type FakeBackend, type FakeRosterEntry } from "./fake";
import type { FakeBackendConfig } from "./fakeDispatch";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Step = {
  call: string;
  args?: Json[];
  ok?: Json;
  error?: { code: string; message: string };
  as?: string;
  eventually?: boolean;
  bind?: Record<string, string>;
};
type Case = { name: string; why: string; steps: Step[] };
type Suite = {
  setup: {
    scenario: { startMs: number; endMs: number };
    exercise: boolean;
    sender: string;
    roster: FakeRosterEntry[];
    backends: FakeBackendConfig[];
  };
  cases: Case[];
};

const SUITE: Suite = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../../fixtures/contract/suite.json", import.meta.url)), "utf8"),
);
/** How long an `eventually` step may keep asking before its last answer counts. */
const EVENTUALLY_MS = 5000;

type Bound = Map<string, Json>;

/** A placeholder's name: letters, digits, `_`, `$` and dots (JSON's `{"` never is one). */
const NAME = /^[A-Za-z$][A-Za-z0-9_$.]*$/;

function lookup(name: string, bound: Bound): Json {
  const [first, ...fields] = name.split(".");
  if (!bound.has(first)) throw new Error(`{${name}}: nothing is bound to ${first}`);
  let v = bound.get(first) as Json;
  for (const f of fields) {
    if (v === null || typeof v !== "object" || !(f in v)) throw new Error(`{${name}}: no field ${f}`);
    v = (v as Record<string, Json>)[f];
  }
  return v;
}

/**
 * Replaces `{name}` and `{name.field}` by bound values: a string that is one placeholder
 * becomes the value itself (an action id stays a number), others get the text spliced in.
 */
function interpolate(v: Json | undefined, bound: Bound): Json {
  if (v === undefined) return null;
  if (typeof v === "string") {
    const whole = /^\{([^{}]*)\}$/.exec(v);
    if (whole && NAME.test(whole[1])) return lookup(whole[1], bound);
    return v.replace(/\{([^{}]*)\}/g, (all, name: string) => {
      if (!NAME.test(name)) return all;
      const x = lookup(name, bound);
      return typeof x === "string" ? x : JSON.stringify(x);
    });
  }
  if (Array.isArray(v)) return v.map((x) => interpolate(x, bound));
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, bound)]));
  return v;
}

/**
 * Why `got` does not match `want` (or null when it does): objects by the keys `want` names,
 * arrays element by element, `{"$hex": n}` any n lowercase hex digits, strings interpolated.
 */
function mismatch(want: Json, got: unknown, bound: Bound, at = "$"): string | null {
  const fail = () => `at ${at}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
  if (want !== null && typeof want === "object" && !Array.isArray(want)) {
    if ("$hex" in want)
      return typeof got === "string" && new RegExp(`^[0-9a-f]{${want.$hex}}$`).test(got) ? null : fail();
    if (got === null || typeof got !== "object" || Array.isArray(got)) return fail();
    for (const [k, w] of Object.entries(want)) {
      if (!(k in got)) return `at ${at}: no field ${k} in ${JSON.stringify(got)}`;
      const m = mismatch(w, (got as Record<string, unknown>)[k], bound, `${at}.${k}`);
      if (m) return m;
    }
    return null;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return fail();
    if (want.length !== got.length)
      return `at ${at}: expected ${want.length} elements, got ${got.length}: ${JSON.stringify(got)}`;
    for (let i = 0; i < want.length; i++) {
      const m = mismatch(want[i], got[i], bound, `${at}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (typeof want === "string") {
    const w = interpolate(want, bound);
    return w === got ? null : `at ${at}: expected ${JSON.stringify(w)}, got ${JSON.stringify(got)}`;
  }
  // A void call resolves to `undefined`, which the suite writes as null.
  return want === (got === undefined ? null : got) ? null : fail();
}

type Answer = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Checks an answer against the step's `ok` (success, matching) or `error` (exactly this). */
function verdict(step: Step, answer: Answer, bound: Bound): string | null {
  if (step.error) {
    const want = interpolate(step.error, bound);
    if (answer.ok) return `expected the error ${JSON.stringify(want)}, got success ${JSON.stringify(answer.value)}`;
    const got = isApiError(answer.error) ? { code: answer.error.code, message: answer.error.message } : answer.error;
    return JSON.stringify(got) === JSON.stringify(want)
      ? null
      : `expected the error ${JSON.stringify(want)}, got ${JSON.stringify(answer.error)}`;
  }
  if (!answer.ok) return `expected success, got the error ${JSON.stringify(answer.error)}`;
  if (!("ok" in step)) return null;
  const withAnswer = new Map(bound).set("$", answer.value as Json);
  return mismatch(step.ok as Json, answer.value, withAnswer);
}

/** One `Backend` call by its name, with positional arguments. */
async function call(b: FakeBackend, name: string, args: Json[]): Promise<Answer> {
  const f = (b as unknown as Record<string, unknown>)[name];
  if (typeof f !== "function") throw new Error(`the suite calls ${name}, which the fake does not have`);
  try {
    return { ok: true, value: await (f as (...a: Json[]) => Promise<unknown>)(...args) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Subscribes and binds each name of `bind` to the id of the queued incident of that type. */
async function subscribe(b: FakeBackend, step: Step, bound: Bound) {
  let first: MapDiffDto | null = null;
  await b.subscribe((d) => {
    first ??= d;
  });
  const incidents: IncidentEntryDto[] = (first as MapDiffDto | null)?.incidents?.upserts ?? [];
  for (const [name, type] of Object.entries(step.bind ?? {})) {
    const found = incidents.filter((i) => i.incidentType === type);
    if (found.length !== 1) throw new Error(`${found.length} queued incidents of type ${type}, not one`);
    bound.set(name, found[0].id);
  }
}

async function runStep(b: FakeBackend, step: Step, bound: Bound): Promise<string | null> {
  if (step.call === "subscribe") {
    await subscribe(b, step, bound);
    return null;
  }
  const args = interpolate(step.args ?? [], bound) as Json[];
  const started = Date.now();
  for (;;) {
    const answer = await call(b, step.call, args);
    const wrong = verdict(step, answer, bound);
    if (wrong === null) {
      if (step.as && answer.ok) bound.set(step.as, answer.value as Json);
      return null;
    }
    if (!step.eventually || Date.now() - started > EVENTUALLY_MS) return wrong;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the fake backend keeps the contract", () => {
  const { setup } = SUITE;
  let backend: FakeBackend | null = null;
  afterEach(() => backend?.dispose());

  it("has cases", () => {
    expect(SUITE.cases.length).toBeGreaterThan(0);
  });

  for (const c of SUITE.cases) {
    it(c.name, async () => {
      // The suite's shared setup: the engine's clock span, its roster and its backends, and a
      // replay's exercise mode. The sender steps quickly so `eventually` steps settle soon.
      backend = createFakeBackend({
        scenario: { ...FAKE_SCENARIO, startMs: setup.scenario.startMs, endMs: setup.scenario.endMs },
        startAtMs: setup.scenario.startMs,
        roster: setup.roster,
        dispatch: { exercise: setup.exercise, sender: setup.sender, backends: setup.backends, stepMs: 5 },
      });
      const bound: Bound = new Map();
      for (const [i, step] of c.steps.entries()) {
        const wrong = await runStep(backend, step, bound);
        expect(wrong, `step ${i + 1} ${JSON.stringify(step)}`).toBeNull();
      }
    });
  }
});
