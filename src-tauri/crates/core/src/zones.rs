//! Zones: named areas a control room watches (a tunnel, an event perimeter, a critical site),
//! from a GeoJSON file of polygons that a scenario or a live configuration names (`zones`). The
//! map draws them; the rules file's zone rules (`inside`, `enter`, `exit`, `absence`) open or
//! join incidents by them (see `fixtures/rules/README.md`).
//!
//! Each feature is one zone: a string `id` (unique), `properties.name`, and a `Polygon` or
//! `MultiPolygon` geometry checked like any shape ([`crate::shape`]). A point lies in a zone when
//! it lies in one of its polygons and in none of that polygon's holes (edges count as inside).

use serde_json::Value;

use crate::model::GeoPoint;
use crate::shape::{Position, Shape};

/// One zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Its id, as zone rules name it.
    pub id: String,
    /// What operators read.
    pub name: String,
    /// Its area: a `Polygon` or a `MultiPolygon`.
    pub shape: Shape,
    /// Its bounding box, west, south, east, north, to skip zones far away.
    bbox: [f64; 4],
}

/// The zones of a scenario or a live configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Zones {
    zones: Vec<Zone>,
}

/// Why a zones file was refused: the feature's position and what is wrong with which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ZoneError {
    /// `features[3].geometry`, or `$` for the whole file.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl Zones {
    /// Reads a zones file: a GeoJSON FeatureCollection of polygons with ids and names.
    pub fn parse_geojson(text: &str) -> Result<Zones, ZoneError> {
        let err = |place: String, message: String| ZoneError { place, message };
        let doc: Value = serde_json::from_str(text).map_err(|e| err("$".into(), format!("not JSON: {e}")))?;
        let features = doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| err("$".into(), "not a GeoJSON FeatureCollection".into()))?;
        let mut zones: Vec<Zone> = Vec::with_capacity(features.len());
        for (i, f) in features.iter().enumerate() {
            let at = |field: &str| format!("features[{i}]{field}");
            let id = match f.get("id") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => return Err(err(at(".id"), "a zone needs a string id".into())),
            };
            if zones.iter().any(|z| z.id == id) {
                return Err(err(at(".id"), format!("zone {id:?} is there twice")));
            }
            let name = match f.get("properties").and_then(|p| p.get("name")) {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => return Err(err(at(".properties.name"), "a zone needs a name".into())),
            };
            let geometry = f
                .get("geometry")
                .ok_or_else(|| err(at(".geometry"), "missing".into()))?;
            let shape = match Shape::from_geojson(geometry) {
                Ok(Some(s @ (Shape::Polygon(_) | Shape::MultiPolygon(_)))) => s,
                Ok(_) => return Err(err(at(".geometry"), "a zone is a Polygon or a MultiPolygon".into())),
                Err(e) => return Err(err(at(".geometry"), e.to_string())),
            };
            let bbox = bounds(&shape);
            zones.push(Zone { id, name, shape, bbox });
        }
        Ok(Zones { zones })
    }

    /// Every zone, in file order.
    pub fn all(&self) -> &[Zone] {
        &self.zones
    }

    /// The zone with this id.
    pub fn get(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The ids of the zones `p` lies in, in file order.
    pub fn containing(&self, p: GeoPoint) -> impl Iterator<Item = &str> + '_ {
        self.zones.iter().filter(move |z| z.contains(p)).map(|z| z.id.as_str())
    }
}

impl Zone {
    /// True when `p` lies in the zone.
    pub fn contains(&self, p: GeoPoint) -> bool {
        let [w, s, e, n] = self.bbox;
        if p.lon < w || p.lon > e || p.lat < s || p.lat > n {
            return false;
        }
        let point = [p.lon, p.lat];
        match &self.shape {
            Shape::Polygon(rings) => in_polygon(rings, point),
            Shape::MultiPolygon(polygons) => polygons.iter().any(|rings| in_polygon(rings, point)),
            Shape::LineString(_) | Shape::MultiLineString(_) => false,
        }
    }

    /// A point to stand for the zone (the middle of its bounding box), for what happens to the
    /// zone as a whole.
    pub fn middle(&self) -> GeoPoint {
        let [w, s, e, n] = self.bbox;
        GeoPoint {
            lon: (w + e) / 2.0,
            lat: (s + n) / 2.0,
        }
    }
}

fn bounds(shape: &Shape) -> [f64; 4] {
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let mut take = |p: &Position| {
        b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
    };
    match shape {
        Shape::LineString(l) => l.iter().for_each(&mut take),
        Shape::MultiLineString(ls) | Shape::Polygon(ls) => ls.iter().flatten().for_each(&mut take),
        Shape::MultiPolygon(ps) => ps.iter().flatten().flatten().for_each(&mut take),
    }
    b
}

