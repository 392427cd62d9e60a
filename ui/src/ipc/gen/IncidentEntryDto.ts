// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { AreaDto } from "./AreaDto";
import type { Layer } from "./Layer";
import type { LifecycleStatus } from "./LifecycleStatus";
import type { Severity } from "./Severity";

/**
 * One line of the incident queue.
 */
export type IncidentEntryDto = { 
/**
 * Stable id, derived from the observation that opened it (internal: the UI shows `number`).
 */
id: string, 
/**
 * The human number, CAD style (`HEL-2026-000123`), unique per site and year.
 */
number: string, 
/**
 * Built from the rules' title template and the root's asset name (feed text: untrusted).
 */
title: string, 
/**
 * The incident type id from the rules file, such as `power_outage`.
 */
incidentType: string, 
/**
 * After escalation.
 */
severity: Severity, 
/**
 * The operators' workflow status.
 */
status: LifecycleStatus, 
/**
 * False once every member cleared: nothing is wrong any more, the operator still closes it.
 */
active: boolean, openedMs: number, clearedMs: number | null, 
/**
 * Members, duplicates included.
 */
members: number, 
/**
 * Members that are still a problem.
 */
openMembers: number, 
/**
 * The layers its members belong to, in display order.
 */
layers: Array<Layer>, 
/**
 * The probable root cause, by entity.
 */
rootCause: string | null, 
/**
 * The root cause cleared while other members are still a problem.
 */
rootCleared: boolean, 
/**
 * An operator merged, split or moved something in it.
 */
manual: boolean, area: AreaDto, 
/**
 * The operator who acknowledged it, if anyone did.
 */
acknowledgedBy: string | null, 
/**
 * The operator who owns it (took it, or was given it), if anyone.
 */
owner: string | null, 
/**
 * When it escalated for want of an acknowledgement (its opening plus the rules' limit for
 * its severity), while nobody has acknowledged it; null otherwise.
 */
escalatedMs: number | null, };
