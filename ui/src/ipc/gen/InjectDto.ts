// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One inject made in this run.
 */
export type InjectDto = { n: number, inject: string, scenarioMs: number, trainer: string, 
/**
 * The entity the observation is about: the snapped asset, or `inject/<n>`.
 */
entity: string, title: string, };
