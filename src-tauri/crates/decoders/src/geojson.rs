//! GeoJSON (RFC 7946): a Feature or a FeatureCollection, one observation per feature.
//!
//! Mapping: the feature `id` (or `properties.entity`) is the entity id; `properties.kind` is
//! required; `properties.severity` defaults to `minor`; `properties.time` (RFC 3339) is the
//! observed time and defaults to the arrival time; `properties.title` defaults to the kind;
//! every other property is kept as a payload field. Points are used as they are; other
//! geometries are placed at the mean of their vertices. A bad feature is refused on its own;
//! its neighbours are kept.

use cityops_core::model::{GeoPoint, Observation, Severity};
use cityops_core::shape::Shape;
use serde_json::{Map, Value};

use super::{Adapter, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// The GeoJSON adapter; it keeps no state between messages.
pub struct GeoJsonAdapter;

impl Adapter for GeoJsonAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        decode(ctx, body)
    }
}

/// A well-formed FeatureCollection, parsed without building a JSON tree for the envelope.
#[derive(serde::Deserialize)]
struct FastCollection {
    #[serde(rename = "type")]
    kind: String,
    features: Vec<FastFeature>,
}

#[derive(serde::Deserialize)]
struct FastFeature {
    #[serde(rename = "type")]
    kind: String,
    id: Value,
    geometry: Value,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
}

/// The bare parser the adapter is measured against: JSON into a tree, nothing else.
pub fn bare_parse(body: &[u8]) -> Result<usize, DecodeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| DecodeError {
        place: "$".into(),
        reason: e.to_string(),
    })?;
    Ok(v.get("features").and_then(Value::as_array).map_or(1, Vec::len))
}

/// Decodes a GeoJSON message.
pub fn decode(ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    // Most messages are well-formed collections: take the typed path, and fall back to the
    // generic one (which names each bad feature) only when any feature needs it.
    if let Ok(fc) = serde_json::from_slice::<FastCollection>(body) {
        if fc.kind == "FeatureCollection" {
            let mut out = Decoded::default();
            out.observations.reserve(fc.features.len());
            for (i, f) in fc.features.into_iter().enumerate() {
                let mut obj = Map::new();
                obj.insert("type".into(), Value::String(f.kind));
                obj.insert("id".into(), f.id);
                obj.insert("geometry".into(), f.geometry);
                obj.insert(
                    "properties".into(),
                    f.properties.map(Value::Object).unwrap_or(Value::Null),
                );
                push(&mut out, ctx, i, || format!("features[{i}]"), Value::Object(obj));
            }
            return Ok(out);
        }
    }
    let mut doc: Value = serde_json::from_slice(body).map_err(|e| DecodeError {
        place: format!("$ (line {}, column {})", e.line(), e.column()),
        reason: format!("not JSON: {e}"),
    })?;
    let whole = |reason: &str| DecodeError {
        place: "$".into(),
        reason: reason.into(),
    };
    let mut out = Decoded::default();
    match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            let features = doc
                .get_mut("features")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| whole("FeatureCollection without a \"features\" array"))?;
            out.observations.reserve(features.len());
            for (i, f) in features.iter_mut().enumerate() {
                push(&mut out, ctx, i, || format!("features[{i}]"), f.take());
            }
        }
        Some("Feature") => push(&mut out, ctx, 0, || "$".to_owned(), doc),
        Some(other) => return Err(whole(&format!("type {other:?} is not a Feature or FeatureCollection"))),
        None => return Err(whole("no \"type\" member")),
    }
    Ok(out)
}

fn push(out: &mut Decoded, ctx: MessageContext<'_>, idx: usize, place: impl Fn() -> String, f: Value) {
    match feature(ctx, idx as u32, f) {
        Ok(o) => out.observations.push(o),
        Err((field, reason)) => out.rejected.push(Rejected {
            place: format!("{}{field}", place()),
            reason,
        }),
    }
}

type FeatureError = (String, String);

fn err(field: &str, reason: impl Into<String>) -> FeatureError {
    (field.to_owned(), reason.into())
}

