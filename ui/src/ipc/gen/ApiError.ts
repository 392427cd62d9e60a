// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ApiErrorCode } from "./ApiErrorCode";

/**
 * An error as the UI receives it.
 */
export type ApiError = { 
/**
 * What kind of failure.
 */
code: ApiErrorCode, 
/**
 * A sentence for the operator.
 */
message: string, };
