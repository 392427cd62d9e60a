//! GTFS-Realtime 2.0: a protobuf `FeedMessage` of vehicle positions, trip updates and service
//! alerts, with GTFS static as reference data to place what has no coordinates of its own.
//!
//! # What becomes an observation
//! - **VehiclePosition** → kind `vehicle.position`, severity `normal`, entity
//!   `vehicle/{vehicle.id, else vehicle.label, else the entity id}`, observed at the position's
//!   `timestamp` (else the header's, else arrival). Fields: `route`, `trip`, `label`,
//!   `vehicle_id`, `bearing`, `speed` (m/s), `occupancy`, `occupancy_percentage`,
//!   `current_status`, `stop_id`, `congestion`, `direction_id`.
//! - **TripUpdate** → entity `trip/{trip_id}` (else `trip/{entity id}`): kind
//!   `vehicle.delayed` when the largest delay over its stop time updates (each event's `delay`,
//!   else `time - scheduled_time`; SKIPPED and NO_DATA stops ignored; the trip-level `delay`
//!   counts too) reaches the minor threshold, else `vehicle.on_time` (severity `normal`);
//!   `trip.canceled` (moderate) for CANCELED or DELETED trips. The entity is the trip, not the
//!   vehicle, because positions arrive far more often than delays and would otherwise overwrite
//!   the delay in the picture. Severity by `mapping.delay_minor_s` / `delay_moderate_s` /
//!   `delay_severe_s`, default 120 / 300 / 600 seconds. It is placed at its vehicle's latest
//!   position seen by this adapter (at most `mapping.vehicle_position_max_age_s`, default 600 s,
//!   apart), else at its next stop from GTFS static (the first stop time update, not skipped,
//!   whose predicted time is not yet past; a stop given only by `stop_sequence` is looked up in
//!   `stop_times.txt`), else it is refused with the reason. Fields: `route`, `trip`,
//!   `vehicle_id`, `label`, `delay_s`, `delay_stop_id`, `next_stop_id`, `placed_by`
//!   (`vehicle` or `next_stop`), `stop_updates`, `schedule_relationship`, `start_date`.
//! - **Alert** → kind `transit.alert`, entity `alert/{entity id}`. Severity from
//!   `severity_level` (SEVERE → severe, WARNING → moderate, INFO → minor), and when that is
//!   absent or UNKNOWN_SEVERITY from `effect` (NO_SERVICE → severe; REDUCED_SERVICE,
//!   SIGNIFICANT_DELAYS, DETOUR, STOP_MOVED → moderate; anything else minor). Placed at the
//!   centroid of its informed stops in GTFS static, else of its informed routes (a route's
//!   point is the centroid of its shapes, else of its stops; an informed trip counts as its
//!   route), else refused. Observed at the header timestamp (else arrival). Fields: `header`,
//!   `description`, `url` (the `mapping.language` translation, else the first), `cause`,
//!   `effect`, `severity_level`, `active_periods`, `informed` (at most 100 selectors).
//!
//! # Hostile input
//! - The message is walked field by field over the wire format, and each entity is decoded on
//!   its own, so a broken entity is refused (`entity[17] (byte 4521)`) and its neighbours are
//!   kept. A break in the outer framing (truncation, garbage) is an error at its byte offset;
//!   entities before it are kept when the header was read. No header at all: not a FeedMessage.
//! - Timestamps more than a year from arrival ([`super::mapping::MAX_CLOCK_SKEW_MS`]): refused.
//! - Coordinates out of range, non-finite, or exactly 0,0 (a placeholder some AVL systems send
//!   for "no fix"): refused. Delays beyond a day either way: refused as broken predictions.
//! - A duplicated entity id in one message: the first is kept, the rest refused.
//! - Unknown enum values (prost keeps them as integers) are reported as `unknown`.
//! - Deleted entities (`is_deleted`) and entity types that are not observations (`shape`,
//!   `stop`, `trip_modifications`) are skipped without a rejection; an entity with none of the
//!   three observation types is refused.
//! - The adapter remembers at most [`MAX_REMEMBERED`] vehicle positions; past that it forgets
//!   them all and starts again (bounded memory over a long run).
//!
//! # Mapping
//! ```toml
//! [feeds.mapping]
//! gtfs_static = "reference/cairns_gtfs.zip"   # relative to the scenario/config folder
//! delay_minor_s = 120
//! delay_moderate_s = 300
//! delay_severe_s = 600
//! vehicle_position_max_age_s = 600
//! language = "en"
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cityops_core::model::{GeoPoint, Millis, Observation, Severity};
use cityops_core::scenario::FeedSpec;
use cityops_core::Fields;
use gtfs_realtime::{
    alert, trip_descriptor, trip_update, vehicle_position, FeedEntity, FeedHeader, FeedMessage, TranslatedString,
};
use prost::Message as _;
use serde_json::{json, Value};

