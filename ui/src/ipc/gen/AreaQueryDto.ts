// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";

/**
 * A place-and-time question from the map's box: what was observed inside it between two
 * scenario times, of one layer or all.
 */
export type AreaQueryDto = { west: number, south: number, east: number, north: number, fromMs: number, toMs: number, layer: Layer | null, };
