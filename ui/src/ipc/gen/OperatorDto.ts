// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { OperatorRole } from "./OperatorRole";

/**
 * The signed-in operator.
 */
export type OperatorDto = { name: string, role: OperatorRole, };
