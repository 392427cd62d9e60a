// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One step of the incident type's standard operating procedure.
 */
export type SopStepDto = { index: number, text: string, ticked: boolean, 
/**
 * Who ticked it.
 */
by: string | null, };
