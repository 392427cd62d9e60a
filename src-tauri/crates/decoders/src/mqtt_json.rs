//! JSON telemetry published on MQTT topics: each message body is one JSON object (or an array
//! of them) from a sensor, such as
//! `{"sensor":"feeder-F2","time":"2026-11-26T21:08:30Z","voltage_kv":8.9}` on
//! `grid/substation-1/telemetry`. The feed's mapping says which topics belong to it, which
//! fields hold the sensor id, the time and the position, and which thresholds turn a reading
//! into a utility observation (voltage drop, pressure loss, feeder trip).
//!
//! # Mapping, with a worked example
//! ```toml
//! [[feeds]]
//! id = "scada"
//! layer = "utility"
//! format = "mqtt-json"
//!
//! [feeds.mapping]
//! topics = ["grid/+/telemetry", "water/#"]  # MQTT filters; `+` one level, `#` the rest.
//!                                            # Default: every topic. `topic = "..."` for one.
//! id = "sensor"               # field holding the sensor id (default "id"); dots nest: "meta.id"
//! # id_topic_level = 1        # ...or take the id from a topic level (0-based) instead
//! time = "time"               # field holding the observed time; without it: arrival time
//! time_unit = "s"             # numeric times are epoch "s" (default) or "ms"; strings RFC 3339
//! lat = "lat"                 # position fields (defaults "lat" and "lon")
//! lon = "lon"
//! kind = "sensor.reading"     # kind of a reading inside every threshold (the default)
//! entity_prefix = "sensor/"   # entity = prefix + id (the default prefix)
//!
//! [feeds.mapping.sensors.feeder-F2]  # fixed assets: a position (and name) per sensor id,
//! position = [24.9431, 60.1712]      # [lon, lat], used when the message has no lat/lon
//! name = "Feeder F2, Kaisankuja"
//!
//! [[feeds.mapping.thresholds]]
//! field = "voltage_kv"
//! below = 9.5
//! severity = "moderate"
//! kind = "feeder.voltage_low"
//!
//! [[feeds.mapping.thresholds]]
//! field = "voltage_kv"
//! below = 0.5
//! severity = "extreme"
//! kind = "feeder.trip"
//!
//! [[feeds.mapping.thresholds]]
//! field = "pressure_bar"
//! below = 2.0
//! severity = "severe"
//! kind = "water.pressure_loss"
//!
//! [[feeds.mapping.thresholds]]
//! field = "breaker"
//! equals = "open"
//! severity = "extreme"
//! kind = "feeder.trip"
//! ```
//! With it, `{"sensor":"feeder-F2","time":"2026-11-26T21:08:30Z","voltage_kv":8.9}` on
//! `grid/substation-1/telemetry` becomes entity `sensor/feeder-F2` at 24.9431,60.1712, kind
//! `feeder.voltage_low`, severity `moderate`, title `Feeder F2, Kaisankuja: voltage_kv 8.9 below
//! 9.5`, fields `voltage_kv`, `topic` and `name`; `"voltage_kv":0.0` becomes `feeder.trip`
//! (extreme; the most severe triggered rule wins, the first listed among equals);
//! `"voltage_kv":10.4` stays `sensor.reading` at `normal`.
//!
//! A threshold triggers when the value is above `above`, below `below` (both may be given: a
//! band), or equal to `equals`. A rule whose field is absent from a message does not trigger;
//! a field of the wrong type for a numeric rule refuses the reading, since a silent `normal`
//! would hide a broken sensor.
//!
//! # Hostile input
//! A body that is not JSON is an error that says where (line, column) and names `NaN`/
//! `Infinity` (not JSON), numbers beyond `f64`, and nesting deeper than 128 levels (the
//! parser's limit). A topic outside the mapping's filters is an error. A missing or mistyped
//! id, time or position, an out-of-range coordinate, a time more than a year from arrival:
//! the reading is refused with the field's path (`$.voltage_kv`, `[2].lat`), its neighbours in
//! an array are kept.

use std::collections::HashMap;

use cityops_core::fields::{FieldName, Fields};
use cityops_core::model::{GeoPoint, Millis, Observation, Severity};
use cityops_core::scenario::FeedSpec;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::mapping::{check_skew, json_error, parse_rfc3339, type_name, worst, MappingReader, Threshold};
use super::{Adapter, AdapterConfigError, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// Where a reading's sensor id comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum IdSource {
    /// A field path of the body.
    Field(Vec<String>),
    /// A level of the topic (0-based).
    TopicLevel(usize),
}

/// A fixed asset from `mapping.sensors`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRef {
    /// Where it is.
    pub position: GeoPoint,
    /// A human name, if given.
    pub name: Option<String>,
}

