// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * The replay clock as the UI shows it.
 */
export type ClockDto = { startMs: number, endMs: number, 
/**
 * The scenario time the picture shows.
 */
nowMs: number, playing: boolean, 
/**
 * Speed factor; `null` means as fast as the pipeline goes.
 */
speed: number | null, 
/**
 * How far the tape has been ingested into the store.
 */
ingestedUntilMs: number, 
/**
 * The clock reached the end of the scenario.
 */
finished: boolean, 
/**
 * The scenario time the exercise was ended at; the trainee's record is closed after it.
 */
endedMs: number | null, 
/**
 * A trainer view is open and controls the clock; the trainee's window only shows it.
 */
trainerView: boolean, };
