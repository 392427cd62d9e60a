// Generated from Rust by `cargo test` (cityops-engine dto.rs). Do not edit.
export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;
