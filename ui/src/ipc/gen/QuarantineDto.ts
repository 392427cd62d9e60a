// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { QuarantineEntryDto } from "./QuarantineEntryDto";
import type { QuarantineFeedDto } from "./QuarantineFeedDto";

/**
 * A page of the quarantine: the newest entries first, filtered by feed if asked.
 */
export type QuarantineDto = { 
/**
 * The newest matching entries, at most [`QUARANTINE_PAGE`].
 */
entries: Array<QuarantineEntryDto>, 
/**
 * How many entries match the filter in all.
 */
total: number, 
/**
 * Every feed with refusals in this run, with its count, in feed order.
 */
feeds: Array<QuarantineFeedDto>, };
