// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { AlertSeverity } from "./AlertSeverity";

/**
 * What the operator wants done; one variant per backend kind.
 */
export type ActionParams = { "kind": "serviceRequest", serviceCode: string, description: string, } | { "kind": "notify", message: string, } | { "kind": "deviceCommand", device: string, command: string, } | { "kind": "taskUnit", unit: string, task: string, remarks: string, } | { "kind": "publicAlert", headline: string, description: string, instruction: string, severity: AlertSeverity, expiresMinutes: number, };
