// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { FeedDto } from "./FeedDto";
import type { IncidentTypeDto } from "./IncidentTypeDto";
import type { InjectOptionDto } from "./InjectOptionDto";
import type { ZoneDto } from "./ZoneDto";

/**
 * The loaded scenario.
 */
export type ScenarioDto = { name: string, description: string, 
/**
 * The basemap archive name, the first path segment of tile URLs.
 */
map: string, 
/**
 * Where the map opens: lon, lat, zoom.
 */
view: [number, number, number], startMs: number, endMs: number, feeds: Array<FeedDto>, 
/**
 * Live feeds on the wall clock rather than a replayed tape: no play, pause, speed or seek.
 */
live: boolean, 
/**
 * What a trainer may inject (the manifest's `injects`).
 */
injects: Array<InjectOptionDto>, 
/**
 * A workstation of a site: the site's id (its clock is the site's, not the wall's).
 */
site: string | null, 
/**
 * The site is an exercise: its clock is the trainer's and nothing is sent.
 */
exerciseSite: boolean, 
/**
 * What an operator may enter a call as (the rules' incident types; none without rules).
 */
incidentTypes: Array<IncidentTypeDto>, 
/**
 * The zones the map draws (none without a zones file).
 */
zones: Array<ZoneDto>, };
