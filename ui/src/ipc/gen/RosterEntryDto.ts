// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { OperatorRole } from "./OperatorRole";

/**
 * One operator of the roster, as a supervisor sees it (never the PIN or its hash).
 */
export type RosterEntryDto = { name: string, role: OperatorRole, hasPin: boolean, 
/**
 * Locked after too many wrong PINs, until this wall time.
 */
lockedUntilMs: number | null, };
