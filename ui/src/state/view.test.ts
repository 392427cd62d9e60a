import { describe, expect, it } from "vitest";
import { cameraFromView, DEFAULT_CAMERA, setCamera } from "./camera";
import { initialView, layerForKey, setLayerVisible, setTheme, toggleLayer, toggleTheme, toggleZones } from "./view";

describe("view", () => {
  it("shows every layer and the zones at night by default, and toggles the zones alone", () => {
    expect(initialView()).toEqual({
      visible: { transport: true, security: true, utility: true, alerts: true },
      theme: "night",
      zones: true,
    });
    const off = toggleZones(initialView());
    expect(off.zones).toBe(false);
    expect(off.visible).toEqual(initialView().visible);
  });

  it("toggles one layer without touching the others or the input", () => {
    const v0 = initialView();
    const v1 = toggleLayer(v0, "security");
    expect(v1.visible).toEqual({ transport: true, security: false, utility: true, alerts: true });
    expect(v0.visible.security).toBe(true);
    expect(toggleLayer(v1, "security").visible.security).toBe(true);
  });

  it("returns the same state when nothing changes", () => {
    const v = initialView();
    expect(setLayerVisible(v, "alerts", true)).toBe(v);
    expect(setTheme(v, "night")).toBe(v);
  });

  it("maps hotkeys 1-4 to the layers in panel order", () => {
    expect(["1", "2", "3", "4"].map(layerForKey)).toEqual(["transport", "security", "utility", "alerts"]);
    expect(["0", "5", "a", " ", "01", "1.0"].map(layerForKey)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("toggles the basemap theme", () => {
    expect(toggleTheme(initialView()).theme).toBe("day");
    expect(toggleTheme(toggleTheme(initialView())).theme).toBe("night");
  });
});

describe("camera", () => {
  it("reads the scenario view as lon, lat, zoom", () => {
    expect(cameraFromView([24.9, 60.1, 15])).toEqual({ center: [24.9, 60.1], zoom: 15, bearing: 0, pitch: 0 });
  });

  it("keeps identity when the camera did not move", () => {
    expect(setCamera(DEFAULT_CAMERA, { zoom: DEFAULT_CAMERA.zoom, center: [...DEFAULT_CAMERA.center] })).toBe(
      DEFAULT_CAMERA,
    );
    const moved = setCamera(DEFAULT_CAMERA, { zoom: 16 });
    expect(moved).toEqual({ ...DEFAULT_CAMERA, zoom: 16 });
    expect(DEFAULT_CAMERA.zoom).toBe(14);
  });
});
