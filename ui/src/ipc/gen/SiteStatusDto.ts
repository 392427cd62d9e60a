// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
import type { PresenceDto } from "./PresenceDto";

/**
 * A workstation's link to its site (a control room's shared state), as its header shows it.
 */
export type SiteStatusDto = { 
/**
 * The site's id.
 */
site: string, 
/**
 * This workstation's name in the site.
 */
workstation: string, 
/**
 * Whether the link to the site holds.
 */
connected: boolean, 
/**
 * Since when the link is down (this workstation's clock, for the operator only).
 */
offlineSinceMs: number | null, 
/**
 * Messages of the site not yet applied here (as last seen while connected).
 */
behind: number, 
/**
 * Decisions made here that wait to reach the site.
 */
waiting: number, 
/**
 * Why the site refused the latest decision made here, if it did (shown to its author).
 */
refused: string | null, 
/**
 * Who is signed in at the site's other workstations, and what they have open (gone
 * within the presence TTL after a workstation vanishes).
 */
presence: Array<PresenceDto>, };
