//! Feed adapters: each turns one received message, in one standard format, into normalized
//! observations. Live transports and tape replay call the same [`Adapter`], so a replayed tape
//! goes through exactly the code a live feed does.
//!
//! An adapter is built once per feed by [`adapter_for`] from the feed's spec (its mapping
//! choices and any reference data it names), then decodes every message of that feed. Adapters
//! may keep state between messages (CAP updates refer to earlier alerts), so `decode` takes
//! `&mut self`; they never do IO while decoding.
//!
//! This crate is the first step of the data path: bytes in, observations out. Decoding does no
//! IO and reads no clock (the arrival time comes in the [`MessageContext`]); only building an
//! adapter reads the reference data its spec names (a static GTFS zip). The fuzz targets
//! (`src-tauri/fuzz`) depend on it alone.
//!
//! # Layout
//! - this file: the [`Adapter`] trait, [`adapter_for`] (a feed's spec to its adapter),
//!   [`checked_decode`] (the limits every message passes), and stream framing for TCP.
//! - [`gtfs_rt`] and [`gtfs_static`]: GTFS-Realtime protobuf, and the static GTFS zip it refers
//!   to (stops, trips) for placing trip updates.
//! - [`cap`] and [`cot`]: CAP 1.1/1.2 alerts and Cursor-on-Target events, over [`xml`], a
//!   small pull reader's shared helpers.
//! - [`sensorthings`], [`mqtt_json`], [`geojson`]: OGC SensorThings responses, MQTT JSON
//!   telemetry, GeoJSON features; [`mapping`] is the field mapping they share.

pub mod cap;
pub mod cot;
pub mod geojson;
pub mod gtfs_rt;
pub mod gtfs_static;
pub mod mapping;
pub mod mqtt_json;
pub mod sensorthings;
pub mod xml;

use std::path::Path;

use cityops_core::model::{Layer, Millis, Observation};
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;

/// The largest message body accepted; anything bigger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where a message came from, which every observation it yields carries.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The feed id.
    pub feed: &'a str,
    /// The layer the feed's observations belong to.
    pub layer: Layer,
    /// The message's sequence number in the run.
    pub seq: u64,
    /// When it arrived: the wall clock for a live message, the tape line's time on replay and
    /// in a recording, `--received` or the payload's own time for `cityops decode`. Every
    /// plausibility check (the timestamp window, CoT staleness) is judged against this and
    /// never against the clock of the machine decoding, so an archive from any year decodes
    /// as it did when it arrived.
    pub received_ms: Millis,
    /// The topic it arrived on, for transports that have topics (MQTT).
    pub topic: Option<&'a str>,
}

/// One part of a message that was refused while its neighbours were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where in the message, for example `features[3].properties.kind`.
    pub place: String,
    /// Why.
    pub reason: String,
}

/// What a message yielded.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The observations accepted.
    pub observations: Vec<Observation>,
    /// The parts refused.
    pub rejected: Vec<Rejected>,
}

/// A message that could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct DecodeError {
    /// Where in the message (`$` for the whole of it).
    pub place: String,
    /// Why.
    pub reason: String,
}

/// Why a piece of input is refused, in words for the quarantine. The adapters' helpers return
/// it, and their callers put its text into a [`Rejected`] or [`DecodeError`] reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Refusal {
        Refusal(reason.to_owned())
    }
}

