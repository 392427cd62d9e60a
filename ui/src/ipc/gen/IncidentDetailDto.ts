// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { IncidentEntryDto } from "./IncidentEntryDto";
import type { LayerGroupDto } from "./LayerGroupDto";
import type { MemberDto } from "./MemberDto";
import type { SopStepDto } from "./SopStepDto";
import type { TimelineEntryDto } from "./TimelineEntryDto";

/**
 * Everything the detail view shows about one incident.
 */
export type IncidentDetailDto = { entry: IncidentEntryDto, 
/**
 * The probable root cause's membership.
 */
root: MemberDto | null, 
/**
 * Members by layer, in layer display order, the root first within its layer.
 */
groups: Array<LayerGroupDto>, 
/**
 * Oldest first.
 */
timeline: Array<TimelineEntryDto>, sop: Array<SopStepDto>, 
/**
 * Some operator decision can be taken back.
 */
canUndo: boolean, };
