// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * The operational domain an observation belongs to; each is one group of map layers.
 */
export type Layer = "transport" | "security" | "utility" | "alerts";