/// A feed whose adapter cannot be built from its spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("feed {feed:?}: {field}: {reason}")]
pub struct AdapterConfigError {
    /// The feed id.
    pub feed: String,
    /// The field of the feed's spec at fault, for example `mapping.thresholds[0].above`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Decodes the messages of one feed.
pub trait Adapter: Send {
    /// Decodes one message body. Whatever the body holds, this returns: a message that cannot
    /// be read at all is an error, a bad part of a readable message is a [`Rejected`] entry.
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError>;
}

/// Builds the adapter for a feed. `base_dir` resolves relative paths in its mapping (reference
/// data such as a GTFS static zip).
pub fn adapter_for(spec: &FeedSpec, base_dir: &Path) -> Result<Box<dyn Adapter>, AdapterConfigError> {
    match spec.format {
        FeedFormat::GeoJson => Ok(Box::new(geojson::GeoJsonAdapter)),
        FeedFormat::Cap => Ok(Box::new(cap::CapAdapter::from_mapping(&spec.id, &spec.mapping)?)),
        FeedFormat::Cot => Ok(Box::new(cot::CotAdapter::from_mapping(&spec.id, &spec.mapping)?)),
        FeedFormat::GtfsRt => Ok(Box::new(gtfs_rt::GtfsRtAdapter::from_spec(spec, base_dir)?)),
        FeedFormat::SensorThings => Ok(Box::new(sensorthings::SensorThingsAdapter::from_spec(spec)?)),
        FeedFormat::MqttJson => Ok(Box::new(mqtt_json::MqttJsonAdapter::from_spec(spec)?)),
        FeedFormat::ByExtension => Err(AdapterConfigError {
            feed: spec.id.clone(),
            field: "format".into(),
            reason: "\"auto\" has no adapter of its own; each message is decoded by the format its file extension selects (adapters_for)".into(),
        }),
    }
}

/// A feed's adapters, each with the message format it decodes.
pub type FeedAdapters = Vec<(FeedFormat, Box<dyn Adapter>)>;

/// The adapters of a feed, one per format its messages may carry: the declared format's alone,
/// or for `format = "auto"` one per format of [`FeedFormat::EXTENSIONS`]. An `auto` feed's
/// mapping is a table per format name (`[feeds.mapping.cap]`), because each adapter reads its
/// own keys and refuses the others'.
pub fn adapters_for(spec: &FeedSpec, base_dir: &Path) -> Result<FeedAdapters, AdapterConfigError> {
    if spec.format != FeedFormat::ByExtension {
        return Ok(vec![(spec.format, adapter_for(spec, base_dir)?)]);
    }
    let err = |field: String, reason: String| AdapterConfigError {
        feed: spec.id.clone(),
        field,
        reason,
    };
    let tables = match &spec.mapping {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(m) => m.clone(),
        _ => {
            return Err(err(
                "mapping".into(),
                "expected a table of per-format tables (for example [feeds.mapping.cap])".into(),
            ))
        }
    };
    let known: Vec<&str> = FeedFormat::EXTENSIONS.iter().map(|(f, _)| f.as_str()).collect();
    if let Some(unknown) = tables.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(err(
            format!("mapping.{unknown}"),
            format!(
                "format = \"auto\" takes one mapping table per format it reads ({})",
                known.join(", ")
            ),
        ));
    }
    let mut out = Vec::new();
    for (format, _) in FeedFormat::EXTENSIONS {
        let one = FeedSpec {
            format,
            mapping: tables.get(format.as_str()).cloned().unwrap_or_default(),
            ..spec.clone()
        };
        // Name the per-format table in errors, so the operator finds the key in the file.
        let adapter = adapter_for(&one, base_dir).map_err(|e| {
            err(
                e.field.replacen("mapping", &format!("mapping.{}", format.as_str()), 1),
                e.reason,
            )
        })?;
        out.push((format, adapter));
    }
    Ok(out)
}

/// How a stream transport (TCP) cuts a format's messages apart: a function that takes the
/// complete messages off the front of the buffer and leaves a partial one in it.
pub fn stream_framing(format: FeedFormat) -> fn(&mut Vec<u8>) -> Vec<Vec<u8>> {
    match format {
        // A GeoJSON stream carries one document per line.
        FeedFormat::GeoJson => split_lines,
        // A TAK server streams CoT events back to back; the splitter finds event boundaries.
        FeedFormat::Cot => cot::split_stream,
        // Text formats that are not normally streamed over TCP are taken one document per line;
        // binary GTFS-RT has no line structure, so it is not offered over TCP at all and each
        // chunk goes to the adapter, which refuses what it cannot read.
        FeedFormat::Cap | FeedFormat::SensorThings | FeedFormat::MqttJson => split_lines,
        // The configuration allows "auto" only on drop folders; were it streamed, lines are the
        // least surprising cut.
        FeedFormat::ByExtension => split_lines,
        FeedFormat::GtfsRt => take_all,
    }
}

