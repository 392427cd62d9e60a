// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * How one objective went so far.
 */
export type ObjectiveScoreDto = { id: string, title: string, 
/**
 * `met`, `late`, `missed` or `violated` (an objective not yet due reads `missed` until
 * it is met).
 */
outcome: string, points: number, detail: string, };
