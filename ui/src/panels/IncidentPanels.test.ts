// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActionDto, IncidentDetailDto, IncidentEntryDto } from "../ipc/backend";
import { createFakeBackend } from "../ipc/fake";
import { incidentLoaded, NO_INCIDENT, openIncident } from "../state/incidentDetail";
import { DEFAULT_FILTERS } from "../state/incidents";
import IncidentDetail from "./IncidentDetail.svelte";
import IncidentQueue from "./IncidentQueue.svelte";

afterEach(cleanup);

const hostile = "Signals dark: <img src=x onerror=alert(1)>";

function entry(id: string, patch: Partial<IncidentEntryDto> = {}): IncidentEntryDto {
  return {
    id,
    number: `HEL-2026-${id.padStart(6, "0")}`,
    title: hostile,
    incidentType: "signal_failure",
    severity: "severe",
    status: "new",
    active: true,
    openedMs: 0,
    clearedMs: null,
    members: 2,
    openMembers: 2,
    layers: ["transport"],
    rootCause: "node/1",
    rootCleared: false,
    manual: false,
    area: { west: 24.9, south: 60.1, east: 24.91, north: 60.11 },
    acknowledgedBy: null,
    owner: null,
    escalatedMs: null,
    ...patch,
  };
}

describe("IncidentQueue", () => {
  it("makes unacknowledged incidents stand out, flashes new ones and shows titles as text", async () => {
    const onPick = vi.fn();
    const onFlashEnd = vi.fn();
    const { container } = render(IncidentQueue, {
      queue: [entry("a"), entry("b", { status: "acknowledged", acknowledgedBy: "Aino" })],
      total: 3,
      cursor: "b",
      openId: null,
      flashing: new Set(["a"]),
      filters: DEFAULT_FILTERS,
      nowMs: 120_000,
      onPick,
      onFilters: () => {},
      onFlashEnd,
    });
    const rows = screen.getAllByTestId("incident-entry");
    expect(rows.map((r) => r.dataset.status)).toEqual(["new", "acknowledged"]);
    expect(rows[0].classList.contains("unack") && rows[0].classList.contains("flash")).toBe(true);
    expect(rows[1].classList.contains("cursor")).toBe(true);
    expect(rows[0].textContent).toContain(hostile);
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByTestId("incident-count").textContent).toBe("2 of 3");
    await fireEvent.click(rows[1]);
    expect(onPick).toHaveBeenCalledWith("b");
    await fireEvent.animationEnd(rows[0]);
    expect(onFlashEnd).toHaveBeenCalledWith("a");
  });
});

describe("IncidentQueue owners", () => {
  it("shows who is on an incident before who acknowledged it, as text", () => {
    render(IncidentQueue, {
      queue: [
        entry("a", { status: "acknowledged", acknowledgedBy: "Aino", owner: "<b>Bo</b>" }),
        entry("b", { status: "acknowledged", acknowledgedBy: "Aino" }),
      ],
      total: 2,
      cursor: null,
      openId: null,
      flashing: new Set<string>(),
      filters: DEFAULT_FILTERS,
      nowMs: 120_000,
      onPick: () => {},
      onFilters: () => {},
      onFlashEnd: () => {},
    });
    const rows = screen.getAllByTestId("incident-entry");
    expect(rows[0].textContent).toContain("<b>Bo</b> is on this");
    expect(rows[0].textContent).not.toContain("acknowledged by");
    expect(rows[0].querySelector("b")).toBeNull();
    expect(rows[1].textContent).toContain("acknowledged by Aino");
    expect(screen.getAllByTestId("incident-owner")).toHaveLength(1);
  });
});

