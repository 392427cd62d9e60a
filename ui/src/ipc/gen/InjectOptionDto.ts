// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { Severity } from "./Severity";

/**
 * One entry of the scenario's inject palette, as the trainer view offers it.
 */
export type InjectOptionDto = { id: string, title: string, kind: string, layer: Layer, severity: Severity, 
/**
 * The asset type the inject snaps to (`substation`), if any, and how far it looks.
 */
assetType: string | null, snapM: number, };
