//! Tapes: recorded feed messages, one JSON object per line (NDJSON).
//!
//! A line holds the scenario time the message arrived (RFC 3339), the feed id, the payload
//! format, the topic it arrived on where the transport has topics (MQTT), and the body exactly
//! as it arrived: `body` for text, `body_base64` for binary. The full format is documented in
//! `fixtures/README.md`.
//!
//! A tape is read as bytes and judged line by line ([`parse_tape`]): a tape is a file someone
//! recorded, edited or copied, and one damaged line (a stray Latin-1 byte, a NUL, a truncated
//! character) must cost that line alone, with its number, rather than the whole replay.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// The payload formats a feed can speak.
///
/// The serde names are spelled out one by one because they are the names manifests and tapes
/// use, and some of them (`gtfs-rt`, `mqtt-json`) follow no case rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeedFormat {
    /// GeoJSON (RFC 7946): a Feature or a FeatureCollection.
    #[serde(rename = "geojson")]
    GeoJson,
    /// OASIS Common Alerting Protocol 1.2 (1.1 accepted): one alert, or an Atom/RSS index of
    /// alerts.
    #[serde(rename = "cap")]
    Cap,
    /// Cursor-on-Target XML events, one or several concatenated (a TCP stream chunk).
    #[serde(rename = "cot")]
    Cot,
    /// GTFS-Realtime 2.0: a protobuf `FeedMessage` of vehicle positions, trip updates or alerts.
    #[serde(rename = "gtfs-rt")]
    GtfsRt,
    /// OGC SensorThings API v1.1: a JSON `Observations` response with expanded datastreams.
    #[serde(rename = "sensorthings")]
    SensorThings,
    /// JSON telemetry objects published on MQTT topics.
    #[serde(rename = "mqtt-json")]
    MqttJson,
    /// Not a payload standard but a feed declaration: a drop folder whose files each take
    /// their format from their extension ([`FeedFormat::from_extension`]). It is valid only as
    /// the declared format of a feed (config and manifest); a message always carries the
    /// format it was resolved to, so a tape line or `cityops decode` never names it.
    #[serde(rename = "auto")]
    ByExtension,
}

impl FeedFormat {
    /// Every payload format a message can carry (so not `auto`, which only a feed declares).
    pub const ALL: [FeedFormat; 6] = [
        FeedFormat::GeoJson,
        FeedFormat::Cap,
        FeedFormat::Cot,
        FeedFormat::GtfsRt,
        FeedFormat::SensorThings,
        FeedFormat::MqttJson,
    ];

    /// The name used in manifests and tapes.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::GeoJson => "geojson",
            FeedFormat::Cap => "cap",
            FeedFormat::Cot => "cot",
            FeedFormat::GtfsRt => "gtfs-rt",
            FeedFormat::SensorThings => "sensorthings",
            FeedFormat::MqttJson => "mqtt-json",
            FeedFormat::ByExtension => "auto",
        }
    }

    /// The formats a drop folder declared `format = "auto"` reads, each with the file
    /// extensions (lower case, without the dot) that select it. SensorThings and MQTT JSON are
    /// not in it: their bodies are plain `.json` and would be indistinguishable from GeoJSON.
    pub const EXTENSIONS: [(FeedFormat, &'static [&'static str]); 4] = [
        (FeedFormat::GeoJson, &["geojson", "json"]),
        (FeedFormat::Cap, &["cap", "xml"]),
        (FeedFormat::Cot, &["cot"]),
        (FeedFormat::GtfsRt, &["pb", "pbf"]),
    ];

    /// The format a file's extension selects in an `auto` drop folder (case-insensitive), or
    /// `None` for an extension the table does not list.
    pub fn from_extension(ext: &str) -> Option<FeedFormat> {
        let ext = ext.to_ascii_lowercase();
        FeedFormat::EXTENSIONS
            .iter()
            .find(|(_, exts)| exts.contains(&ext.as_str()))
            .map(|(f, _)| *f)
    }
}

impl std::str::FromStr for FeedFormat {
    type Err = TapeLineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeedFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| TapeLineError::UnknownFormat(s.to_owned()))
    }
}

