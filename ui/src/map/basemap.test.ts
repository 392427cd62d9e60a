import { describe, expect, it } from "vitest";
import { basemapStyle, rewriteTileUrl, tileUrlBase } from "./basemap";

const LINUX = "maptiles://localhost/";

describe("basemap", () => {
  it("loads both themes from maps/styles with the OpenMapTiles vector source", () => {
    for (const theme of ["night", "day"] as const) {
      const style = basemapStyle(theme, null, LINUX);
      expect(style.version).toBe(8);
      const vector = Object.values(style.sources).find((s) => s.type === "vector");
      expect(vector && "tiles" in vector ? vector.tiles : null).toEqual(["maptiles://localhost/helsinki/{z}/{x}/{y}"]);
      expect(style.layers.length).toBeGreaterThan(5);
    }
  });

  it("points tile URLs at the scenario's archive", () => {
    const style = basemapStyle("night", "espoo", LINUX);
    const vector = Object.values(style.sources).find((s) => s.type === "vector");
    expect(vector && "tiles" in vector ? vector.tiles : null).toEqual(["maptiles://localhost/espoo/{z}/{x}/{y}"]);
    // The imported style itself is left alone.
    const again = Object.values(basemapStyle("night", null, LINUX).sources).find((s) => s.type === "vector");
    expect(again && "tiles" in again ? again.tiles : null).toEqual(["maptiles://localhost/helsinki/{z}/{x}/{y}"]);
  });

  it("uses the http form of the scheme on Windows", () => {
    expect(tileUrlBase("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/140")).toBe("http://maptiles.localhost/");
    expect(tileUrlBase("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15")).toBe("maptiles://localhost/");
    expect(rewriteTileUrl("maptiles://localhost/helsinki/{z}/{x}/{y}", null, "http://maptiles.localhost/")).toBe(
      "http://maptiles.localhost/helsinki/{z}/{x}/{y}",
    );
    expect(rewriteTileUrl("https://elsewhere/{z}", "x", LINUX)).toBe("https://elsewhere/{z}");
  });
});
