// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * Whether the store takes what the feeds deliver, as the operator sees it.
 */
export type StorageHealthDto = { 
/**
 * Why commits fail, in a sentence for the operator; `None` while they succeed.
 */
fault: string | null, 
/**
 * The database file.
 */
path: string, 
/**
 * When commits started failing.
 */
sinceMs: number | null, 
/**
 * Observations and refusals received but not yet stored: held in memory, stored as soon
 * as the disk takes them again.
 */
held: number, 
/**
 * Times commits started failing since the engine started.
 */
faults: number, };