use super::gtfs_static::{GtfsStatic, Mean};
use super::mapping::{check_skew, rfc3339, MappingReader};
use super::{Adapter, AdapterConfigError, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// How many vehicle positions the adapter remembers to place trip updates.
pub const MAX_REMEMBERED: usize = 100_000;
/// A delay beyond this (either way) is a broken prediction, not a late bus.
pub const MAX_DELAY_S: i64 = 24 * 3600;
/// At most this many informed entities are copied into an alert's fields.
const MAX_INFORMED_FIELDS: usize = 100;

/// The mapping choices of a GTFS-Realtime feed.
#[derive(Debug, Clone, PartialEq)]
pub struct GtfsRtMapping {
    /// Delay (seconds) from which a trip is `minor`ly late.
    pub delay_minor_s: i64,
    /// Delay from which it is `moderate`.
    pub delay_moderate_s: i64,
    /// Delay from which it is `severe`.
    pub delay_severe_s: i64,
    /// How far apart a remembered vehicle position and a trip update may be to place it.
    pub vehicle_position_max_age_s: i64,
    /// The preferred translation language of alert texts.
    pub language: Option<String>,
}

impl Default for GtfsRtMapping {
    fn default() -> Self {
        GtfsRtMapping {
            delay_minor_s: 120,
            delay_moderate_s: 300,
            delay_severe_s: 600,
            vehicle_position_max_age_s: 600,
            language: None,
        }
    }
}

/// The GTFS-Realtime adapter of one feed.
pub struct GtfsRtAdapter {
    mapping: GtfsRtMapping,
    reference: Option<Arc<GtfsStatic>>,
    /// Latest positions by vehicle key, with their observed time.
    by_vehicle: HashMap<String, (GeoPoint, Millis)>,
    /// Latest positions by trip id, with their observed time.
    by_trip: HashMap<String, (GeoPoint, Millis)>,
}

impl GtfsRtAdapter {
    /// An adapter with the given choices and optional GTFS static reference data.
    pub fn new(mapping: GtfsRtMapping, reference: Option<Arc<GtfsStatic>>) -> Self {
        GtfsRtAdapter {
            mapping,
            reference,
            by_vehicle: HashMap::new(),
            by_trip: HashMap::new(),
        }
    }

    /// Builds the adapter from a feed spec, loading `mapping.gtfs_static` relative to `base_dir`.
    pub fn from_spec(spec: &FeedSpec, base_dir: &Path) -> Result<Self, AdapterConfigError> {
        let r = MappingReader::new(&spec.id);
        let known = [
            "gtfs_static",
            "delay_minor_s",
            "delay_moderate_s",
            "delay_severe_s",
            "vehicle_position_max_age_s",
            "language",
        ];
        let mut mapping = GtfsRtMapping::default();
        let mut reference = None;
        if let Some(m) = r.table(Some(&spec.mapping), "mapping", &known)? {
            let secs = |key: &str, default: i64| -> Result<i64, AdapterConfigError> {
                Ok(r.unsigned(m, "mapping", key)?
                    .map(|v| v.min(MAX_DELAY_S as u64) as i64)
                    .unwrap_or(default))
            };
            mapping.delay_minor_s = secs("delay_minor_s", mapping.delay_minor_s)?;
            mapping.delay_moderate_s = secs("delay_moderate_s", mapping.delay_moderate_s)?;
            mapping.delay_severe_s = secs("delay_severe_s", mapping.delay_severe_s)?;
            mapping.vehicle_position_max_age_s =
                secs("vehicle_position_max_age_s", mapping.vehicle_position_max_age_s)?;
            if !(mapping.delay_minor_s <= mapping.delay_moderate_s
                && mapping.delay_moderate_s <= mapping.delay_severe_s)
            {
                return Err(r.err(
                    "mapping.delay_moderate_s",
                    "delay thresholds must not decrease: minor <= moderate <= severe",
                ));
            }
            mapping.language = r.string(m, "mapping", "language")?;
            if let Some(path) = r.string(m, "mapping", "gtfs_static")? {
                let full = base_dir.join(&path);
                let g = GtfsStatic::load(&full).map_err(|e| r.err("mapping.gtfs_static", e.to_string()))?;
                reference = Some(Arc::new(g));
            }
        }
        Ok(GtfsRtAdapter::new(mapping, reference))
    }

    /// The reference data, if a GTFS static feed was configured.
    pub fn reference(&self) -> Option<&GtfsStatic> {
        self.reference.as_deref()
    }
}

impl Adapter for GtfsRtAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        let frame = walk(body)?;
        let mut out = Decoded::default();
        if let Some((at, reason)) = frame.broken {
            out.rejected.push(Rejected {
                place: format!("byte {at}"),
                reason: format!("{reason}; the rest of the message is lost"),
            });
        }
        let header = frame.header;
        let header_ms = match header.timestamp.map(secs_to_ms) {
            Some(Some(ms)) if check_skew(ms, ctx.received_ms).is_ok() => Some(ms),
            Some(_) => {
                out.rejected.push(Rejected {
                    place: "header.timestamp".into(),
                    reason: format!(
                        "{} is not a believable time; entities without their own time use the arrival time",
                        header.timestamp.unwrap_or_default()
                    ),
                });
                None
            }
            None => None,
        };
        // Decode every entity on its own, so that a broken one costs only itself.
        let place = |i: usize| format!("entity[{i}] (byte {})", frame.entities[i].0);
        let mut entities: Vec<Option<FeedEntity>> = Vec::with_capacity(frame.entities.len());
        for (i, (_, bytes)) in frame.entities.iter().enumerate() {
            match FeedEntity::decode(*bytes) {
                Ok(e) if e.id.is_empty() => {
                    out.rejected.push(Rejected {
                        place: place(i),
                        reason: "entity id is empty (it is required)".into(),
                    });
                    entities.push(None);
                }
                Ok(e) => entities.push(Some(e)),
                Err(e) => {
                    out.rejected.push(Rejected {
                        place: place(i),
                        reason: e.to_string(),
                    });
                    entities.push(None);
                }
            }
        }
        // A repeated id keeps its first entity. The ids are borrowed, not copied: this runs
        // for every entity of every message.
        let mut duplicates = Vec::new();
        {
            let mut seen: HashMap<&str, usize> = HashMap::with_capacity(entities.len());
            for (i, e) in entities.iter().enumerate() {
                if let Some(e) = e {
                    if let Some(first) = seen.insert(e.id.as_str(), i) {
                        seen.insert(e.id.as_str(), first);
                        duplicates.push((i, first));
                    }
                }
            }
        }
        for (i, first) in duplicates {
            if let Some(e) = entities[i].take() {
                out.rejected.push(Rejected {
                    place: place(i),
                    reason: format!("duplicate entity id {:?} (kept entity[{first}])", e.id),
                });
            }
        }
        // Vehicle positions first, so that trip updates in the same message can be placed at
        // their vehicles whatever the order of entities.
        let mut idx = 0u32;
        out.observations.reserve(entities.len());
        for (i, slot) in entities.iter_mut().enumerate() {
            let Some(entity) = slot else { continue };
            if entity.is_deleted == Some(true) {
                *slot = None;
                continue;
            }
            if entity.vehicle.is_none() && entity.trip_update.is_none() && entity.alert.is_none() {
                if entity.shape.is_none() && entity.stop.is_none() && entity.trip_modifications.is_none() {
                    out.rejected.push(Rejected {
                        place: place(i),
                        reason: format!("entity {:?} has no vehicle, trip_update or alert", entity.id),
                    });
                }
                *slot = None;
                continue;
            }
            if let Some(v) = entity.vehicle.take() {
                match self.vehicle(ctx, idx, header_ms, &entity.id, v) {
                    Ok(o) => {
                        idx += 1;
                        out.observations.push(o);
                    }
                    Err((field, reason)) => out.rejected.push(Rejected {
                        place: format!("{}.vehicle{field}", place(i)),
                        reason,
                    }),
                }
            }
        }
        for (i, entity) in entities.iter().enumerate() {
            let Some(entity) = entity else { continue };
            if let Some(tu) = &entity.trip_update {
                match self.trip_update(ctx, idx, header_ms, &entity.id, tu) {
                    Ok(o) => {
                        idx += 1;
                        out.observations.push(o);
                    }
                    Err((field, reason)) => out.rejected.push(Rejected {
                        place: format!("{}.trip_update{field}", place(i)),
                        reason,
                    }),
                }
            }
            if let Some(a) = &entity.alert {
                match self.alert(ctx, idx, header_ms, &entity.id, a) {
                    Ok(o) => {
                        idx += 1;
                        out.observations.push(o);
                    }
                    Err((field, reason)) => out.rejected.push(Rejected {
                        place: format!("{}.alert{field}", place(i)),
                        reason,
                    }),
                }
            }
        }
        Ok(out)
    }
}

