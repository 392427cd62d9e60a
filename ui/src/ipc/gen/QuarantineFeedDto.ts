// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * How much of the quarantine one feed holds, for the browser's filter.
 */
export type QuarantineFeedDto = { feed: string, count: number, };