/// The mapping choices of an MQTT JSON feed.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttJsonMapping {
    /// Topic filters; empty means every topic.
    pub topics: Vec<String>,
    /// Where the id comes from.
    pub id: IdSource,
    /// The time field, if any.
    pub time: Option<Vec<String>>,
    /// Whether numeric times are milliseconds (else seconds).
    pub time_in_ms: bool,
    /// The latitude field.
    pub lat: Vec<String>,
    /// The longitude field.
    pub lon: Vec<String>,
    /// The kind of an in-range reading.
    pub kind: String,
    /// Prepended to the id to make the entity.
    pub entity_prefix: String,
    /// Fixed assets by sensor id.
    pub sensors: HashMap<String, SensorRef>,
    /// Threshold rules; `watch` is a dotted field path.
    pub thresholds: Vec<Threshold>,
}

impl Default for MqttJsonMapping {
    fn default() -> Self {
        MqttJsonMapping {
            topics: Vec::new(),
            id: IdSource::Field(vec!["id".into()]),
            time: None,
            time_in_ms: false,
            lat: vec!["lat".into()],
            lon: vec!["lon".into()],
            kind: "sensor.reading".into(),
            entity_prefix: "sensor/".into(),
            sensors: HashMap::new(),
            thresholds: Vec::new(),
        }
    }
}

fn path(s: &str) -> Vec<String> {
    s.split('.').map(str::to_owned).collect()
}

/// Checks an MQTT topic filter: `#` only as the whole last level, `+` only as a whole level.
fn check_filter(f: &str) -> Result<(), Refusal> {
    let levels: Vec<&str> = f.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Err(format!("{f:?}: '#' must be the whole last level").into());
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("{f:?}: '+' must be a whole level").into());
        }
    }
    if f.is_empty() {
        return Err("an empty topic filter matches nothing".into());
    }
    Ok(())
}

