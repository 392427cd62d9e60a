// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ActionParams } from "./ActionParams";

/**
 * An operator's request, from an incident or from a point on the map.
 */
export type ActionRequestDto = { 
/**
 * The backend id.
 */
backend: string, 
/**
 * The incident it is for; its area and root cause locate the action.
 */
incident: string | null, 
/**
 * A point on the map `[lon, lat]`, used when there is no incident.
 */
at: [number, number] | null, params: ActionParams, };
