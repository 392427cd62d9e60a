//! Cursor-on-Target (CoT) XML events from a TAK server: field units, alarms, markers.
//!
//! A CoT event is `<event version uid type time start stale how><point lat lon hae ce le/>
//! <detail>...</detail></event>` (the MITRE CoT base event schema). A body holds one event or
//! several concatenated (a chunk of the TCP stream, each event possibly preceded by its own
//! `<?xml ...?>` declaration); each event is decoded on its own and a bad one is refused
//! without its neighbours. [`split_stream`] cuts a growing TCP buffer into such bodies.
//!
//! # Mapping
//! | CoT | observation |
//! |---|---|
//! | `uid` | entity `cot:{uid}` |
//! | `time` | observed time |
//! | `point/@lat`, `@lon` | position (required, in range) |
//! | `detail/contact/@callsign` | title (the `uid` when there is none) |
//! | `type` | kind and severity, below |
//!
//! | `type` | kind | severity |
//! |---|---|---|
//! | `a-f-*`, `a-a-*` (friend, assumed friend) | `unit.friendly` | normal |
//! | `a-n-*` (neutral) | `unit.neutral` | normal |
//! | `a-h-*`, `a-s-*`, `a-j-*`, `a-k-*` (hostile, suspect, joker, faker) | `unit.hostile` | moderate |
//! | `a-u-*`, `a-p-*`, `a-o-*`, other atoms (unknown, pending, none) | `unit.unknown` | minor |
//! | `b-a-o-can` (alarm cancelled) | `alarm.cancelled` | normal |
//! | other `b-a-*` (alarms: 911, in contact, geofence breach) | `alarm` | severe |
//! | `b-r-f-h-c` (casualty evacuation request) | `report.casevac` | severe |
//! | `b-m-p-*` (points: spot, waypoint, checkpoint) | `marker` | normal |
//! | `b-m-r*` (route) | `route` | normal |
//! | `b-t-f*` (GeoChat message) | `chat` | normal |
//! | other `b-*` (bits: images, files, reports) | `bits` | minor |
//! | `u-*` (drawings, range and bearing) | `drawing` | normal |
//! | `t-*` (taskings) | `tasking` | minor |
//! | `y-*` (replies) | `reply` | normal |
//! | `c-*` (capabilities) | `capability` | normal |
//! | anything else | `cot.other` | minor |
//!
//! For atoms (`a-*`) the battle dimension is kept as `dimension` (`space`, `air`, `ground`,
//! `sea`, `subsurface`, `sof`, `other`).
//!
//! **Stale events.** An event whose `stale` time is at or before its arrival is still recorded,
//! because the operator may want to know a unit reported late, but with `stale: true` and
//! severity `normal`, so an old alarm does not light up the map. Every observation carries
//! `stale` (a boolean) and `stale_time` (the text of `stale`).
//!
//! Fields: `uid`, `type`, `how`, `version`, `time`, `start`, `stale_time`, `stale`, `access`,
//! `qos`, `opex` (when present), `hae`, `ce`, `le` (numbers; CoT writes 9999999 for unknown),
//! `callsign`, `remarks`, `dimension`, and every other element and attribute under `detail`
//! flattened to `detail.path.attribute` and `detail.path` (text) fields with string values, for
//! example `detail.__group.name`, `detail.track.course`, `detail.link.uid`; a repeated name gets
//! `[2]`, `[3]`... appended in document order. `detail_truncated: true` says the limits below
//! cut something (or dropped a name that numbering would have repeated, which only a name with
//! brackets in it, never a real element, can cause).
//!
//! # Refused input and limits
//! Whole-body XML rules (UTF-8, no DTD, [`super::xml::MAX_DEPTH`]) are in [`super::xml`], applied
//! per event. An event is refused when it is larger than [`MAX_EVENT_BYTES`], is not an `event`,
//! lacks `uid`, `type`, `time`, `stale` or a `point` with `lat` and `lon`, has times that are not
//! xs:dateTime (an offset is optional; without one UTC is meant), `stale` before `start`,
//! coordinates out of range or not numbers, or a `uid` longer than [`MAX_UID_BYTES`] bytes.
//! Bytes between events that are not an event are refused as one piece (TAK protocol version 1,
//! the protobuf framing starting with byte 0xBF, is named as such: the feed must send XML).
//! `remarks` keeps [`REMARKS_BYTES`], `detail` at most [`MAX_DETAIL_FIELDS`] fields of
//! [`DETAIL_VALUE_BYTES`] each and [`DETAIL_BYTES`] in all (names counted without the `detail.`
//! prefix and before numbering). [`split_stream`] buffers at most
//! [`MAX_STREAM_BUFFER`] bytes of an incomplete event.