describe("IncidentQueue presence", () => {
  it("shows who at the site's other workstations has an incident open, as text", () => {
    render(IncidentQueue, {
      queue: [entry("a"), entry("b")],
      total: 2,
      cursor: null,
      openId: null,
      flashing: new Set<string>(),
      filters: DEFAULT_FILTERS,
      nowMs: 120_000,
      onPick: () => {},
      onFilters: () => {},
      onFlashEnd: () => {},
      presence: [
        { workstation: "ws-b", operator: "Bo", incident: "a" },
        { workstation: "ws-c", operator: "<i>Cai</i>", incident: "a" },
        { workstation: "ws-d", operator: null, incident: "b" },
        { workstation: "ws-e", operator: "Eino", incident: null },
      ],
    });
    const rows = screen.getAllByTestId("incident-entry");
    expect(rows[0].querySelector("[data-testid=incident-looking]")?.textContent).toBe("Bo, <i>Cai</i> have it open");
    expect(rows[0].querySelector("i")).toBeNull();
    expect(rows[1].querySelector("[data-testid=incident-looking]")).toBeNull();
  });
});

describe("IncidentQueue with a shift's worth of incidents", () => {
  const many = Array.from({ length: 1_000 }, (_, i) => entry(`i${i}`));
  const props = (cursor: string | null) => ({
    queue: many,
    total: many.length,
    cursor,
    openId: null,
    flashing: new Set<string>(),
    filters: DEFAULT_FILTERS,
    nowMs: 0,
    onPick: () => {},
    onFilters: () => {},
    onFlashEnd: () => {},
  });

  it("draws the most urgent 200 and says how many more there are", () => {
    render(IncidentQueue, props(null));
    expect(screen.getAllByTestId("incident-entry")).toHaveLength(200);
    expect(screen.getByTestId("incident-more").textContent).toContain("800 more below");
    expect(screen.getByTestId("incident-count").textContent).toBe("1000");
  });

  it("always draws the cursor's row and some after it", () => {
    render(IncidentQueue, props("i500"));
    const rows = screen.getAllByTestId("incident-entry");
    expect(rows).toHaveLength(521);
    expect(rows.find((r) => r.dataset.id === "i500")?.classList.contains("cursor")).toBe(true);
    expect(screen.getByTestId("incident-more").textContent).toContain("479 more below");
  });
});

