// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";

/**
 * One member in the detail view.
 */
export type MemberDto = { entity: string, layer: Layer, kind: string, severity: Severity, lon: number, lat: number, observedMs: number, 
/**
 * Observations of the entity folded into this membership.
 */
reports: number, 
/**
 * The rule that grouped it (`seed` for the root, `manual` for an operator's decision).
 */
rule: string, 
/**
 * 0 to 1.
 */
confidence: number, 
/**
 * Why it belongs, in words.
 */
explanation: string, distanceM: number, timeGapS: number, 
/**
 * The supply path from its asset up to the root's asset.
 */
dependencyPath: Array<string>, 
/**
 * The member it duplicates, if it is the same thing reported again.
 */
duplicateOf: string | null, 
/**
 * No longer a problem.
 */
cleared: boolean, 
/**
 * It is the incident's probable root cause.
 */
root: boolean, };
