// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One thing that happened to an incident.
 */
export type TimelineEntryDto = { 
/**
 * Scenario time.
 */
atMs: number, 
/**
 * `opened`, `joined`, `cleared`, `lifecycle`, `manual`, `sop` or `note` (an operator's
 * words, feed-free but still shown as text).
 */
kind: string, 
/**
 * What happened, in words.
 */
text: string, 
/**
 * Who, for operator actions.
 */
operator: string | null, };
