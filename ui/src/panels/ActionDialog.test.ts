// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActionDto, ActionPreviewDto, ActionRequestDto, BackendDto } from "../ipc/backend";
import { createFakeBackend } from "../ipc/fake";
import type { DispatchTarget } from "../state/dispatch";
import ActionDialog from "./ActionDialog.svelte";

afterEach(cleanup);

const hostile = "Signals dark: <img src=x onerror=alert(1)>";
const target: DispatchTarget = { incident: "inc/grid/1/0", at: null, title: hostile, entity: "signals:4411" };

function setup(
  patch: {
    role?: "operator" | "supervisor";
    exercise?: boolean;
    preview?: (r: ActionRequestDto) => Promise<ActionPreviewDto>;
  } = {},
) {
  const b = createFakeBackend({ dispatch: { exercise: patch.exercise ?? false } });
  const onPreview = vi.fn(patch.preview ?? ((r: ActionRequestDto) => b.previewAction(r)));
  const onArm = vi.fn(async (token: string): Promise<number> => {
    await b.signIn("Aino", patch.role ?? "operator", null);
    return b.armAction(token);
  });
  const onConfirm = vi.fn(async (token: string): Promise<ActionDto> => {
    await b.signIn("Aino", patch.role ?? "operator", null);
    return b.confirmAction(token);
  });
  const onDone = vi.fn();
  const onClose = vi.fn();
  return { b, onPreview, onArm, onConfirm, onDone, onClose };
}

async function open(s: ReturnType<typeof setup>) {
  const backends: BackendDto[] = await s.b.backends();
  return render(ActionDialog, {
    props: {
      backends,
      target,
      role: "operator",
      onPreview: s.onPreview,
      onArm: s.onArm,
      onConfirm: s.onConfirm,
      onDone: s.onDone,
      onClose: s.onClose,
    },
  });
}