use std::borrow::Cow;
use std::ops::Range;

use cityops_core::fields::FieldName;
use cityops_core::model::{GeoPoint, Millis, Observation, Severity};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde_json::Value;

use super::xml::{self, Bounded};
use super::{Adapter, AdapterConfigError, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// The largest single event. Real events are a few kilobytes; some clients attach small images.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The most bytes [`split_stream`] keeps waiting for an event to complete; past it, the
/// incomplete event is handed on (cut to this size) as a body that decoding refuses, and the
/// buffer starts afresh. A peer cannot make the reader hold more.
pub const MAX_STREAM_BUFFER: usize = MAX_EVENT_BYTES;
/// The most fields kept from `detail`.
pub const MAX_DETAIL_FIELDS: usize = 128;
/// Bytes kept of one `detail` value.
pub const DETAIL_VALUE_BYTES: usize = 1024;
/// Bytes kept of all `detail` keys and values together.
pub const DETAIL_BYTES: usize = 16 * 1024;
/// Bytes kept of `remarks`.
pub const REMARKS_BYTES: usize = 4 * 1024;
/// The longest `uid` accepted.
pub const MAX_UID_BYTES: usize = 512;

/// The CoT adapter; it keeps no state between messages.
#[derive(Debug, Default)]
pub struct CotAdapter;

impl CotAdapter {
    /// CoT has no mapping choices: `mapping` must be absent or an empty table.
    pub fn from_mapping(feed: &str, mapping: &Value) -> Result<CotAdapter, AdapterConfigError> {
        match mapping {
            Value::Null => Ok(CotAdapter),
            Value::Object(t) if t.is_empty() => Ok(CotAdapter),
            Value::Object(t) => Err(AdapterConfigError {
                feed: feed.into(),
                field: format!("mapping.{}", t.keys().next().map_or("", |k| k.as_str())),
                reason: "unknown key: CoT has no mapping choices".into(),
            }),
            _ => Err(AdapterConfigError {
                feed: feed.into(),
                field: "mapping".into(),
                reason: "must be a table".into(),
            }),
        }
    }
}

impl Adapter for CotAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        decode(ctx, body)
    }
}

/// Decodes a body of one or more concatenated CoT events.
pub fn decode(ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    decode_single(ctx, body).unwrap_or_else(|| decode_pieces(ctx, body))
}

/// The `time` of the first event in `body` that has a readable one (when the event was
/// generated): what `cityops decode` takes for the arrival of a body given without one, so an
/// archived event's staleness is judged as it was received rather than against today.
pub fn header_time(body: &[u8]) -> Option<Millis> {
    scan(body, true).0.into_iter().find_map(|seg| match seg {
        Seg::Event(r) => parse_event(&body[r])
            .ok()
            .and_then(|ev| text(&ev.event.time).and_then(cot_time)),
        Seg::Partial(_) | Seg::Junk(_) => None,
    })
}

/// Decodes a body cut into pieces by [`scan`]: events, truncated events and junk.
fn decode_pieces(ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    let (segments, _) = scan(body, true);
    if segments.is_empty() {
        return Err(DecodeError {
            place: "$".into(),
            reason: "empty body: no CoT event".into(),
        });
    }
    let single = segments.len() == 1;
    let mut out = Decoded::default();
    for (k, seg) in segments.into_iter().enumerate() {
        let (range, result) = match seg {
            Seg::Event(r) => {
                let result = parse_event(&body[r.clone()]).and_then(|ev| observe(ctx, ev, out.observations.len()));
                (r, result)
            }
            Seg::Partial(r) => {
                let reason = format!(
                    "truncated event: no closing </event> in {} bytes (the stream ended, or the event outgrew the {MAX_STREAM_BUFFER}-byte stream buffer)",
                    r.len()
                );
                (r, Err(Refusal(reason)))
            }
            Seg::Junk(r) => {
                let reason = junk_reason(&body[r.clone()]);
                (r, Err(Refusal(reason)))
            }
        };
        match result {
            Ok(o) => out.observations.push(o),
            Err(Refusal(reason)) => {
                let place = if single {
                    format!("event (bytes {}..{})", range.start, range.end)
                } else {
                    format!("event[{k}] (bytes {}..{})", range.start, range.end)
                };
                if single {
                    return Err(DecodeError { place, reason });
                }
                out.rejected.push(Rejected { place, reason });
            }
        }
    }
    Ok(out)
}

