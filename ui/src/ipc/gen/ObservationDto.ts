// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";
import type { JsonValue } from "./serde_json/JsonValue";

/**
 * One observation in full, for the details panel.
 */
export type ObservationDto = { 
/**
 * The entity id.
 */
id: string, feed: string, feedName: string, layer: Layer, kind: string, severity: Severity, lon: number, lat: number, 
/**
 * Untrusted feed text.
 */
title: string, observedMs: number, receivedMs: number, 
/**
 * Every other payload field, untrusted feed text.
 */
fields: { [key in string]: JsonValue }, };
