// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { BackendDto } from "./BackendDto";
import type { HeaderDto } from "./HeaderDto";

/**
 * Exactly what confirming will send, to whom. Confirming commits these bytes to the outbox.
 */
export type ActionPreviewDto = { 
/**
 * Pass to `confirm_action`; a preview can be confirmed once.
 */
token: string, backend: BackendDto, 
/**
 * The idempotency key the backend will see.
 */
key: string, 
/**
 * One line for lists ("Service request utility-crew at Kaisaniemi").
 */
summary: string, 
/**
 * `POST http://...`, `mqtt://host:port topic`, `tcp://host:port`.
 */
destination: string, headers: Array<HeaderDto>, 
/**
 * The body as text (every backend sends text: form, JSON or XML).
 */
body: string, 
/**
 * How many confirmations the operator must give (1, or 2 for dangerous actions).
 */
confirmations: number, exercise: boolean, };
