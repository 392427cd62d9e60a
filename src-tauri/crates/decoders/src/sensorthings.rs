//! OGC SensorThings API v1.1: the JSON answer to
//! `GET {service}/v1.1/Observations?{filter_since(t)}` — a collection
//! `{"value": [...], "@iot.nextLink": "..."}` (or a single Observation) whose Observations carry
//! their Datastream expanded with its Thing (and the Thing's Locations) and ObservedProperty.
//!
//! # What becomes an observation
//! One per Observation: entity `sta:{Datastream @iot.id}`, observed at `phenomenonTime` (an
//! instant, or the start of an interval `start/end`), placed at the first Location of the
//! Thing whose `location` is GeoJSON (a geometry or a Feature; non-points at the mean of their
//! vertices), else at the Observation's expanded `FeatureOfInterest.feature`, else refused.
//! Kind `sensor.reading` with severity `normal`, or what the mapping says (below). Fields:
//! `result`, `unit` (the unit's symbol, else name), `datastream`, `thing`,
//! `observed_property`, `observation_id`, `result_time` and `phenomenon_end` when given.
//!
//! # Mapping
//! ```toml
//! [feeds.mapping.kinds]           # ObservedProperty name -> kind of an in-range reading
//! voltage = "feeder.voltage"
//!
//! [[feeds.mapping.thresholds]]    # raise the severity when the result crosses a limit
//! property = "voltage"            # ObservedProperty name
//! below = 200.0                   # and/or above = ..., or equals = "open"
//! severity = "severe"
//! kind = "feeder.voltage_low"
//! ```
//! Among the thresholds that trigger, the most severe wins (the first listed among equals); a
//! reading that triggers none keeps the kind from `kinds` (default `sensor.reading`) at
//! severity `normal`. A result that is not a number where a numeric threshold watches its
//! property is refused, since a silent `normal` would hide a broken sensor.
//!
//! # Polling
//! [`filter_since`] is the query string to poll with; [`next_link`] reads the next page's URL
//! and [`newest_time`] the time a poll's watermark moves to. The http-poll transport
//! (`live::http_poll`) does the polling: per configured URL, a watermark, bounded paging. The
//! `$filter` uses `gt` on the last phenomenonTime seen, so an observation that arrives later
//! with exactly that time is missed (`ge` would instead repeat one observation per poll).
//! Paging follows `@iot.nextLink`.
//!
//! The real server in the tests, django-ogc-sensorthings 1.2.0, has four bugs a transport
//! must work around (each seen in `tests/sensorthings_live.rs`):
//! 1. In a collection, a to-one `$expand` (Observation → Datastream → Thing) repeats the
//!    *first* item's entity for every item, so `/Observations?{filter_since}` across several
//!    datastreams would put every reading on the first Thing. Poll either
//!    `/Datastreams('{id}')/Observations?{filter_since}` per datastream, or `/Observations`
//!    with `$top=1`.
//! 2. Paging under a navigation path (`/Datastreams('{id}')/Observations?...&$top=1&$skip=1`)
//!    repeats items; paging on the top-level `/Observations` works. So per-datastream polls
//!    must fit one page (the server's `MAX_TOP`, 100 by default) per poll interval: choose the
//!    interval so a datastream produces fewer readings than that between polls, or poll
//!    `/Observations?$top=1` with a `max_pages` large enough.
//! 3. `$orderby=phenomenonTime` (asc or desc) answers 500 (`resultTime` works), so
//!    [`filter_since`] sets no order and results arrive in none promised.
//! 4. POSTing an interval `phenomenonTime` (`start/end`) answers 500; the adapter still reads
//!    intervals from servers that have them.
//!
//! # Hostile input
//! JSON errors say where (line, column) and name NaN/Infinity and the nesting limit (128);
//! a bad Observation is refused on its own (`value[3].Datastream`), its neighbours are kept;
//! times more than a year from arrival are refused.

use cityops_core::model::{GeoPoint, Millis, Observation, Severity};
use cityops_core::scenario::FeedSpec;
use cityops_core::shape::Shape;
use cityops_core::Fields;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;