/// The usual body, one event (with a declaration or comments before it) between whitespace,
/// decoded without cutting it into pieces first: `None` unless it parsed as exactly the one
/// piece [`scan`] would have cut, so [`decode`] then gives the same answer either way (and
/// every refused body goes the long way, for the long way's error places).
fn decode_single(ctx: MessageContext<'_>, body: &[u8]) -> Option<Result<Decoded, DecodeError>> {
    let start = body.iter().position(|b| !is_ws(*b))?;
    let end = body.iter().rposition(|b| !is_ws(*b))? + 1;
    let piece = &body[start..end];
    if piece.first() != Some(&b'<') {
        return None;
    }
    let ev = parse_event(piece).ok()?;
    // `scan` cuts an event where its `<event` element ends and knows no other root name.
    if ev.root_end != piece.len() || !ev.root_is_event_tag {
        return None;
    }
    Some(match observe(ctx, ev, 0) {
        Ok(o) => Ok(Decoded {
            observations: vec![o],
            rejected: Vec::new(),
        }),
        Err(Refusal(reason)) => Err(DecodeError {
            place: format!("event (bytes {start}..{end})"),
            reason,
        }),
    })
}

/// Takes every complete event (with the declaration or comments before it) out of the front of
/// a growing TCP buffer and returns them in order, leaving an incomplete trailing event in
/// `buf`. Bytes between events that cannot start an event are returned as a piece of their own,
/// once the next event begins (so decoding refuses them with a reason, and a recording keeps
/// them); whitespace between events is dropped. The pieces do not depend on how the stream was
/// cut into reads.
///
/// When what remains exceeds [`MAX_STREAM_BUFFER`] (an event that never ends, or endless
/// garbage), its first [`MAX_STREAM_BUFFER`] bytes are returned as a piece that decoding refuses
/// as truncated or not an event, and reading resumes after them, resynchronising at the next
/// `<event`. Each call rescans the incomplete tail, which the buffer limit keeps cheap.
pub fn split_stream(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (segments, tail) = scan(buf, false);
        out.extend(segments.into_iter().map(|s| match s {
            Seg::Event(r) | Seg::Junk(r) | Seg::Partial(r) => buf[r].to_vec(),
        }));
        buf.drain(..tail);
        if buf.len() <= MAX_STREAM_BUFFER {
            return out;
        }
        out.push(buf.drain(..MAX_STREAM_BUFFER).collect());
    }
}

/// Runs only the XML tokenizer over the whole body (several events in a row included) and
/// counts the `event` elements, reading no attribute: the lower bound the decode benchmark
/// prints beside [`super::xml::bare_parse`].
pub fn tokenize(body: &[u8]) -> Result<usize, DecodeError> {
    let mut reader = Reader::from_reader(body);
    let mut count = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => count += usize::from(e.local_name().into_inner() == "event"),
            Ok(Event::Eof) => return Ok(count),
            Ok(_) => {}
            Err(e) => {
                return Err(DecodeError {
                    place: format!("byte {}", reader.error_position()),
                    reason: format!("malformed XML: {e}"),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting a byte stream into events, without parsing them.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// A complete event, with the declaration and comments before it.
    Event(Range<usize>),
    /// An event without its end, at the end of the input.
    Partial(Range<usize>),
    /// Bytes that cannot start an event.
    Junk(Range<usize>),
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Where `needle` (a short markup terminator such as `?>`) next occurs at or after `from`.
fn find(buf: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut at = from;
    loop {
        at += memchr::memchr(needle[0], buf.get(at..)?)?;
        if buf[at..].starts_with(needle) {
            return Some(at);
        }
        at += 1;
    }
}

/// Whether `rest` starts with an `<event` tag; `None` when too few bytes arrived to tell.
fn event_tag(rest: &[u8]) -> Option<bool> {
    const TAG: &[u8] = b"<event";
    if rest.len() <= TAG.len() {
        return if TAG.starts_with(rest) { None } else { Some(false) };
    }
    Some(rest.starts_with(TAG) && (is_ws(rest[TAG.len()]) || matches!(rest[TAG.len()], b'>' | b'/')))
}

/// The end (exclusive) of the markup at `i` that is not an element: a comment, CDATA, a
/// processing instruction or declaration, or a DOCTYPE (with its internal subset).
fn markup_end(buf: &[u8], i: usize) -> Option<usize> {
    let rest = &buf[i..];
    if rest.starts_with(b"<!--") {
        return find(buf, i + 4, b"-->").map(|e| e + 3);
    }
    if rest.starts_with(b"<![CDATA[") {
        return find(buf, i + 9, b"]]>").map(|e| e + 3);
    }
    if rest.starts_with(b"<?") {
        return find(buf, i + 2, b"?>").map(|e| e + 2);
    }
    // `<!DOCTYPE ... [ ... ]>`: a `>` inside the brackets or quotes does not end it.
    let (mut brackets, mut quote) = (0usize, None);
    for (k, &b) in rest.iter().enumerate().skip(2) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'[') => brackets += 1,
            (None, b']') => brackets = brackets.saturating_sub(1),
            (None, b'>') if brackets == 0 => return Some(i + k + 1),
            _ => {}
        }
    }
    None
}

/// The end (exclusive) of the tag starting at `i`, honouring quoted attribute values (which may
/// hold `>`).
fn tag_end(buf: &[u8], i: usize) -> Option<usize> {
    let mut k = i + 1;
    loop {
        k += memchr::memchr3(b'>', b'"', b'\'', buf.get(k..)?)?;
        match buf[k] {
            b'>' => return Some(k + 1),
            quote => k += 1 + memchr::memchr(quote, buf.get(k + 1..)?)? + 1,
        }
    }
}

/// The end (exclusive) of the element starting at `start`, counting nested elements.
fn element_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        i += memchr::memchr(b'<', buf.get(i..)?)?;
        let rest = &buf[i..];
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = markup_end(buf, i)?;
        } else if rest.starts_with(b"</") {
            i = tag_end(buf, i)?;
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(i);
            }
        } else {
            let end = tag_end(buf, i)?;
            let self_closing = buf[end - 2] == b'/';
            i = end;
            if !self_closing {
                depth += 1;
            } else if depth == 0 {
                return Some(i);
            }
        }
    }
}

