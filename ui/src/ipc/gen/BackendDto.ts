// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { BackendKind } from "./BackendKind";

/**
 * One configured backend, as the operator picks it.
 */
export type BackendDto = { 
/**
 * The id in the config file.
 */
id: string, 
/**
 * The name operators know it by ("City works Open311").
 */
name: string, kind: BackendKind, 
/**
 * What the action does, in words ("Open a service request for a field crew").
 */
action: string, 
/**
 * Needs a second confirmation.
 */
dangerous: boolean, 
/**
 * Only a supervisor (or trainer) may send it.
 */
supervisorOnly: boolean, 
/**
 * Open311 service codes, MQTT commands or CoT task types the backend offers.
 */
choices: Array<string>, 
/**
 * True in training and replay: the action goes to the exercise recorder, never the network.
 */
exercise: boolean, 
/**
 * The last delivery attempt failed to reach the backend (`null` before any attempt).
 */
reachable: boolean | null, };
