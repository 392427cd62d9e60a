// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";
import type { Shape } from "./Shape";

/**
 * One entity on the map: the compact form sent in diffs.
 */
export type MapFeatureDto = { 
/**
 * The entity id; stable, used as the map feature id.
 */
id: string, layer: Layer, kind: string, severity: Severity, lon: number, lat: number, 
/**
 * Untrusted feed text.
 */
title: string, observedMs: number, 
/**
 * The area or line it covers, as a GeoJSON geometry; absent for a point.
 */
shape?: Shape, };
