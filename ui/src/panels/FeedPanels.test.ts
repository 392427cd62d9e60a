// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { FeedHealthDto } from "../ipc/backend";
import { createFakeBackend, FAKE_QUARANTINE } from "../ipc/fake";
import { QUARANTINE_CLOSED, quarantineLoaded, requestQuarantine } from "../state/feeds";
import FeedHealthPanel from "./FeedHealthPanel.svelte";
import QuarantinePanel from "./QuarantinePanel.svelte";

afterEach(cleanup);

const NOW = Date.UTC(2026, 10, 26, 15, 0, 0);

const feed = (id: string, patch: Partial<FeedHealthDto> = {}): FeedHealthDto => ({
  id,
  name: `Feed ${id}`,
  layer: "utility",
  format: "mqtt-json",
  transport: "mqtt",
  connected: true,
  lastMessageMs: NOW - 3_000,
  messagesPerMinute: 12,
  lagMs: 1_500,
  rejected: 0,
  lastReasons: [],
  stale: false,
  failures: 0,
  lastError: null,
  overloaded: false,
  heldBackMs: 0,
  ...patch,
});

describe("FeedHealthPanel", () => {
  it("marks each feed's state in words and shows rate, lag, age, refusals and the error as text", async () => {
    const onQuarantine = vi.fn();
    const { container } = render(FeedHealthPanel, {
      health: [
        feed("grid", { rejected: 2, lastReasons: ["$: not JSON", "$: <img src=x onerror=alert(1)>"] }),
        feed("cctv", { stale: true, lastMessageMs: NOW - 600_000 }),
        feed("tak", {
          connected: false,
          lastError: "MQTT: connection refused",
          lastMessageMs: null,
          lagMs: null,
          transport: "tcp",
        }),
      ],
      storage: null,
      live: true,
      nowMs: NOW,
      quarantineOpen: false,
      onQuarantine,
    });
    const status = (id: string) => screen.getByTestId(`feed-health-${id}`);
    expect([status("grid"), status("cctv"), status("tak")].map((e) => e.dataset.status)).toEqual([
      "connected",
      "stale",
      "disconnected",
    ]);
    expect(status("tak").querySelector("[data-testid=feed-state]")?.textContent).toBe("disconnected");
    expect(status("grid").textContent).toContain("12/min");
    expect(status("grid").textContent).toContain("lag 1 s");
    expect(status("grid").textContent).toContain("last 3 s ago");
    expect(status("grid").querySelector("[data-testid=feed-rejected]")?.textContent).toBe("2 refused");
    expect(status("grid").querySelector("[data-testid=feed-note]")?.textContent).toBe(
      "$: <img src=x onerror=alert(1)>",
    );
    expect(container.querySelector("img")).toBeNull();
    expect(status("tak").textContent).toContain("no message yet");
    expect(status("tak").querySelector("[data-testid=feed-note]")?.textContent).toBe("MQTT: connection refused");
    expect(screen.getByTestId("feed-summary").textContent?.replace(/\s+/g, " ").trim()).toBe("1 ok, 1 stale, 1 down");
    await fireEvent.click(screen.getByTestId("quarantine-toggle"));
    expect(onQuarantine).toHaveBeenCalledOnce();
  });

  it("alerts that nothing is saved while the disk refuses, and marks an overloaded feed", () => {
    render(FeedHealthPanel, {
      health: [feed("grid", { overloaded: true, heldBackMs: 12_000 })],
      storage: {
        fault: "the disk holding the database is full",
        path: "/srv/<b>cityops</b>.db",
        sinceMs: NOW - 60_000,
        held: 4_800,
        faults: 1,
      },
      live: true,
      nowMs: NOW,
      quarantineOpen: false,
      onQuarantine: () => {},
    });
    const alert = screen.getByRole("alert");
    // What the operator reads: the browser collapses runs of whitespace in the markup to one space.
    const shown = (alert.textContent ?? "").replace(/\s+/g, " ");
    expect(shown).toContain("Not saving: the disk holding the database is full.");
    expect(shown).toContain("/srv/<b>cityops</b>.db");
    expect(shown).toContain("4,800 received items held in memory");
    expect(alert.querySelector("b")).toBeNull();
    expect(screen.getByTestId("feed-overloaded").textContent).toContain("overloaded · held back 12 s");
  });

  it("tells a trainer that a replay waiting for the disk carries on by itself", () => {
    render(FeedHealthPanel, {
      health: null,
      storage: {
        fault: "the disk holding the database is full",
        path: "/srv/replay.db",
        sinceMs: NOW - 5_000,
        held: 1_250,
        faults: 1,
      },
      live: false,
      nowMs: NOW,
      quarantineOpen: false,
      onQuarantine: () => {},
    });
    const alert = screen.getByRole("alert");
    // What the operator reads: the browser collapses runs of whitespace in the markup to one space.
    const shown = (alert.textContent ?? "").replace(/\s+/g, " ");
    expect(shown).toContain("Not saving: the disk holding the database is full.");
    expect(alert.textContent?.replace(/\s+/g, " ")).toContain("1,250 items read from the tape held in memory");
    expect(alert.textContent?.replace(/\s+/g, " ")).toContain(
      "they are saved, and the replay carries on, when the disk takes writes again",
    );
  });

  it("shows no alert while the store takes writes", () => {
    render(FeedHealthPanel, {
      health: [feed("grid")],
      storage: { fault: null, path: "/srv/cityops.db", sinceMs: null, held: 0, faults: 1 },
      live: true,
      nowMs: NOW,
      quarantineOpen: false,
      onQuarantine: () => {},
    });
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.queryByTestId("feed-overloaded")).toBeNull();
  });

  it("says replay when there is no live health, and still opens the quarantine", () => {
    render(FeedHealthPanel, {
      health: null,
      storage: null,
      live: false,
      nowMs: NOW,
      quarantineOpen: true,
      onQuarantine: () => {},
    });
    expect(screen.getByTestId("feed-health").dataset.mode).toBe("replay");
    expect(screen.getByTestId("feed-health-replay").textContent).toContain("Replay");
    expect(screen.getByTestId("quarantine-toggle").getAttribute("aria-pressed")).toBe("true");
  });
});

