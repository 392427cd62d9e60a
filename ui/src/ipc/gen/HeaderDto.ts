// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One header of a previewed request.
 */
export type HeaderDto = { name: string, value: string, };
