// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";

/**
 * A feed of the loaded scenario.
 */
export type FeedDto = { id: string, name: string, layer: Layer, format: string, };
