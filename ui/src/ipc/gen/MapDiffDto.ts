// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { ClockDto } from "./ClockDto";
import type { FeedHealthDto } from "./FeedHealthDto";
import type { IncidentsDiffDto } from "./IncidentsDiffDto";
import type { LayerAgeDto } from "./LayerAgeDto";
import type { MapFeatureDto } from "./MapFeatureDto";
import type { OutboxDto } from "./OutboxDto";
import type { SiteStatusDto } from "./SiteStatusDto";
import type { StorageHealthDto } from "./StorageHealthDto";

/**
 * A change to the picture, coalesced over one clock tick.
 */
export type MapDiffDto = { 
/**
 * Drop everything before applying `upserts` (after a seek or on subscription).
 */
reset: boolean, upserts: Array<MapFeatureDto>, clock: ClockDto, layers: Array<LayerAgeDto>, 
/**
 * Incident changes in the same tick; `null` when none changed.
 */
incidents: IncidentsDiffDto | null, 
/**
 * The outbox after a change (an action committed, attempted, delivered, failed or
 * cancelled); `null` when nothing changed.
 */
outbox: OutboxDto | null, 
/**
 * Live mode: every feed's health, when it changed; always `null` in a replay.
 */
feeds: Array<FeedHealthDto> | null, 
/**
 * Live mode: whether the store takes what arrives, when that changed; always `null` in a
 * replay.
 */
storage: StorageHealthDto | null, 
/**
 * A workstation of a site: its link to the site, when that changed; always `null`
 * otherwise.
 */
site: SiteStatusDto | null, };
