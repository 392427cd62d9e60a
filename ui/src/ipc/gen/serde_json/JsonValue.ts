// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;
