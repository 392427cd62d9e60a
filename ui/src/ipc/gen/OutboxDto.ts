// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ActionDto } from "./ActionDto";
import type { BackendDto } from "./BackendDto";

/**
 * The outbox at a glance, sent with every change.
 */
export type OutboxDto = { 
/**
 * Every action of this session, newest first (bounded to the most recent 200).
 */
actions: Array<ActionDto>, queued: number, failed: number, 
/**
 * Every backend that has pending actions is unreachable: say so plainly.
 */
offline: boolean, backends: Array<BackendDto>, };
