// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";

/**
 * What the operator entered; the window sends it as is (`NewIncidentDto` in TypeScript).
 */
export type NewIncidentDto = { 
/**
 * The incident type's id in the rules file (`power_outage`).
 */
incidentType: string, 
/**
 * The layer it belongs to on the map.
 */
layer: Layer, 
/**
 * How bad the caller says it is.
 */
severity: Severity, 
/**
 * What was reported, in the operator's words.
 */
description: string, 
/**
 * Where, in WGS 84 degrees.
 */
lon: number, 
/**
 * Where, in WGS 84 degrees.
 */
lat: number, };
