// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * The few error kinds the UI acts on differently.
 */
export type ApiErrorCode = "notFound" | "invalidInput" | "forbidden" | "internal";