describe("IncidentDetail", () => {
  /** IncidentDetail's props for a loaded `d`, every callback a no-op unless `patch` gives one. */
  function detailProps(d: IncidentDetailDto, patch: Record<string, unknown> = {}) {
    return {
      detail: incidentLoaded(openIncident(NO_INCIDENT, d.entry.id), d.entry.id, d),
      others: [],
      signedIn: true,
      onClose: () => {},
      onTransition: () => {},
      onTake: () => {},
      onTickSop: () => {},
      onMerge: () => {},
      onSplit: () => {},
      onReassign: () => {},
      onUndo: () => {},
      onShowMember: () => {},
      ...patch,
    };
  }

  it("marks required and overdue steps, and lets only a supervisor resolve past them with a reason", async () => {
    const backend = createFakeBackend();
    await backend.signIn("Sari", "supervisor", "2468");
    const d: IncidentDetailDto = await backend.incident("inc/grid/1/0");
    const sop = d.sop.map((s, i) => ({ ...s, required: i < 2, dueMs: i === 1 ? 60_000 : null, overdue: i === 1 }));
    const detail = { ...d, entry: { ...d.entry, status: "acknowledged" as const }, sop };
    const onOverride = vi.fn((_id: string, _reason: string, done: () => void) => done());
    const props = detailProps(detail, { onOverride });
    const { rerender } = render(IncidentDetail, { ...props, supervisor: false });
    const steps = [...screen.getByTestId("incident-sop").querySelectorAll("li")];
    expect(steps.filter((li) => li.dataset.required === "true")).toHaveLength(2);
    expect(screen.getByTestId("sop-overdue").textContent).toContain("overdue since");
    expect(screen.queryByTestId("override-open")).toBeNull();
    await rerender({ supervisor: true });
    await fireEvent.click(screen.getByTestId("override-open"));
    const submit = screen.getByTestId("override-submit") as HTMLButtonElement;
    expect(submit.disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("override-reason"), {
      target: { value: "Grid operator confirmed by phone; logged" },
    });
    await fireEvent.click(submit);
    expect(onOverride).toHaveBeenCalledWith(
      "inc/grid/1/0",
      "Grid operator confirmed by phone; logged",
      expect.any(Function),
    );
    expect(screen.queryByTestId("override-form")).toBeNull();
  });

  it("keeps the narrative log: notes with who wrote them, as text, and a draft per incident", async () => {
    const backend = createFakeBackend();
    await backend.signIn("Aino", "operator", null);
    await backend.addNote("inc/grid/1/0", "Caller at Kaisaniemenkatu 3: <b>no power</b> since 21:12");
    const d: IncidentDetailDto = await backend.incident("inc/grid/1/0");
    const onAddNote = vi.fn((_id: string, _text: string, done: () => void) => done());
    const { rerender } = render(IncidentDetail, detailProps(d, { onAddNote }));
    const note = screen.getByTestId("incident-timeline").querySelector("li[data-kind=note]") as HTMLElement;
    expect(note.textContent).toContain("Aino");
    expect(note.textContent).toContain("<b>no power</b>");
    expect(note.querySelector("b")).toBeNull();
    const add = screen.getByTestId("note-add") as HTMLButtonElement;
    expect(add.disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("note-text"), { target: { value: "  Crew on the way, ETA 10 min " } });
    expect(add.disabled).toBe(false);
    await fireEvent.click(add);
    expect(onAddNote).toHaveBeenCalledWith("inc/grid/1/0", "Crew on the way, ETA 10 min", expect.any(Function));
    expect((screen.getByTestId("note-text") as HTMLTextAreaElement).value).toBe("");
    // A draft stays with its incident: another incident opens with an empty form.
    await fireEvent.input(screen.getByTestId("note-text"), { target: { value: "half a thought" } });
    const other: IncidentDetailDto = await backend.incident("inc/alerts/2/0");
    await rerender({ detail: incidentLoaded(openIncident(NO_INCIDENT, other.entry.id), other.entry.id, other) });
    expect((screen.getByTestId("note-text") as HTMLTextAreaElement).value).toBe("");
    await expect(backend.addNote("inc/grid/1/0", "   ")).rejects.toMatchObject({ code: "invalidInput" });
  });

  it("shows members by layer with their explanations and acts through callbacks", async () => {
    const backend = createFakeBackend();
    await backend.signIn("Aino", "operator", null);
    const d: IncidentDetailDto = await backend.incident("inc/grid/1/0");
    const onTransition = vi.fn();
    const onTake = vi.fn();
    const onTickSop = vi.fn();
    render(IncidentDetail, {
      detail: incidentLoaded(openIncident(NO_INCIDENT, d.entry.id), d.entry.id, d),
      others: [],
      signedIn: true,
      onClose: () => {},
      onTransition,
      onTake,
      onTickSop,
      onMerge: () => {},
      onSplit: () => {},
      onReassign: () => {},
      onUndo: () => {},
      onShowMember: () => {},
    });
    expect(screen.getByTestId("incident-group-transport")).toBeTruthy();
    const why = screen.getAllByTestId("member-explanation").map((e) => e.textContent);
    expect(why.some((t) => t?.includes("it is fed by that substation"))).toBe(true);
    expect(screen.getByTestId("incident-root").textContent).toContain("probable root cause");
    await fireEvent.click(screen.getByTestId("incident-acknowledged"));
    expect(onTransition).toHaveBeenCalledWith("inc/grid/1/0", "acknowledged");
    await fireEvent.click(screen.getByTestId("incident-take"));
    expect(onTake).toHaveBeenCalledWith("inc/grid/1/0");
    const box = screen.getByTestId("incident-sop").querySelector("input") as HTMLInputElement;
    await fireEvent.click(box);
    expect(onTickSop).toHaveBeenCalledWith("inc/grid/1/0", 0, true);
  });
});

