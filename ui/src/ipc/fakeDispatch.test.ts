import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { applyOutbox, emptyOutbox, offlineMessage, type OutboxState } from "../state/outbox";
import type { ActionParams, ActionRequestDto, MapDiffDto } from "./backend";
import { createFakeBackend, type FakeBackend } from "./fake";

const INCIDENT = "inc/grid/1/0";
const crew: ActionParams = {
  kind: "serviceRequest",
  serviceCode: "utility-crew",
  description: "Feeder 2 down <b>now</b> & more",
};
const req = (backend: string, params: ActionParams, incident: string | null = INCIDENT): ActionRequestDto => ({
  backend,
  incident,
  at: incident ? null : [24.9443, 60.1717],
  params,
});

describe("fake dispatch", () => {
  let b: FakeBackend;
  let state: OutboxState;
  let diffs: MapDiffDto[];

  beforeEach(async () => {
    vi.useFakeTimers();
    b = createFakeBackend({ dispatch: { stepMs: 100, retryMs: 1000, retryBudget: 3 } });
    state = emptyOutbox();
    diffs = [];
    await b.subscribe((d) => {
      diffs.push(d);
      state = applyOutbox(state, d.outbox);
    });
  });
  afterEach(() => {
    b.dispose();
    vi.useRealTimers();
  });

  it("offers one backend of each kind, one of them supervisor-only and two dangerous", async () => {
    const list = await b.backends();
    expect(new Set(list.map((x) => x.kind))).toEqual(new Set(["open311", "webhook", "mqtt", "cot", "cap"]));
    expect(
      list
        .filter((x) => x.dangerous)
        .map((x) => x.kind)
        .sort(),
    ).toEqual(["cap", "mqtt"]);
    expect(list.find((x) => x.supervisorOnly)?.kind).toBe("cap");
  });

  it("previews the bytes of every kind, located at the incident, escaping text in XML", async () => {
    const open311 = await b.previewAction(req("city-works", crew));
    expect(open311.destination).toBe("POST http://127.0.0.1:8311/requests.json");
    expect(open311.body).toContain("service_code=utility-crew");
    expect(open311.body).toContain("description=Feeder+2+down+%3Cb%3Enow%3C%2Fb%3E+%26+more");
    // Like the engine, an incident's action is labelled with the incident's title.
    expect(open311.summary).toBe("Service request utility-crew at Power outage: Substation Kaisaniemi");
    expect(open311.confirmations).toBe(1);
    const hook = await b.previewAction(req("rescue-hook", { kind: "notify", message: "Power out <script>" }));
    expect(JSON.parse(hook.body).message).toBe("Power out <script>");
    expect(hook.headers.map((h) => h.name)).toEqual(["Content-Type", "Idempotency-Key", "X-Cityops-Signature"]);
    const mqtt = await b.previewAction(
      req("signal-control", { kind: "deviceCommand", device: "HEL-4411", command: "FLASH" }),
    );
    expect(mqtt.destination).toBe("mqtt://127.0.0.1:1883 city/devices/HEL-4411/cmd");
    expect(mqtt.confirmations).toBe(2);
    const cot = await b.previewAction(
      req("tak", { kind: "taskUnit", unit: "RPE-301", task: "t-x-i", remarks: "a<b" }, null),
    );
    expect(cot.body).toContain(`<remarks source="cityops@control-room.hel.example">a&lt;b</remarks>`);
    const cap = await b.previewAction(
      req("alert-hub", {
        kind: "publicAlert",
        headline: "Storm <now>",
        description: "d",
        instruction: "Stay in",
        severity: "severe",
        expiresMinutes: 60,
      }),
    );
    expect(cap.body).toContain("<headline>Storm &lt;now&gt;</headline>");
    expect(cap.body).toContain("<status>Actual</status>");
    expect(cap.body).toContain("<severity>Severe</severity>");
  });

  it("refuses bad params and unknown backends", async () => {
    await expect(b.previewAction(req("city-works", { ...crew, serviceCode: "nope" }))).rejects.toMatchObject({
      code: "invalidInput",
    });
    await expect(b.previewAction(req("city-works", { kind: "notify", message: "x" }))).rejects.toMatchObject({
      code: "invalidInput",
    });
    await expect(b.previewAction(req("nowhere", crew))).rejects.toMatchObject({ code: "notFound" });
  });

  it("confirms once, then delivers with a reference over a few hundred ms", async () => {
    await b.signIn("Aino", "operator", null);
    const p = await b.previewAction(req("city-works", crew));
    const a = await b.confirmAction(p.token);
    expect(a).toMatchObject({ status: "queued", key: p.key, incident: INCIDENT, operator: "Aino" });
    await expect(b.confirmAction(p.token)).rejects.toMatchObject({ code: "notFound" });
    expect(state.actions[0].status).toBe("queued");
    vi.advanceTimersByTime(100);
    expect(state.actions[0].status).toBe("sending");
    vi.advanceTimersByTime(100);
    expect(state.actions[0]).toMatchObject({
      status: "delivered",
      reference: "SR-000001",
      remoteStatus: "open",
      attempts: 1,
    });
    expect(b.committedBody(a.id)).toBe(p.body);
  });

  it("asks for two confirmations for dangerous actions and a supervisor for public alerts", async () => {
    await b.signIn("Aino", "operator", null);
    const cmd = await b.previewAction(
      req("signal-control", { kind: "deviceCommand", device: "HEL-4411", command: "FLASH" }),
    );
    await expect(b.confirmAction(cmd.token)).rejects.toMatchObject({ code: "invalidInput" });
    expect(await b.armAction(cmd.token)).toBe(2);
    expect((await b.confirmAction(cmd.token)).status).toBe("queued");
    const alert = await b.previewAction(
      req("alert-hub", {
        kind: "publicAlert",
        headline: "Storm",
        description: "d",
        instruction: "Stay in",
        severity: "severe",
        expiresMinutes: 60,
      }),
    );
    await expect(b.armAction(alert.token)).rejects.toMatchObject({ code: "forbidden" });
    await b.signIn("Sara", "supervisor", null);
    expect(await b.armAction(alert.token)).toBe(2);
    expect((await b.confirmAction(alert.token)).status).toBe("queued");
  });

  it("queues while offline, says so, fails after the budget, and sends once each when back", async () => {
    await b.signIn("Aino", "operator", null);
    b.setBackendOffline("city-works", true);
    const first = await b.confirmAction((await b.previewAction(req("city-works", crew))).token);
    const second = await b.confirmAction((await b.previewAction(req("city-works", crew))).token);
    vi.advanceTimersByTime(200);
    expect(state.offline).toBe(true);
    expect(offlineMessage(state)).toBe("Offline: 2 actions queued; they will be sent once each when the link returns");
    expect(state.actions.find((a) => a.id === first.id)?.lastError).toContain("connection refused");
    expect(state.actions.find((a) => a.id === first.id)?.nextAttemptMs).not.toBeNull();
    // The later action never overtakes the earlier one.
    expect(state.actions.find((a) => a.id === second.id)?.attempts).toBe(0);
    // Attempts at 0.2 s, 1.3 s and 2.4 s: the third exhausts the budget; the second action then starts.
    vi.advanceTimersByTime(2600);
    const failed = state.actions.find((a) => a.id === first.id)!;
    expect(failed).toMatchObject({ status: "failed", attempts: 3 });
    expect(failed.lastError).toMatch(/gave up after 3 attempts/);
    await expect(b.retryAction(second.id)).rejects.toMatchObject({ code: "invalidInput" });
    b.setBackendOffline("city-works", false);
    await b.retryAction(first.id);
    vi.advanceTimersByTime(2000);
    expect(state.actions.map((a) => [a.id, a.status])).toEqual([
      [second.id, "delivered"],
      [first.id, "delivered"],
    ]);
    expect(new Set(state.actions.map((a) => a.reference)).size).toBe(2);
    expect(state.offline).toBe(false);
    expect(diffs.every((d) => d.outbox === null || d.outbox.actions.length <= 2)).toBe(true);
  });

  it("cancels queued and failed actions only", async () => {
    await b.signIn("Aino", "operator", null);
    b.setBackendOffline("city-works", true);
    const a = await b.confirmAction((await b.previewAction(req("city-works", crew))).token);
    await b.cancelAction(a.id);
    expect(state.actions[0].status).toBe("cancelled");
    vi.advanceTimersByTime(5000);
    expect(state.actions[0]).toMatchObject({ status: "cancelled", attempts: 0 });
    await expect(b.cancelAction(a.id)).rejects.toMatchObject({ code: "invalidInput" });
  });

  it("marks exercise actions and CAP status Exercise in training", async () => {
    const t = createFakeBackend({ dispatch: { exercise: true } });
    const cap = await t.previewAction(
      req("alert-hub", {
        kind: "publicAlert",
        headline: "Drill",
        description: "d",
        instruction: "none",
        severity: "minor",
        expiresMinutes: 30,
      }),
    );
    expect(cap.exercise).toBe(true);
    expect(cap.backend.exercise).toBe(true);
    expect(cap.body).toContain("<status>Exercise</status>");
  });
});
