// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import { applyDiff, emptyData } from "../state/data";
import { initialView, toggleLayer } from "../state/view";
import LayerPanel from "./LayerPanel.svelte";

afterEach(cleanup);

const T0 = Date.UTC(2026, 10, 26, 15, 0, 0);

const data = applyDiff(emptyData(), {
  reset: true,
  upserts: [
    { id: "a", layer: "transport", kind: "tram", severity: "normal", lon: 0, lat: 0, title: "a", observedMs: T0 },
    {
      id: "b",
      layer: "transport",
      kind: "tram",
      severity: "minor",
      lon: 0,
      lat: 0,
      title: "b",
      observedMs: T0 + 48_000,
    },
  ],
  clock: {
    startMs: T0,
    endMs: T0 + 3_600_000,
    nowMs: T0 + 60_000,
    playing: true,
    speed: 10,
    ingestedUntilMs: T0,
    finished: false,
    endedMs: null,
    trainerView: false,
  },
  layers: [{ layer: "transport", newestObservedMs: T0 + 48_000, count: 2 }],
  incidents: null,
  outbox: null,
  feeds: null,
  storage: null,
  site: null,
});

describe("LayerPanel", () => {
  it("shows counts and ages on the scenario clock", () => {
    render(LayerPanel, { data, view: initialView(), onToggleLayer: () => {}, onToggleTheme: () => {} });
    expect(screen.getByTestId("layer-count-transport").textContent).toBe("2");
    expect(screen.getByTestId("layer-age-transport").textContent).toBe("newest 12 s ago");
    expect(screen.getByTestId("layer-count-alerts").textContent).toBe("0");
    expect(screen.getByTestId("layer-age-alerts").textContent).toBe("no data");
    expect(screen.getByTestId("layer-age-alerts").closest("li")?.classList.contains("empty")).toBe(true);
  });

  it("reports toggles and reflects visibility", async () => {
    const onToggleLayer = vi.fn();
    const onToggleTheme = vi.fn();
    render(LayerPanel, { data, view: toggleLayer(initialView(), "security"), onToggleLayer, onToggleTheme });
    expect((screen.getByTestId("layer-toggle-security") as HTMLInputElement).checked).toBe(false);
    expect((screen.getByTestId("layer-toggle-utility") as HTMLInputElement).checked).toBe(true);
    await fireEvent.click(screen.getByTestId("layer-toggle-utility"));
    expect(onToggleLayer).toHaveBeenCalledWith("utility");
    await fireEvent.click(screen.getByTestId("style-toggle"));
    expect(onToggleTheme).toHaveBeenCalledOnce();
  });
});
