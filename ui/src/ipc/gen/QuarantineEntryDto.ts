// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One refused piece of input of the current run. Every string here is untrusted feed text
 * (or derived from it) and must be shown as text.
 */
export type QuarantineEntryDto = { 
/**
 * The feed it came from (`tape` for a tape line that named none).
 */
feed: string, 
/**
 * The message's sequence number (the tape line in a replay).
 */
seq: number, 
/**
 * Where in the message, for example `features[3].properties.kind`, or `transport`.
 */
place: string, 
/**
 * Why it was refused.
 */
reason: string, 
/**
 * When it arrived (scenario time in a replay, wall time live).
 */
receivedMs: number, 
/**
 * The start of the body, as UTF-8 with invalid bytes replaced; at most
 * [`QUARANTINE_PREVIEW_BYTES`] bytes of it.
 */
preview: string, 
/**
 * The body's whole size in bytes, so the UI can say the preview is cut.
 */
bodyBytes: number, };
