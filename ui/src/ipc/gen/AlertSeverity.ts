// Generated from Rust by `cargo test` (cityops-engine dto.rs). Do not edit.
/**
 * Severity of a public alert, as CAP 1.2 names it.
 */
export type AlertSeverity = "extreme" | "severe" | "moderate" | "minor";
