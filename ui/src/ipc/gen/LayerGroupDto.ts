// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { Layer } from "./Layer";
import type { MemberDto } from "./MemberDto";

/**
 * The members of one layer.
 */
export type LayerGroupDto = { layer: Layer, members: Array<MemberDto>, };
