// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Shape } from "./Shape";

/**
 * A zone the control room watches, as the map draws it.
 */
export type ZoneDto = { id: string, 
/**
 * Its name (the zones file's text).
 */
name: string, shape: Shape, };
