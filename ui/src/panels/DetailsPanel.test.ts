// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ObservationDto } from "../ipc/backend";
import { FAKE_OBSERVATIONS } from "../ipc/fake";
import { NO_SELECTION, select, selectionFailed, selectionLoaded } from "../state/selection";
import DetailsPanel from "./DetailsPanel.svelte";

afterEach(cleanup);

const probe = FAKE_OBSERVATIONS.find((o) => o.id === "cctv:xss-probe") as ObservationDto;

function loaded(o: ObservationDto) {
  return selectionLoaded(select(NO_SELECTION, o.id), o.id, o);
}

describe("DetailsPanel", () => {
  it("is absent without a selection", () => {
    render(DetailsPanel, { selection: NO_SELECTION, onClose: () => {} });
    expect(screen.queryByTestId("details")).toBeNull();
  });

  it("shows feed text literally, never as HTML", () => {
    const { container } = render(DetailsPanel, { selection: loaded(probe), onClose: () => {} });
    expect(screen.getByTestId("details-title").textContent).toBe("<img src=x onerror=alert(1)>");
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("b")).toBeNull();
    const keys = screen.getAllByTestId("details-field-key").map((e) => e.textContent);
    expect(keys).toEqual(["note", "<b>key</b>", "nested"]);
    const values = screen.getAllByTestId("details-field-value").map((e) => e.textContent);
    expect(values[0]).toBe("<script>alert('fields are text')</script>");
    expect(values[2]).toBe(JSON.stringify(probe.fields.nested, null, 2));
  });

  it("shows feed, times, lag, kind and severity", () => {
    const o = FAKE_OBSERVATIONS.find((x) => x.id === "signals:4411") as ObservationDto;
    render(DetailsPanel, { selection: loaded(o), onClose: () => {} });
    expect(screen.getByTestId("details-feed").textContent).toBe("Traffic signal faults (signals)");
    expect(screen.getByTestId("details-observed").textContent).toBe("2026-11-26 17:10:00");
    expect(screen.getByTestId("details-received").textContent).toBe("2026-11-26 17:10:09");
    expect(screen.getByTestId("details-lag").textContent).toBe("9 s");
    expect(screen.getByTestId("details-kind").textContent).toBe("traffic_signal");
    expect(screen.getByTestId("details-severity").textContent).toBe("severe");
  });

  it("reports a failed load and closes", async () => {
    const onClose = vi.fn();
    const failed = selectionFailed(select(NO_SELECTION, "x"), "x", { code: "notFound", message: "<i>gone</i>" });
    render(DetailsPanel, { selection: failed, onClose });
    expect(screen.getByTestId("details-error").textContent).toContain("<i>gone</i>");
    await fireEvent.click(screen.getByTestId("details-close"));
    expect(onClose).toHaveBeenCalledOnce();
  });

  it("offers dispatch for the point only when asked to", async () => {
    const o = FAKE_OBSERVATIONS.find((x) => x.id === "signals:4411") as ObservationDto;
    const { unmount } = render(DetailsPanel, { selection: loaded(o), onClose: () => {} });
    expect(screen.queryByTestId("details-dispatch")).toBeNull();
    unmount();
    const onDispatch = vi.fn();
    render(DetailsPanel, { selection: loaded(o), onClose: () => {}, onDispatch });
    await fireEvent.click(screen.getByTestId("details-dispatch"));
    expect(onDispatch).toHaveBeenCalledOnce();
  });
});
