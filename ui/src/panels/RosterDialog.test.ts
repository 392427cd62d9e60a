// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it } from "vitest";
import { createFakeBackend } from "../ipc/fake";
import RosterDialog from "./RosterDialog.svelte";

afterEach(cleanup);

const settle = () => new Promise((r) => setTimeout(r, 0));

async function open(role: "operator" | "supervisor") {
  const b = createFakeBackend();
  await b.signIn("Sara", role, null);
  render(RosterDialog, {
    props: { load: () => b.roster(), onAssign: (n, r, p) => b.assignRole(n, r, p), onClose: () => {} },
  });
  await settle();
  return b;
}

describe("RosterDialog", () => {
  it("gives a supervisor's role only with a PIN and lists names as text", async () => {
    const b = await open("supervisor");
    const hostile = "<img src=x onerror=alert(1)>";
    await fireEvent.input(screen.getByTestId("roster-name"), { target: { value: hostile } });
    await fireEvent.change(screen.getByTestId("roster-role"), { target: { value: "supervisor" } });
    const save = screen.getByTestId("roster-save") as HTMLButtonElement;
    expect(save.disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("roster-pin"), { target: { value: "2468" } });
    expect(save.disabled).toBe(false);
    await fireEvent.click(save);
    await settle();
    await settle();
    expect(screen.getByTestId("roster-done").textContent).toContain("a supervisor, with a new PIN");
    expect(screen.getByTestId("roster-list").textContent).toContain(hostile);
    expect(screen.getByTestId("roster-list").querySelector("img")).toBeNull();
    expect(await b.roster()).toEqual([{ name: hostile, role: "supervisor", hasPin: true, lockedUntilMs: null }]);
  });

  it("shows the engine's refusal to anyone but a supervisor", async () => {
    await open("operator");
    expect(screen.getByRole("alert").textContent).toContain("supervisor");
  });
});