/// Runs only the protobuf decoder over the body (no mapping), for the decode benchmark;
/// returns the number of entities.
pub fn bare_parse(body: &[u8]) -> Result<usize, DecodeError> {
    FeedMessage::decode(body)
        .map(|m| m.entity.len())
        .map_err(|e| DecodeError {
            place: "$".into(),
            reason: e.to_string(),
        })
}

type EntityError = (String, String);

fn err(field: &str, reason: impl Into<String>) -> EntityError {
    (field.to_owned(), reason.into())
}

/// The time a FeedMessage says it was produced (`header.timestamp`), if it has a readable one:
/// what `cityops decode` takes for the arrival of a message given without one, so an archived
/// capture is judged as it was received rather than against today.
pub fn header_time(body: &[u8]) -> Option<Millis> {
    walk(body).ok()?.header.timestamp.and_then(secs_to_ms)
}

/// Seconds since the epoch (protobuf uint64) to milliseconds, if representable.
fn secs_to_ms(s: u64) -> Option<Millis> {
    i64::try_from(s).ok()?.checked_mul(1000)
}

/// The observed time of an entity: its own timestamp, else the header's, else arrival.
fn observed_time(
    own: Option<u64>,
    field: &str,
    header_ms: Option<Millis>,
    received_ms: Millis,
) -> Result<Millis, EntityError> {
    match own {
        Some(s) => {
            let ms = secs_to_ms(s).ok_or_else(|| err(field, format!("{s} is out of range")))?;
            check_skew(ms, received_ms).map_err(|r| err(field, r.0))?;
            Ok(ms)
        }
        None => Ok(header_ms.unwrap_or(received_ms)),
    }
}

fn opt_str(fields: &mut Fields, key: &'static str, v: Option<&str>) {
    if let Some(v) = v.filter(|s| !s.is_empty()) {
        fields.insert(key, Value::String(v.to_owned()));
    }
}

/// The lowercase name of an enum value, or `unknown` for a value these bindings do not know.
macro_rules! enum_name {
    ($ty:ty, $v:expr) => {
        $v.map(|v| {
            <$ty>::try_from(v)
                .map(|e| e.as_str_name().to_ascii_lowercase())
                .unwrap_or_else(|_| "unknown".to_owned())
        })
    };
}

fn f32_field(v: Option<f32>) -> Option<Value> {
    v.filter(|f| f.is_finite())
        .and_then(|f| serde_json::Number::from_f64(f64::from(f)))
        .map(Value::Number)
}

impl GtfsRtAdapter {
    /// Remembers a position, updating in place when the key is known (no allocation on the
    /// common path: the same vehicles report every few seconds).
    fn remember(map: &mut HashMap<String, (GeoPoint, Millis)>, key: &str, p: GeoPoint, at: Millis) {
        if let Some(slot) = map.get_mut(key) {
            *slot = (p, at);
            return;
        }
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(key.to_owned(), (p, at));
    }

