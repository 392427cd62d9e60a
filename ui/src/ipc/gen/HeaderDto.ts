// Generated from Rust by `cargo test` (cityops-engine dto.rs). Do not edit.
/**
 * One header of a previewed request.
 */
export type HeaderDto = { name: string, value: string, };
