// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import App from "./App.svelte";
import { createFakeBackend } from "./ipc/fake";
import TrainerPanel from "./panels/TrainerPanel.svelte";

afterEach(cleanup);

describe("Ending an exercise", () => {
  it("asks first, closes the trainee's record and opens the report with the score", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const backend = createFakeBackend();
    await backend.signIn("Aino", "operator", null);
    render(App, { backend });
    await waitFor(() => expect(screen.getAllByTestId("incident-entry").length).toBeGreaterThan(0));
    const first = screen.getAllByTestId("incident-entry")[0];
    await fireEvent.keyDown(window, { key: "a" });
    await waitFor(() => expect((first.textContent ?? "").toLowerCase()).toContain("acknowledged"));
    await fireEvent.keyDown(window, { key: "e" });
    const confirm = await screen.findByTestId("confirm");
    expect(confirm.textContent).toContain("End the exercise?");
    // The confirm button has the focus: Enter ends it, Escape would cancel.
    expect(document.activeElement).toBe(screen.getByTestId("confirm-ok"));
    await fireEvent.click(screen.getByTestId("confirm-ok"));
    const frame = (await screen.findByTestId("report-frame")) as HTMLIFrameElement;
    expect(frame.getAttribute("srcdoc")).toContain("Exercise ended by Aino.");
    expect(frame.getAttribute("srcdoc")).toContain("Run 1: <strong>1 of 1 points</strong>");
    await waitFor(() => expect(screen.getByTestId("exercise-banner").textContent).toBe("EXERCISE ENDED"));
    expect(screen.queryByTestId("end-exercise")).toBeNull();
    await fireEvent.keyDown(window, { key: "Escape" });
    await fireEvent.keyDown(window, { key: "j" });
    await fireEvent.keyDown(window, { key: "a" });
    expect((await screen.findByTestId("error")).textContent).toContain("the exercise has ended");
    backend.dispose();
  });

  it("cancels on Escape and changes nothing", async () => {
    const backend = createFakeBackend();
    await backend.signIn("Aino", "operator", null);
    render(App, { backend });
    await waitFor(() => expect(screen.getAllByTestId("incident-entry").length).toBeGreaterThan(0));
    await fireEvent.keyDown(window, { key: "e" });
    await fireEvent.keyDown(await screen.findByTestId("confirm"), { key: "Escape" });
    expect(screen.queryByTestId("confirm")).toBeNull();
    expect((await backend.exercise()).endedMs).toBeNull();
    backend.dispose();
  });
});

describe("Trainer view and KPIs from the operator's window", () => {
  it("hands the clock to the trainer view and shows the KPI charts as images", async () => {
    const backend = createFakeBackend();
    render(App, { backend });
    await waitFor(() => expect(screen.getByTestId("play-toggle")).toBeTruthy());
    expect((screen.getByTestId("play-toggle") as HTMLButtonElement).disabled).toBe(false);
    await fireEvent.keyDown(window, { key: "t" });
    await screen.findByTestId("clock-locked");
    expect((screen.getByTestId("play-toggle") as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByTestId("seek") as HTMLInputElement).disabled).toBe(true);
    // Space no longer plays: the clock is the trainer's.
    await fireEvent.keyDown(window, { key: " " });
    expect(backend.clock.playing).toBe(false);

    await fireEvent.keyDown(window, { key: "g" });
    const chart = await screen.findByTestId("kpi-chart");
    const img = chart.querySelector("img");
    expect(img?.getAttribute("src")).toMatch(/^data:image\/svg\+xml;charset=utf-8,%3Csvg/);
    expect(screen.getByTestId("kpi").querySelector("svg")).toBeNull();
    await fireEvent.keyDown(window, { key: "g" });
    expect(screen.queryByTestId("kpi")).toBeNull();
    backend.dispose();
  });
});

