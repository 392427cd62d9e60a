// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import App from "./App.svelte";
import { createFakeBackend } from "./ipc/fake";

afterEach(cleanup);

describe("App dispatch", () => {
  it("dispatches a crew from the open incident and shows it delivered with its reference", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const backend = createFakeBackend({ dispatch: { stepMs: 20 } });
    await backend.signIn("Aino", "operator", null);
    render(App, { backend });
    await waitFor(() => expect(screen.getAllByTestId("incident-entry").length).toBeGreaterThan(0));
    await fireEvent.keyDown(window, { key: "Enter" });
    await waitFor(() => expect(screen.getByTestId("dispatch-open")).toBeTruthy());
    await fireEvent.keyDown(window, { key: "s" });
    await fireEvent.click(await screen.findByTestId("dispatch-backend-city-works"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await fireEvent.click(await screen.findByTestId("dispatch-confirm"));
    await waitFor(() => expect(screen.queryByTestId("dispatch-dialog")).toBeNull());
    const row = await screen.findByTestId("incident-action-1");
    await waitFor(() => expect(row.querySelector<HTMLElement>("[data-status]")?.dataset.status).toBe("delivered"));
    expect(row.querySelector<HTMLElement>("[data-reference]")?.dataset.reference).toBe("SR-000001");
    await fireEvent.keyDown(window, { key: "o" });
    expect(screen.getByTestId("outbox-action-1").querySelector<HTMLElement>("[data-status]")?.dataset.status).toBe(
      "delivered",
    );
    backend.dispose();
  });

  it("says plainly when the link is down", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const backend = createFakeBackend({ dispatch: { stepMs: 10, retryMs: 10_000, offline: ["city-works"] } });
    await backend.signIn("Aino", "operator", null);
    render(App, { backend });
    await waitFor(() => expect(screen.getAllByTestId("incident-entry").length).toBeGreaterThan(0));
    const p = await backend.previewAction({
      backend: "city-works",
      incident: "inc/grid/1/0",
      at: null,
      params: { kind: "serviceRequest", serviceCode: "utility-crew", description: "x" },
    });
    await backend.confirmAction(p.token);
    const banner = await screen.findByTestId("offline-banner", {}, { timeout: 2000 });
    expect(banner.textContent).toContain("Offline: 1 action queued; they will be sent once each when the link returns");
    expect(screen.getByTestId("outbox-toggle").textContent).toContain("OFFLINE");
    backend.dispose();
  });
});

describe("App dispatch keys", () => {
  it("asks for a sign-in before dispatching and says what is missing without a target", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const backend = createFakeBackend();
    render(App, { backend });
    await waitFor(() => expect(screen.getAllByTestId("incident-entry").length).toBeGreaterThan(0));
    await fireEvent.keyDown(window, { key: "s" });
    expect((await screen.findByTestId("error")).textContent).toContain(
      "Nothing to dispatch for: open an incident or select a point",
    );
    await fireEvent.keyDown(window, { key: "Enter" });
    await screen.findByTestId("dispatch-open");
    await fireEvent.keyDown(window, { key: "s" });
    expect(screen.getByTestId("sign-in-dialog").textContent).toContain("Sign in to dispatch.");
    expect(screen.queryByTestId("dispatch-dialog")).toBeNull();
    backend.dispose();
  });
});
