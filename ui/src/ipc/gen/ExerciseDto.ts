// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { InjectDto } from "./InjectDto";
import type { ScoreDto } from "./ScoreDto";

/**
 * The exercise's state for the trainer view: injects so far and the live score.
 */
export type ExerciseDto = { injects: Array<InjectDto>, 
/**
 * `null` when the scenario has no objectives.
 */
score: ScoreDto | null, endedMs: number | null, endedBy: string | null, };