/// One message of a tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeMessage {
    /// The 1-based line number in the tape file; it is also the message's sequence number.
    pub line: u64,
    /// When the message arrived, in scenario time.
    pub time_ms: Millis,
    /// The feed that sent it.
    pub feed: String,
    /// How to decode the body.
    pub format: FeedFormat,
    /// The channel it arrived on within the feed, where the transport has one (an MQTT topic).
    pub topic: Option<String>,
    /// The body, byte for byte as it arrived.
    pub body: Vec<u8>,
}

/// Why one tape line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapeLineError {
    /// The line is not a JSON object with the expected fields.
    #[error("not a tape record: {0}")]
    Json(String),
    /// `time` is not an RFC 3339 timestamp.
    #[error("time {0:?} is not an RFC 3339 timestamp")]
    Time(String),
    /// `format` names no known format.
    #[error("unknown format {0:?} (known: geojson, cap, cot, gtfs-rt, sensorthings, mqtt-json)")]
    UnknownFormat(String),
    /// `feed` is empty.
    #[error("feed id is empty")]
    EmptyFeed,
    /// Neither or both of `body` and `body_base64` are present.
    #[error("exactly one of \"body\" and \"body_base64\" must be present")]
    Body,
    /// `body_base64` is not valid base64.
    #[error("body_base64 is not valid base64: {0}")]
    Base64(String),
    /// The line is not UTF-8, so it cannot be JSON text (RFC 8259 section 8.1).
    #[error(
        "not UTF-8: byte 0x{byte:02x} at column {column} (a tape is UTF-8 text; a binary body goes in body_base64)"
    )]
    NotUtf8 {
        /// The 1-based byte column of the first byte that is not UTF-8.
        column: usize,
        /// That byte.
        byte: u8,
    },
    /// The line holds a raw NUL byte, which JSON text cannot hold (inside a string it is
    /// written `\u0000`).
    #[error("NUL byte at column {0} (JSON text cannot hold one raw; inside a string it is written \\u0000)")]
    Nul(usize),
    /// The body is larger than the reader accepts of any message.
    #[error("body of {bytes} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The body's size.
        bytes: usize,
        /// The limit the reader was given.
        limit: usize,
    },
}

/// A refused tape line, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TapeIssue {
    /// The 1-based line number.
    pub line: u64,
    /// Why it was refused.
    pub reason: TapeLineError,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    time: String,
    feed: String,
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

/// Parses one line of a tape.
pub fn parse_line(line: u64, text: &str) -> Result<TapeMessage, TapeLineError> {
    let raw: RawLine = serde_json::from_str(text).map_err(|e| TapeLineError::Json(e.to_string()))?;
    let time_ms = chrono::DateTime::parse_from_rfc3339(&raw.time)
        .map_err(|_| TapeLineError::Time(raw.time.clone()))?
        .timestamp_millis();
    if raw.feed.trim().is_empty() {
        return Err(TapeLineError::EmptyFeed);
    }
    let format: FeedFormat = raw.format.parse()?;
    let body = match (raw.body, raw.body_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| TapeLineError::Base64(e.to_string()))?,
        _ => return Err(TapeLineError::Body),
    };
    Ok(TapeMessage {
        line,
        time_ms,
        feed: raw.feed,
        format,
        topic: raw.topic,
        body,
    })
}

/// Judges one line of a tape on its own, as the bytes between two newlines (without them): a
/// NUL byte, bytes that are not UTF-8, a malformed record or a body over `max_body_bytes`
/// refuse this line and nothing else. The bytes are checked before they are parsed so that the
/// reason says what is wrong with them rather than what a JSON parser tripped on.
pub fn parse_line_bytes(line: u64, bytes: &[u8], max_body_bytes: usize) -> Result<TapeMessage, TapeLineError> {
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(TapeLineError::Nul(at + 1));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        TapeLineError::NotUtf8 {
            column: at + 1,
            byte: bytes[at],
        }
    })?;
    let msg = parse_line(line, text)?;
    if msg.body.len() > max_body_bytes {
        return Err(TapeLineError::BodyTooLarge {
            bytes: msg.body.len(),
            limit: max_body_bytes,
        });
    }
    Ok(msg)
}

