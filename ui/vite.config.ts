/// <reference types="vitest/config" />
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { svelteTesting } from "@testing-library/svelte/vite";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

/** The map build's output (`maps/` at the repository root): styles and fonts. */
const mapsDir = fileURLToPath(new URL("../maps", import.meta.url));
const fontsDir = join(mapsDir, "fonts");
/** The repository's assets (the alarm sound). */
const assetsDir = fileURLToPath(new URL("../assets", import.meta.url));

/** Font files as the styles' `font-faces` name them: a plain file name, nothing else. */
const FONT_FILE = /^[A-Za-z0-9._-]+\.(woff2|woff|ttf|otf|txt)$/;

/**
 * Serves `maps/fonts/` at `/fonts/` in development and copies it into `dist/fonts/` in the
 * production build, where the basemap styles' `font-faces` URLs (`/fonts/*.woff2`) expect
 * them. The licence (OFL.txt) travels with the fonts.
 */
function mapFonts(): Plugin {
  const files = () => (existsSync(fontsDir) ? readdirSync(fontsDir).filter((f) => FONT_FILE.test(f)) : []);
  return {
    name: "cityops-map-fonts",
    configureServer(server) {
      server.middlewares.use("/fonts", (req, res, next) => {
        const name = decodeURIComponent((req.url ?? "").split("?")[0].replace(/^\//, ""));
        if (!FONT_FILE.test(name) || !files().includes(name)) return next();
        res.setHeader("Content-Type", name.endsWith(".woff2") ? "font/woff2" : "application/octet-stream");
        res.end(readFileSync(join(fontsDir, name)));
      });
    },
    generateBundle() {
      for (const name of files()) {
        this.emitFile({ type: "asset", fileName: `fonts/${name}`, source: readFileSync(join(fontsDir, name)) });
      }
    },
  };
}

export default defineConfig(({ mode }) => ({
  plugins: [svelte(), mapFonts(), ...(mode === "test" ? [svelteTesting()] : [])],
  resolve: {
    alias: { "@maps": mapsDir, "@assets": assetsDir },
  },
  // Tauri prints its own errors; keep them visible.
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
    // The styles are imported from ../maps, outside the UI root.
    fs: { allow: [".", mapsDir, assetsDir] },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // MapLibre alone is about 1 MB minified; it is loaded from disk, not a network.
    chunkSizeWarningLimit: 1600,
    // Never inline assets as data: URLs: the shell's CSP allows media only from 'self'.
    assetsInlineLimit: 0,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
}));
