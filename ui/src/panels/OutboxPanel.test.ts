// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, within } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActionDto, BackendDto, OutboxDto } from "../ipc/backend";
import { applyOutbox, emptyOutbox } from "../state/outbox";
import OutboxPanel from "./OutboxPanel.svelte";

afterEach(cleanup);

const hostile = "Service request <img src=x onerror=alert(1)> at <b>Kaisaniemi</b>";

function action(id: number, patch: Partial<ActionDto> = {}): ActionDto {
  return {
    id,
    key: `k${id}`,
    incident: "inc/grid/1/0",
    backend: "city-works",
    kind: "open311",
    summary: `Service request utility-crew #${id}`,
    destination: "POST http://127.0.0.1:8311/requests.json",
    status: "queued",
    attempts: 0,
    reference: null,
    remoteStatus: null,
    lastError: null,
    nextAttemptMs: null,
    createdMs: 1_790_000_000_000 + id,
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
  choices: [],
  exercise: false,
  reachable: false,
};

function state(actions: ActionDto[], patch: Partial<OutboxDto> = {}) {
  return applyOutbox(emptyOutbox(), {
    actions,
    queued: actions.filter((a) => a.status === "queued").length,
    failed: actions.filter((a) => a.status === "failed").length,
    offline: false,
    backends: [backend],
    ...patch,
  });
}

describe("OutboxPanel", () => {
  it("lists actions newest first with status, backend, attempts, reference and errors as text", () => {
    const { container } = render(OutboxPanel, {
      outbox: state([
        action(1, { status: "delivered", attempts: 1, reference: "SR-000001", remoteStatus: "open" }),
        action(2, { status: "failed", attempts: 5, lastError: "gave up: <script>x</script>", summary: hostile }),
        action(3, { status: "queued", attempts: 2, nextAttemptMs: 1_790_000_060_000, lastError: "connection refused" }),
        action(4, { status: "sending", exercise: true }),
        action(5, { status: "cancelled" }),
      ]),
      onRetry: () => {},
      onCancel: () => {},
      onClose: () => {},
    });
    const rows = screen.getAllByTestId(/^outbox-action-/);
    expect(rows.map((r) => r.dataset.testid)).toEqual([
      "outbox-action-5",
      "outbox-action-4",
      "outbox-action-3",
      "outbox-action-2",
      "outbox-action-1",
    ]);
    expect(rows.map((r) => r.querySelector<HTMLElement>("[data-status]")?.dataset.status)).toEqual([
      "cancelled",
      "sending",
      "queued",
      "failed",
      "delivered",
    ]);
    const delivered = screen.getByTestId("outbox-action-1");
    expect(delivered.querySelector<HTMLElement>("[data-reference]")?.dataset.reference).toBe("SR-000001");
    expect(delivered.querySelector("[data-reference]")?.textContent).toBe("SR-000001");
    expect(delivered.textContent).toContain("City works Open311");
    expect(delivered.textContent).toContain("1 attempt");
    expect(delivered.textContent).toContain("remote status open");
    expect(screen.getByTestId("outbox-action-3").textContent).toMatch(/next attempt \d\d:\d\d:\d\d/);
    expect(screen.getByTestId("outbox-action-4").textContent).toContain("EXERCISE");
    const failed = screen.getByTestId("outbox-action-2");
    expect(failed.textContent).toContain(hostile);
    expect(failed.textContent).toContain("gave up: <script>x</script>");
    expect(container.querySelector("img, script, b")).toBeNull();
    expect(screen.queryByTestId("outbox-offline")).toBeNull();
    expect(screen.getByTestId("outbox-counts").textContent).toContain("2 pending · 1 failed · 1 delivered");
  });

  it("offers Retry on failed and Cancel on queued or failed, through callbacks", async () => {
    const onRetry = vi.fn();
    const onCancel = vi.fn();
    render(OutboxPanel, {
      outbox: state([
        action(1, { status: "delivered" }),
        action(2, { status: "failed" }),
        action(3, { status: "queued" }),
        action(4, { status: "sending" }),
      ]),
      onRetry,
      onCancel,
      onClose: () => {},
    });
    const buttons = (id: number) =>
      within(screen.getByTestId(`outbox-action-${id}`))
        .queryAllByRole("button")
        .map((b) => b.textContent);
    expect([1, 2, 3, 4].map(buttons)).toEqual([[], ["Retry", "Cancel"], ["Cancel"], []]);
    await fireEvent.click(within(screen.getByTestId("outbox-action-2")).getByTestId("outbox-retry"));
    expect(onRetry).toHaveBeenCalledWith(2);
    await fireEvent.click(within(screen.getByTestId("outbox-action-3")).getByTestId("outbox-cancel"));
    expect(onCancel).toHaveBeenCalledWith(3);
  });

  it("says plainly when offline", () => {
    render(OutboxPanel, {
      outbox: state([action(1), action(2), action(3)], { offline: true }),
      onRetry: () => {},
      onCancel: () => {},
      onClose: () => {},
    });
    expect(screen.getByTestId("outbox-offline").textContent).toBe(
      "Offline: 3 actions queued; they will be sent once each when the link returns",
    );
  });
});
