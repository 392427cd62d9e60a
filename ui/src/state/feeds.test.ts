import { describe, expect, it } from "vitest";
import type { FeedHealthDto, MapDiffDto, QuarantineDto, SiteStatusDto, StorageHealthDto } from "../ipc/backend";
import {
  applyHealth,
  applySite,
  applyStorage,
  feedStatus,
  QUARANTINE_CLOSED,
  quarantineFailed,
  quarantineLoaded,
  rejectedTotal,
  requestQuarantine,
  siteSummary,
  statusCounts,
} from "./feeds";

const feed = (id: string, patch: Partial<FeedHealthDto> = {}): FeedHealthDto => ({
  id,
  name: id,
  layer: "utility",
  format: "mqtt-json",
  transport: "mqtt",
  connected: true,
  lastMessageMs: null,
  messagesPerMinute: 0,
  lagMs: null,
  rejected: 0,
  lastReasons: [],
  stale: false,
  failures: 0,
  lastError: null,
  overloaded: false,
  heldBackMs: 0,
  ...patch,
});

const diff = (feeds: FeedHealthDto[] | null, storage: StorageHealthDto | null = null): MapDiffDto => ({
  reset: false,
  upserts: [],
  layers: [],
  incidents: null,
  outbox: null,
  feeds,
  storage,
  site: null,
  clock: {
    startMs: 0,
    endMs: 1,
    nowMs: 1,
    playing: true,
    speed: 1,
    ingestedUntilMs: 1,
    finished: false,
    endedMs: null,
    trainerView: false,
  },
});

const page = (n: number): QuarantineDto => ({ entries: [], total: n, feeds: [] });

describe("feed health", () => {
  it("marks disconnected before stale before connected", () => {
    expect(feedStatus(feed("a", { connected: false, stale: true }))).toBe("disconnected");
    expect(feedStatus(feed("a", { stale: true }))).toBe("stale");
    expect(feedStatus(feed("a"))).toBe("connected");
  });

  it("keeps the storage fault until a diff says it changed", () => {
    const full: StorageHealthDto = {
      fault: "the disk holding the database is full",
      path: "/d/live.db",
      sinceMs: 5,
      held: 40,
      faults: 1,
    };
    const s = applyStorage(null, diff(null, full));
    expect(applyStorage(s, diff(null))).toBe(s);
    expect(applyStorage(s, diff(null, { ...full, fault: null, sinceMs: null, held: 0 }))?.fault).toBeNull();
  });

  it("keeps the last health until a diff carries new health", () => {
    const first = applyHealth(null, diff([feed("a", { rejected: 2 }), feed("b", { connected: false, rejected: 1 })]));
    expect(applyHealth(first, diff(null))).toBe(first);
    expect(rejectedTotal(first)).toBe(3);
    expect(statusCounts(first)).toEqual({ disconnected: 1, stale: 0, connected: 1 });
    expect(applyHealth(null, diff(null))).toBeNull();
    expect(rejectedTotal(null)).toBe(0);
  });
});

describe("quarantine browser", () => {
  it("loads, refreshes keeping the last page, and ignores answers to older requests", () => {
    const open = requestQuarantine(QUARANTINE_CLOSED, null);
    expect(open).toMatchObject({ status: "loading", feed: null, page: null, request: 1 });
    const loaded = quarantineLoaded(open, 1, page(4));
    expect(loaded).toMatchObject({ status: "loaded", page: { total: 4 } });
    const filtered = requestQuarantine(loaded, "grid");
    expect(filtered).toMatchObject({ status: "loading", feed: "grid", page: { total: 4 }, request: 2 });
    // The unfiltered answer that was still in flight must not overwrite the filtered view.
    expect(quarantineLoaded(filtered, 1, page(9))).toBe(filtered);
    expect(quarantineLoaded(filtered, 2, page(1))).toMatchObject({
      status: "loaded",
      feed: "grid",
      page: { total: 1 },
    });
    expect(quarantineFailed(filtered, 2, { code: "internal", message: "x" })).toMatchObject({
      status: "failed",
      error: { message: "x" },
    });
    expect(quarantineLoaded(QUARANTINE_CLOSED, 1, page(1))).toBe(QUARANTINE_CLOSED);
  });
});

describe("a workstation's link to its site", () => {
  const site = (patch: Partial<SiteStatusDto> = {}): SiteStatusDto => ({
    site: "hel",
    workstation: "ws-a",
    connected: true,
    offlineSinceMs: null,
    behind: 0,
    waiting: 0,
    refused: null,
    presence: [],
    ...patch,
  });
  const clock = (ms: number) => `t${ms}`;

  it("says where the workstation stands, and what waits while the link is down", () => {
    expect(siteSummary(site(), clock)).toBe("up to date");
    expect(siteSummary(site({ behind: 12 }), clock)).toBe("12 behind");
    expect(siteSummary(site({ waiting: 1 }), clock)).toBe("up to date, 1 decision waiting");
    expect(siteSummary(site({ connected: false, offlineSinceMs: 5, waiting: 3 }), clock)).toBe(
      "offline since t5, 3 decisions waiting",
    );
  });

  it("keeps the status until a diff says it changed", () => {
    const first = applySite(null, { ...diff(null), site: site() });
    expect(first?.connected).toBe(true);
    expect(applySite(first, diff(null))).toBe(first);
    expect(applySite(first, { ...diff(null), site: site({ connected: false }) })?.connected).toBe(false);
  });
});