describe("IncidentDetail reassignment", () => {
  it("moves a member to another open incident, never the root cause", async () => {
    const backend = createFakeBackend();
    const d: IncidentDetailDto = await backend.incident("inc/grid/1/0");
    const onReassign = vi.fn();
    render(IncidentDetail, {
      detail: incidentLoaded(openIncident(NO_INCIDENT, d.entry.id), d.entry.id, d),
      others: [entry("inc/other", { title: "Signal failure at Kaisaniemi" })],
      signedIn: true,
      onClose: () => {},
      onTransition: () => {},
      onTake: () => {},
      onTickSop: () => {},
      onMerge: () => {},
      onSplit: () => {},
      onReassign,
      onUndo: () => {},
      onShowMember: () => {},
    });
    const members = d.groups.flatMap((g) => g.members);
    const rootOf = (li: HTMLElement) =>
      members.find((m) => m.entity === li.querySelector("button.link")?.textContent)?.root;
    const rows = screen.getAllByTestId("incident-member");
    expect(rows.some((li) => rootOf(li))).toBe(true);
    for (const li of rows) expect(li.querySelector("[data-testid=member-move]") === null).toBe(rootOf(li) === true);
    const moves = screen.getAllByTestId("member-move") as HTMLSelectElement[];
    const member = moves[0].closest("li")?.querySelector("button.link")?.textContent;
    await fireEvent.change(moves[0], { target: { value: "inc/other" } });
    expect(onReassign).toHaveBeenCalledWith("inc/grid/1/0", member, "inc/other");
    expect(moves[0].value).toBe("");
  });
});

describe("IncidentDetail actions", () => {
  it("lists the incident's actions with status and reference, and opens the dispatch dialog", async () => {
    const backend = createFakeBackend();
    const d: IncidentDetailDto = await backend.incident("inc/grid/1/0");
    const a = (id: number, patch: Partial<ActionDto>): ActionDto => ({
      id,
      key: `k${id}`,
      incident: d.entry.id,
      backend: "city-works",
      kind: "open311",
      summary: "Service request utility-crew",
      destination: "POST x",
      status: "queued",
      attempts: 0,
      reference: null,
      remoteStatus: null,
      lastError: null,
      nextAttemptMs: null,
      createdMs: id,
      scenarioMs: null,
      operator: "Aino",
      exercise: false,
      ...patch,
    });
    const onDispatch = vi.fn();
    const { container } = render(IncidentDetail, {
      detail: incidentLoaded(openIncident(NO_INCIDENT, d.entry.id), d.entry.id, d),
      others: [],
      signedIn: true,
      onClose: () => {},
      onTransition: () => {},
      onTake: () => {},
      onTickSop: () => {},
      onMerge: () => {},
      onSplit: () => {},
      onReassign: () => {},
      onUndo: () => {},
      onShowMember: () => {},
      onDispatch,
      actions: [
        a(2, { status: "failed", summary: hostile, lastError: "refused <b>x</b>" }),
        a(1, { status: "delivered", reference: "SR-000001" }),
      ],
    });
    const row = screen.getByTestId("incident-action-1");
    expect(row.textContent?.replace(/\s+/g, " ").trim()).toBe("Service request utility-crew — delivered — SR-000001");
    expect(row.querySelector<HTMLElement>("[data-status]")?.dataset.status).toBe("delivered");
    expect(row.querySelector<HTMLElement>("[data-reference]")?.dataset.reference).toBe("SR-000001");
    const failed = screen.getByTestId("incident-action-2");
    expect(failed.querySelector<HTMLElement>("[data-status]")?.dataset.status).toBe("failed");
    expect(failed.textContent).toContain(hostile);
    expect(failed.textContent).toContain("refused <b>x</b>");
    expect(container.querySelector("img, b")).toBeNull();
    await fireEvent.click(screen.getByTestId("dispatch-open"));
    expect(onDispatch).toHaveBeenCalled();
  });
});
