import { describe, expect, it } from "vitest";
import type { ActionDto, BackendDto, OutboxDto } from "../ipc/backend";
import {
  actionsOfIncident,
  applyOutbox,
  backendById,
  canCancel,
  canRetry,
  emptyOutbox,
  offlineMessage,
  outboxCounts,
  setBackends,
} from "./outbox";

function action(id: number, patch: Partial<ActionDto> = {}): ActionDto {
  return {
    id,
    key: `k${id}`,
    incident: "inc/1",
    backend: "city-works",
    kind: "open311",
    summary: `action ${id}`,
    destination: "POST http://x/requests.json",
    status: "queued",
    attempts: 0,
    reference: null,
    remoteStatus: null,
    lastError: null,
    nextAttemptMs: null,
    createdMs: 1000 + id,
    scenarioMs: null,
    operator: "Aino",
    exercise: false,
    ...patch,
  };
}

const backend: BackendDto = {
  id: "city-works",
  name: "City works Open311",
  kind: "open311",
  action: "Open a service request",
  dangerous: false,
  supervisorOnly: false,
  choices: ["utility-crew"],
  exercise: false,
  reachable: null,
};

function outbox(actions: ActionDto[], patch: Partial<OutboxDto> = {}): OutboxDto {
  return {
    actions,
    queued: actions.filter((a) => a.status === "queued").length,
    failed: 0,
    offline: false,
    backends: [backend],
    ...patch,
  };
}

describe("outbox state", () => {
  it("starts empty and not loaded", () => {
    const s = emptyOutbox();
    expect(s.loaded).toBe(false);
    expect(s.actions).toEqual([]);
    expect(offlineMessage(s)).toBeNull();
  });

  it("takes a whole outbox from a diff, newest first, and keeps the state for null", () => {
    const s = applyOutbox(emptyOutbox(), outbox([action(1), action(3), action(2, { createdMs: 1003 })]));
    expect(s.loaded).toBe(true);
    // Same millisecond: the larger id is newer.
    expect(s.actions.map((a) => a.id)).toEqual([3, 2, 1]);
    expect(applyOutbox(s, null)).toBe(s);
    const next = applyOutbox(s, outbox([action(1, { status: "delivered", reference: "SR-000001" })]));
    expect(next.actions).toHaveLength(1);
    expect(next.actions[0].reference).toBe("SR-000001");
  });

  it("replaces backends from the outbox, but not with an empty list", () => {
    const s = setBackends(emptyOutbox(), [backend]);
    expect(backendById(s, "city-works")?.reachable).toBeNull();
    const down = applyOutbox(s, outbox([], { backends: [{ ...backend, reachable: false }] }));
    expect(backendById(down, "city-works")?.reachable).toBe(false);
    expect(applyOutbox(down, outbox([], { backends: [] })).backends).toBe(down.backends);
  });

  it("selects the actions of one incident", () => {
    const s = applyOutbox(
      emptyOutbox(),
      outbox([action(1), action(2, { incident: "inc/2" }), action(3, { incident: null })]),
    );
    expect(actionsOfIncident(s, "inc/1").map((a) => a.id)).toEqual([1]);
    expect(actionsOfIncident(s, "inc/9")).toEqual([]);
    expect(actionsOfIncident(s, null)).toEqual([]);
  });

  it("shows an incident's actions as of the replay clock", () => {
    const s = applyOutbox(
      emptyOutbox(),
      outbox([action(1, { scenarioMs: 5_000 }), action(2, { scenarioMs: 9_000 }), action(3)]),
    );
    expect(actionsOfIncident(s, "inc/1", 6_000).map((a) => a.id)).toEqual([3, 1]);
    expect(actionsOfIncident(s, "inc/1", 9_000).map((a) => a.id)).toEqual([3, 2, 1]);
    expect(actionsOfIncident(s, "inc/1", 4_000).map((a) => a.id)).toEqual([3]);
    expect(actionsOfIncident(s, "inc/1").map((a) => a.id)).toEqual([3, 2, 1]);
  });

  it("counts actions per status", () => {
    const statuses = ["queued", "sending", "delivered", "delivered", "sent", "failed", "cancelled"] as const;
    const s = applyOutbox(emptyOutbox(), outbox(statuses.map((status, i) => action(i + 1, { status }))));
    // Sent (unconfirmed) is neither pending nor delivered.
    expect(outboxCounts(s)).toEqual({
      queued: 1,
      sending: 1,
      delivered: 2,
      sent: 1,
      failed: 1,
      cancelled: 1,
      pending: 2,
    });
  });

  it("says plainly when offline, with the number waiting", () => {
    const two = [action(1), action(2)];
    expect(offlineMessage(applyOutbox(emptyOutbox(), outbox(two)))).toBeNull();
    const s = applyOutbox(emptyOutbox(), outbox(two, { offline: true }));
    expect(offlineMessage(s)).toBe("Offline: 2 actions queued; they will be sent once each when the link returns");
    expect(offlineMessage(applyOutbox(s, outbox([action(1)], { offline: true })))).toContain(
      "Offline: 1 action queued;",
    );
    // The engine's count wins when the list is bounded and shows fewer.
    expect(offlineMessage(applyOutbox(s, outbox([action(1)], { offline: true, queued: 250 })))).toContain(
      "250 actions",
    );
  });

  it("allows retry for failed, cancel for queued and failed", () => {
    const by = (status: ActionDto["status"]) => action(1, { status });
    expect(
      ["queued", "sending", "delivered", "failed", "cancelled"].filter((st) => canRetry(by(st as ActionDto["status"]))),
    ).toEqual(["failed"]);
    expect(
      ["queued", "sending", "delivered", "failed", "cancelled"].filter((st) =>
        canCancel(by(st as ActionDto["status"])),
      ),
    ).toEqual(["queued", "failed"]);
  });
});
