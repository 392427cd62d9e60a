// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * Where an action stands in the outbox.
 */
export type ActionStatus = "queued" | "sending" | "delivered" | "sent" | "failed" | "cancelled";
