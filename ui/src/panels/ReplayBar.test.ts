// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ClockDto } from "../ipc/backend";
import ReplayBar from "./ReplayBar.svelte";

afterEach(cleanup);

const START = Date.UTC(2026, 10, 26, 15, 0, 0);
const clock: ClockDto = {
  startMs: START,
  endMs: START + 3_600_000,
  nowMs: START + 600_000,
  playing: false,
  speed: 10,
  ingestedUntilMs: START + 1_800_000,
  finished: false,
  endedMs: null,
  trainerView: false,
};

function setup(c: ClockDto | null = clock) {
  const props = { clock: c, onPlayToggle: vi.fn(), onSpeed: vi.fn(), onSeek: vi.fn() };
  const r = render(ReplayBar, props);
  return { ...r, props };
}

describe("ReplayBar", () => {
  it("shows the scenario time in Helsinki", () => {
    setup();
    expect(screen.getByTestId("clock").textContent).toBe("17:10:00");
    expect(screen.getByTestId("clock-date").textContent).toBe("Thu 2026-11-26");
  });

  it("offers the four speeds by value and reports the choice", async () => {
    const { props } = setup();
    const select = screen.getByTestId("speed") as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(["1", "10", "60", "max"]);
    expect(select.value).toBe("10");
    select.value = "max";
    await fireEvent.change(select);
    expect(props.onSpeed).toHaveBeenCalledWith(null);
    select.value = "60";
    await fireEvent.change(select);
    expect(props.onSpeed).toHaveBeenLastCalledWith(60);
  });

  it("toggles play", async () => {
    const { props } = setup();
    const button = screen.getByTestId("play-toggle");
    expect(button.dataset.playing).toBe("false");
    await fireEvent.click(button);
    expect(props.onPlayToggle).toHaveBeenCalledOnce();
  });

  it("shows the dragged time while dragging and seeks only on release", async () => {
    const { props } = setup();
    const seek = screen.getByTestId("seek") as HTMLInputElement;
    expect(Number(seek.min)).toBe(clock.startMs);
    expect(Number(seek.max)).toBe(clock.endMs);
    seek.value = String(START + 1_200_000);
    await fireEvent.input(seek);
    expect(screen.getByTestId("clock").textContent).toBe("17:20:00");
    expect(props.onSeek).not.toHaveBeenCalled();
    await fireEvent.change(seek);
    expect(props.onSeek).toHaveBeenCalledWith(START + 1_200_000);
    // Until the engine's clock moves, the released position stays on show.
    expect(screen.getByTestId("clock").textContent).toBe("17:20:00");
  });

  it("shows how far the tape is ingested", () => {
    setup();
    expect((screen.getByTestId("ingest-progress") as HTMLElement).style.width).toBe("50%");
  });

  it("is disabled until the first clock arrives", () => {
    setup(null);
    expect((screen.getByTestId("play-toggle") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("clock").textContent).toBe("--:--:--");
  });
});

describe("ReplayBar in live mode", () => {
  it("shows the wall clock with a live mark and offers no replay controls", () => {
    render(ReplayBar, {
      clock: { ...clock, playing: true, speed: 1 },
      live: true,
      onPlayToggle: vi.fn(),
      onSpeed: vi.fn(),
      onSeek: vi.fn(),
    });
    expect(screen.getByTestId("replay-bar").dataset.mode).toBe("live");
    expect(screen.getByTestId("live-mark").textContent).toBe("Live");
    expect(screen.getByTestId("clock").textContent).toBe("17:10:00");
    expect(screen.getByTestId("replay-state").textContent?.trim()).toBe("live");
    expect(screen.queryByTestId("play-toggle")).toBeNull();
    expect(screen.queryByTestId("seek")).toBeNull();
    expect(screen.queryByTestId("speed")).toBeNull();
    expect(screen.queryByTestId("site-note")).toBeNull();
  });

  it("says a workstation of a site runs on the site's clock, not the wall's", () => {
    render(ReplayBar, {
      clock: { ...clock, playing: true, speed: 1 },
      live: true,
      site: "hel",
      onPlayToggle: vi.fn(),
      onSpeed: vi.fn(),
      onSeek: vi.fn(),
    });
    expect(screen.getByTestId("site-note").textContent).toContain("Site hel");
    expect(screen.getByTestId("site-note").textContent).toContain("the site's clock");
    expect(screen.getByTestId("replay-bar").textContent).not.toContain("wall clock");
  });
});

describe("ReplayBar timeline strip", () => {
  it("draws incident openings and actions where they happened on the scenario clock", () => {
    const marks = [
      { atMs: START + 900_000, kind: "incident" as const, label: "Opened: <img src=x onerror=alert(1)>" },
      { atMs: START + 1_800_000, kind: "action" as const, label: "Crew (delivered)" },
    ];
    const { container } = render(ReplayBar, { clock, marks, onPlayToggle: vi.fn(), onSpeed: vi.fn(), onSeek: vi.fn() });
    const drawn = screen.getAllByTestId("timeline-mark");
    expect(drawn.map((m) => [m.dataset.kind, m.style.left])).toEqual([
      ["incident", "25%"],
      ["action", "50%"],
    ]);
    expect(drawn[0].getAttribute("title")).toContain("<img src=x onerror=alert(1)>");
    expect(container.querySelector("img")).toBeNull();
  });
});
