// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { IncidentEntryDto } from "./IncidentEntryDto";

/**
 * Incident changes, coalesced over one clock tick.
 */
export type IncidentsDiffDto = { 
/**
 * Drop every incident before applying `upserts` (on subscription and after a seek).
 */
reset: boolean, 
/**
 * Incidents that appeared or changed.
 */
upserts: Array<IncidentEntryDto>, 
/**
 * Incidents that left the queue (merged into another, or an undone split), by id.
 */
removed: Array<string>, };
