/**
 * Colours and labels shared by the map layers and the panels' swatches, so the legend always
 * matches what is drawn.
 */
import type { Layer, Severity } from "../ipc/backend";

export const LAYER_COLOURS: Readonly<Record<Layer, string>> = {
  transport: "#2ec5f0",
  security: "#c95cf5",
  utility: "#f5a623",
  alerts: "#ff4f6e",
};

export const LAYER_LABELS: Readonly<Record<Layer, string>> = {
  transport: "Transport",
  security: "Security",
  utility: "Utility",
  alerts: "Alerts",
};

export const SEVERITIES: readonly Severity[] = ["normal", "minor", "moderate", "severe", "extreme"];

/** 0 (normal) to 4 (extreme); used for draw order and sizes. */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}