    /// One vehicle position. It takes the decoded message by value and moves its strings into
    /// the observation: this runs for every vehicle every few seconds.
    fn vehicle(
        &mut self,
        ctx: MessageContext<'_>,
        idx: u32,
        header_ms: Option<Millis>,
        entity_id: &str,
        v: gtfs_realtime::VehiclePosition,
    ) -> Result<Observation, EntityError> {
        let (mut vid, mut label) = match v.vehicle {
            Some(d) => (d.id.filter(|s| !s.is_empty()), d.label.filter(|s| !s.is_empty())),
            None => (None, None),
        };
        let pos = v
            .position
            .as_ref()
            .ok_or_else(|| err(".position", "missing: a vehicle position without a position"))?;
        let (lat, lon) = (f64::from(pos.latitude), f64::from(pos.longitude));
        if lat == 0.0 && lon == 0.0 {
            return Err(err(".position", "0,0 is the placeholder some systems send for no fix"));
        }
        let position = GeoPoint::new(lon, lat)
            .ok_or_else(|| err(".position", format!("latitude {lat}, longitude {lon} is out of range")))?;
        let observed_ms = observed_time(v.timestamp, ".timestamp", header_ms, ctx.received_ms)?;
        let key = vid.as_deref().or(label.as_deref()).unwrap_or(entity_id);
        let entity = format!("vehicle/{key}");
        Self::remember(&mut self.by_vehicle, key, position, observed_ms);
        let (mut route, mut trip, direction) = match v.trip {
            Some(t) => (
                t.route_id.filter(|s| !s.is_empty()),
                t.trip_id.filter(|s| !s.is_empty()),
                t.direction_id,
            ),
            None => (None, None, None),
        };
        if let Some(t) = &trip {
            Self::remember(&mut self.by_trip, t, position, observed_ms);
        }
        let title = match (route.as_deref(), label.as_deref().or(vid.as_deref())) {
            (Some(r), Some(l)) => format!("Route {} vehicle {l}", self.route_name(r)),
            (Some(r), None) => format!("Route {} vehicle", self.route_name(r)),
            (None, Some(l)) => format!("Vehicle {l}"),
            (None, None) => format!("Vehicle {entity_id}"),
        };
        let mut fields = Fields::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                fields.insert(k, Value::String(v));
            }
        };
        put("route", route.take());
        put("trip", trip.take());
        put("vehicle_id", vid.take());
        put("label", label.take());
        put("stop_id", v.stop_id.filter(|s| !s.is_empty()));
        put(
            "occupancy",
            enum_name!(vehicle_position::OccupancyStatus, v.occupancy_status),
        );
        put(
            "current_status",
            enum_name!(vehicle_position::VehicleStopStatus, v.current_status),
        );
        put(
            "congestion",
            enum_name!(vehicle_position::CongestionLevel, v.congestion_level),
        );
        if let Some(d) = direction {
            fields.insert("direction_id", json!(d));
        }
        if let Some(b) = f32_field(pos.bearing) {
            fields.insert("bearing", b);
        }
        if let Some(s) = f32_field(pos.speed) {
            fields.insert("speed", s);
        }
        if let Some(p) = v.occupancy_percentage {
            fields.insert("occupancy_percentage", json!(p));
        }
        Ok(Observation {
            feed: ctx.feed.to_owned(),
            seq: ctx.seq,
            idx,
            received_ms: ctx.received_ms,
            observed_ms,
            layer: ctx.layer,
            kind: "vehicle.position".into(),
            severity: Severity::Normal,
            entity,
            position,
            title,
            fields,
            shape: None,
        })
    }

    /// The route's short name from GTFS static, else its long name, else its id.
    fn route_name<'s>(&'s self, route_id: &'s str) -> &'s str {
        self.reference
            .as_ref()
            .and_then(|g| g.routes.get(route_id))
            .map(|r| {
                if r.short_name.is_empty() {
                    r.long_name.as_str()
                } else {
                    r.short_name.as_str()
                }
            })
            .filter(|s| !s.is_empty())
            .unwrap_or(route_id)
    }

    fn delay_severity(&self, delay: i64) -> Severity {
        let m = &self.mapping;
        if delay >= m.delay_severe_s {
            Severity::Severe
        } else if delay >= m.delay_moderate_s {
            Severity::Moderate
        } else if delay >= m.delay_minor_s {
            Severity::Minor
        } else {
            Severity::Normal
        }
    }

    fn trip_update(
        &self,
        ctx: MessageContext<'_>,
        idx: u32,
        header_ms: Option<Millis>,
        entity_id: &str,
        tu: &gtfs_realtime::TripUpdate,
    ) -> Result<Observation, EntityError> {
        use trip_update::stop_time_update::ScheduleRelationship as StopRel;
        let observed_ms = observed_time(tu.timestamp, ".timestamp", header_ms, ctx.received_ms)?;
        let trip_id = tu.trip.trip_id.as_deref().filter(|s| !s.is_empty());
        let route_id = tu
            .trip
            .route_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                let g = self.reference.as_ref()?;
                trip_id
                    .and_then(|t| g.trips.get(t))
                    .map(|t| t.route_id.clone())
                    .filter(|r| !r.is_empty())
            });
        let desc = tu.vehicle.as_ref();
        let vid = desc.and_then(|d| d.id.as_deref()).filter(|s| !s.is_empty());
        let label = desc.and_then(|d| d.label.as_deref()).filter(|s| !s.is_empty());
        let trip_rel = tu
            .trip
            .schedule_relationship
            .and_then(|r| trip_descriptor::ScheduleRelationship::try_from(r).ok());
        let canceled = matches!(
            trip_rel,
            Some(trip_descriptor::ScheduleRelationship::Canceled | trip_descriptor::ScheduleRelationship::Deleted)
        );

        // The largest delay, and the stop where it occurs.
        let mut max_delay: Option<(i64, Option<String>)> = tu.delay.map(|d| (i64::from(d), None));
        for (k, stu) in tu.stop_time_update.iter().enumerate() {
            let rel = stu.schedule_relationship.and_then(|r| StopRel::try_from(r).ok());
            if matches!(rel, Some(StopRel::Skipped | StopRel::NoData)) {
                continue;
            }
            for (name, ev) in [("arrival", &stu.arrival), ("departure", &stu.departure)] {
                let Some(ev) = ev else { continue };
                let d = match (ev.delay, ev.time, ev.scheduled_time) {
                    (Some(d), _, _) => i64::from(d),
                    (None, Some(t), Some(s)) => t.saturating_sub(s),
                    _ => continue,
                };
                if d.abs() > MAX_DELAY_S {
                    return Err(err(
                        &format!(".stop_time_update[{k}].{name}"),
                        format!("delay of {d} s is more than a day: a broken prediction"),
                    ));
                }
                if max_delay.as_ref().is_none_or(|(m, _)| d > *m) {
                    max_delay = Some((d, stu.stop_id.clone()));
                }
            }
        }
        if let Some((d, _)) = &max_delay {
            if d.abs() > MAX_DELAY_S {
                return Err(err(
                    ".delay",
                    format!("delay of {d} s is more than a day: a broken prediction"),
                ));
            }
        }
        let (kind, severity, delay) = match (&max_delay, canceled) {
            (_, true) => ("trip.canceled", Severity::Moderate, max_delay.as_ref().map(|(d, _)| *d)),
            (Some((d, _)), false) => {
                let s = self.delay_severity(*d);
                (
                    if s == Severity::Normal {
                        "vehicle.on_time"
                    } else {
                        "vehicle.delayed"
                    },
                    s,
                    Some(*d),
                )
            }
            (None, false) => return Err(err(
                ".stop_time_update",
                "no delay: no stop time update has a delay or both time and scheduled_time, and the trip has no delay",
            )),
        };

        // Where: the vehicle's remembered position, else the next stop from GTFS static.
        let now_s = observed_ms.div_euclid(1000);
        let next = tu
            .stop_time_update
            .iter()
            .filter(|s| {
                !matches!(
                    s.schedule_relationship.and_then(|r| StopRel::try_from(r).ok()),
                    Some(StopRel::Skipped)
                )
            })
            .find(|s| {
                let t = s
                    .arrival
                    .as_ref()
                    .and_then(|e| e.time)
                    .or_else(|| s.departure.as_ref().and_then(|e| e.time));
                t.is_none_or(|t| t >= now_s)
            })
            .or_else(|| tu.stop_time_update.last());
        let next_stop_id: Option<String> = next.and_then(|s| {
            s.stop_id.clone().filter(|id| !id.is_empty()).or_else(|| {
                let g = self.reference.as_ref()?;
                g.stop_at_sequence(trip_id?, s.stop_sequence?).map(str::to_owned)
            })
        });
        let max_age_ms = self.mapping.vehicle_position_max_age_s.saturating_mul(1000);
        let remembered = vid
            .or(label)
            .and_then(|k| self.by_vehicle.get(k))
            .or_else(|| trip_id.and_then(|t| self.by_trip.get(t)))
            .filter(|(_, at)| at.abs_diff(observed_ms) <= max_age_ms as u64);
        let (position, placed_by) = if let Some((p, _)) = remembered {
            (*p, "vehicle")
        } else {
            let Some(g) = self.reference.as_ref() else {
                return Err(err("", "cannot be placed: its vehicle has no recent position in this feed and no GTFS static is configured (mapping.gtfs_static) to find its next stop"));
            };
            let Some(stop) = &next_stop_id else {
                return Err(err(".stop_time_update", "cannot be placed: no next stop (no stop_id, and no stop_sequence found in stop_times.txt for this trip)"));
            };
            let p = g.stop_position(stop).ok_or_else(|| err(".stop_time_update", format!("cannot be placed: next stop {stop:?} is not in the GTFS static stops.txt (or has no coordinates)")))?;
            (p, "next_stop")
        };

        let mut fields = Fields::new();
        opt_str(&mut fields, "route", route_id.as_deref());
        opt_str(&mut fields, "trip", trip_id);
        opt_str(&mut fields, "start_date", tu.trip.start_date.as_deref());
        opt_str(&mut fields, "vehicle_id", vid);
        opt_str(&mut fields, "label", label);
        if let Some(d) = delay {
            fields.insert("delay_s", json!(d));
        }
        opt_str(
            &mut fields,
            "delay_stop_id",
            max_delay.as_ref().and_then(|(_, s)| s.as_deref()),
        );
        opt_str(&mut fields, "next_stop_id", next_stop_id.as_deref());
        fields.insert("placed_by", Value::String(placed_by.into()));
        fields.insert("stop_updates", json!(tu.stop_time_update.len()));
        if let Some(r) = enum_name!(trip_descriptor::ScheduleRelationship, tu.trip.schedule_relationship) {
            fields.insert("schedule_relationship", Value::String(r));
        }
        let what = match route_id.as_deref() {
            Some(r) => format!("Route {} trip {}", self.route_name(r), trip_id.unwrap_or(entity_id)),
            None => format!("Trip {}", trip_id.unwrap_or(entity_id)),
        };
        let title = match (kind, delay) {
            ("trip.canceled", _) => format!("{what} canceled"),
            (_, Some(d)) if d >= 60 => format!("{what} {} min {} s late", d / 60, d % 60),
            (_, Some(d)) if d > 0 => format!("{what} {d} s late"),
            (_, Some(d)) if d < 0 => format!("{what} {} s early", -d),
            _ => format!("{what} on time"),
        };
        Ok(Observation {
            feed: ctx.feed.to_owned(),
            seq: ctx.seq,
            idx,
            received_ms: ctx.received_ms,
            observed_ms,
            layer: ctx.layer,
            kind: kind.into(),
            severity,
            entity: format!("trip/{}", trip_id.unwrap_or(entity_id)),
            position,
            title,
            fields,
            shape: None,
        })
    }

    fn text(&self, t: &Option<TranslatedString>) -> Option<String> {
        let tr = &t.as_ref()?.translation;
        let preferred = self
            .mapping
            .language
            .as_deref()
            .and_then(|lang| tr.iter().find(|x| x.language.as_deref() == Some(lang)));
        preferred
            .or_else(|| tr.first())
            .map(|x| x.text.clone())
            .filter(|s| !s.is_empty())
    }

    fn alert(
        &self,
        ctx: MessageContext<'_>,
        idx: u32,
        header_ms: Option<Millis>,
        entity_id: &str,
        a: &gtfs_realtime::Alert,
    ) -> Result<Observation, EntityError> {
        let observed_ms = header_ms.unwrap_or(ctx.received_ms);
        let level = a.severity_level.and_then(|v| alert::SeverityLevel::try_from(v).ok());
        let effect = a.effect.and_then(|v| alert::Effect::try_from(v).ok());
        let severity = match level {
            Some(alert::SeverityLevel::Severe) => Severity::Severe,
            Some(alert::SeverityLevel::Warning) => Severity::Moderate,
            Some(alert::SeverityLevel::Info) => Severity::Minor,
            Some(alert::SeverityLevel::UnknownSeverity) | None => match effect {
                Some(alert::Effect::NoService) => Severity::Severe,
                Some(
                    alert::Effect::ReducedService
                    | alert::Effect::SignificantDelays
                    | alert::Effect::Detour
                    | alert::Effect::StopMoved,
                ) => Severity::Moderate,
                _ => Severity::Minor,
            },
        };

        // Place it: the informed stops' centroid, else the informed routes' (a trip counts as
        // its route). Without reference data nothing can be placed.
        let mut stops = Mean::default();
        let mut routes = Mean::default();
        let mut unplaced: Vec<String> = Vec::new();
        if let Some(g) = self.reference.as_ref() {
            for sel in &a.informed_entity {
                if let Some(stop) = sel.stop_id.as_deref().filter(|s| !s.is_empty()) {
                    match g.stop_position(stop) {
                        Some(p) => stops.add(p),
                        None => unplaced.push(format!("stop {stop:?}")),
                    }
                }
                let route = sel
                    .route_id
                    .as_deref()
                    .or_else(|| sel.trip.as_ref().and_then(|t| t.route_id.as_deref()))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .or_else(|| {
                        let trip = sel.trip.as_ref()?.trip_id.as_deref()?;
                        g.trips.get(trip).map(|t| t.route_id.clone())
                    });
                if let Some(route) = route {
                    match g.route_position(&route) {
                        Some(p) => routes.add(p),
                        None => unplaced.push(format!("route {route:?}")),
                    }
                }
            }
        }
        let position = match (stops.point(), routes.point()) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) if self.reference.is_none() => {
                return Err(err(".informed_entity", "cannot be placed: no GTFS static is configured (mapping.gtfs_static) to find its informed stops and routes"))
            }
            (None, None) if unplaced.is_empty() => {
                return Err(err(".informed_entity", format!("cannot be placed: none of its {} informed entities names a stop, route or trip", a.informed_entity.len())))
            }
            (None, None) => {
                let shown: Vec<&str> = unplaced.iter().take(5).map(String::as_str).collect();
                return Err(err(
                    ".informed_entity",
                    format!("cannot be placed: {} of its informed stops and routes have no place in the GTFS static feed (first: {})", unplaced.len(), shown.join(", ")),
                ));
            }
        };

        let mut fields = Fields::new();
        let header = self.text(&a.header_text);
        if let Some(h) = &header {
            fields.insert("header", Value::String(h.clone()));
        }
        if let Some(d) = self.text(&a.description_text) {
            fields.insert("description", Value::String(d));
        }
        if let Some(u) = self.text(&a.url) {
            fields.insert("url", Value::String(u));
        }
        if let Some(c) = enum_name!(alert::Cause, a.cause) {
            fields.insert("cause", Value::String(c));
        }
        if let Some(e) = enum_name!(alert::Effect, a.effect) {
            fields.insert("effect", Value::String(e));
        }
        if let Some(l) = enum_name!(alert::SeverityLevel, a.severity_level) {
            fields.insert("severity_level", Value::String(l));
        }
        let periods: Vec<Value> = a
            .active_period
            .iter()
            .take(MAX_INFORMED_FIELDS)
            .map(|p| {
                let t = |s: Option<u64>| {
                    s.and_then(secs_to_ms)
                        .map(|ms| Value::String(rfc3339(ms)))
                        .unwrap_or(Value::Null)
                };
                json!([t(p.start), t(p.end)])
            })
            .collect();
        if !periods.is_empty() {
            fields.insert("active_periods", Value::Array(periods));
        }
        let informed: Vec<Value> = a
            .informed_entity
            .iter()
            .take(MAX_INFORMED_FIELDS)
            .map(|s| {
                let mut m = Fields::new();
                opt_str(&mut m, "agency_id", s.agency_id.as_deref());
                opt_str(&mut m, "route_id", s.route_id.as_deref());
                opt_str(&mut m, "stop_id", s.stop_id.as_deref());
                opt_str(&mut m, "trip_id", s.trip.as_ref().and_then(|t| t.trip_id.as_deref()));
                if let Some(t) = s.route_type {
                    m.insert("route_type", json!(t));
                }
                Value::Object(m.into())
            })
            .collect();
        fields.insert("informed", Value::Array(informed));
        Ok(Observation {
            feed: ctx.feed.to_owned(),
            seq: ctx.seq,
            idx,
            received_ms: ctx.received_ms,
            observed_ms,
            layer: ctx.layer,
            kind: "transit.alert".into(),
            severity,
            entity: format!("alert/{entity_id}"),
            position,
            title: header.unwrap_or_else(|| "Service alert".to_owned()),
            fields,
            shape: None,
        })
    }
}

