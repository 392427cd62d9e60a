// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * Another workstation of the site: who is signed in there and which incident is open.
 */
export type PresenceDto = { workstation: string, operator: string | null, incident: string | null, };
