// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import Header from "./Header.svelte";
import ReportOverlay from "./ReportOverlay.svelte";

afterEach(cleanup);

describe("ReportOverlay", () => {
  it("shows the engine's document in a sandboxed frame, never in this page", async () => {
    const html = `<!DOCTYPE html><html><body><p class="score">Run 1: <strong>4 of 4 points</strong></p><script>parent.alert(1)</script></body></html>`;
    const onClose = vi.fn();
    const { container } = render(ReportOverlay, { html, onClose });
    const frame = screen.getByTestId("report-frame") as HTMLIFrameElement;
    expect(frame.getAttribute("sandbox")).toBe("");
    expect(frame.getAttribute("srcdoc")).toBe(html);
    expect(container.querySelector("script, .score")).toBeNull();
    await fireEvent.click(screen.getByTestId("report-close"));
    expect(onClose).toHaveBeenCalled();
  });

  it("says so while the report is being written", () => {
    render(ReportOverlay, { html: null, onClose: () => {} });
    expect(screen.getByTestId("report-loading").textContent).toContain("Writing");
    expect(screen.queryByTestId("report-frame")).toBeNull();
  });
});

describe("Header in an exercise", () => {
  const props = {
    scenarioName: "Storm",
    status: "paused",
    tone: "idle" as const,
    backendKind: "fake" as const,
    error: null,
    onDismissError: () => {},
    operator: null,
    muted: false,
    onSignIn: () => {},
    onSignOut: () => {},
    onToggleMute: () => {},
    onHelp: () => {},
  };

  it("marks an exercise unmistakably and offers the report", async () => {
    const onReport = vi.fn();
    render(Header, { ...props, exercise: true, onReport });
    expect(screen.getByTestId("exercise-banner").textContent).toBe("EXERCISE");
    await fireEvent.click(screen.getByTestId("report-open"));
    expect(onReport).toHaveBeenCalled();
  });

  it("has no exercise mark in live work", () => {
    render(Header, { ...props, exercise: false });
    expect(screen.queryByTestId("exercise-banner")).toBeNull();
  });
});
