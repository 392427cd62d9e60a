//! What an observation covers when it is more than a point: a warning's area, a flooded
//! district, a closed road. The observation's position stays the point that correlation and the
//! place-and-time index use; the shape is what the map draws.
//!
//! A shape is a GeoJSON geometry (`LineString`, `MultiLineString`, `Polygon`, `MultiPolygon`),
//! serialized exactly as GeoJSON writes it, so the window hands it to the map as it is. Every
//! shape is checked before it is kept ([`Shape::check`]): positions in range, rings closed with
//! at least four positions and not crossing themselves, lines of at least two positions, and at
//! most [`MAX_VERTICES`] positions in all. A feed's bad shape is refused with the reason, like
//! any other bad field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::GeoPoint;

/// The most positions one shape may have: a warning area drawn by hand has tens, a coastline
/// clipped to a city a few hundred; more is a mistake or an attack on the window.
pub const MAX_VERTICES: usize = 2_000;

/// A position as GeoJSON writes it: longitude, then latitude, in degrees.
pub type Position = [f64; 2];

/// A line or an area, as a GeoJSON geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", content = "coordinates")]
pub enum Shape {
    /// A line: a closed road, a blocked tram track.
    LineString(Vec<Position>),
    /// Several lines.
    MultiLineString(Vec<Vec<Position>>),
    /// An area: its outer ring, then any holes.
    Polygon(Vec<Vec<Position>>),
    /// Several areas.
    MultiPolygon(Vec<Vec<Vec<Position>>>),
}

/// Why a shape was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Not a geometry this reads.
    #[error("{0}")]
    Malformed(String),
    /// A position outside -180..180, -90..90.
    #[error("position {0} is out of range")]
    OutOfRange(String),
    /// Too many positions.
    #[error("{0} positions; a shape may have at most {MAX_VERTICES}")]
    TooManyVertices(usize),
    /// A line of fewer than two positions.
    #[error("line {0} has fewer than 2 positions")]
    ShortLine(String),
    /// A ring of fewer than four positions.
    #[error("ring {0} has fewer than 4 positions")]
    ShortRing(String),
    /// A ring whose first and last positions differ.
    #[error("ring {0} is not closed: its first and last positions differ")]
    Unclosed(String),
    /// A ring that crosses or touches itself.
    #[error("ring {ring} crosses itself (its edges {a} and {b})")]
    SelfIntersecting {
        /// Which ring (`0`, or `1.0` for the first ring of the second polygon).
        ring: String,
        /// The edges that cross, from 0.
        a: usize,
        /// The edges that cross, from 0.
        b: usize,
    },
}