/// In the outer ring and in no hole.
fn in_polygon(rings: &[Vec<Position>], p: Position) -> bool {
    let Some((outer, holes)) = rings.split_first() else {
        return false;
    };
    in_ring(outer, p) && !holes.iter().any(|h| in_ring(h, p) && !on_edge(h, p))
}

/// Even-odd ray casting, with the edge itself counted as inside.
fn in_ring(ring: &[Position], p: Position) -> bool {
    if on_edge(ring, p) {
        return true;
    }
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

fn on_edge(ring: &[Position], p: Position) -> bool {
    ring.windows(2).any(|w| {
        let (a, b) = (w[0], w[1]);
        let cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        cross.abs() < 1e-12
            && p[0] >= a[0].min(b[0])
            && p[0] <= a[0].max(b[0])
            && p[1] >= a[1].min(b[1])
            && p[1] <= a[1].max(b[1])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","id":"station","properties":{"name":"Railway station"},
       "geometry":{"type":"Polygon","coordinates":[
         [[24.94,60.17],[24.95,60.17],[24.95,60.18],[24.94,60.18],[24.94,60.17]],
         [[24.944,60.174],[24.946,60.174],[24.946,60.176],[24.944,60.176],[24.944,60.174]]]}},
      {"type":"Feature","id":"stadium","properties":{"name":"Olympic stadium"},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[24.92,60.18],[24.93,60.18],[24.93,60.19],[24.92,60.18]]]]}}
    ]}"#;

    fn p(lon: f64, lat: f64) -> GeoPoint {
        GeoPoint::new(lon, lat).unwrap()
    }

    #[test]
    fn a_point_is_in_a_zone_outside_its_holes_and_on_its_edges() {
        let z = Zones::parse_geojson(FILE).unwrap();
        assert_eq!(z.all().len(), 2);
        assert_eq!(z.get("station").unwrap().name, "Railway station");
        assert_eq!(z.containing(p(24.941, 60.171)).collect::<Vec<_>>(), ["station"]);
        assert_eq!(z.containing(p(24.945, 60.175)).count(), 0, "in the hole");
        assert_eq!(
            z.containing(p(24.95, 60.175)).collect::<Vec<_>>(),
            ["station"],
            "on the edge"
        );
        assert_eq!(z.containing(p(24.96, 60.175)).count(), 0);
        assert_eq!(z.containing(p(24.928, 60.183)).collect::<Vec<_>>(), ["stadium"]);
        let m = z.get("station").unwrap().middle();
        assert!((m.lon - 24.945).abs() < 1e-9 && (m.lat - 60.175).abs() < 1e-9);
    }

    #[test]
    fn a_bad_zone_is_refused_naming_the_feature_and_field() {
        let refuse = |text: &str| Zones::parse_geojson(text).unwrap_err().to_string();
        let one = |f: &str| format!(r#"{{"type":"FeatureCollection","features":[{f}]}}"#);
        let square = r#"{"type":"Polygon","coordinates":[[[24.94,60.17],[24.95,60.17],[24.95,60.18],[24.94,60.17]]]}"#;
        assert_eq!(
            refuse(&one(&format!(
                r#"{{"type":"Feature","properties":{{"name":"x"}},"geometry":{square}}}"#
            ))),
            "features[0].id: a zone needs a string id"
        );
        assert_eq!(
            refuse(&one(&format!(
                r#"{{"type":"Feature","id":"a","properties":{{}},"geometry":{square}}}"#
            ))),
            "features[0].properties.name: a zone needs a name"
        );
        assert_eq!(
            refuse(&one(
                r#"{"type":"Feature","id":"a","properties":{"name":"x"},"geometry":{"type":"Point","coordinates":[24.9,60.1]}}"#
            )),
            "features[0].geometry: a zone is a Polygon or a MultiPolygon"
        );
        assert_eq!(
            refuse(&one(
                r#"{"type":"Feature","id":"a","properties":{"name":"x"},"geometry":{"type":"Polygon","coordinates":[[[24.94,60.17],[24.95,60.17],[24.95,60.18],[24.94,60.18]]]}}"#
            )),
            "features[0].geometry: ring 0 is not closed: its first and last positions differ"
        );
        let twice = format!(
            r#"{{"type":"FeatureCollection","features":[{f},{f}]}}"#,
            f = format_args!(r#"{{"type":"Feature","id":"a","properties":{{"name":"x"}},"geometry":{square}}}"#)
        );
        assert_eq!(refuse(&twice), "features[1].id: zone \"a\" is there twice");
        assert_eq!(refuse("[]"), "$: not a GeoJSON FeatureCollection");
    }
}
