/**
 * Tidy checks: the UI's architecture invariants, written as tests so they cannot rot.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL(".", import.meta.url));
const UI = join(SRC, "..");

function sources(dir: string = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|svelte)$/.test(e.name) && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

const files = sources().map((p) => ({ path: relative(SRC, p).replaceAll("\\", "/"), text: readFileSync(p, "utf8") }));

describe("tidy", () => {
  it("finds the sources", () => {
    expect(files.map((f) => f.path)).toContain("App.svelte");
  });

  it("renders untrusted text only as text: no {@html}, no innerHTML", () => {
    const offenders = files
      .filter((f) => /\{@html|innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(f.text))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it("only src/ipc imports @tauri-apps/api", () => {
    const offenders = files
      .filter((f) => !f.path.startsWith("ipc/") && f.text.includes("@tauri-apps/"))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it("panels never reach the backend: they import types from ipc, nothing else", () => {
    const offenders = files
      .filter((f) => f.path.startsWith("panels/"))
      .flatMap((f) =>
        [...f.text.matchAll(/^\s*import\s+(type\s+)?[^;]*?from\s+"([^"]*ipc[^"]*)"/gm)]
          .filter((m) => !m[1])
          .map((m) => `${f.path}: ${m[2]}`),
      );
    expect(offenders).toEqual([]);
  });

  it("state stays pure: src/state imports only types from ipc", () => {
    const offenders = files
      .filter((f) => f.path.startsWith("state/"))
      .flatMap((f) =>
        [...f.text.matchAll(/^\s*import\s+(type\s+)?[^;]*?from\s+"([^"]*ipc[^"]*)"/gm)]
          .filter((m) => !m[1])
          .map((m) => `${f.path}: ${m[2]}`),
      );
    expect(offenders).toEqual([]);
  });

  it("App.svelte calls no backend method: the controllers own the calls", () => {
    const app = files.find((f) => f.path === "App.svelte")?.text ?? "";
    expect([...app.matchAll(/\bbackend\.(\w+)/g)].map((m) => m[1]).filter((name) => name !== "kind")).toEqual([]);
  });

  it("only src/map imports maplibre-gl at run time", () => {
    const offenders = files
      .filter((f) => !f.path.startsWith("map/"))
      .filter((f) => /^\s*import\s+(?!type\b)[^;]*from\s+"maplibre-gl/m.test(f.text))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it("uses no inline style attributes or style elements (the shell's CSP nonce voids 'unsafe-inline')", () => {
    const offenders = files
      .filter((f) => f.path.endsWith(".svelte"))
      .filter((f) =>
        /\sstyle=|<svelte:element|transition:|in:|out:|animate:/.test(f.text.replace(/<style>[\s\S]*?<\/style>/g, "")),
      )
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it("loads nothing from other hosts", () => {
    const pages = ["index.html", "src/app.css"].map((p) => ({ path: p, text: readFileSync(join(UI, p), "utf8") }));
    const offenders = [...files, ...pages]
      .filter((f) => /(src|href)=["']?(https?:)?\/\/|url\(["']?(https?:)?\/\//.test(f.text))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });
});