/// Builds one observation, moving the feature's parts out rather than copying them.
fn feature(ctx: MessageContext<'_>, idx: u32, f: Value) -> Result<Observation, FeatureError> {
    let Value::Object(mut f) = f else {
        return Err(err("", "not a Feature object"));
    };
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(err(".type", "not a Feature"));
    }
    let mut props = match f.remove("properties") {
        Some(Value::Object(p)) => p,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(err(".properties", "not an object")),
    };
    let entity = match f.remove("id").or_else(|| props.remove("entity")) {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(err(
                ".id",
                "feature has no id (nor properties.entity) to name what it observes",
            ))
        }
    };
    let kind = match props.remove("kind") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(err(".properties.kind", "missing or not a string")),
    };
    let severity = match props.remove("severity") {
        None | Some(Value::Null) => Severity::Minor,
        Some(Value::String(s)) => s
            .parse()
            .map_err(|e: cityops_core::model::UnknownSeverity| err(".properties.severity", e.to_string()))?,
        Some(_) => return Err(err(".properties.severity", "not a string")),
    };
    let observed_ms = match props.remove("time") {
        None | Some(Value::Null) => ctx.received_ms,
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .map_err(|_| err(".properties.time", format!("{s:?} is not an RFC 3339 timestamp")))?
            .timestamp_millis(),
        Some(_) => return Err(err(".properties.time", "not a string")),
    };
    let title = match props.remove("title") {
        Some(Value::String(s)) => s,
        _ => kind.clone(),
    };
    let geometry = f.get("geometry").ok_or_else(|| err(".geometry", "missing"))?;
    let position = position(geometry).map_err(|r| err(".geometry", r.0))?;
    // Areas and lines keep their shape for the map; the position stays the point correlation
    // uses. A bad shape refuses the feature, as a bad position does.
    let shape = Shape::from_geojson(geometry)
        .map_err(|e| err(".geometry", e.to_string()))?
        .map(Box::new);
    // What is left of the properties is the payload.
    let fields = props.into();
    Ok(Observation {
        feed: ctx.feed.to_owned(),
        seq: ctx.seq,
        idx,
        received_ms: ctx.received_ms,
        observed_ms,
        layer: ctx.layer,
        kind,
        severity,
        entity,
        position,
        title,
        fields,
        shape,
    })
}

/// The representative point of a geometry: the point itself, or the mean of the vertices.
pub(crate) fn position(geometry: &Value) -> Result<GeoPoint, Refusal> {
    let kind = geometry.get("type").and_then(Value::as_str).ok_or("no geometry type")?;
    let coords = geometry.get("coordinates").ok_or("no coordinates")?;
    let mut sum = (0.0, 0.0, 0usize);
    collect(coords, &mut sum, 0)?;
    if sum.2 == 0 {
        return Err(format!("{kind} has no positions").into());
    }
    let (lon, lat) = (sum.0 / sum.2 as f64, sum.1 / sum.2 as f64);
    GeoPoint::new(lon, lat).ok_or_else(|| Refusal(format!("position {lon},{lat} is out of range")))
}