/// Cuts complete messages off the front of a stream buffer, leaving a partial one in place.
/// Messages are separated by newlines unless the format defines its own framing.
pub fn split_lines(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=pos).collect();
        let line = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push(line);
        }
    }
    out
}

/// Hands over everything buffered as one message.
fn take_all(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    if buf.is_empty() {
        Vec::new()
    } else {
        vec![std::mem::take(buf)]
    }
}

/// The time a payload says it was produced, for the formats that carry one in a header:
/// GTFS-Realtime `header.timestamp`, CAP `sent` (of its first alert), CoT `time` (of its first
/// event). `cityops decode` takes it for the arrival time of a payload given without one.
/// GeoJSON, SensorThings and MQTT JSON have no message-level time, and a body over
/// [`MAX_BODY_BYTES`] is not read.
pub fn header_time(format: FeedFormat, body: &[u8]) -> Option<Millis> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    match format {
        FeedFormat::GtfsRt => gtfs_rt::header_time(body),
        FeedFormat::Cap => cap::header_time(body),
        FeedFormat::Cot => cot::header_time(body),
        FeedFormat::GeoJson | FeedFormat::SensorThings | FeedFormat::MqttJson | FeedFormat::ByExtension => None,
    }
}

/// Decodes one body with a fresh adapter for `spec`, as `cityops decode` does.
pub fn decode_once(
    spec: &FeedSpec,
    base_dir: &Path,
    ctx: MessageContext<'_>,
    body: &[u8],
) -> Result<Decoded, DecodeError> {
    let mut adapter = adapter_for(spec, base_dir).map_err(|e| DecodeError {
        place: "$".into(),
        reason: e.to_string(),
    })?;
    checked_decode(adapter.as_mut(), ctx, body)
}

/// Applies the size limit every adapter shares, then decodes.
pub fn checked_decode(adapter: &mut dyn Adapter, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError {
            place: "$".into(),
            reason: format!(
                "message of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
                body.len()
            ),
        });
    }
    adapter.decode(ctx, body)
}

