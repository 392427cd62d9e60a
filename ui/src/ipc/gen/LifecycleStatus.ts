// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * Where an incident stands in the operator's workflow. Correlation decides whether its members
 * are still a problem; this says what the operators did about it.
 */
export type LifecycleStatus = "new" | "acknowledged" | "dispatched" | "resolved" | "closed";