/// Parses a whole tape from its bytes. Lines end at `\n` (a `\r` before it is part of the
/// ending); blank lines are skipped; every bad line becomes a [`TapeIssue`] with its number
/// and the good lines around it are kept, whatever bytes the bad one holds. A body larger
/// than `max_body_bytes` is refused as its line is read, so it is never carried further.
pub fn parse_tape(bytes: &[u8], max_body_bytes: usize) -> (Vec<TapeMessage>, Vec<TapeIssue>) {
    let mut messages = Vec::new();
    let mut issues = Vec::new();
    // `split` yields one empty piece after a final newline, which is skipped as blank.
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line_bytes(line_no, line, max_body_bytes) {
            Ok(m) => messages.push(m),
            Err(reason) => issues.push(TapeIssue { line: line_no, reason }),
        }
    }
    (messages, issues)
}

/// The message a built-in feed gets from something made in the app (a trainer's inject, an
/// operator's call): one GeoJSON point feature with `properties`, stamped with `time` (the
/// scenario time `at_ms`, which is also its arrival), as line `n` of `feed`.
pub fn point_message(
    feed: String,
    n: u64,
    at_ms: Millis,
    entity: &str,
    at: crate::model::GeoPoint,
    mut properties: serde_json::Map<String, serde_json::Value>,
) -> TapeMessage {
    let time = chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    properties.insert("time".into(), serde_json::Value::String(time));
    let feature = serde_json::json!({
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "id": entity,
            "geometry": {"type": "Point", "coordinates": [at.lon, at.lat]},
            "properties": properties,
        }],
    });
    TapeMessage {
        line: n,
        time_ms: at_ms,
        feed,
        format: FeedFormat::GeoJson,
        topic: None,
        body: serde_json::to_vec(&feature).expect("a feature serializes"),
    }
}

