// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * How bad an observation is. The upper four follow CAP 1.2's `severity`; `Normal` says a thing
 * is working (a signal back on, a camera online) so the map can show recovery, not just alarms.
 */
export type Severity = "normal" | "minor" | "moderate" | "severe" | "extreme";