use super::mapping::{check_skew, json_error, parse_rfc3339, rfc3339, type_name, worst, MappingReader, Threshold};
use super::{Adapter, AdapterConfigError, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// The `$expand` every poll uses: what the adapter needs to place and name a reading.
pub const EXPAND: &str = "Datastream($expand=Thing($expand=Locations),ObservedProperty)";

/// The mapping choices of a SensorThings feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorThingsMapping {
    /// ObservedProperty name → kind of an in-range reading.
    pub kinds: Vec<(String, String)>,
    /// Threshold rules; `watch` is an ObservedProperty name.
    pub thresholds: Vec<Threshold>,
}

/// The SensorThings adapter of one feed; it keeps no state between messages.
pub struct SensorThingsAdapter {
    mapping: SensorThingsMapping,
}

impl SensorThingsAdapter {
    /// An adapter with the given mapping.
    pub fn new(mapping: SensorThingsMapping) -> Self {
        SensorThingsAdapter { mapping }
    }

    /// Builds the adapter from a feed spec.
    pub fn from_spec(spec: &FeedSpec) -> Result<Self, AdapterConfigError> {
        let r = MappingReader::new(&spec.id);
        let mut mapping = SensorThingsMapping::default();
        if let Some(m) = r.table(Some(&spec.mapping), "mapping", &["kinds", "thresholds"])? {
            if let Some(kinds) = m.get("kinds").filter(|v| !v.is_null()) {
                let kinds = kinds
                    .as_object()
                    .ok_or_else(|| r.err("mapping.kinds", format!("expected a table, found {}", type_name(kinds))))?;
                for (prop, kind) in kinds {
                    let kind = kind.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
                        r.err(&format!("mapping.kinds.{prop}"), "expected a non-empty string (a kind)")
                    })?;
                    mapping.kinds.push((prop.clone(), kind.to_owned()));
                }
            }
            for (i, t) in r.tables(m, "mapping", "thresholds")?.into_iter().enumerate() {
                mapping
                    .thresholds
                    .push(Threshold::read(&r, t, &format!("mapping.thresholds[{i}]"), "property")?);
            }
        }
        Ok(SensorThingsAdapter::new(mapping))
    }
}

/// The query string (after `?`) that polls for Observations newer than `t_ms`, with the
/// expansions the adapter needs: `$filter=phenomenonTime gt <RFC 3339>&$expand=...`, spaces
/// percent-encoded.
pub fn filter_since(t_ms: Millis) -> String {
    format!("$filter=phenomenonTime%20gt%20{}&$expand={EXPAND}", rfc3339(t_ms))
}

/// The `@iot.nextLink` of a collection response, if there is a next page, with characters
/// that may not appear in a URL (servers put raw spaces there) percent-encoded.
pub fn next_link(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(rename = "@iot.nextLink")]
        next: Option<String>,
    }
    let page: Page = serde_json::from_slice(body).ok()?;
    let link = page.next.filter(|l| !l.is_empty())?;
    let mut out = String::with_capacity(link.len());
    for c in link.chars().filter(|c| !c.is_control()) {
        // Only ASCII goes through the encoder, which would also encode every non-ASCII
        // character; those are left as they are, for the HTTP client's URL parser to encode.
        if c.is_ascii() {
            out.extend(utf8_percent_encode(c.encode_utf8(&mut [0; 4]), NOT_IN_LINK));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The ASCII characters a next link may not carry raw (RFC 3986 has no place for them, and
/// servers do put raw spaces there). Control characters are in the set only for completeness:
/// [`next_link`] drops them rather than encode them.
const NOT_IN_LINK: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// The newest `phenomenonTime` (an interval's start, as the adapter reads it) among the
/// Observations of a poll answer, which an incremental poll advances its watermark to;
/// `Ok(None)` for a collection without a readable time. An error means the body is not a
/// SensorThings collection or Observation at all (garbage behind a 200).
pub fn newest_time(body: &[u8]) -> Result<Option<Millis>, DecodeError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| json_error(&e, body))?;
    let time = |o: &Value| {
        o.get("phenomenonTime")
            .and_then(Value::as_str)
            .and_then(|t| parse_rfc3339(t.split('/').next().unwrap_or(t)))
    };
    match doc.get("value") {
        Some(Value::Array(items)) => Ok(items.iter().filter_map(time).max()),
        Some(other) => Err(DecodeError {
            place: "$.value".into(),
            reason: format!("expected an array of Observations, found {}", type_name(other)),
        }),
        None if doc.get("phenomenonTime").is_some() => Ok(time(&doc)),
        None => Err(DecodeError {
            place: "$".into(),
            reason: "neither a collection (\"value\") nor an Observation (\"phenomenonTime\")".into(),
        }),
    }
}

/// Runs only the JSON parser over the body, for the decode benchmark; returns the number of
/// entries of `value` (1 for a single Observation). It builds the same generic tree
/// (`serde_json::Value`) the adapter starts from, because the adapter reads a mapping chosen
/// at run time and so needs the tree; the ratio of the two rates is then the cost of the
/// mapping itself. (Parsing into `IgnoredAny`, which builds nothing, is about ten times
/// faster again on expanded responses.)
pub fn bare_parse(body: &[u8]) -> Result<usize, DecodeError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| json_error(&e, body))?;
    Ok(doc.get("value").and_then(Value::as_array).map_or(1, Vec::len))
}

