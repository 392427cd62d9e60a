// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ObjectiveScoreDto } from "./ObjectiveScoreDto";

/**
 * The trainee's score against the scenario's objectives.
 */
export type ScoreDto = { points: number, maxPoints: number, objectives: Array<ObjectiveScoreDto>, };
