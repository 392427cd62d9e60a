// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * The affected area: the bounding box of the members that are still a problem (of all members
 * once everything cleared), in WGS 84 degrees.
 */
export type AreaDto = { west: number, south: number, east: number, north: number, };