impl Adapter for SensorThingsAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| json_error(&e, body))?;
        let Value::Object(mut doc) = doc else {
            return Err(DecodeError {
                place: "$".into(),
                reason: format!("expected a JSON object, found {}", type_name(&doc)),
            });
        };
        let mut out = Decoded::default();
        match doc.remove("value") {
            Some(Value::Array(items)) => {
                out.observations.reserve(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match self.observation(ctx, i as u32, item) {
                        Ok(o) => out.observations.push(o),
                        Err((field, reason)) => out.rejected.push(Rejected {
                            place: format!("value[{i}]{field}"),
                            reason,
                        }),
                    }
                }
            }
            Some(other) => {
                return Err(DecodeError {
                    place: "$.value".into(),
                    reason: format!("expected an array of Observations, found {}", type_name(&other)),
                })
            }
            None if doc.contains_key("result") || doc.contains_key("phenomenonTime") => {
                match self.observation(ctx, 0, Value::Object(doc)) {
                    Ok(o) => out.observations.push(o),
                    Err((field, reason)) => out.rejected.push(Rejected {
                        place: format!("${field}"),
                        reason,
                    }),
                }
            }
            None => {
                return Err(DecodeError {
                    place: "$".into(),
                    reason: "neither a collection (\"value\") nor an Observation (\"result\", \"phenomenonTime\")"
                        .into(),
                })
            }
        }
        Ok(out)
    }
}

type ObsError = (String, String);

fn err(field: &str, reason: impl Into<String>) -> ObsError {
    (field.to_owned(), reason.into())
}

/// An `@iot.id`: a number or a string (servers use both).
fn iot_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn name_of(v: Option<&Value>) -> Option<&str> {
    v?.get("name")?.as_str().filter(|s| !s.is_empty())
}

/// A GeoJSON geometry or Feature as a point, and its shape when it is an area or a line (a
/// flood zone's sensor, a pipe).
fn geojson_place(v: &Value) -> Result<(GeoPoint, Option<Shape>), Refusal> {
    let geometry = if v.get("type").and_then(Value::as_str) == Some("Feature") {
        v.get("geometry").ok_or("Feature without geometry")?
    } else {
        v
    };
    let point = super::geojson::position(geometry)?;
    let shape = Shape::from_geojson(geometry).map_err(|e| Refusal(e.to_string()))?;
    Ok((point, shape))
}