impl Shape {
    /// The shape of a GeoJSON geometry: `None` for points (a point has no shape beyond its
    /// position), the checked shape for lines and areas.
    pub fn from_geojson(geometry: &Value) -> Result<Option<Shape>, ShapeError> {
        let kind = geometry
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ShapeError::Malformed("no geometry type".into()))?;
        let coords = || {
            geometry
                .get("coordinates")
                .cloned()
                .ok_or_else(|| ShapeError::Malformed(format!("{kind} without coordinates")))
        };
        let parsed: Result<Shape, serde_json::Error> = match kind {
            "Point" | "MultiPoint" => return Ok(None),
            "LineString" => serde_json::from_value(coords()?).map(Shape::LineString),
            "MultiLineString" => serde_json::from_value(coords()?).map(Shape::MultiLineString),
            "Polygon" => serde_json::from_value(coords()?).map(Shape::Polygon),
            "MultiPolygon" => serde_json::from_value(coords()?).map(Shape::MultiPolygon),
            other => return Err(ShapeError::Malformed(format!("geometry type {other:?} is not drawn"))),
        };
        let shape =
            parsed.map_err(|_| ShapeError::Malformed(format!("{kind} coordinates are not nested as GeoJSON says")))?;
        shape.check()?;
        Ok(Some(shape))
    }

    /// A circle of `radius_m` metres around `centre` as a polygon of 32 sides (CAP's circles).
    pub fn circle(centre: GeoPoint, radius_m: f64) -> Shape {
        const SIDES: usize = 32;
        // Metres per degree near the centre: exact enough for the few kilometres of a warning.
        let per_lat = 111_320.0;
        let per_lon = per_lat * centre.lat.to_radians().cos().max(1e-6);
        let mut ring: Vec<Position> = (0..SIDES)
            .map(|k| {
                let a = std::f64::consts::TAU * k as f64 / SIDES as f64;
                let lon = (centre.lon + radius_m * a.sin() / per_lon).clamp(-180.0, 180.0);
                let lat = (centre.lat + radius_m * a.cos() / per_lat).clamp(-90.0, 90.0);
                [lon, lat]
            })
            .collect();
        ring.push(ring[0]);
        Shape::Polygon(vec![ring])
    }

    /// Several areas as one shape: a single area stays a `Polygon`.
    pub fn areas(mut polygons: Vec<Vec<Vec<Position>>>) -> Option<Shape> {
        match polygons.len() {
            0 => None,
            1 => polygons.pop().map(Shape::Polygon),
            _ => Some(Shape::MultiPolygon(polygons)),
        }
    }

    /// How many positions it has.
    pub fn vertices(&self) -> usize {
        match self {
            Shape::LineString(l) => l.len(),
            Shape::MultiLineString(ls) | Shape::Polygon(ls) => ls.iter().map(Vec::len).sum(),
            Shape::MultiPolygon(ps) => ps.iter().flatten().map(Vec::len).sum(),
        }
    }

    /// Checks the shape (see the module's documentation).
    pub fn check(&self) -> Result<(), ShapeError> {
        let n = self.vertices();
        if n > MAX_VERTICES {
            return Err(ShapeError::TooManyVertices(n));
        }
        match self {
            Shape::LineString(l) => line(l, "0"),
            Shape::MultiLineString(ls) => ls.iter().enumerate().try_for_each(|(i, l)| line(l, &i.to_string())),
            Shape::Polygon(rings) => rings.iter().enumerate().try_for_each(|(i, r)| ring(r, i.to_string())),
            Shape::MultiPolygon(ps) => ps.iter().enumerate().try_for_each(|(p, rings)| {
                rings
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, r)| ring(r, format!("{p}.{i}")))
            }),
        }
    }
}

fn in_range(points: &[Position]) -> Result<(), ShapeError> {
    match points.iter().find(|[lon, lat]| GeoPoint::new(*lon, *lat).is_none()) {
        Some([lon, lat]) => Err(ShapeError::OutOfRange(format!("{lon},{lat}"))),
        None => Ok(()),
    }
}

fn line(points: &[Position], name: &str) -> Result<(), ShapeError> {
    in_range(points)?;
    if points.len() < 2 {
        return Err(ShapeError::ShortLine(name.to_owned()));
    }
    Ok(())
}

fn ring(points: &[Position], name: String) -> Result<(), ShapeError> {
    in_range(points)?;
    if points.len() < 4 {
        return Err(ShapeError::ShortRing(name));
    }
    if points.first() != points.last() {
        return Err(ShapeError::Unclosed(name));
    }
    // Every pair of edges that do not share a vertex must not meet. Quadratic, but a shape has
    // at most MAX_VERTICES positions.
    let edges = points.len() - 1;
    for a in 0..edges {
        for b in a + 2..edges {
            if a == 0 && b == edges - 1 {
                // The first and the last edge share the ring's closing vertex.
                continue;
            }
            if segments_meet(points[a], points[a + 1], points[b], points[b + 1]) {
                return Err(ShapeError::SelfIntersecting { ring: name, a, b });
            }
        }
    }
    Ok(())
}

/// The sign of the turn from `a` to `b` to `c`: positive left, negative right, zero straight.
fn turn(a: Position, b: Position, c: Position) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

fn on_segment(a: Position, b: Position, p: Position) -> bool {
    p[0] >= a[0].min(b[0]) && p[0] <= a[0].max(b[0]) && p[1] >= a[1].min(b[1]) && p[1] <= a[1].max(b[1])
}

