// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * What the trainer view asks for: a palette entry at a place, made by a named trainer.
 */
export type InjectRequestDto = { inject: string, lon: number, lat: number, trainer: string, };
