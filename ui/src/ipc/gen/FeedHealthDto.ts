// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";

/**
 * The health of one feed as the UI and the CLI show it.
 */
export type FeedHealthDto = { id: string, name: string, layer: Layer, format: string, 
/**
 * `http-poll`, `mqtt`, `tcp` or `file-drop`.
 */
transport: string, 
/**
 * The transport is connected (for polling: the last poll succeeded).
 */
connected: boolean, 
/**
 * When the last message arrived.
 */
lastMessageMs: number | null, 
/**
 * Messages in the last minute.
 */
messagesPerMinute: number, 
/**
 * Received minus observed time of the newest message's latest observation.
 */
lagMs: number | null, 
/**
 * Pieces refused since the feed started.
 */
rejected: number, 
/**
 * The latest refusal reasons, newest last.
 */
lastReasons: Array<string>, 
/**
 * Nothing arrived for longer than the feed's expected interval.
 */
stale: boolean, 
/**
 * Times the transport lost its connection (or a poll failed) since the feed started.
 */
failures: number, 
/**
 * The last transport error, if the feed is not connected.
 */
lastError: string | null, 
/**
 * The feed delivers faster than the ingest stores (or the store refuses): its transport
 * waited to hand a message over in the last ten seconds. Nothing is dropped; the source
 * is held back (a broker or a TCP peer keeps what is not yet read, a folder keeps files).
 */
overloaded: boolean, 
/**
 * How long, in total, the transport has waited for the ingest since the feed started.
 */
heldBackMs: number, };
