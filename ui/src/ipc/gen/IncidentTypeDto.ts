// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * An incident type of the rules, as the "New incident" form offers it.
 */
export type IncidentTypeDto = { id: string, 
/**
 * The type's title without its placeholders ("Power outage").
 */
label: string, };