/// Whether a topic matches an MQTT filter (MQTT 3.1.1 section 4.7): `+` matches one level,
/// `#` the rest (including none), and wildcards at the first level do not match topics that
/// start with `$` (broker-internal topics such as `$SYS/...`).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match f {
            "#" => return true,
            "+" => {
                if t.next().is_none() {
                    return false;
                }
            }
            lit => {
                if t.next() != Some(lit) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

/// The MQTT JSON adapter of one feed; it keeps no state between messages.
pub struct MqttJsonAdapter {
    mapping: MqttJsonMapping,
    /// Each threshold's field path, split once here rather than for every message.
    watch_paths: Vec<Vec<String>>,
    /// The top-level keys of the id, time, latitude and longitude (in that order), where the
    /// mapping reads them at the top level and no other path (a threshold's field, a nested
    /// role) reads into them: they are taken
    /// aside while the body is parsed instead of entering the payload's map and leaving it
    /// again (about a quarter of the adapter's time on small readings).
    taken: [Option<String>; 4],
}

/// One telemetry item as parsed: an object's fields, with the values of the mapping's
/// taken-aside keys beside them, or anything else (refused for not being an object).
enum Item {
    Object { fields: Fields, taken: [Option<Value>; 4] },
    Other(Value),
}

/// A whole body: one item, or an array of them.
enum Body {
    One(Item),
    Many(Vec<Item>),
}

impl MqttJsonAdapter {
    /// An adapter with the given mapping.
    pub fn new(mapping: MqttJsonMapping) -> Self {
        let watch_paths: Vec<Vec<String>> = mapping.thresholds.iter().map(|t| path(&t.watch)).collect();
        let id = match &mapping.id {
            IdSource::Field(p) => Some(p),
            IdSource::TopicLevel(_) => None,
        };
        let roles = [id, mapping.time.as_ref(), Some(&mapping.lat), Some(&mapping.lon)];
        // A key another path reads into (a threshold's field, a nested role) stays in the map.
        let mut read_into: Vec<&String> = watch_paths.iter().map(|w| &w[0]).collect();
        read_into.extend(roles.iter().flatten().filter(|p| p.len() > 1).map(|p| &p[0]));
        let mut taken = roles.map(|p| match p.map(Vec::as_slice) {
            Some([key]) if !read_into.contains(&key) => Some(key.clone()),
            _ => None,
        });
        // Two roles read from one key (an odd mapping, but a valid one): the key stays in the
        // map, where both find it.
        for i in 0..taken.len() {
            if taken[i].is_some() && taken.iter().enumerate().any(|(j, k)| j != i && *k == taken[i]) {
                let key = taken[i].take();
                taken.iter_mut().filter(|k| **k == key).for_each(|k| *k = None);
            }
        }
        MqttJsonAdapter {
            mapping,
            watch_paths,
            taken,
        }
    }

    /// Builds the adapter from a feed spec.
    pub fn from_spec(spec: &FeedSpec) -> Result<Self, AdapterConfigError> {
        let r = MappingReader::new(&spec.id);
        let known = [
            "topic",
            "topics",
            "id",
            "id_topic_level",
            "time",
            "time_unit",
            "lat",
            "lon",
            "kind",
            "entity_prefix",
            "sensors",
            "thresholds",
        ];
        let mut mapping = MqttJsonMapping::default();
        let Some(m) = r.table(Some(&spec.mapping), "mapping", &known)? else {
            return Ok(MqttJsonAdapter::new(mapping));
        };
        if let Some(t) = r.string(m, "mapping", "topic")? {
            mapping.topics.push(t);
        }
        match m.get("topics") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, t) in items.iter().enumerate() {
                    let t = t
                        .as_str()
                        .ok_or_else(|| r.err(&format!("mapping.topics[{i}]"), "expected a string"))?;
                    mapping.topics.push(t.to_owned());
                }
            }
            Some(other) => {
                return Err(r.err(
                    "mapping.topics",
                    format!("expected an array of strings, found {}", type_name(other)),
                ))
            }
        }
        for f in &mapping.topics {
            check_filter(f).map_err(|e| r.err("mapping.topics", e.0))?;
        }
        match (
            r.string(m, "mapping", "id")?,
            r.unsigned(m, "mapping", "id_topic_level")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(r.err("mapping.id_topic_level", "give either id or id_topic_level, not both"))
            }
            (Some(id), None) => mapping.id = IdSource::Field(path(&id)),
            (None, Some(level)) => mapping.id = IdSource::TopicLevel(level.min(1024) as usize),
            (None, None) => {}
        }
        mapping.time = r.string(m, "mapping", "time")?.map(|t| path(&t));
        mapping.time_in_ms = match r.string(m, "mapping", "time_unit")?.as_deref() {
            None | Some("s") => false,
            Some("ms") => true,
            Some(other) => return Err(r.err("mapping.time_unit", format!("{other:?} is not \"s\" or \"ms\""))),
        };
        if let Some(lat) = r.string(m, "mapping", "lat")? {
            mapping.lat = path(&lat);
        }
        if let Some(lon) = r.string(m, "mapping", "lon")? {
            mapping.lon = path(&lon);
        }
        if let Some(kind) = r.string(m, "mapping", "kind")? {
            mapping.kind = kind;
        }
        match m.get("entity_prefix") {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) => mapping.entity_prefix = p.clone(),
            Some(other) => {
                return Err(r.err(
                    "mapping.entity_prefix",
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
        }
        if let Some(sensors) = m.get("sensors").filter(|v| !v.is_null()) {
            let sensors = sensors.as_object().ok_or_else(|| {
                r.err(
                    "mapping.sensors",
                    format!("expected a table, found {}", type_name(sensors)),
                )
            })?;
            for (id, s) in sensors {
                let p = format!("mapping.sensors.{id}");
                let t = r
                    .table(Some(s), &p, &["position", "name"])?
                    .ok_or_else(|| r.err(&p, "expected a table with position = [lon, lat]"))?;
                let pos = t
                    .get("position")
                    .and_then(Value::as_array)
                    .ok_or_else(|| r.err(&format!("{p}.position"), "expected [lon, lat]"))?;
                let (lon, lat) = match pos.as_slice() {
                    [lon, lat] => (lon.as_f64(), lat.as_f64()),
                    _ => (None, None),
                };
                let position = lon
                    .zip(lat)
                    .and_then(|(lon, lat)| GeoPoint::new(lon, lat))
                    .ok_or_else(|| {
                        r.err(
                            &format!("{p}.position"),
                            "expected [lon, lat] in range (lon -180..180, lat -90..90)",
                        )
                    })?;
                mapping.sensors.insert(
                    id.clone(),
                    SensorRef {
                        position,
                        name: r.string(t, &p, "name")?,
                    },
                );
            }
        }
        for (i, t) in r.tables(m, "mapping", "thresholds")?.into_iter().enumerate() {
            mapping
                .thresholds
                .push(Threshold::read(&r, t, &format!("mapping.thresholds[{i}]"), "field")?);
        }
        Ok(MqttJsonAdapter::new(mapping))
    }
}

/// Runs only the JSON parser over the body, for the decode benchmark; returns the number of
/// telemetry objects (the length of a top-level array, else 1). It builds the same generic
/// tree (`serde_json::Value`) the adapter starts from, because the fields the mapping reads
/// are chosen at run time; the ratio of the two rates is then the cost of the mapping itself.
pub fn bare_parse(body: &[u8]) -> Result<usize, DecodeError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| json_error(&e, body))?;
    Ok(doc.as_array().map_or(1, Vec::len))
}