/// Random damage to a body for the adapters' never-panic property tests: each edit, at an
/// index chosen by proptest, overwrites a byte (op 0), inserts one (op 1) or cuts the body
/// there (any other op).
#[cfg(test)]
pub(crate) fn mutate(body: &mut Vec<u8>, edits: Vec<(proptest::sample::Index, u8, u8)>) {
    for (at, byte, op) in edits {
        let i = at.index(body.len().max(1));
        let len = body.len();
        match op {
            0 if len > 0 => body[i.min(len - 1)] = byte,
            1 => body.insert(i.min(len), byte),
            _ => body.truncate(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::Layer;

    #[test]
    fn lines_are_cut_and_partial_ones_kept() {
        let mut buf = b"one\n\ntwo\nthr".to_vec();
        assert_eq!(split_lines(&mut buf), vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(buf, b"thr");
        buf.extend_from_slice(b"ee\n");
        assert_eq!(split_lines(&mut buf), vec![b"three".to_vec()]);
        assert!(buf.is_empty());
    }

    fn spec(format: FeedFormat, mapping: serde_json::Value) -> FeedSpec {
        FeedSpec {
            id: "inbox".into(),
            layer: Layer::Alerts,
            format,
            name: String::new(),
            mapping,
        }
    }

    #[test]
    fn header_time_is_the_payloads_own_time_where_the_format_has_one() {
        use prost::Message as _;
        let ms = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis();
        let header = gtfs_realtime::FeedHeader {
            gtfs_realtime_version: "2.0".into(),
            timestamp: Some(1_761_519_032),
            ..Default::default()
        };
        let gtfs = gtfs_realtime::FeedMessage {
            header,
            entity: Vec::new(),
        }
        .encode_to_vec();
        assert_eq!(header_time(FeedFormat::GtfsRt, &gtfs), Some(1_761_519_032_000));
        let untimed = gtfs_realtime::FeedMessage {
            header: gtfs_realtime::FeedHeader {
                gtfs_realtime_version: "2.0".into(),
                ..Default::default()
            },
            entity: Vec::new(),
        };
        assert_eq!(header_time(FeedFormat::GtfsRt, &untimed.encode_to_vec()), None);
        assert_eq!(header_time(FeedFormat::GtfsRt, b"\xff\xff not protobuf"), None);

        let alert = |sent: &str| {
            format!(
                r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>X1</identifier><sender>s@example.org</sender>{sent}<status>Actual</status><msgType>Alert</msgType><scope>Public</scope></alert>"#
            )
        };
        assert_eq!(
            header_time(
                FeedFormat::Cap,
                alert("<sent>2024-01-01T02:00:00+02:00</sent>").as_bytes()
            ),
            Some(ms("2024-01-01T00:00:00Z"))
        );
        assert_eq!(header_time(FeedFormat::Cap, alert("").as_bytes()), None);

        // Junk before the event is passed over; the first event with a time gives it.
        let cot = r#"garbage<event version="2.0" uid="J-1" type="a-h-A" time="2005-04-05T11:43:38.07Z" start="2005-04-05T11:43:38.07Z" stale="2005-04-05T11:45:38.07Z" how="m-i"><point lat="30" lon="-85" ce="1" hae="1" le="1"/></event>"#;
        assert_eq!(
            header_time(FeedFormat::Cot, cot.as_bytes()),
            Some(ms("2005-04-05T11:43:38.070Z"))
        );

        // Formats without a message-level time leave the arrival to the caller.
        assert_eq!(
            header_time(
                FeedFormat::GeoJson,
                br#"{"type":"Feature","properties":{"time":"2024-01-01T00:00:00Z"}}"#
            ),
            None
        );
    }

    #[test]
    fn an_auto_feed_has_one_adapter_per_extension_format_with_its_own_mapping() {
        let base = Path::new(".");
        let formats: Vec<FeedFormat> = adapters_for(&spec(FeedFormat::ByExtension, serde_json::Value::Null), base)
            .unwrap()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            formats,
            [
                FeedFormat::GeoJson,
                FeedFormat::Cap,
                FeedFormat::Cot,
                FeedFormat::GtfsRt
            ]
        );
        let declared: Vec<FeedFormat> = adapters_for(&spec(FeedFormat::Cot, serde_json::Value::Null), base)
            .unwrap()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(declared, [FeedFormat::Cot]);
        assert!(adapters_for(
            &spec(
                FeedFormat::ByExtension,
                serde_json::json!({"cap": {"fallback_position": [24.9, 60.1]}})
            ),
            base
        )
        .is_ok());

        // Errors name the per-format table, so the operator finds the key in the file.
        let e = adapters_for(
            &spec(
                FeedFormat::ByExtension,
                serde_json::json!({"fallback_position": [24.9, 60.1]}),
            ),
            base,
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "mapping.fallback_position");
        assert!(e.reason.contains("geojson, cap, cot, gtfs-rt"), "{e}");
        let e = adapters_for(
            &spec(
                FeedFormat::ByExtension,
                serde_json::json!({"gtfs-rt": {"gtfs_static": "nope.zip"}}),
            ),
            base,
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "mapping.gtfs-rt.gtfs_static");
        assert!(adapter_for(&spec(FeedFormat::ByExtension, serde_json::Value::Null), base).is_err());
    }
}
