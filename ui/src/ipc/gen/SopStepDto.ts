// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One step of the incident type's standard operating procedure.
 */
export type SopStepDto = { index: number, text: string, ticked: boolean, 
/**
 * Who ticked it.
 */
by: string | null, 
/**
 * Resolving is refused while it is unticked (a supervisor may override, with a reason).
 */
required: boolean, 
/**
 * When it is due (the incident's opening plus the step's `within_s`), if it has a deadline.
 */
dueMs: number | null, 
/**
 * Unticked past its deadline, at the clock's time.
 */
overdue: boolean, };
