import { describe, expect, it } from "vitest";
import {
  formatAge,
  formatDate,
  formatDateTime,
  formatDuration,
  formatFieldValue,
  formatLag,
  formatLonLat,
  formatTime,
  parseSpeed,
  speedValue,
  visibleControls,
} from "./format";

describe("scenario time", () => {
  it("is shown in Helsinki time, winter (UTC+2) and summer (UTC+3)", () => {
    const winter = Date.UTC(2026, 10, 26, 15, 4, 9);
    expect(formatTime(winter)).toBe("17:04:09");
    expect(formatDate(winter)).toBe("Thu 2026-11-26");
    expect(formatDateTime(winter)).toBe("2026-11-26 17:04:09");
    expect(formatTime(Date.UTC(2026, 6, 1, 21, 30, 0))).toBe("00:30:00");
    expect(formatDate(Date.UTC(2026, 6, 1, 21, 30, 0))).toBe("Thu 2026-07-02");
  });
});

describe("durations", () => {
  it.each([
    [0, "0 s"],
    [999, "0 s"],
    [12_000, "12 s"],
    [60_000, "1 min"],
    [65_000, "1 min 05 s"],
    [600_000, "10 min"],
    [3_599_000, "59 min"],
    [3_600_000, "1 h 00 min"],
    [7_500_000, "2 h 05 min"],
    [-5, "0 s"],
  ])("%i ms is %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("describes layer age", () => {
    expect(formatAge(null)).toBe("no data");
    expect(formatAge(12_000)).toBe("newest 12 s ago");
  });

  it("describes lag, including clock skew", () => {
    expect(formatLag(1000, 1250)).toBe("250 ms");
    expect(formatLag(0, 90_000)).toBe("1 min 30 s");
    expect(formatLag(5000, 2000)).toBe("−3 s (received before observed)");
  });
});

describe("speed", () => {
  it("round-trips the select values", () => {
    for (const s of [1, 10, 60, null]) expect(parseSpeed(speedValue(s))).toBe(s);
    expect(speedValue(null)).toBe("max");
    expect(parseSpeed("0")).toBeNull();
  });
});

describe("payload values", () => {
  it("shows strings as they are, scalars as text and nested values as indented JSON", () => {
    expect(formatFieldValue("<b>x</b>")).toEqual({ text: "<b>x</b>", block: false });
    expect(formatFieldValue(3.5)).toEqual({ text: "3.5", block: false });
    expect(formatFieldValue(false)).toEqual({ text: "false", block: false });
    expect(formatFieldValue(null)).toEqual({ text: "null", block: false });
    expect(formatFieldValue({ a: [1, "b"] })).toEqual({ text: '{\n  "a": [\n    1,\n    "b"\n  ]\n}', block: true });
  });

  it("shows the characters that would reorder or hide text as their code points", () => {
    // "invoice<RLO>gpj.exe<PDF>" would read as "invoiceexe.jpg" in a renderer.
    expect(visibleControls("invoice\u202egpj.exe\u202c")).toBe("invoice⟨U+202E⟩gpj.exe⟨U+202C⟩");
    expect(visibleControls("a\u2067b\u2069\u200bc\ufeff")).toBe("a⟨U+2067⟩b⟨U+2069⟩⟨U+200B⟩c⟨U+FEFF⟩");
    expect(visibleControls("Kaisaniemenkatu, مرحبا")).toBe("Kaisaniemenkatu, مرحبا");
    expect(formatFieldValue({ a: "x\u202ey" }).text).toContain("⟨U+202E⟩");
  });

  it("formats coordinates", () => {
    expect(formatLonLat(24.9443, 60.1717)).toBe("60.17170 N, 24.94430 E");
    expect(formatLonLat(-1, -2)).toBe("2.00000 S, 1.00000 W");
  });
});
