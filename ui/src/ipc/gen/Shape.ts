// Generated from Rust by `cargo test` (cityops-dto). Do not edit.
/**
 * A line or an area, as a GeoJSON geometry.
 */
export type Shape = { "type": "LineString", "coordinates": Array<[number, number]> } | { "type": "MultiLineString", "coordinates": Array<Array<[number, number]>> } | { "type": "Polygon", "coordinates": Array<Array<[number, number]>> } | { "type": "MultiPolygon", "coordinates": Array<Array<Array<[number, number]>>> };