describe("QuarantinePanel", () => {
  it("lists refused input newest first as text, and reports filter, refresh and close", async () => {
    const backend = createFakeBackend();
    const view = quarantineLoaded(requestQuarantine(QUARANTINE_CLOSED, null), 1, await backend.quarantine(null));
    if (view.status === "closed") throw new Error("the view is open");
    const onFeed = vi.fn();
    const onRefresh = vi.fn();
    const onClose = vi.fn();
    const { container } = render(QuarantinePanel, { view, onFeed, onRefresh, onClose });
    const rows = screen.getAllByTestId("quarantine-entry");
    expect(rows.map((r) => r.dataset.feed)).toEqual([...FAKE_QUARANTINE].reverse().map((e) => e.feed));
    expect(screen.getByTestId("quarantine-count").textContent?.trim()).toBe(`${FAKE_QUARANTINE.length} refused`);
    const cctv = rows.find((r) => r.dataset.feed === "cctv")!;
    expect(cctv.querySelector("[data-testid=quarantine-entry-reason]")?.textContent).toBe(
      "coordinates [0, 91] are out of range",
    );
    expect(cctv.querySelector("[data-testid=quarantine-entry-preview]")?.textContent).toContain(
      "<img src=x onerror=alert(3)>",
    );
    expect(cctv.textContent).toContain("first bytes of 2048");
    expect(container.querySelector("img")).toBeNull();
    // A transport failure or tape line has no body: no empty preview box.
    expect(
      rows.find((r) => r.dataset.feed === "tape")!.querySelector("[data-testid=quarantine-entry-preview]"),
    ).toBeNull();

    const select = screen.getByTestId("quarantine-feed") as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(["", "cctv", "grid", "tape"]);
    await fireEvent.change(select, { target: { value: "grid" } });
    expect(onFeed).toHaveBeenCalledWith("grid");
    await fireEvent.click(screen.getByTestId("quarantine-refresh"));
    expect(onRefresh).toHaveBeenCalledOnce();
    await fireEvent.click(screen.getByTestId("quarantine-close"));
    expect(onClose).toHaveBeenCalledOnce();
  });

  it("says when a feed refused nothing", async () => {
    const backend = createFakeBackend();
    const view = quarantineLoaded(
      requestQuarantine(QUARANTINE_CLOSED, "hsl-rt"),
      1,
      await backend.quarantine("hsl-rt"),
    );
    if (view.status === "closed") throw new Error("the view is open");
    render(QuarantinePanel, { view, onFeed: () => {}, onRefresh: () => {}, onClose: () => {} });
    expect(screen.getByTestId("quarantine-empty").textContent).toBe("Nothing refused from hsl-rt.");
  });
});
