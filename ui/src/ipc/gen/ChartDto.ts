// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * One chart of the shift's KPIs: SVG markup drawn by the engine (plotters), and the totals it
 * was drawn from.
 */
export type ChartDto = { id: string, title: string, svg: string, totals: { [key in string]: number }, };
