/**
 * "What happened here?" as data: the box the operator drew, the time range and layer picked,
 * and the question they make for the engine. Pure, so it is tested without a map.
 */
import type { AreaQueryDto, Layer } from "../ipc/backend";

/** West, south, east, north in degrees. */
export type Box = readonly [number, number, number, number];

export type AreaRange = "15m" | "1h" | "all";

export const AREA_RANGES: readonly { readonly value: AreaRange; readonly label: string }[] = [
  { value: "15m", label: "Last 15 min" },
  { value: "1h", label: "Last hour" },
  { value: "all", label: "Since the start" },
];

const MINUTE = 60_000;

/** The box between two corners dragged on the map; `null` when it has no area. */
export function boxFromCorners(a: readonly [number, number], b: readonly [number, number]): Box | null {
  const [w, e] = a[0] < b[0] ? [a[0], b[0]] : [b[0], a[0]];
  const [s, n] = a[1] < b[1] ? [a[1], b[1]] : [b[1], a[1]];
  return w < e && s < n ? [w, s, e, n] : null;
}

/** The question for the engine: the box, from the range's start to the clock. */
export function areaQuery(
  box: Box,
  range: AreaRange,
  layer: Layer | null,
  clock: { readonly startMs: number; readonly nowMs: number },
): AreaQueryDto {
  const back = range === "15m" ? 15 * MINUTE : range === "1h" ? 60 * MINUTE : Infinity;
  const fromMs = range === "all" ? clock.startMs : Math.max(clock.startMs, clock.nowMs - back);
  return {
    west: box[0],
    south: box[1],
    east: box[2],
    north: box[3],
    fromMs: Math.min(fromMs, clock.nowMs),
    toMs: clock.nowMs,
    layer,
  };
}

/** The box's size on the ground, for the panel: "850 m × 420 m", "1.2 km × 900 m". */
export function boxSize(box: Box): string {
  const midLat = ((box[1] + box[3]) / 2) * (Math.PI / 180);
  const wide = (box[2] - box[0]) * 111_320 * Math.cos(midLat);
  const high = (box[3] - box[1]) * 110_540;
  const m = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)} km` : `${Math.round(x / 10) * 10} m`);
  return `${m(wide)} × ${m(high)}`;
}
