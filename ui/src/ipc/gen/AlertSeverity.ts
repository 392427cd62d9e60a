// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * Severity of a public alert, as CAP 1.2 names it.
 */
export type AlertSeverity = "extreme" | "severe" | "moderate" | "minor";