impl Adapter for MqttJsonAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        if !self.mapping.topics.is_empty() {
            let Some(topic) = ctx.topic else {
                return Err(DecodeError {
                    place: "topic".into(),
                    reason: "the message has no topic, and the feed's mapping only takes some topics".into(),
                });
            };
            if !self.mapping.topics.iter().any(|f| topic_matches(f, topic)) {
                return Err(DecodeError {
                    place: "topic".into(),
                    reason: format!(
                        "{topic:?} matches none of the feed's topic filters ({})",
                        self.mapping.topics.join(", ")
                    ),
                });
            }
        }
        if let IdSource::TopicLevel(level) = self.mapping.id {
            if ctx
                .topic
                .and_then(|t| t.split('/').nth(level))
                .is_none_or(str::is_empty)
            {
                return Err(DecodeError {
                    place: "topic".into(),
                    reason: format!(
                        "topic {:?} has no level {level} to take the sensor id from",
                        ctx.topic.unwrap_or("")
                    ),
                });
            }
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = BodySeed { taken: &self.taken }
            .deserialize(&mut de)
            .and_then(|b| de.end().map(|()| b));
        let mut out = Decoded::default();
        match parsed.map_err(|e| json_error(&e, body))? {
            Body::Many(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    match self.reading(ctx, i as u32, item) {
                        Ok(o) => out.observations.push(o),
                        Err((field, reason)) => out.rejected.push(Rejected {
                            place: format!("[{i}]{field}"),
                            reason,
                        }),
                    }
                }
            }
            Body::One(item) => match self.reading(ctx, 0, item) {
                Ok(o) => out.observations.push(o),
                Err((field, reason)) => out.rejected.push(Rejected {
                    place: format!("${field}"),
                    reason,
                }),
            },
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: serde_json's own deserializer (the same errors, limits and numbers as
// `serde_json::Value`), with the taken-aside keys kept out of the payload's map.

/// A key as the parser hands it over: borrowed from the body unless it held escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Parses an item (`top` false) or a whole body (`top` true: an array is a list of items).
#[derive(Clone, Copy)]
struct BodySeed<'a> {
    taken: &'a [Option<String>; 4],
}

#[derive(Clone, Copy)]
struct ItemVisitor<'a> {
    taken: &'a [Option<String>; 4],
    top: bool,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Body;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
        d.deserialize_any(ItemVisitor {
            taken: self.taken,
            top: true,
        })
    }
}

/// One element of a top-level array.
struct ItemSeed<'a>(ItemVisitor<'a>);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Item;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
        match d.deserialize_any(self.0)? {
            Body::One(item) => Ok(item),
            Body::Many(_) => unreachable!("only the top level makes lists"),
        }
    }
}