/// Cuts `buf` into events and junk. `at_end` says no more bytes will come: an incomplete event
/// is then a [`Seg::Partial`] rather than left for later. Returns the pieces and where the
/// unconsumed tail starts.
fn scan(buf: &[u8], at_end: bool) -> (Vec<Seg>, usize) {
    let n = buf.len();
    let mut segs = Vec::new();
    let mut i = 0usize;
    // Where the declaration or comments before the next event began.
    let mut prolog: Option<usize> = None;
    loop {
        while i < n && is_ws(buf[i]) {
            i += 1;
        }
        if i == n {
            return match (prolog, at_end) {
                (Some(p), true) => {
                    segs.push(Seg::Junk(p..n));
                    (segs, n)
                }
                (Some(p), false) => (segs, p),
                (None, _) => (segs, n),
            };
        }
        let rest = &buf[i..];
        match event_tag(rest) {
            Some(true) => {
                let start = prolog.take().unwrap_or(i);
                match element_end(buf, i) {
                    Some(end) => {
                        segs.push(Seg::Event(start..end));
                        i = end;
                        continue;
                    }
                    None if at_end => {
                        segs.push(Seg::Partial(start..n));
                        return (segs, n);
                    }
                    None => return (segs, start),
                }
            }
            None if !at_end => return (segs, prolog.unwrap_or(i)),
            _ => {}
        }
        if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            match markup_end(buf, i) {
                Some(end) => {
                    prolog.get_or_insert(i);
                    i = end;
                    continue;
                }
                None if !at_end => return (segs, prolog.unwrap_or(i)),
                None => {}
            }
        }
        // Junk: up to the next place an event or a declaration could start.
        let start = prolog.take().unwrap_or(i);
        let mut end = n;
        let mut k = i + 1;
        while let Some(p) = buf.get(k..).and_then(|r| memchr::memchr(b'<', r)) {
            let at = k + p;
            let tail = &buf[at..];
            if tail.starts_with(b"<?xml") || event_tag(tail) != Some(false) {
                end = at;
                break;
            }
            k = at + 1;
        }
        if end == n && !at_end {
            // More garbage may follow: hand it on only once it is over, in one piece.
            return (segs, start);
        }
        segs.push(Seg::Junk(start..end));
        i = end;
    }
}

fn junk_reason(bytes: &[u8]) -> String {
    if bytes.first() == Some(&0xBF) {
        return "TAK protocol version 1 (protobuf, starting with byte 0xBF) is not supported: the feed must send CoT XML".into();
    }
    format!("not a CoT event: {}", xml::excerpt(bytes))
}

// ---------------------------------------------------------------------------------------------
// Parsing one event.

