// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * The protocol a backend speaks, which decides the one kind of action it takes.
 */
export type BackendKind = "open311" | "webhook" | "mqtt" | "cot" | "cap";
