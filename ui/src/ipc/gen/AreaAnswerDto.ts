// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { KindCountDto } from "./KindCountDto";
import type { MapFeatureDto } from "./MapFeatureDto";

/**
 * The answer to an [`AreaQueryDto`]: every count, and the newest observations.
 */
export type AreaAnswerDto = { 
/**
 * Every observation in the box and the range.
 */
count: number, 
/**
 * Per kind, the most first.
 */
perKind: Array<KindCountDto>, 
/**
 * The newest first; all of them when `listed_all`.
 */
observations: Array<MapFeatureDto>, listedAll: boolean, };
