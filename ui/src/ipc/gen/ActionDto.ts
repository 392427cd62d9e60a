// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ActionStatus } from "./ActionStatus";
import type { BackendKind } from "./BackendKind";

/**
 * One action in the outbox.
 */
export type ActionDto = { id: number, key: string, incident: string | null, backend: string, kind: BackendKind, summary: string, destination: string, status: ActionStatus, attempts: number, 
/**
 * The backend's id for it (Open311 service request id, webhook reply, device reply).
 */
reference: string | null, 
/**
 * The backend's own status of it, where it has one (Open311 `open`/`closed`).
 */
remoteStatus: string | null, lastError: string | null, 
/**
 * When the next attempt is due (wall clock), while queued after a failure.
 */
nextAttemptMs: number | null, createdMs: number, 
/**
 * When it was committed on the scenario clock (the exercise's timeline); `null` for an
 * action from the command line.
 */
scenarioMs: number | null, operator: string, exercise: boolean, };