impl<'de> Visitor<'de> for ItemVisitor<'_> {
    type Value = Body;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        // Gathered in payload order and sorted once: inserting each key in place would move
        // the ones after it, quadratic in a hostile payload's thousands of keys.
        let mut fields = Vec::new();
        let mut taken: [Option<Value>; 4] = Default::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.taken.iter().position(|k| k.as_deref() == Some(&*key)) {
                // A repeated key keeps its last value, as in `serde_json::Value` (and in
                // `Fields` made from pairs).
                Some(i) => taken[i] = Some(map.next_value()?),
                None => {
                    let value = map.next_value()?;
                    fields.push((FieldName::Owned(key.into_owned()), value));
                }
            }
        }
        Ok(Body::One(Item::Object {
            fields: Fields::from(fields),
            taken,
        }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        if self.top {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(item) = seq.next_element_seed(ItemSeed(ItemVisitor { top: false, ..self }))? {
                items.push(item);
            }
            return Ok(Body::Many(items));
        }
        let mut values = Vec::new();
        while let Some(v) = seq.next_element()? {
            values.push(v);
        }
        Ok(Body::One(Item::Other(Value::Array(values))))
    }
    fn visit_unit<E>(self) -> Result<Body, E> {
        Ok(Body::One(Item::Other(Value::Null)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Body, E> {
        Ok(Body::One(Item::Other(Value::Bool(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Body, E> {
        Ok(Body::One(Item::Other(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Body, E> {
        Ok(Body::One(Item::Other(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Body, E> {
        Ok(Body::One(Item::Other(v.into())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Body, E> {
        Ok(Body::One(Item::Other(v.into())))
    }
}

type ReadingError = (String, String);

fn dotted(p: &[String]) -> String {
    format!(".{}", p.join("."))
}

fn lookup<'v>(obj: &'v Fields, p: &[String]) -> Option<&'v Value> {
    let (first, rest) = p.split_first()?;
    let mut v = obj.get(first)?;
    for k in rest {
        v = v.as_object()?.get(k)?;
    }
    Some(v).filter(|v| !v.is_null())
}

impl MqttJsonAdapter {
    /// A role's value (0 id, 1 time, 2 latitude, 3 longitude): taken aside while parsing, or
    /// looked up in the payload; null counts as absent either way.
    fn role<'v>(&self, obj: &'v Fields, taken: &'v [Option<Value>; 4], r: usize, p: &[String]) -> Option<&'v Value> {
        match &self.taken[r] {
            Some(_) => taken[r].as_ref().filter(|v| !v.is_null()),
            None => lookup(obj, p),
        }
    }

    fn reading(&self, ctx: MessageContext<'_>, idx: u32, item: Item) -> Result<Observation, ReadingError> {
        let m = &self.mapping;
        let (mut obj, taken) = match item {
            Item::Object { fields, taken } => (fields, taken),
            Item::Other(v) => {
                return Err((
                    String::new(),
                    format!("expected a telemetry object, found {}", type_name(&v)),
                ))
            }
        };
        let role = |obj, r, p| self.role(obj, &taken, r, p);
        let id = match &m.id {
            IdSource::TopicLevel(level) => ctx
                .topic
                .and_then(|t| t.split('/').nth(*level))
                .unwrap_or_default()
                .to_owned(),
            IdSource::Field(p) => match role(&obj, 0, p) {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                Some(other) => {
                    return Err((
                        dotted(p),
                        format!(
                        "expected a sensor id (a non-empty string of at most 256 bytes, or an integer), found {other}"
                    ),
                    ))
                }
                None => return Err((dotted(p), "missing: the sensor id".into())),
            },
        };
        let observed_ms = match &m.time {
            None => ctx.received_ms,
            Some(p) => {
                let t = match role(&obj, 1, p) {
                    Some(Value::String(s)) => {
                        parse_rfc3339(s).ok_or_else(|| (dotted(p), format!("{s:?} is not an RFC 3339 timestamp")))?
                    }
                    Some(Value::Number(n)) => {
                        let x = n.as_f64().unwrap_or(f64::NAN);
                        let ms = if m.time_in_ms { x } else { x * 1000.0 };
                        // Beyond ±2^53 ms the number is no time at all; the skew check below
                        // would refuse it anyway, but the cast must not saturate silently.
                        if !ms.is_finite() || ms.abs() > 9.0e15 {
                            return Err((dotted(p), format!("{n} is not a believable epoch time")));
                        }
                        ms as Millis
                    }
                    Some(other) => {
                        return Err((
                            dotted(p),
                            format!(
                                "expected an RFC 3339 string or an epoch number, found {}",
                                type_name(other)
                            ),
                        ))
                    }
                    None => return Err((dotted(p), "missing: the observed time (mapping.time)".into())),
                };
                check_skew(t, ctx.received_ms).map_err(|r| (dotted(p), r.0))?;
                t
            }
        };
        let sensor = m.sensors.get(&id);
        let position = match (role(&obj, 2, &m.lat), role(&obj, 3, &m.lon)) {
            (Some(la), Some(lo)) => {
                let lat = la
                    .as_f64()
                    .ok_or_else(|| (dotted(&m.lat), format!("expected a number, found {}", type_name(la))))?;
                let lon = lo
                    .as_f64()
                    .ok_or_else(|| (dotted(&m.lon), format!("expected a number, found {}", type_name(lo))))?;
                GeoPoint::new(lon, lat)
                    .ok_or_else(|| (dotted(&m.lat), format!("position {lon},{lat} is out of range")))?
            }
            (Some(_), None) => return Err((dotted(&m.lon), "missing while the latitude is given".into())),
            (None, Some(_)) => return Err((dotted(&m.lat), "missing while the longitude is given".into())),
            (None, None) => sensor.map(|s| s.position).ok_or_else(|| {
                (
                    String::new(),
                    format!(
                        "cannot be placed: no {} / {} fields and sensor {id:?} is not in mapping.sensors",
                        m.lat.join("."),
                        m.lon.join(".")
                    ),
                )
            })?,
        };
        let mut hits = Vec::new();
        for (t, p) in m.thresholds.iter().zip(&self.watch_paths) {
            if let Some(v) = lookup(&obj, p) {
                if t.triggers(v).map_err(|r| (dotted(p), r.0))? {
                    hits.push((t, v));
                }
            }
        }
        let rule = worst(hits.iter().map(|(t, _)| *t));
        let (kind, severity) = rule.map_or((m.kind.as_str(), Severity::Normal), |t| (t.kind.as_str(), t.severity));
        let who = sensor.and_then(|s| s.name.as_deref()).unwrap_or(&id);
        let title = match rule {
            Some(t) => {
                let v = hits
                    .iter()
                    .find(|(h, _)| std::ptr::eq(*h, t))
                    .map(|(_, v)| *v)
                    .unwrap_or(&Value::Null);
                format!("{who}: {}", t.describe(v))
            }
            None => format!("{who}: {kind}"),
        };
        // The payload keeps every field but those consumed above (the ones taken aside never
        // entered it), plus where it came from.
        let id_path = match &m.id {
            IdSource::Field(p) => Some(p),
            IdSource::TopicLevel(_) => None,
        };
        for (r, p) in [id_path, m.time.as_ref(), Some(&m.lat), Some(&m.lon)]
            .into_iter()
            .enumerate()
        {
            if let (Some([key]), None) = (p.map(Vec::as_slice), &self.taken[r]) {
                obj.remove(key);
            }
        }
        if let Some(topic) = ctx.topic {
            obj.insert("topic", Value::String(topic.to_owned()));
        }
        if let Some(name) = sensor.and_then(|s| s.name.as_ref()) {
            obj.insert("name", Value::String(name.clone()));
        }
        Ok(Observation {
            feed: ctx.feed.to_owned(),
            seq: ctx.seq,
            idx,
            received_ms: ctx.received_ms,
            observed_ms,
            layer: ctx.layer,
            kind: kind.to_owned(),
            severity,
            entity: [m.entity_prefix.as_str(), &id].concat(),
            position,
            title,
            fields: obj,
            shape: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::Layer;
    use proptest::prelude::*;
    use serde_json::json;

    const T0: Millis = 1_795_719_600_000; // 2026-11-26T19:00:00Z

    fn ctx(topic: Option<&'static str>) -> MessageContext<'static> {
        MessageContext {
            feed: "scada",
            layer: Layer::Utility,
            seq: 9,
            received_ms: T0,
            topic,
        }
    }

    fn spec(mapping: Value) -> FeedSpec {
        FeedSpec {
            id: "scada".into(),
            layer: Layer::Utility,
            format: cityops_core::tape::FeedFormat::MqttJson,
            name: String::new(),
            mapping,
        }
    }

    /// The worked example of the module documentation, as the manifest's TOML gives it.
    fn worked_example() -> MqttJsonAdapter {
        let manifest = r#"
            name = "t"
            map = "helsinki"
            start = "2026-11-26T19:00:00Z"
            view = [24.9, 60.2, 14]

            [[feeds]]
            id = "scada"
            layer = "utility"
            format = "mqtt-json"

            [feeds.mapping]
            topics = ["grid/+/telemetry", "water/#"]
            id = "sensor"
            time = "time"
            time_unit = "s"
            lat = "lat"
            lon = "lon"
            kind = "sensor.reading"
            entity_prefix = "sensor/"

            [feeds.mapping.sensors.feeder-F2]
            position = [24.9431, 60.1712]
            name = "Feeder F2, Kaisankuja"

            [[feeds.mapping.thresholds]]
            field = "voltage_kv"
            below = 9.5
            severity = "moderate"
            kind = "feeder.voltage_low"

            [[feeds.mapping.thresholds]]
            field = "voltage_kv"
            below = 0.5
            severity = "extreme"
            kind = "feeder.trip"

            [[feeds.mapping.thresholds]]
            field = "pressure_bar"
            below = 2.0
            severity = "severe"
            kind = "water.pressure_loss"

            [[feeds.mapping.thresholds]]
            field = "breaker"
            equals = "open"
            severity = "extreme"
            kind = "feeder.trip"
        "#;
        let manifest = cityops_core::scenario::Manifest::parse(manifest).unwrap();
        MqttJsonAdapter::from_spec(&manifest.feeds[0]).unwrap()
    }

    fn one(a: &mut MqttJsonAdapter, topic: &'static str, body: &str) -> Result<Observation, Refusal> {
        let d = a.decode(ctx(Some(topic)), body.as_bytes()).map_err(|e| e.to_string())?;
        match (d.observations.into_iter().next(), d.rejected.into_iter().next()) {
            (Some(o), None) => Ok(o),
            (_, Some(r)) => Err(format!("{}: {}", r.place, r.reason).into()),
            (None, None) => Err("nothing".into()),
        }
    }

    #[test]
    fn the_worked_example_does_what_the_docs_say() {
        let mut a = worked_example();
        let o = one(
            &mut a,
            "grid/substation-1/telemetry",
            r#"{"sensor":"feeder-F2","time":"2026-11-26T21:08:30Z","voltage_kv":8.9}"#,
        )
        .unwrap();
        assert_eq!(
            (o.entity.as_str(), o.kind.as_str(), o.severity),
            ("sensor/feeder-F2", "feeder.voltage_low", Severity::Moderate)
        );
        assert_eq!(o.position, GeoPoint::new(24.9431, 60.1712).unwrap());
        assert_eq!(o.title, "Feeder F2, Kaisankuja: voltage_kv 8.9 below 9.5");
        assert_eq!(o.observed_ms, T0 + (2 * 3600 + 8 * 60 + 30) * 1000);
        let keys: Vec<&str> = o.fields.keys().collect();
        assert_eq!(keys, ["name", "topic", "voltage_kv"]);
        let o = one(
            &mut a,
            "grid/substation-1/telemetry",
            r#"{"sensor":"feeder-F2","time":"2026-11-26T21:12:07Z","voltage_kv":0.0}"#,
        )
        .unwrap();
        assert_eq!((o.kind.as_str(), o.severity), ("feeder.trip", Severity::Extreme));
        let o = one(
            &mut a,
            "grid/substation-1/telemetry",
            r#"{"sensor":"feeder-F2","time":1795727000,"voltage_kv":10.4}"#,
        )
        .unwrap();
        assert_eq!(
            (o.kind.as_str(), o.severity, o.observed_ms),
            ("sensor.reading", Severity::Normal, 1_795_727_000_000)
        );
        let o = one(&mut a, "water/pumps/p7", r#"{"sensor":"p7","time":"2026-11-26T21:00:00Z","lat":60.2,"lon":24.9,"pressure_bar":1.1,"breaker":"closed"}"#).unwrap();
        assert_eq!(
            (o.entity.as_str(), o.kind.as_str(), o.severity),
            ("sensor/p7", "water.pressure_loss", Severity::Severe)
        );
        let o = one(
            &mut a,
            "grid/s2/telemetry",
            r#"{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z","breaker":"open"}"#,
        )
        .unwrap();
        assert_eq!(
            (o.kind.as_str(), o.title.as_str()),
            ("feeder.trip", "Feeder F2, Kaisankuja: breaker is open")
        );
    }

    #[test]
    fn hostile_messages_are_refused_with_the_place() {
        let mut a = worked_example();
        let t = "grid/s1/telemetry";
        let cases: &[(&str, &str)] = &[
            (
                r#"{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z","voltage_kv":NaN}"#,
                "NaN is not a JSON value",
            ),
            (
                r#"{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z","voltage_kv":Infinity}"#,
                "Infinity is not a JSON value",
            ),
            (
                r#"{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z","voltage_kv":1e999}"#,
                "beyond the range of a 64-bit float",
            ),
            (
                r#"{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z","voltage_kv":"8.9"}"#,
                "$.voltage_kv: expected a number",
            ),
            (
                r#"{"time":"2026-11-26T21:00:00Z","voltage_kv":8.9}"#,
                "$.sensor: missing",
            ),
            (
                r#"{"sensor":{"a":1},"time":"2026-11-26T21:00:00Z"}"#,
                "$.sensor: expected a sensor id",
            ),
            (r#"{"sensor":"feeder-F2","voltage_kv":8.9}"#, "$.time: missing"),
            (
                r#"{"sensor":"feeder-F2","time":"2031-11-26T21:00:00Z"}"#,
                "$.time: timestamp 2031",
            ),
            (r#"{"sensor":"feeder-F2","time":1795727000000}"#, "$.time: timestamp"),
            (
                r#"{"sensor":"feeder-F9","time":"2026-11-26T21:00:00Z"}"#,
                "$: cannot be placed",
            ),
            (
                r#"{"sensor":"x","time":"2026-11-26T21:00:00Z","lat":91,"lon":0}"#,
                "$.lat: position 0,91 is out of range",
            ),
            (
                r#"{"sensor":"x","time":"2026-11-26T21:00:00Z","lat":"60","lon":24}"#,
                "$.lat: expected a number",
            ),
            (
                r#"{"sensor":"x","time":"2026-11-26T21:00:00Z","lat":60}"#,
                "$.lon: missing",
            ),
            (r#""just a string""#, "$: expected a telemetry object"),
            (r#"{"sensor":"feeder-F2""#, "not JSON"),
        ];
        for (body, want) in cases {
            let got = one(&mut a, t, body).unwrap_err();
            assert!(got.0.contains(want), "{body}\n  got: {got}\n want: {want}");
        }
        let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        assert!(one(&mut a, t, &deep).unwrap_err().0.contains("deeper than 128"));
        assert!(one(&mut a, "grid/s1/status", "{}")
            .unwrap_err()
            .0
            .contains("matches none of the feed's topic filters"));
        assert!(a.decode(ctx(None), b"{}").unwrap_err().reason.contains("no topic"));
        let d = a
            .decode(ctx(Some(t)), br#"[{"sensor":"feeder-F2","time":"2026-11-26T21:00:00Z"}, 3, {"sensor":"feeder-F2","time":"2026-11-26T21:00:01Z","voltage_kv":9}]"#)
            .unwrap();
        assert_eq!((d.observations.len(), d.rejected[0].place.as_str()), (2, "[1]"));
        assert_eq!(d.observations[1].idx, 2);
    }

    #[test]
    fn topic_filters_follow_mqtt() {
        assert!(topic_matches("grid/+/telemetry", "grid/s1/telemetry"));
        assert!(!topic_matches("grid/+/telemetry", "grid/s1/x/telemetry"));
        assert!(topic_matches("water/#", "water"));
        assert!(topic_matches("water/#", "water/a/b"));
        assert!(topic_matches("#", "a/b"));
        assert!(!topic_matches("#", "$SYS/broker/load"));
        assert!(topic_matches("+/+", "/a"));
        assert!(!topic_matches("a/b", "a/b/c"));
        assert!(!topic_matches("a/b/c", "a/b"));
        let e = MqttJsonAdapter::from_spec(&spec(json!({"topics": ["a/#/b"]})))
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.topics");
        let e = MqttJsonAdapter::from_spec(&spec(json!({"topic": "a/b+"})))
            .err()
            .unwrap();
        assert!(e.reason.contains("'+' must be a whole level"));
    }

    #[test]
    fn ids_from_topic_levels_and_mapping_errors() {
        let mut a = MqttJsonAdapter::from_spec(&spec(
            json!({"topic": "meters/+/reading", "id_topic_level": 1, "sensors": {"m1": {"position": [24.9, 60.2]}}}),
        ))
        .unwrap();
        let o = one(&mut a, "meters/m1/reading", r#"{"kwh": 3}"#).unwrap();
        assert_eq!(
            (o.entity.as_str(), o.observed_ms, o.kind.as_str()),
            ("sensor/m1", T0, "sensor.reading")
        );
        let bad = |m: Value| MqttJsonAdapter::from_spec(&spec(m)).err().unwrap().field;
        assert_eq!(
            bad(json!({"sensors": {"m1": {"position": [240, 60]}}})),
            "mapping.sensors.m1.position"
        );
        assert_eq!(
            bad(json!({"sensors": {"m1": {"pos": [24, 60]}}})),
            "mapping.sensors.m1.pos"
        );
        assert_eq!(bad(json!({"time_unit": "h"})), "mapping.time_unit");
        assert_eq!(bad(json!({"id": "a", "id_topic_level": 1})), "mapping.id_topic_level");
        assert_eq!(
            bad(json!({"thresholds": [{"field": "v", "above": "x", "severity": "minor", "kind": "k"}]})),
            "mapping.thresholds[0].above"
        );
        assert_eq!(bad(json!({"colour": 1})), "mapping.colour");
    }

    /// The adapter with nothing taken aside while parsing: every field enters the payload's
    /// map and the consumed ones leave it after, as a plain `serde_json::Value` parse does.
    fn reference(a: &MqttJsonAdapter) -> MqttJsonAdapter {
        MqttJsonAdapter {
            mapping: a.mapping.clone(),
            watch_paths: a.watch_paths.clone(),
            taken: Default::default(),
        }
    }

    fn json_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"feeder-F2\"".to_owned()),
            Just("\"2026-11-26T21:08:30Z\"".to_owned()),
            Just("\"not a time\"".to_owned()),
            Just("{\"id\":\"m1\",\"x\":[1,{}]}".to_owned()),
            Just("[60.2,24.9]".to_owned()),
            (-200.0f64..200.0).prop_map(|x| format!("{x}")),
            (0u64..2_000_000_000_000).prop_map(|x| x.to_string()),
        ]
    }

    fn json_object() -> impl Strategy<Value = String> {
        // Keys the mappings below read, watch or nest under, one of them escaped (the parser
        // then hands it over owned, not borrowed), repeated keys allowed.
        let key = prop_oneof![
            Just("sensor"),
            Just("se\\u006esor"),
            Just("time"),
            Just("lat"),
            Just("lon"),
            Just("voltage_kv"),
            Just("meta"),
            Just("x"),
            Just("breaker"),
        ];
        proptest::collection::vec((key, json_value()), 0..9).prop_map(|pairs| {
            format!(
                "{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
    }

    fn json_body() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => json_object(),
            2 => proptest::collection::vec(prop_oneof![3 => json_object(), 1 => json_value()], 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            1 => json_value(),
            1 => json_object().prop_map(|o| format!("{o} trailing")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Taking the id, time and position aside while parsing changes nothing a reading
        /// becomes, or the reason it is refused, whatever the body holds: the same output
        /// as the plain parse, for mappings with top-level, nested, watched and shared keys.
        #[test]
        fn taking_fields_aside_changes_no_outcome(body in json_body()) {
            let mappings = [
                json!({"id": "sensor", "time": "time", "sensors": {"feeder-F2": {"position": [24.9431, 60.1712], "name": "F2"}},
                       "thresholds": [{"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"}]}),
                json!({"id": "meta.id", "lat": "lat", "thresholds": [{"field": "lat", "above": 60.0, "severity": "minor", "kind": "north"}]}),
                json!({"id": "meta.id", "lat": "meta", "time": "x", "thresholds": [{"field": "x.y", "above": 1.0, "severity": "minor", "kind": "k"}]}),
                json!({"id": "x", "lat": "x", "lon": "lon", "time": "time", "time_unit": "ms"}),
                json!({"topic": "grid/+/telemetry", "id_topic_level": 1, "sensors": {"s1": {"position": [24.9, 60.2]}}}),
            ];
            for mapping in mappings {
                let mut taking = MqttJsonAdapter::from_spec(&spec(mapping.clone())).unwrap();
                let mut plain = reference(&taking);
                let c = MessageContext { feed: "scada", layer: Layer::Utility, seq: 1, received_ms: 1_795_726_000_000, topic: Some("grid/s1/telemetry") };
                let (a, b) = (taking.decode(c, body.as_bytes()), plain.decode(c, body.as_bytes()));
                prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "mapping {}", mapping);
            }
        }
    }
}