/// True when the segments `p1 p2` and `q1 q2` cross or touch.
fn segments_meet(p1: Position, p2: Position, q1: Position, q2: Position) -> bool {
    let (d1, d2) = (turn(q1, q2, p1), turn(q1, q2, p2));
    let (d3, d4) = (turn(p1, p2, q1), turn(p1, p2, q2));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    (d1 == 0.0 && on_segment(q1, q2, p1))
        || (d2 == 0.0 && on_segment(q1, q2, p2))
        || (d3 == 0.0 && on_segment(p1, p2, q1))
        || (d4 == 0.0 && on_segment(p1, p2, q2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(v: Value) -> Result<Option<Shape>, ShapeError> {
        Shape::from_geojson(&v)
    }

    #[test]
    fn areas_and_lines_are_kept_as_geojson_and_points_have_no_shape() {
        let square = json!({"type": "Polygon", "coordinates": [[[24.0, 60.0], [25.0, 60.0], [25.0, 61.0], [24.0, 61.0], [24.0, 60.0]]]});
        let s = shape(square.clone()).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            square,
            "written back exactly as GeoJSON"
        );
        assert_eq!(s.vertices(), 5);
        let road =
            json!({"type": "LineString", "coordinates": [[24.0, 60.0], [24.1, 60.1], [24.0, 60.1], [24.1, 60.0]]});
        assert!(
            matches!(shape(road).unwrap(), Some(Shape::LineString(l)) if l.len() == 4),
            "a line may cross itself"
        );
        assert_eq!(
            shape(json!({"type": "Point", "coordinates": [24.0, 60.0]})).unwrap(),
            None
        );
        let two = json!({"type": "MultiPolygon", "coordinates": [
            [[[24.0, 60.0], [24.1, 60.0], [24.1, 60.1], [24.0, 60.0]]],
            [[[25.0, 60.0], [25.1, 60.0], [25.1, 60.1], [25.0, 60.0]]]]});
        assert!(matches!(shape(two).unwrap(), Some(Shape::MultiPolygon(p)) if p.len() == 2));
    }

    #[test]
    fn bad_shapes_are_refused_with_the_reason() {
        let refuse = |v: Value| shape(v).unwrap_err().to_string();
        assert_eq!(
            refuse(
                json!({"type": "Polygon", "coordinates": [[[24.0, 60.0], [25.0, 60.0], [25.0, 61.0], [24.0, 61.0]]]})
            ),
            "ring 0 is not closed: its first and last positions differ"
        );
        // A bow tie: its first and third edges cross.
        assert_eq!(
            refuse(
                json!({"type": "Polygon", "coordinates": [[[24.0, 60.0], [25.0, 61.0], [25.0, 60.0], [24.0, 61.0], [24.0, 60.0]]]})
            ),
            "ring 0 crosses itself (its edges 0 and 2)"
        );
        assert_eq!(
            refuse(json!({"type": "Polygon", "coordinates": [[[24.0, 60.0], [25.0, 60.0], [24.0, 60.0]]]})),
            "ring 0 has fewer than 4 positions"
        );
        assert_eq!(
            refuse(json!({"type": "LineString", "coordinates": [[24.0, 60.0]]})),
            "line 0 has fewer than 2 positions"
        );
        assert_eq!(
            refuse(json!({"type": "LineString", "coordinates": [[24.0, 60.0], [200.0, 60.0]]})),
            "position 200,60 is out of range"
        );
        let many: Vec<Position> = (0..=MAX_VERTICES).map(|i| [24.0 + i as f64 * 1e-5, 60.0]).collect();
        assert_eq!(
            refuse(json!({"type": "LineString", "coordinates": many})),
            format!(
                "{} positions; a shape may have at most {MAX_VERTICES}",
                MAX_VERTICES + 1
            )
        );
        assert_eq!(
            refuse(json!({"type": "Polygon", "coordinates": [[24.0, 60.0]]})),
            "Polygon coordinates are not nested as GeoJSON says"
        );
        assert_eq!(
            refuse(json!({"type": "GeometryCollection", "geometries": []})),
            "geometry type \"GeometryCollection\" is not drawn"
        );
    }

    #[test]
    fn a_circle_is_a_closed_polygon_of_the_radius() {
        let c = GeoPoint::new(24.94, 60.17).unwrap();
        let Shape::Polygon(rings) = Shape::circle(c, 1_000.0) else {
            panic!("a circle is a polygon")
        };
        assert_eq!(rings[0].len(), 33);
        assert_eq!(rings[0].first(), rings[0].last());
        for [lon, lat] in &rings[0] {
            let d = crate::geo::distance_m(c, GeoPoint::new(*lon, *lat).unwrap());
            assert!((d - 1_000.0).abs() < 10.0, "{d} m from the centre");
        }
        assert!(Shape::circle(c, 1_000.0).check().is_ok());
    }
}