/// The outer frame of a FeedMessage: its header, each entity's bytes and byte offset, and
/// where the framing broke, if it did.
struct Frame<'a> {
    header: FeedHeader,
    entities: Vec<(usize, &'a [u8])>,
    broken: Option<(usize, String)>,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, Refusal> {
    let start = *at;
    let mut v = 0u64;
    for shift in 0..10 {
        let Some(&byte) = b.get(*at) else {
            return Err(format!("varint at byte {start} runs past the end of the message (truncated?)").into());
        };
        *at += 1;
        v |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(format!("varint at byte {start} is longer than 10 bytes").into())
}

/// Walks the top level of a FeedMessage over the protobuf wire format. Field 1 is the header,
/// field 2 an entity; other fields (extensions) are skipped as protobuf says.
fn walk(body: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let mut header: Option<FeedHeader> = None;
    let mut entities = Vec::new();
    let mut broken = None;
    let mut at = 0usize;
    while at < body.len() {
        let start = at;
        let step = (|| -> Result<(), Refusal> {
            let key = varint(body, &mut at)?;
            let (field, wire) = (key >> 3, key & 7);
            if field == 0 {
                return Err("field number 0 is not valid protobuf".into());
            }
            if (field == 1 || field == 2) && wire != 2 {
                return Err(format!(
                    "field {field} ({}) has wire type {wire}, expected 2",
                    if field == 1 { "header" } else { "entity" }
                )
                .into());
            }
            match wire {
                0 => {
                    varint(body, &mut at)?;
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    if body.len() - at < n {
                        return Err(
                            format!("field {field} needs {n} bytes, {} remain (truncated?)", body.len() - at).into(),
                        );
                    }
                    at += n;
                }
                2 => {
                    let len = varint(body, &mut at)?;
                    let remain = (body.len() - at) as u64;
                    if len > remain {
                        return Err(
                            format!("field {field} declares {len} bytes but {remain} remain (truncated?)").into(),
                        );
                    }
                    let slice = &body[at..at + len as usize];
                    match field {
                        1 => {
                            let h = header.get_or_insert_with(FeedHeader::default);
                            h.merge(slice).map_err(|e| format!("header: {e}"))?;
                        }
                        2 => entities.push((start, slice)),
                        _ => {}
                    }
                    at += len as usize;
                }
                3 | 4 => {
                    return Err(format!(
                        "field {field} uses protobuf groups (wire type {wire}), which GTFS-Realtime never does"
                    )
                    .into())
                }
                _ => return Err(format!("field {field} has invalid wire type {wire}").into()),
            }
            Ok(())
        })();
        if let Err(Refusal(reason)) = step {
            broken = Some((start, reason));
            break;
        }
    }
    match (header, broken) {
        (None, Some((at, reason))) => Err(DecodeError {
            place: format!("byte {at}"),
            reason: format!("not a GTFS-Realtime FeedMessage: {reason}"),
        }),
        (None, None) => Err(DecodeError {
            place: "$".into(),
            reason: "not a GTFS-Realtime FeedMessage: no header (field 1)".into(),
        }),
        (Some(_), Some((at, reason))) if entities.is_empty() => Err(DecodeError {
            place: format!("byte {at}"),
            reason,
        }),
        (Some(header), broken) => Ok(Frame {
            header,
            entities,
            broken,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtfs_static::testing::stored_zip;
    use cityops_core::model::Layer;
    use gtfs_realtime::{EntitySelector, Position, TripDescriptor, TripUpdate, VehicleDescriptor, VehiclePosition};

    const NOW: u64 = 1_761_519_032;

    fn ctx() -> MessageContext<'static> {
        MessageContext {
            feed: "transit",
            layer: Layer::Transport,
            seq: 3,
            received_ms: NOW as i64 * 1000,
            topic: None,
        }
    }

    fn message(entities: Vec<FeedEntity>) -> Vec<u8> {
        FeedMessage {
            header: FeedHeader {
                gtfs_realtime_version: "2.0".into(),
                timestamp: Some(NOW),
                ..Default::default()
            },
            entity: entities,
        }
        .encode_to_vec()
    }

    fn vp(id: &str, vehicle: &str, lat: f32, lon: f32, ts: u64) -> FeedEntity {
        FeedEntity {
            id: id.into(),
            vehicle: Some(VehiclePosition {
                trip: Some(TripDescriptor {
                    trip_id: Some(format!("trip-{vehicle}")),
                    route_id: Some("4".into()),
                    ..Default::default()
                }),
                vehicle: Some(VehicleDescriptor {
                    id: Some(vehicle.into()),
                    label: Some(format!("L{vehicle}")),
                    ..Default::default()
                }),
                position: Some(Position {
                    latitude: lat,
                    longitude: lon,
                    bearing: Some(90.0),
                    speed: Some(5.5),
                    ..Default::default()
                }),
                timestamp: Some(ts),
                occupancy_status: Some(99),
                current_status: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tu(id: &str, trip: &str, vehicle: Option<&str>, delays: &[(u32, &str, i32)]) -> FeedEntity {
        FeedEntity {
            id: id.into(),
            trip_update: Some(TripUpdate {
                trip: TripDescriptor {
                    trip_id: Some(trip.into()),
                    ..Default::default()
                },
                vehicle: vehicle.map(|v| VehicleDescriptor {
                    id: Some(v.into()),
                    ..Default::default()
                }),
                stop_time_update: delays
                    .iter()
                    .map(|(seq, stop, d)| trip_update::StopTimeUpdate {
                        stop_sequence: Some(*seq),
                        stop_id: (!stop.is_empty()).then(|| stop.to_string()),
                        arrival: Some(trip_update::StopTimeEvent {
                            delay: Some(*d),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
                timestamp: Some(NOW),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn reference() -> Arc<GtfsStatic> {
        let zip = stored_zip(&[
            (
                "stops.txt",
                "stop_id,stop_name,stop_lat,stop_lon\nA,Stop A,60.0,24.0\nB,Stop B,60.2,24.2\n",
            ),
            ("routes.txt", "route_id,route_short_name,route_type\n4,4T,0\n"),
            ("trips.txt", "route_id,service_id,trip_id\n4,wk,t1\n"),
            ("stop_times.txt", "trip_id,stop_id,stop_sequence\nt1,A,1\nt1,B,2\n"),
        ]);
        Arc::new(GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap())
    }

    #[test]
    fn vehicles_become_positions_with_unknown_enums_named_unknown() {
        let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
        let body = message(vec![
            vp("e1", "2112", 43.58, -79.64, NOW - 8),
            vp("e2", "9", 0.0, 0.0, NOW),
            vp("e3", "10", 91.0, 0.0, NOW),
            vp("e1", "11", 43.0, -79.0, NOW),
            vp("e4", "12", 43.0, -79.0, NOW - 3 * 365 * 86400),
        ]);
        let d = a.decode(ctx(), &body).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(
            (o.entity.as_str(), o.kind.as_str(), o.severity, o.observed_ms),
            (
                "vehicle/2112",
                "vehicle.position",
                Severity::Normal,
                (NOW as i64 - 8) * 1000
            )
        );
        assert_eq!(o.fields["occupancy"], "unknown");
        assert_eq!(o.fields["current_status"], "in_transit_to");
        assert_eq!(o.fields["route"], "4");
        assert_eq!(o.title, "Route 4 vehicle L2112");
        let mut reasons: Vec<String> = d
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.place, r.reason))
            .collect();
        reasons.sort();
        assert!(
            reasons[0].contains("entity[1]") && reasons[0].contains("placeholder"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("entity[2] (byte") && reasons[1].contains("out of range"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].starts_with("entity[3]") && reasons[2].contains("duplicate entity id \"e1\" (kept entity[0])"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].contains(".vehicle.timestamp") && reasons[3].contains("days from the arrival"),
            "{reasons:?}"
        );
    }

    #[test]
    fn trip_updates_are_placed_at_their_vehicle_or_next_stop_or_refused() {
        let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), Some(reference()));
        let body = message(vec![
            tu("u1", "t1", Some("7"), &[(1, "A", 30), (2, "B", 400)]),
            vp("v7", "7", 60.1, 24.1, NOW),
            tu("u2", "t1", None, &[(2, "", 700)]),
            tu("u3", "t9", None, &[(1, "Z", 100)]),
            tu("u4", "t1", None, &[(1, "A", 60)]),
            tu("u5", "t1", None, &[]),
        ]);
        let d = a.decode(ctx(), &body).unwrap();
        let got: Vec<(&str, &str, Severity, &str)> = d
            .observations
            .iter()
            .map(|o| {
                (
                    o.entity.as_str(),
                    o.kind.as_str(),
                    o.severity,
                    o.fields.get("placed_by").and_then(Value::as_str).unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("vehicle/7", "vehicle.position", Severity::Normal, "-"),
                ("trip/t1", "vehicle.delayed", Severity::Moderate, "vehicle"),
                ("trip/t1", "vehicle.delayed", Severity::Severe, "next_stop"),
                ("trip/t1", "vehicle.on_time", Severity::Normal, "next_stop"),
            ]
        );
        assert_eq!(d.observations[1].fields["delay_s"], 400);
        assert_eq!(d.observations[1].fields["delay_stop_id"], "B");
        assert_eq!(d.observations[1].title, "Route 4T trip t1 6 min 40 s late");
        // Found through stop_times.txt by the stop sequence alone.
        assert_eq!(d.observations[2].fields["next_stop_id"], "B");
        assert_eq!(d.observations[2].position, GeoPoint::new(24.2, 60.2).unwrap());
        let idxs: Vec<u32> = d.observations.iter().map(|o| o.idx).collect();
        assert_eq!(idxs, [0, 1, 2, 3]);
        assert_eq!(d.rejected.len(), 2, "{:?}", d.rejected);
        assert!(
            d.rejected[0].place.starts_with("entity[3]")
                && d.rejected[0]
                    .reason
                    .contains("next stop \"Z\" is not in the GTFS static"),
            "{:?}",
            d.rejected
        );
        assert!(d.rejected[1].reason.starts_with("no delay"), "{:?}", d.rejected);
        let mut bare = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
        let d = bare
            .decode(ctx(), &message(vec![tu("u1", "t1", Some("7"), &[(1, "A", 30)])]))
            .unwrap();
        assert!(
            d.rejected[0].reason.contains("no GTFS static is configured"),
            "{:?}",
            d.rejected
        );
    }

    #[test]
    fn alerts_are_placed_at_informed_stops_then_routes() {
        let mut a = GtfsRtAdapter::new(
            GtfsRtMapping {
                language: Some("fi".into()),
                ..Default::default()
            },
            Some(reference()),
        );
        let alert = |id: &str, sels: Vec<EntitySelector>, level: Option<i32>, effect: Option<i32>| FeedEntity {
            id: id.into(),
            alert: Some(gtfs_realtime::Alert {
                informed_entity: sels,
                severity_level: level,
                effect,
                header_text: Some(TranslatedString {
                    translation: vec![
                        gtfs_realtime::translated_string::Translation {
                            text: "Stop closed".into(),
                            language: Some("en".into()),
                        },
                        gtfs_realtime::translated_string::Translation {
                            text: "Pysäkki suljettu".into(),
                            language: Some("fi".into()),
                        },
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stop = |s: &str| EntitySelector {
            stop_id: Some(s.into()),
            ..Default::default()
        };
        let route = |r: &str| EntitySelector {
            route_id: Some(r.into()),
            ..Default::default()
        };
        let body = message(vec![
            alert("a1", vec![stop("A"), stop("B"), route("4")], Some(4), None),
            alert("a2", vec![route("4")], None, Some(1)),
            alert(
                "a3",
                vec![EntitySelector {
                    agency_id: Some("HSL".into()),
                    ..Default::default()
                }],
                Some(77),
                Some(77),
            ),
            alert("a4", vec![stop("Q")], None, Some(9)),
        ]);
        let d = a.decode(ctx(), &body).unwrap();
        assert_eq!(d.observations.len(), 2);
        let (a1, a2) = (&d.observations[0], &d.observations[1]);
        assert_eq!(
            (a1.entity.as_str(), a1.kind.as_str(), a1.severity, a1.title.as_str()),
            ("alert/a1", "transit.alert", Severity::Severe, "Pysäkki suljettu")
        );
        assert!((a1.position.lon - 24.1).abs() < 1e-9 && (a1.position.lat - 60.1).abs() < 1e-9);
        assert_eq!(
            (a2.severity, a2.fields["effect"].as_str()),
            (Severity::Severe, Some("no_service"))
        );
        assert!(
            d.rejected[0].reason.contains("none of its 1 informed entities"),
            "{:?}",
            d.rejected
        );
        assert!(d.rejected[1].reason.contains("stop \"Q\""), "{:?}", d.rejected);
    }

    #[test]
    fn broken_framing_is_an_error_at_a_byte_offset_or_a_rejection_after_good_entities() {
        let mut a = GtfsRtAdapter::new(GtfsRtMapping::default(), None);
        let good = message(vec![vp("e1", "1", 43.0, -79.0, NOW), vp("e2", "2", 43.0, -79.0, NOW)]);
        let d = a.decode(ctx(), &good[..good.len() - 3]).unwrap();
        assert_eq!(d.observations.len(), 1);
        assert!(
            d.rejected[0].place.starts_with("byte ") && d.rejected[0].reason.contains("truncated"),
            "{:?}",
            d.rejected
        );
        let e = a.decode(ctx(), b"<html>500 Internal Server Error</html>").unwrap_err();
        assert!(e.place.starts_with("byte") || e.place == "$", "{e}");
        assert!(e.reason.starts_with("not a GTFS-Realtime FeedMessage"), "{e}");
        assert!(a.decode(ctx(), b"").unwrap_err().reason.contains("no header"));
        assert!(bare_parse(&good[..good.len() - 3]).is_err());
        assert_eq!(bare_parse(&good), Ok(2));
    }

    #[test]
    fn mapping_is_checked_and_names_its_fields() {
        let spec = |mapping: Value| FeedSpec {
            id: "bus".into(),
            layer: Layer::Transport,
            format: cityops_core::tape::FeedFormat::GtfsRt,
            name: String::new(),
            mapping,
        };
        let base = Path::new("/nonexistent");
        assert!(GtfsRtAdapter::from_spec(&spec(Value::Null), base).is_ok());
        let e = GtfsRtAdapter::from_spec(&spec(json!({"delay_minor_s": 500})), base)
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.delay_moderate_s");
        let e = GtfsRtAdapter::from_spec(&spec(json!({"gtfs_static": "nope.zip"})), base)
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.gtfs_static");
        assert!(e.reason.contains("nope.zip"), "{e}");
        let e = GtfsRtAdapter::from_spec(&spec(json!({"delay_minor": 5})), base)
            .err()
            .unwrap();
        assert_eq!(e.field, "mapping.delay_minor");
    }
}