describe("TrainerPanel", () => {
  const options = [
    {
      id: "trip",
      title: "Substation trip",
      kind: "substation.trip",
      layer: "utility" as const,
      severity: "extreme" as const,
      assetType: "substation",
      snapM: 400,
    },
    {
      id: "report",
      title: "Citizen <b>report</b>",
      kind: "report.outage",
      layer: "alerts" as const,
      severity: "minor" as const,
      assetType: null,
      snapM: 150,
    },
  ];
  const exercise = {
    injects: [
      {
        n: 1,
        inject: "trip",
        scenarioMs: Date.UTC(2026, 10, 26, 19, 2),
        trainer: "Tiina",
        entity: "way/1",
        title: "Substation trip: Kaisankuja",
      },
    ],
    score: {
      points: 1,
      maxPoints: 2,
      objectives: [
        { id: "ack", title: "Acknowledge within 60 s", outcome: "met", points: 1, detail: "" },
        { id: "crew", title: "Send a crew", outcome: "missed", points: 0, detail: "" },
      ],
    },
    endedMs: null,
    endedBy: null,
  };

  it("needs the trainer's name, arms one inject and says where it will snap", async () => {
    const onArm = vi.fn();
    const { rerender } = render(TrainerPanel, {
      options,
      armed: null,
      trainer: "",
      exercise,
      onTrainer: () => {},
      onArm,
      onEnd: () => {},
      onReport: () => {},
      onClose: () => {},
    });
    const buttons = screen.getAllByTestId("inject-option") as HTMLButtonElement[];
    expect(buttons.every((b) => b.disabled)).toBe(true);
    expect(screen.getByTestId("inject-hint").textContent).toContain("Type your name");
    // Scenario text is shown as text.
    expect(buttons[1].textContent).toContain("Citizen <b>report</b>");
    await rerender({ trainer: "Tiina" });
    await fireEvent.click(buttons[0]);
    expect(onArm).toHaveBeenCalledWith("trip");
    await rerender({ armed: "trip" });
    expect(screen.getByTestId("inject-hint").textContent).toContain("snaps to the nearest substation within 400 m");
    expect(screen.getByTestId("injects-made").textContent).toContain("Substation trip: Kaisankuja");
    expect(screen.getByTestId("trainer-score").textContent).toBe("1 of 2 points so far");
    await rerender({ exercise: { ...exercise, endedMs: 1, endedBy: "Tiina" } });
    expect((screen.getByTestId("trainer-end") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("inject-hint").textContent).toContain("The exercise has ended.");
  });

  it("on an exercise site, signs the trainer in with a PIN and has no view to close", async () => {
    const onSignIn = vi.fn();
    const onSignOut = vi.fn();
    const { rerender } = render(TrainerPanel, {
      options,
      armed: null,
      trainer: "",
      exercise,
      site: true,
      onTrainer: () => {},
      onArm: () => {},
      onEnd: () => {},
      onReport: () => {},
      onClose: () => {},
      onSignIn,
      onSignOut,
    });
    expect(screen.queryByTestId("trainer-name")).toBeNull();
    expect(screen.queryByTestId("trainer-close")).toBeNull();
    expect(screen.getByTestId("inject-hint").textContent).toContain("Sign in to inject.");
    const submit = screen.getByTestId("trainer-sign-in-submit") as HTMLButtonElement;
    expect(submit.disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("trainer-sign-in-name"), { target: { value: " Tia " } });
    await fireEvent.input(screen.getByTestId("trainer-sign-in-pin"), { target: { value: "1357" } });
    await fireEvent.click(submit);
    expect(onSignIn).toHaveBeenCalledWith("Tia", "1357");
    // The PIN does not stay in the form after it was sent.
    expect((screen.getByTestId("trainer-sign-in-pin") as HTMLInputElement).value).toBe("");
    await rerender({ trainer: "Tia" });
    expect(screen.getByTestId("trainer-signed-in").textContent).toBe("Tia");
    expect((screen.getAllByTestId("inject-option") as HTMLButtonElement[]).some((b) => b.disabled)).toBe(false);
    await fireEvent.click(screen.getByTestId("trainer-sign-out"));
    expect(onSignOut).toHaveBeenCalled();
  });
});

describe("The fake's exercise", () => {
  it("injects onto the map, refuses an unnamed trainer and nothing after the end", async () => {
    const backend = createFakeBackend();
    const diffs: number[] = [];
    await backend.subscribe((d) => diffs.push(d.upserts.length));
    await expect(
      backend.inject({ inject: "citizen-report", lon: 24.95, lat: 60.17, trainer: " " }),
    ).rejects.toMatchObject({ code: "invalidInput" });
    const made = await backend.inject({ inject: "citizen-report", lon: 24.95, lat: 60.17, trainer: "Tiina" });
    expect(made).toMatchObject({ n: 1, entity: "inject/1", trainer: "Tiina" });
    expect(diffs.at(-1)).toBe(1);
    expect((await backend.exercise()).injects).toHaveLength(1);
    await backend.endExercise("Tiina", null);
    await expect(
      backend.inject({ inject: "citizen-report", lon: 24.95, lat: 60.17, trainer: "Tiina" }),
    ).rejects.toMatchObject({ code: "forbidden" });
    expect(backend.clock.endedMs).not.toBeNull();
    backend.dispose();
  });
});