/// One event as read: attribute values and names borrow from the event's text.
#[derive(Debug, Default)]
struct RawEvent<'a> {
    event: EventAttrs<'a>,
    point: Option<PointAttrs<'a>>,
    callsign: Option<Cow<'a, str>>,
    remarks: Option<Bounded>,
    /// Flattened `detail` fields, their names with the [`DETAIL_PREFIX`], in document order
    /// and not yet numbered (see [`sort_detail`]).
    detail: Vec<(String, Value)>,
    /// Bytes of `detail` names (without the prefix) and values, for [`DETAIL_BYTES`].
    detail_bytes: usize,
    detail_truncated: bool,
    /// Where the root element ended, in bytes.
    root_end: usize,
    /// Whether the root's tag is literally `<event` (no prefix), as [`scan`] finds events.
    root_is_event_tag: bool,
}

/// Puts `value` in `slot` unless an attribute of the same name came first (the first of a name
/// wins, as a search by name would find it).
fn first<'a>(slot: &mut Option<Cow<'a, str>>, value: Cow<'a, str>) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// The text of an attribute slot, trimmed.
fn text<'s>(slot: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
    slot.as_deref().map(str::trim)
}

/// The attributes of `<event>` the adapter reads, put in their slots as the tag is read.
#[derive(Debug, Default)]
struct EventAttrs<'a> {
    uid: Option<Cow<'a, str>>,
    cot_type: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    start: Option<Cow<'a, str>>,
    stale: Option<Cow<'a, str>>,
    access: Option<Cow<'a, str>>,
    how: Option<Cow<'a, str>>,
    opex: Option<Cow<'a, str>>,
    qos: Option<Cow<'a, str>>,
    version: Option<Cow<'a, str>>,
}

impl<'a> EventAttrs<'a> {
    fn set(&mut self, name: &str, value: Cow<'a, str>) {
        let slot = match name {
            "uid" => &mut self.uid,
            "type" => &mut self.cot_type,
            "time" => &mut self.time,
            "start" => &mut self.start,
            "stale" => &mut self.stale,
            "access" => &mut self.access,
            "how" => &mut self.how,
            "opex" => &mut self.opex,
            "qos" => &mut self.qos,
            "version" => &mut self.version,
            _ => return,
        };
        first(slot, value);
    }
}

/// The attributes of `<point>` the adapter reads.
#[derive(Debug, Default)]
struct PointAttrs<'a> {
    lat: Option<Cow<'a, str>>,
    lon: Option<Cow<'a, str>>,
    hae: Option<Cow<'a, str>>,
    ce: Option<Cow<'a, str>>,
    le: Option<Cow<'a, str>>,
}

impl<'a> PointAttrs<'a> {
    fn set(&mut self, name: &str, value: Cow<'a, str>) {
        let slot = match name {
            "lat" => &mut self.lat,
            "lon" => &mut self.lon,
            "hae" => &mut self.hae,
            "ce" => &mut self.ce,
            "le" => &mut self.le,
            _ => return,
        };
        first(slot, value);
    }
}

/// What every flattened `detail` field's name starts with.
const DETAIL_PREFIX: &str = "detail.";

impl RawEvent<'_> {
    /// Adds one flattened `detail` value within the limits: under the name `detail.path`, or
    /// `detail.path.attr` for an attribute. The name is built only when it is kept.
    fn put_detail(&mut self, path: &str, attr: Option<&str>, value: &str) {
        let value = value.trim();
        if value.is_empty() && attr.is_none() && !path.contains('.') {
            return;
        }
        let key_len = path.len() + attr.map_or(0, |a| a.len() + 1);
        if self.detail.len() >= MAX_DETAIL_FIELDS
            || self.detail_bytes + key_len + value.len().min(DETAIL_VALUE_BYTES) > DETAIL_BYTES
        {
            self.detail_truncated = true;
            return;
        }
        let mut key = String::with_capacity(DETAIL_PREFIX.len() + key_len);
        key.push_str(DETAIL_PREFIX);
        key.push_str(path);
        if let Some(a) = attr {
            key.push('.');
            key.push_str(a);
        }
        let kept = xml::prefix(value, DETAIL_VALUE_BYTES);
        if kept.len() < value.len() {
            self.detail_truncated = true;
        }
        self.detail_bytes += key_len + kept.len();
        if self.detail.capacity() == 0 {
            // ATAK's usual detail makes ten to fifteen fields: one allocation, not three.
            self.detail.reserve(16);
        }
        self.detail.push((key, kept.into()));
    }
}

