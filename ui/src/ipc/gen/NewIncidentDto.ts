// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";

/**
 * An incident an operator enters by hand from a phone call or a radio report.
 */
export type NewIncidentDto = { 
/**
 * An incident type of the rules.
 */
incidentType: string, layer: Layer, severity: Severity, 
/**
 * What was reported, in the operator's words.
 */
description: string, lon: number, lat: number, };