fn collect(v: &Value, sum: &mut (f64, f64, usize), depth: usize) -> Result<(), Refusal> {
    // GeoJSON nests at most four levels (MultiPolygon); deeper input is hostile or broken.
    if depth > 4 {
        return Err("coordinates nested too deeply".into());
    }
    let arr = v.as_array().ok_or("coordinates are not arrays")?;
    match arr.first() {
        Some(Value::Number(_)) => {
            let lon = arr[0].as_f64().ok_or("longitude is not a number")?;
            let lat = arr
                .get(1)
                .and_then(Value::as_f64)
                .ok_or("latitude missing or not a number")?;
            if GeoPoint::new(lon, lat).is_none() {
                return Err(format!("position {lon},{lat} is out of range").into());
            }
            sum.0 += lon;
            sum.1 += lat;
            sum.2 += 1;
        }
        _ => {
            for item in arr {
                collect(item, sum, depth + 1)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::Layer;

    fn ctx() -> MessageContext<'static> {
        MessageContext {
            feed: "signals",
            layer: Layer::Transport,
            seq: 7,
            received_ms: 1_000,
            topic: None,
        }
    }

    #[test]
    fn a_collection_keeps_good_features_and_names_the_bad_ones() {
        let body = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","id":"node/1","geometry":{"type":"Point","coordinates":[24.94,60.17]},
             "properties":{"kind":"signal.dark","severity":"severe","time":"1970-01-01T00:00:00.500Z","title":"Dark","ref":"A12"}},
            {"type":"Feature","id":"node/2","geometry":{"type":"Point","coordinates":[24.94,60.17]},"properties":{}},
            {"type":"Feature","id":"node/3","geometry":{"type":"Point","coordinates":[240,60]},"properties":{"kind":"x"}},
            {"type":"Feature","id":4,"geometry":{"type":"Polygon","coordinates":[[[24.0,60.0],[25.0,60.0],[25.0,61.0],[24.0,61.0]]]},"properties":{"kind":"weather.warning","severity":"purple"}},
            {"type":"Feature","id":5,"geometry":{"type":"Polygon","coordinates":[[[24.0,60.0],[25.0,60.0],[25.0,61.0],[24.0,61.0],[24.0,60.0]]]},"properties":{"kind":"weather.warning"}},
            {"type":"Feature","id":6,"geometry":{"type":"Polygon","coordinates":[[[24.0,60.0],[25.0,60.0],[25.0,61.0],[24.0,61.0]]]},"properties":{"kind":"weather.warning"}}
        ]}"#;
        let d = decode(ctx(), body.as_bytes()).unwrap();
        assert_eq!(d.observations.len(), 2);
        assert_eq!(d.observations[0].shape, None, "a point has no shape");
        let o = &d.observations[0];
        assert_eq!(
            (o.entity.as_str(), o.kind.as_str(), o.severity),
            ("node/1", "signal.dark", Severity::Severe)
        );
        assert_eq!((o.observed_ms, o.received_ms, o.seq, o.idx), (500, 1_000, 7, 0));
        assert_eq!(o.fields.get("ref"), Some(&Value::String("A12".into())));
        assert!(!o.fields.contains_key("kind"));
        let w = &d.observations[1];
        assert_eq!((w.entity.as_str(), w.idx, w.severity), ("5", 4, Severity::Minor));
        // The position is the mean of the positions (the closing one too): the point
        // correlation uses; the area itself is kept as the feed drew it.
        assert!((w.position.lon - 24.4).abs() < 1e-9 && (w.position.lat - 60.4).abs() < 1e-9);
        assert!(matches!(w.shape.as_deref(), Some(Shape::Polygon(rings)) if rings[0].len() == 5));
        let places: Vec<&str> = d.rejected.iter().map(|r| r.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "features[1].properties.kind",
                "features[2].geometry",
                "features[3].properties.severity",
                "features[5].geometry"
            ]
        );
        assert_eq!(
            d.rejected[3].reason,
            "ring 0 is not closed: its first and last positions differ"
        );
    }

    #[test]
    fn whole_message_errors_say_where() {
        let e = decode(ctx(), b"{\"type\":\"Feature\",").unwrap_err();
        assert!(e.place.starts_with("$ (line 1"), "{e}");
        assert!(decode(ctx(), br#"{"type":"Topology"}"#)
            .unwrap_err()
            .reason
            .contains("Topology"));
        assert!(decode(ctx(), br#"{"type":"FeatureCollection"}"#).is_err());
        let deep = format!("{{\"type\":\"Feature\",\"id\":\"a\",\"properties\":{{\"kind\":\"k\"}},\"geometry\":{{\"type\":\"Point\",\"coordinates\":{}1{}}}}}", "[".repeat(10), "]".repeat(10));
        let d = decode(ctx(), deep.as_bytes()).unwrap();
        assert_eq!(d.rejected[0].reason, "coordinates nested too deeply");
    }
}