impl SensorThingsAdapter {
    fn observation(&self, ctx: MessageContext<'_>, idx: u32, item: Value) -> Result<Observation, ObsError> {
        let Value::Object(mut obs) = item else {
            return Err(err(
                "",
                format!("expected an Observation object, found {}", type_name(&item)),
            ));
        };
        let datastream = match obs.remove("Datastream") {
            Some(Value::Object(d)) => d,
            Some(other) => {
                return Err(err(
                    ".Datastream",
                    format!("expected an object, found {}", type_name(&other)),
                ))
            }
            None => {
                return Err(err(
                    ".Datastream",
                    "not expanded: poll with filter_since's $expand so each reading carries its Datastream",
                ))
            }
        };
        let ds_id = iot_id(datastream.get("@iot.id"))
            .ok_or_else(|| err(".Datastream.@iot.id", "missing or not a string or number"))?;

        // phenomenonTime: an instant or an interval "start/end".
        let (observed_ms, phenomenon_end) = match obs.get("phenomenonTime") {
            Some(Value::String(s)) => {
                let (start, end) = match s.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (s.as_str(), None),
                };
                let t = parse_rfc3339(start).ok_or_else(|| {
                    err(
                        ".phenomenonTime",
                        format!("{s:?} is not an ISO 8601 instant or interval"),
                    )
                })?;
                let end = end
                    .map(|e| {
                        parse_rfc3339(e).ok_or_else(|| {
                            err(
                                ".phenomenonTime",
                                format!("interval end {e:?} is not an ISO 8601 instant"),
                            )
                        })
                    })
                    .transpose()?;
                (t, end)
            }
            Some(other) => {
                return Err(err(
                    ".phenomenonTime",
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
            None => return Err(err(".phenomenonTime", "missing (it is mandatory)")),
        };
        check_skew(observed_ms, ctx.received_ms).map_err(|r| err(".phenomenonTime", r.0))?;
        let result = obs
            .remove("result")
            .ok_or_else(|| err(".result", "missing (it is mandatory)"))?;

        let thing = datastream.get("Thing");
        let mut position = None;
        let mut last_problem = None;
        if let Some(locations) = thing.and_then(|t| t.get("Locations")).and_then(Value::as_array) {
            for (k, loc) in locations.iter().enumerate() {
                match loc.get("location").map(geojson_place) {
                    Some(Ok(p)) => {
                        position = Some(p);
                        break;
                    }
                    Some(Err(r)) => last_problem = Some((format!(".Datastream.Thing.Locations[{k}].location"), r.0)),
                    None => {
                        last_problem = Some((format!(".Datastream.Thing.Locations[{k}]"), "no location".to_owned()))
                    }
                }
            }
        }
        if position.is_none() {
            if let Some(feature) = obs.get("FeatureOfInterest").and_then(|f| f.get("feature")) {
                match geojson_place(feature) {
                    Ok(p) => position = Some(p),
                    Err(r) => last_problem = Some((".FeatureOfInterest.feature".into(), r.0)),
                }
            }
        }
        let (position, shape) = match (position, last_problem) {
            (Some(p), _) => p,
            (None, Some((field, r))) => return Err(err(&field, format!("cannot be placed: {r}"))),
            (None, None) => return Err(err(
                ".Datastream.Thing",
                "cannot be placed: no Thing with Locations (poll with filter_since's $expand) and no FeatureOfInterest",
            )),
        };

        let property = name_of(datastream.get("ObservedProperty"));
        let default_kind = property
            .and_then(|p| self.mapping.kinds.iter().find(|(k, _)| k == p))
            .map(|(_, kind)| kind.as_str())
            .unwrap_or("sensor.reading");
        let mut hits = Vec::new();
        if let Some(p) = property {
            for t in self.mapping.thresholds.iter().filter(|t| t.watch == p) {
                if t.triggers(&result)
                    .map_err(|r| err(".result", format!("{r} (ObservedProperty {p:?})")))?
                {
                    hits.push(t);
                }
            }
        }
        let rule = worst(hits);
        let (kind, severity) = rule.map_or((default_kind, Severity::Normal), |t| (t.kind.as_str(), t.severity));

        let unit = datastream.get("unitOfMeasurement").and_then(|u| {
            u.get("symbol")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| name_of(Some(u)))
        });
        let ds_name = datastream.get("name").and_then(Value::as_str).filter(|s| !s.is_empty());
        let thing_name = name_of(thing);
        let mut fields = Fields::new();
        let mut put = |k: &'static str, v: Option<&str>| {
            if let Some(v) = v {
                fields.insert(k, Value::String(v.to_owned()));
            }
        };
        put("unit", unit);
        put("datastream", ds_name);
        put("thing", thing_name);
        put("observed_property", property);
        put("result_time", obs.get("resultTime").and_then(Value::as_str));
        if let Some(id) = iot_id(obs.get("@iot.id")) {
            fields.insert("observation_id", Value::String(id));
        }
        if let Some(end) = phenomenon_end {
            fields.insert("phenomenon_end", Value::String(rfc3339(end)));
        }
        let shown = match &result {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let who = thing_name
            .or(ds_name)
            .map_or_else(|| format!("Datastream {ds_id}"), str::to_owned);
        let title = match rule {
            Some(t) => format!("{who}: {}", t.describe(&result)),
            None => format!(
                "{who}: {} {shown}{}",
                property.unwrap_or("result"),
                unit.map(|u| format!(" {u}")).unwrap_or_default()
            ),
        };
        fields.insert("result", result);
        Ok(Observation {
            feed: ctx.feed.to_owned(),
            seq: ctx.seq,
            idx,
            received_ms: ctx.received_ms,
            observed_ms,
            layer: ctx.layer,
            kind: kind.to_owned(),
            severity,
            entity: format!("sta:{ds_id}"),
            position,
            title,
            fields,
            shape: shape.map(Box::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::Layer;
    use serde_json::json;

    fn ctx() -> MessageContext<'static> {
        MessageContext {
            feed: "scada-sta",
            layer: Layer::Utility,
            seq: 1,
            received_ms: 1_764_190_800_000,
            topic: None,
        }
    }

    fn spec(mapping: Value) -> FeedSpec {
        FeedSpec {
            id: "scada-sta".into(),
            layer: Layer::Utility,
            format: cityops_core::tape::FeedFormat::SensorThings,
            name: String::new(),
            mapping,
        }
    }

    /// An Observation shaped like the SensorThings 1.1 specification's examples (section 8.2),
    /// with the Datastream expanded as `filter_since` asks.
    fn obs(id: u32, time: &str, result: Value, property: &str, location: Value) -> Value {
        json!({
            "@iot.id": id,
            "@iot.selfLink": format!("http://example.org/v1.1/Observations({id})"),
            "phenomenonTime": time,
            "resultTime": time,
            "result": result,
            "Datastream": {
                "@iot.id": 7,
                "name": "F2 voltage",
                "unitOfMeasurement": {"name": "Volt", "symbol": "V", "definition": "http://unitsofmeasure.org/ucum.html#para-30"},
                "Thing": {
                    "@iot.id": 1,
                    "name": "Feeder F2 RTU",
                    "Locations": [{"@iot.id": 1, "name": "Kaisankuja", "encodingType": "application/geo+json", "location": location}]
                },
                "ObservedProperty": {"@iot.id": 1, "name": property, "definition": "http://example.org/voltage"}
            }
        })
    }

    #[test]
    fn a_location_that_is_an_area_keeps_its_shape_and_a_bad_one_is_refused() {
        let mut a = SensorThingsAdapter::from_spec(&spec(json!({"kinds": {"level": "water.level"}}))).unwrap();
        let zone = json!({"type": "Polygon", "coordinates": [[[24.95, 60.16], [24.96, 60.16], [24.96, 60.17], [24.95, 60.16]]]});
        let open = json!({"type": "Polygon", "coordinates": [[[24.95, 60.16], [24.96, 60.16], [24.96, 60.17], [24.95, 60.17]]]});
        let body = json!({"value": [
            obs(1, "2025-11-26T21:08:00Z", json!(1.5), "level", zone),
            obs(2, "2025-11-26T21:08:00Z", json!(1.5), "level", open),
        ]})
        .to_string();
        let d = a.decode(ctx(), body.as_bytes()).unwrap();
        assert_eq!(d.observations.len(), 1);
        assert!(matches!(d.observations[0].shape.as_deref(), Some(Shape::Polygon(r)) if r[0].len() == 4));
        assert_eq!(d.rejected.len(), 1);
        assert!(
            d.rejected[0].reason.contains("ring 0 is not closed"),
            "{}",
            d.rejected[0].reason
        );
    }

    #[test]
    fn a_collection_maps_kinds_and_thresholds_and_keeps_good_neighbours() {
        let mapping = json!({
            "kinds": {"voltage": "feeder.voltage"},
            "thresholds": [
                {"property": "voltage", "below": 220.0, "severity": "minor", "kind": "feeder.voltage_sag"},
                {"property": "voltage", "below": 200.0, "severity": "severe", "kind": "feeder.voltage_low"},
                {"property": "voltage", "above": 250.0, "severity": "moderate", "kind": "feeder.voltage_high"}
            ]
        });
        let mut a = SensorThingsAdapter::from_spec(&spec(mapping)).unwrap();
        let point = json!({"type": "Point", "coordinates": [24.9431, 60.1712]});
        let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.95, 60.18]}});
        let body = json!({
            "value": [
                obs(1, "2025-11-26T21:08:00Z", json!(231.5), "voltage", point.clone()),
                obs(2, "2025-11-26T21:09:00.000+02:00/2025-11-26T21:10:00+02:00", json!(190.0), "voltage", feature),
                obs(3, "2025-11-26T21:10:00Z", json!(215), "voltage", point.clone()),
                obs(4, "2025-11-26T21:11:00Z", json!("n/a"), "voltage", point.clone()),
                obs(5, "2025-11-26T21:11:00Z", json!(1.2), "current", json!({"type": "Point", "coordinates": [200, 60]})),
                obs(6, "1999-11-26T21:11:00Z", json!(1.2), "current", point.clone()),
                {"phenomenonTime": "2025-11-26T21:11:00Z", "result": 3},
                obs(8, "2025-11-26T21:12:00Z", json!(260), "voltage", point),
            ],
            "@iot.nextLink": "http://example.org/v1.1/Observations?$skip=8&$filter=phenomenonTime gt 2025-11-26T21:00:00Z"
        })
        .to_string();
        let d = a.decode(ctx(), body.as_bytes()).unwrap();
        let got: Vec<(&str, Severity, u32)> = d
            .observations
            .iter()
            .map(|o| (o.kind.as_str(), o.severity, o.idx))
            .collect();
        assert_eq!(
            got,
            [
                ("feeder.voltage", Severity::Normal, 0),
                ("feeder.voltage_low", Severity::Severe, 1),
                ("feeder.voltage_sag", Severity::Minor, 2),
                ("feeder.voltage_high", Severity::Moderate, 7)
            ]
        );
        let o = &d.observations[0];
        assert_eq!((o.entity.as_str(), o.observed_ms), ("sta:7", 1_764_191_280_000));
        assert_eq!(o.position, GeoPoint::new(24.9431, 60.1712).unwrap());
        assert_eq!(
            (
                o.fields["unit"].as_str(),
                o.fields["thing"].as_str(),
                o.fields["datastream"].as_str()
            ),
            (Some("V"), Some("Feeder F2 RTU"), Some("F2 voltage"))
        );
        assert_eq!(o.title, "Feeder F2 RTU: voltage 231.5 V");
        let low = &d.observations[1];
        assert_eq!(low.observed_ms, 1_764_184_140_000);
        assert_eq!(low.fields["phenomenon_end"], "2025-11-26T19:10:00.000Z");
        assert_eq!(low.position, GeoPoint::new(24.95, 60.18).unwrap());
        assert_eq!(low.title, "Feeder F2 RTU: voltage 190.0 below 200");
        let places: Vec<&str> = d.rejected.iter().map(|r| r.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "value[3].result",
                "value[4].Datastream.Thing.Locations[0].location",
                "value[5].phenomenonTime",
                "value[6].Datastream"
            ]
        );
        assert_eq!(
            next_link(body.as_bytes()).as_deref(),
            Some("http://example.org/v1.1/Observations?$skip=8&$filter=phenomenonTime%20gt%202025-11-26T21:00:00Z")
        );
        assert_eq!(bare_parse(body.as_bytes()), Ok(8));
    }

    #[test]
    fn a_single_observation_and_whole_message_errors() {
        let mut a = SensorThingsAdapter::new(SensorThingsMapping::default());
        let one = obs(
            1,
            "2025-11-26T21:08:00Z",
            json!({"state": "ok"}),
            "status",
            json!({"type": "Point", "coordinates": [24.9, 60.1]}),
        )
        .to_string();
        let d = a.decode(ctx(), one.as_bytes()).unwrap();
        assert_eq!(
            (d.observations[0].kind.as_str(), d.observations[0].severity),
            ("sensor.reading", Severity::Normal)
        );
        assert_eq!(next_link(one.as_bytes()), None);
        assert!(a.decode(ctx(), b"[1,2]").unwrap_err().reason.contains("found an array"));
        assert!(a.decode(ctx(), br#"{"value": 3}"#).unwrap_err().place == "$.value");
        assert!(a
            .decode(ctx(), br#"{"@iot.count": 3}"#)
            .unwrap_err()
            .reason
            .starts_with("neither"));
        assert!(a
            .decode(ctx(), br#"{"value": [{"result": NaN}]}"#)
            .unwrap_err()
            .reason
            .starts_with("NaN is not"));
    }

    /// The hand-written escaping `next_link` did before it used `percent-encoding`.
    fn old_escape(link: &str) -> String {
        let mut out = String::new();
        for c in link.chars() {
            match c {
                ' ' => out.push_str("%20"),
                '"' => out.push_str("%22"),
                '<' => out.push_str("%3C"),
                '>' => out.push_str("%3E"),
                '`' => out.push_str("%60"),
                '{' => out.push_str("%7B"),
                '}' => out.push_str("%7D"),
                '|' => out.push_str("%7C"),
                '\\' => out.push_str("%5C"),
                '^' => out.push_str("%5E"),
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        out
    }

    fn link_of(link: &str) -> Option<String> {
        next_link(json!({"@iot.nextLink": link}).to_string().as_bytes())
    }

    #[test]
    fn next_links_are_escaped_byte_for_byte_as_before() {
        assert_eq!(
            link_of("http://h/v1.1/Things?$filter=name eq 'Hämeentie ✓'&$top=5*~+%41\t\u{85}|{}^`\\<\">").as_deref(),
            Some("http://h/v1.1/Things?$filter=name%20eq%20'Hämeentie%20✓'&$top=5*~+%41%7C%7B%7D%5E%60%5C%3C%22%3E")
        );
        for c in (0..=0x2FF_u32)
            .chain([0x2028, 0xFEFF, 0x10FFFF])
            .filter_map(char::from_u32)
        {
            let link = format!("http://h/x{c}y");
            assert_eq!(link_of(&link), Some(old_escape(&link)), "U+{:04X}", c as u32);
        }
        assert_eq!(link_of(""), None);
    }

    proptest::proptest! {
        #[test]
        fn next_links_match_the_old_escaping(link in "\\PC+|[ -~\\t\\u{80}-\\u{a0}]+") {
            proptest::prop_assert_eq!(link_of(&link), Some(old_escape(&link)));
        }
    }

    #[test]
    fn newest_time_reads_instants_and_interval_starts() {
        let body = br#"{"value": [{"phenomenonTime": "2025-11-26T21:00:00Z"}, {"phenomenonTime": "2025-11-26T21:05:00Z/2025-11-26T21:09:00Z"}, {"phenomenonTime": 3}]}"#;
        assert_eq!(newest_time(body), Ok(Some(1_764_191_100_000)));
        assert_eq!(newest_time(br#"{"value": []}"#), Ok(None));
        assert_eq!(
            newest_time(br#"{"phenomenonTime": "2025-11-26T21:00:00Z", "result": 1}"#),
            Ok(Some(1_764_190_800_000))
        );
        assert!(newest_time(b"<html>").is_err());
        assert_eq!(newest_time(br#"{"value": 1}"#).unwrap_err().place, "$.value");
    }

    #[test]
    fn filter_since_is_the_poll_query() {
        assert_eq!(
            filter_since(1_764_190_800_000),
            "$filter=phenomenonTime%20gt%202025-11-26T21:00:00.000Z&$expand=Datastream($expand=Thing($expand=Locations),ObservedProperty)"
        );
    }

    #[test]
    fn mapping_errors_name_the_field() {
        let e = SensorThingsAdapter::from_spec(&spec(json!({"kinds": {"voltage": 3}})))
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.kinds.voltage");
        let e = SensorThingsAdapter::from_spec(&spec(
            json!({"thresholds": [{"property": "v", "below": 1, "severity": "severe"}]}),
        ))
        .err()
        .unwrap();
        assert_eq!(e.field, "mapping.thresholds[0].kind");
        let e = SensorThingsAdapter::from_spec(&spec(json!({"treshold": []})))
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.treshold");
    }
}