/** Lets promise callbacks and Svelte's updates run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("ActionDialog", () => {
  it("lists backends with their action in words and kind, picks one and prefills from the incident", async () => {
    const s = setup();
    const { container } = await open(s);
    const option = screen.getByTestId("dispatch-backend-city-works");
    expect(option.textContent).toContain("City works Open311");
    expect(option.textContent).toContain("Open a service request for a field crew");
    expect(option.textContent).toContain("Open311");
    expect(screen.queryByTestId("dispatch-exercise")).toBeNull();
    expect(screen.getByTestId("dispatch-backend-signal-control").textContent).toContain("confirm twice");
    expect(screen.getByTestId("dispatch-target").textContent).toBe(`Incident: ${hostile}`);
    await fireEvent.click(option);
    const description = screen.getByTestId("dispatch-description") as HTMLTextAreaElement;
    expect(description.value).toBe(hostile);
    expect((screen.getByTestId("dispatch-service-code") as HTMLSelectElement).value).toBe("utility-crew");
    expect(container.querySelector("img")).toBeNull();
  });

  it("previews verbatim as text, then confirms once", async () => {
    const s = setup();
    const { container } = await open(s);
    await fireEvent.click(screen.getByTestId("dispatch-backend-city-works"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    expect(s.onPreview).toHaveBeenCalledWith({
      backend: "city-works",
      incident: "inc/grid/1/0",
      at: null,
      params: { kind: "serviceRequest", serviceCode: "utility-crew", description: hostile },
    });
    expect(screen.getByTestId("dispatch-destination").textContent).toBe("POST http://127.0.0.1:8311/requests.json");
    expect(screen.getByTestId("dispatch-headers").textContent).toContain(
      "Content-Type: application/x-www-form-urlencoded",
    );
    expect(screen.getByTestId("dispatch-body").textContent).toContain("service_code=utility-crew");
    await fireEvent.click(screen.getByTestId("dispatch-confirm"));
    await settle();
    expect(s.onConfirm).toHaveBeenCalledWith(expect.stringMatching(/^preview-/));
    expect(s.onArm).not.toHaveBeenCalled();
    expect(s.onDone).toHaveBeenCalledWith(expect.objectContaining({ status: "queued", backend: "city-works" }));
    expect(container.querySelector("img")).toBeNull();
  });

  it("renders hostile bodies and summaries only as text", async () => {
    const body = `{"message":"<img src=x onerror=alert(1)>","html":"<script>alert(2)</script>"}`;
    const s = setup({
      preview: async (r) => ({
        token: "t1",
        backend: (await createFakeBackend().backends())[1],
        key: "k-1",
        summary: "Notify: <b>bold</b>",
        destination: "POST http://127.0.0.1:9000/<i>x</i>",
        headers: [{ name: "X-Note", value: "<u>u</u>" }],
        body,
        confirmations: 1,
        exercise: false,
        ...(r ? {} : {}),
      }),
    });
    const { container } = await open(s);
    await fireEvent.click(screen.getByTestId("dispatch-backend-rescue-hook"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    expect(screen.getByTestId("dispatch-body").textContent).toBe(body);
    expect(screen.getByTestId("dispatch-summary").textContent).toBe("Notify: <b>bold</b>");
    expect(screen.getByTestId("dispatch-headers").textContent).toBe("X-Note: <u>u</u>");
    expect(container.querySelector("img, script, b, i, u")).toBeNull();
  });

  it("asks a dangerous action's second confirmation, naming the command and device", async () => {
    const s = setup();
    await open(s);
    await fireEvent.click(screen.getByTestId("dispatch-backend-signal-control"));
    expect((screen.getByTestId("dispatch-device") as HTMLInputElement).value).toBe("signals:4411");
    await fireEvent.change(screen.getByTestId("dispatch-command"), { target: { value: "FLASH" } });
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    await fireEvent.click(screen.getByTestId("dispatch-confirm"));
    await settle();
    expect(s.onConfirm).not.toHaveBeenCalled();
    expect(s.onArm).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("dispatch-again").textContent).toContain(
      "Send device command FLASH to signals:4411 — confirm again",
    );
    // The focus is on the question, not on the button: a second Enter does not send.
    expect(document.activeElement?.tagName).toBe("P");
    await fireEvent.click(screen.getByTestId("dispatch-confirm-again"));
    await settle();
    expect(s.onConfirm).toHaveBeenCalledWith(s.onArm.mock.calls[0][0]);
    expect(s.onDone).toHaveBeenCalledTimes(1);
  });

  it("shows errors inline and keeps the dialog open", async () => {
    const s = setup();
    await open(s);
    await fireEvent.click(screen.getByTestId("dispatch-backend-alert-hub"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    // Nothing asked of the engine: the form says what is missing.
    expect(screen.getByTestId("dispatch-error").textContent).toBe("Tell the public what to do.");
    expect(s.onPreview).not.toHaveBeenCalled();
    await fireEvent.input(screen.getByTestId("dispatch-instruction"), { target: { value: "Stay indoors" } });
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    // A public alert is previewed but an operator cannot confirm it.
    expect(screen.getByTestId("dispatch-refused")).toBeTruthy();
    expect((screen.getByTestId("dispatch-confirm") as HTMLButtonElement).disabled).toBe(true);
  });

  it("shows the engine's refusal message inline", async () => {
    const s = setup({
      preview: () => Promise.reject({ code: "invalidInput", message: "service code <x> is not offered" }),
    });
    await open(s);
    await fireEvent.click(screen.getByTestId("dispatch-backend-city-works"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    expect(screen.getByTestId("dispatch-error").textContent).toBe("service code <x> is not offered");
    expect(screen.getByTestId("dispatch-dialog").dataset.step).toBe("fill");
  });

  it("marks exercise backends and previews plainly", async () => {
    const s = setup({ exercise: true });
    await open(s);
    expect(screen.getAllByTestId("dispatch-exercise").length).toBe(5);
    await fireEvent.click(screen.getByTestId("dispatch-backend-city-works"));
    await fireEvent.click(screen.getByTestId("dispatch-preview"));
    await settle();
    expect(screen.getByTestId("dispatch-exercise").textContent).toContain("EXERCISE");
  });

  it("closes on Escape and keeps Tab inside the dialog", async () => {
    const s = setup();
    await open(s);
    const dialog = screen.getByTestId("dispatch-dialog");
    const buttons = [...dialog.querySelectorAll("button")].filter((b) => !b.disabled);
    buttons.at(-1)!.focus();
    await fireEvent.keyDown(buttons.at(-1)!, { key: "Tab" });
    expect(document.activeElement).toBe(buttons[0]);
    await fireEvent.keyDown(buttons[0], { key: "Tab", shiftKey: true });
    expect(document.activeElement).toBe(buttons.at(-1));
    await fireEvent.keyDown(dialog, { key: "Escape" });
    expect(s.onClose).toHaveBeenCalled();
  });
});

describe("ActionDialog focus", () => {
  it("brings a stray focus back into the dialog on Tab and closes on Escape from anywhere", async () => {
    const s = setup();
    await open(s);
    (document.activeElement as HTMLElement | null)?.blur();
    await fireEvent.keyDown(document.body, { key: "Tab" });
    expect(screen.getByTestId("dispatch-dialog").contains(document.activeElement)).toBe(true);
    await fireEvent.keyDown(document.body, { key: "Escape" });
    expect(s.onClose).toHaveBeenCalled();
  });
});
