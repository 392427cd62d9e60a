// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";

/**
 * Per-layer freshness and size of the picture.
 */
export type LayerAgeDto = { layer: Layer, 
/**
 * Observed time of the newest observation on this layer, if any.
 */
newestObservedMs: number | null, 
/**
 * Entities shown on this layer.
 */
count: number, };
