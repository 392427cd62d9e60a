// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";

/**
 * How many observations of one kind the box holds.
 */
export type KindCountDto = { kind: string, layer: Layer, count: number, };