/// Sorts the flattened `detail` fields by name and numbers a repeated name in document order
/// (`link.uid`, `link.uid[2]`, `link.uid[3]`...). A numbered name that a field already has
/// (element names hold no brackets, so only a hostile event gets there) is dropped; the answer
/// says whether anything was.
fn sort_detail(detail: &mut Vec<(String, Value)>) -> bool {
    // Stable, so that a repeated name's values stay in document order.
    detail.sort_by(|a, b| a.0.cmp(&b.0));
    if !detail.windows(2).any(|w| w[0].0 == w[1].0) {
        return false;
    }
    let mut first = 0;
    for i in 1..detail.len() {
        if detail[i].0 == detail[first].0 {
            detail[i].0 = format!("{}[{}]", detail[first].0, i - first + 1);
        } else {
            first = i;
        }
    }
    detail.sort_by(|a, b| a.0.cmp(&b.0));
    let before = detail.len();
    detail.dedup_by(|later, kept| later.0 == kept.0);
    detail.len() < before
}

/// An open element of an event.
struct Open<'a> {
    /// Its local name.
    name: Cow<'a, str>,
    /// Under `detail`: the text gathered for it, bounded.
    text: Option<Bounded>,
    /// Under `detail`: the length of the flattened path before this element was appended.
    path_len: usize,
}

fn parse_event<'a>(bytes: &'a [u8]) -> Result<RawEvent<'a>, Refusal> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "event of {} bytes exceeds the {MAX_EVENT_BYTES}-byte limit",
            bytes.len()
        )
        .into());
    }
    let (text, skipped) = xml::utf8_text(bytes).map_err(|e| format!("{} of the event: {}", e.place, e.reason))?;
    let mut reader = Reader::from_str(text);
    let mut ev = RawEvent::default();
    let mut stack: Vec<Open<'a>> = Vec::with_capacity(8);
    // The flattened path under `detail` of the innermost open element (`track`, `a.b`).
    let mut path = String::with_capacity(64);
    let mut root_closed = false;
    loop {
        let before = reader.buffer_position();
        let at = |pos: u64| xml::position(text, pos, skipped);
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at {} of the event: {e}", at(reader.error_position())))?;
        let fail = |reason: String| Refusal(format!("{reason} (at {} of the event)", at(before)));
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                if stack.len() >= xml::MAX_DEPTH {
                    return Err(fail(format!("elements nested deeper than {} levels", xml::MAX_DEPTH)));
                }
                if root_closed {
                    return Err(fail("a second root element in one event".into()));
                }
                let name = xml::borrow_from(text, e.local_name().into_inner());
                let under_detail = stack.len() >= 2 && stack[1].name == "detail";
                let path_len = path.len();
                match stack.len() {
                    0 if name != "event" => {
                        return Err(fail(format!("the root element <{name}> is not a CoT <event>")))
                    }
                    0 => {
                        ev.root_is_event_tag = e.name().as_ref() == "event";
                        xml::each_attribute_in(text, &e, |k, v| ev.event.set(k, v)).map_err(|why| fail(why.0))?;
                    }
                    1 if name == "point" => {
                        if ev.point.is_some() {
                            return Err(fail("more than one <point>".into()));
                        }
                        let mut point = PointAttrs::default();
                        xml::each_attribute_in(text, &e, |k, v| point.set(k, v)).map_err(|why| fail(why.0))?;
                        ev.point = Some(point);
                    }
                    _ if under_detail => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(&name);
                        let contact = path == "contact";
                        xml::each_attribute_in(text, &e, |k, v| {
                            if contact && k == "callsign" {
                                ev.callsign = Some(match v {
                                    Cow::Borrowed(v) => Cow::Borrowed(xml::prefix(v.trim(), 256)),
                                    Cow::Owned(v) => Cow::Owned(xml::prefix(v.trim(), 256).to_owned()),
                                });
                            } else {
                                ev.put_detail(&path, Some(k), &v);
                            }
                        })
                        .map_err(|why| fail(why.0))?;
                    }
                    _ => {}
                }
                // Text is gathered only under `detail`, bounded per element.
                let cap = if stack.len() == 2 && name == "remarks" {
                    REMARKS_BYTES
                } else {
                    DETAIL_VALUE_BYTES
                };
                stack.push(Open {
                    name,
                    text: under_detail.then(|| Bounded::new(cap)),
                    path_len,
                });
                if empty {
                    close(&mut stack, &mut path, &mut ev);
                    root_closed = stack.is_empty();
                }
                if root_closed {
                    ev.root_end = skipped + reader.buffer_position() as usize;
                }
            }
            Event::End(_) => {
                close(&mut stack, &mut path, &mut ev);
                root_closed = stack.is_empty();
                if root_closed {
                    ev.root_end = skipped + reader.buffer_position() as usize;
                }
            }
            Event::Text(t) => {
                if let Some(Open { text: Some(b), .. }) = stack.last_mut() {
                    b.push(&t.xml_content(XmlVersion::Implicit1_0));
                } else if stack.is_empty() && !t.trim().is_empty() {
                    return Err(fail(format!("text {} outside the event", xml::excerpt(t.as_bytes()))));
                }
            }
            Event::CData(t) => {
                if let Some(Open { text: Some(b), .. }) = stack.last_mut() {
                    b.push(&t);
                }
            }
            Event::GeneralRef(r) => {
                let mut sink = Bounded::new(0);
                let target = match stack.last_mut() {
                    Some(Open { text: Some(b), .. }) => b,
                    _ => &mut sink,
                };
                xml::push_ref(&r, target).map_err(|why| fail(why.0))?;
            }
            Event::Decl(d) => xml::check_decl(&d).map_err(|why| fail(why.0))?,
            Event::DocType(_) => return Err(fail(xml::DOCTYPE_REFUSED.into())),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("truncated event: it ends inside <{}>", open.name).into());
    }
    if !root_closed {
        return Err("no <event> element".into());
    }
    Ok(ev)
}

