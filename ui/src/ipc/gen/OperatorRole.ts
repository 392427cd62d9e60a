// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * What a signed-in operator may do.
 */
export type OperatorRole = "operator" | "supervisor" | "trainer";