/// Writes a message as one tape line (without the newline): text bodies stay text, anything
/// that is not UTF-8 is base64.
pub fn format_line(msg: &TapeMessage) -> String {
    let (time_ms, body) = (msg.time_ms, msg.body.as_slice());
    let time = chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (body, body_base64) = match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(body))),
    };
    let raw = RawLine {
        time,
        feed: msg.feed.clone(),
        format: msg.format.as_str().to_owned(),
        topic: msg.topic.clone(),
        body,
        body_base64,
    };
    serde_json::to_string(&raw).expect("a tape line always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_select_formats_and_auto_is_never_a_message_format() {
        assert_eq!(FeedFormat::from_extension("GeoJSON"), Some(FeedFormat::GeoJson));
        assert_eq!(FeedFormat::from_extension("xml"), Some(FeedFormat::Cap));
        assert_eq!(FeedFormat::from_extension("pbf"), Some(FeedFormat::GtfsRt));
        assert_eq!(FeedFormat::from_extension("cot"), Some(FeedFormat::Cot));
        assert_eq!(FeedFormat::from_extension("csv"), None);
        // A tape line naming "auto" is refused: every recorded message carries a real format.
        assert_eq!(
            "auto".parse::<FeedFormat>(),
            Err(TapeLineError::UnknownFormat("auto".into()))
        );
    }

    #[test]
    fn good_and_bad_lines() {
        let tape = concat!(
            r#"{"time":"2026-11-26T21:00:00Z","feed":"a","format":"geojson","body":"{}"}"#,
            "\n",
            "\n",
            "not json\n",
            r#"{"time":"yesterday","feed":"a","format":"geojson","body":"{}"}"#,
            "\n",
            r#"{"time":"2026-11-26T21:00:01+02:00","feed":"b","format":"geojson","body_base64":"AAE="}"#,
            "\n",
            r#"{"time":"2026-11-26T21:00:02Z","feed":"a","format":"kml","body":"{}"}"#,
            "\n",
            r#"{"time":"2026-11-26T21:00:02Z","feed":"a","format":"geojson"}"#,
            "\n",
            r#"{"time":"2026-11-26T21:00:02Z","feed":"","format":"geojson","body":""}"#,
            "\n",
            r#"{"time":"2026-11-26T21:00:02Z","feed":"a","format":"geojson","body":"","extra":1}"#,
            "\n",
        );
        let (messages, issues) = parse_tape(tape.as_bytes(), 1024);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].line, 1);
        assert_eq!(messages[0].body, b"{}");
        assert_eq!(messages[1].line, 5);
        assert_eq!(messages[1].body, vec![0u8, 1]);
        assert_eq!(messages[1].time_ms, messages[0].time_ms + 1000 - 2 * 3600 * 1000);
        let lines: Vec<u64> = issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![3, 4, 6, 7, 8, 9]);
        assert!(matches!(issues[0].reason, TapeLineError::Json(_)));
        assert!(matches!(issues[1].reason, TapeLineError::Time(_)));
        assert!(matches!(issues[2].reason, TapeLineError::UnknownFormat(_)));
        assert_eq!(issues[3].reason, TapeLineError::Body);
        assert_eq!(issues[4].reason, TapeLineError::EmptyFeed);
        assert!(issues[5].to_string().starts_with("line 9: not a tape record"));
    }

    #[test]
    fn each_line_is_judged_on_its_bytes_alone() {
        let good = |t: &str| {
            format!(r#"{{"time":"2026-11-26T21:00:0{t}Z","feed":"a","format":"geojson","body":"{{}}"}}"#).into_bytes()
        };
        let lines: Vec<Vec<u8>> = vec![
            good("0"),
            b"{\"time\":\"2026-11-26T21:00:01Z\",\"feed\":\"a\",\"format\":\"geojson\",\"body\":\"caf\xe9\"}".to_vec(),
            [good("2"), b"\r".to_vec()].concat(),
            b"{\"time\":\0\"2026-11-26T21:00:03Z\"}".to_vec(),
            // Cut inside a three-byte character: the reader names where the damage starts.
            b"{\"body\":\"\xe2\x82".to_vec(),
            br#"{"time":"2026-11-26T21:00:05Z","feed":"a","format":"geojson","body":"0123456789"}"#.to_vec(),
            br#"{"time":"2026-11-26T21:00:06Z","feed":"a","format":"geojson","body_base64":"MDEyMzQ1Njc4OQ=="}"#
                .to_vec(),
            br#"{"time":"2026-11-26T21:00:07Z","feed":"a","format":"geojson","body":"012345678"}"#.to_vec(),
            good("8"),
        ];
        let (messages, issues) = parse_tape(&lines.join(&b'\n'), 9);
        assert_eq!(messages.iter().map(|m| m.line).collect::<Vec<_>>(), vec![1, 3, 8, 9]);
        let refused: Vec<(u64, TapeLineError)> = issues.into_iter().map(|i| (i.line, i.reason)).collect();
        assert_eq!(
            refused,
            vec![
                (2, TapeLineError::NotUtf8 { column: 73, byte: 0xe9 }),
                (4, TapeLineError::Nul(9)),
                (5, TapeLineError::NotUtf8 { column: 10, byte: 0xe2 }),
                (6, TapeLineError::BodyTooLarge { bytes: 10, limit: 9 }),
                (7, TapeLineError::BodyTooLarge { bytes: 10, limit: 9 }),
            ]
        );
        assert_eq!(
            refused[0].1.to_string(),
            "not UTF-8: byte 0xe9 at column 73 (a tape is UTF-8 text; a binary body goes in body_base64)"
        );
        assert_eq!(refused[3].1.to_string(), "body of 10 bytes exceeds the 9-byte limit");
    }

    #[test]
    fn format_names_round_trip_through_from_str_and_serde() {
        for f in FeedFormat::ALL {
            assert_eq!(f.as_str().parse::<FeedFormat>().unwrap(), f);
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{}\"", f.as_str()));
            assert_eq!(
                serde_json::from_str::<FeedFormat>(&format!("\"{}\"", f.as_str())).unwrap(),
                f
            );
        }
        let known = FeedFormat::ALL.map(FeedFormat::as_str).join(", ");
        assert_eq!(
            TapeLineError::UnknownFormat("kml".into()).to_string(),
            format!("unknown format \"kml\" (known: {known})")
        );
    }

    #[test]
    fn format_then_parse_round_trips_text_and_binary() {
        for (body, topic) in [
            (b"{\"type\":\"Feature\"}".to_vec(), None),
            (vec![0xff, 0x00, 0x10], Some("grid/f1".to_owned())),
        ] {
            let msg = TapeMessage {
                line: 7,
                time_ms: 1_764_190_800_123,
                feed: "feed-1".into(),
                format: FeedFormat::GeoJson,
                topic,
                body,
            };
            assert_eq!(parse_line(7, &format_line(&msg)).unwrap(), msg);
        }
    }
}