/// Closes the innermost element, keeping its text if it is under `detail`, and takes its name
/// off the flattened path.
fn close(stack: &mut Vec<Open<'_>>, path: &mut String, ev: &mut RawEvent<'_>) {
    let depth = stack.len();
    let Some(open) = stack.pop() else { return };
    let Some(text) = open.text else { return };
    if depth == 3 && open.name == "remarks" {
        ev.remarks = Some(text);
    } else if !text.text.trim().is_empty() {
        if text.truncated {
            ev.detail_truncated = true;
        }
        ev.put_detail(path, None, &text.text);
    }
    path.truncate(open.path_len);
}

/// An xs:dateTime; without an offset, UTC is meant.
fn cot_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Kind and severity of a CoT type (the table in the module docs).
fn classify(t: &str) -> (&'static str, Severity) {
    let mut parts = t.split('-');
    let (a, b, c) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    match (a, b, c) {
        ("a", "f" | "a", _) => ("unit.friendly", Severity::Normal),
        ("a", "n", _) => ("unit.neutral", Severity::Normal),
        ("a", "h" | "s" | "j" | "k", _) => ("unit.hostile", Severity::Moderate),
        ("a", _, _) => ("unit.unknown", Severity::Minor),
        ("b", "a", _) if t == "b-a-o-can" || t.starts_with("b-a-o-can-") => ("alarm.cancelled", Severity::Normal),
        ("b", "a", _) => ("alarm", Severity::Severe),
        ("b", "r", "f") if t == "b-r-f-h-c" || t.starts_with("b-r-f-h-c-") => ("report.casevac", Severity::Severe),
        ("b", "m", "p") => ("marker", Severity::Normal),
        ("b", "m", "r") => ("route", Severity::Normal),
        ("b", "t", "f") => ("chat", Severity::Normal),
        ("b", _, _) => ("bits", Severity::Minor),
        ("u", _, _) => ("drawing", Severity::Normal),
        ("t", _, _) => ("tasking", Severity::Minor),
        ("y", _, _) => ("reply", Severity::Normal),
        ("c", _, _) => ("capability", Severity::Normal),
        _ => ("cot.other", Severity::Minor),
    }
}

fn dimension(t: &str) -> Option<&'static str> {
    let mut parts = t.split('-');
    if parts.next() != Some("a") {
        return None;
    }
    Some(match parts.nth(1)? {
        "P" => "space",
        "A" => "air",
        "G" => "ground",
        "S" => "sea",
        "U" => "subsurface",
        "F" => "sof",
        _ => "other",
    })
}

fn number(name: &str, value: &Option<Cow<'_, str>>) -> Result<Option<f64>, Refusal> {
    match value {
        None => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("point {name}={:?} is not a finite number", xml::prefix(v, 40)).into()),
        },
    }
}

fn observe(ctx: MessageContext<'_>, mut ev: RawEvent, idx: usize) -> Result<Observation, Refusal> {
    let mut detail = std::mem::take(&mut ev.detail);
    let clashed = sort_detail(&mut detail);
    let at = &ev.event;
    let uid = text(&at.uid).filter(|u| !u.is_empty()).ok_or("no uid")?;
    if uid.len() > MAX_UID_BYTES {
        return Err(format!("uid of {} bytes exceeds {MAX_UID_BYTES}", uid.len()).into());
    }
    let cot_type = text(&at.cot_type).filter(|t| !t.is_empty()).ok_or("no type")?;
    if cot_type.len() > 128 || !cot_type.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("type {:?} is not a CoT type", xml::prefix(cot_type, 40)).into());
    }
    let time_text = text(&at.time).ok_or("no time")?;
    let time =
        cot_time(time_text).ok_or_else(|| format!("time {:?} is not an xs:dateTime", xml::prefix(time_text, 40)))?;
    let start = match text(&at.start) {
        Some(s) => cot_time(s).ok_or_else(|| format!("start {:?} is not an xs:dateTime", xml::prefix(s, 40)))?,
        None => time,
    };
    let stale_text = text(&at.stale).ok_or("no stale")?;
    let stale_ms =
        cot_time(stale_text).ok_or_else(|| format!("stale {:?} is not an xs:dateTime", xml::prefix(stale_text, 40)))?;
    if stale_ms < start {
        return Err(format!("stale {stale_text} is before start").into());
    }
    let point = ev.point.as_ref().ok_or("no <point>")?;
    let lat = number("lat", &point.lat)?.ok_or("point without lat")?;
    let lon = number("lon", &point.lon)?.ok_or("point without lon")?;
    let position = GeoPoint::new(lon, lat).ok_or_else(|| format!("point lat={lat} lon={lon} is out of range"))?;

    let (kind, mut severity) = classify(cot_type);
    let stale = stale_ms <= ctx.received_ms;
    if stale {
        severity = Severity::Normal;
    }
    let (hae, ce, le) = (
        number("hae", &point.hae)?,
        number("ce", &point.ce)?,
        number("le", &point.le)?,
    );
    let title = ev
        .callsign
        .as_deref()
        .filter(|c| !c.is_empty())
        .unwrap_or(uid)
        .to_owned();
    let entity = ["cot:", uid].concat();
    let truncated = ev.detail_truncated || clashed || ev.remarks.as_ref().is_some_and(|r| r.truncated);
    // The gathered text itself, unless trimming leaves less of it.
    let remarks = ev.remarks.take().map(|r| match r.text.trim() {
        t if t.len() == r.text.len() => Value::String(r.text),
        t => Value::from(t),
    });
    // In name order, the `detail.` fields between `ce` and `detail_truncated` (`.` sorts
    // before `_`), so that making the fields has nothing to sort.
    let attr = |v: &Option<Cow<'_, str>>| text(v).map(|v| Value::from(xml::prefix(v, 256)));
    let entries = [
        ("access", attr(&at.access)),
        ("callsign", ev.callsign.as_deref().map(Value::from)),
        ("ce", ce.map(Value::from)),
        ("detail_truncated", truncated.then_some(Value::Bool(true))),
        ("dimension", dimension(cot_type).map(Value::from)),
        ("hae", hae.map(Value::from)),
        ("how", attr(&at.how)),
        ("le", le.map(Value::from)),
        ("opex", attr(&at.opex)),
        ("qos", attr(&at.qos)),
        ("remarks", remarks),
        ("stale", Some(Value::Bool(stale))),
        ("stale_time", Some(Value::from(xml::prefix(stale_text, 64)))),
        ("start", attr(&at.start)),
        ("time", attr(&at.time)),
        ("type", attr(&at.cot_type)),
        ("uid", attr(&at.uid)),
        ("version", attr(&at.version)),
    ];
    let mut fields: Vec<(FieldName, Value)> = Vec::with_capacity(entries.len() + detail.len());
    for (k, v) in entries {
        if k == "detail_truncated" {
            fields.extend(detail.drain(..).map(|(k, v)| (FieldName::Owned(k), v)));
        }
        if let Some(v) = v {
            fields.push((FieldName::Borrowed(k), v));
        }
    }
    Ok(Observation {
        feed: ctx.feed.to_owned(),
        seq: ctx.seq,
        idx: u32::try_from(idx).unwrap_or(u32::MAX),
        received_ms: ctx.received_ms,
        observed_ms: time,
        layer: ctx.layer,
        kind: kind.into(),
        severity,
        entity,
        position,
        title,
        fields: fields.into(),
        shape: None,
    })
}

#[cfg(test)]
#[path = "cot_tests.rs"]
mod tests;
