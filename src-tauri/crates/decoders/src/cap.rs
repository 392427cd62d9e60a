//! OASIS Common Alerting Protocol 1.2 (and 1.1): public warnings, one observation per
//! `info`/`area` pair.
//!
//! # What a body may be
//! - **One alert**, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`. CAP 1.1
//!   (`urn:oasis:names:tc:emergency:cap:1.1`) is accepted and its observations carry
//!   `cap_version: "1.1"`; the two differ only in details this adapter does not read. CAP 1.0
//!   (`http://www.incident.com/cap/1.0`) is refused with a reason naming the version: its
//!   element set differs (for example `parameter` as bare text) and nobody sends it any more.
//!   An `alert` in any other namespace (or none) is refused: the version is told by the
//!   namespace alone, as the standard says.
//! - **An index of alerts**: an Atom feed (`<feed xmlns="http://www.w3.org/2005/Atom">`) or an
//!   RSS 2.0 channel (`<rss>`). Every CAP `alert` embedded anywhere in it (usually in an entry's
//!   `content`) is decoded like a single alert; a bad one is refused on its own, its
//!   neighbours kept. Entries that only *link* to alerts yield no observation here: the HTTP-poll
//!   transport calls [`index_links`] on the same body and fetches each link as a message of its
//!   own, so a recorded tape holds the alerts themselves.
//!
//! # Mapping
//! | CAP | observation |
//! |---|---|
//! | each `info` × `area` | one observation (`idx` counts them through the message) |
//! | `sender`, `identifier`, info and area index | entity `cap:{sender}:{identifier}#{info}.{area}`, or the entity of the alert it updates (below) |
//! | `msgType` Alert / Update / Cancel / Ack / Error | kind `cap.alert` / `cap.update` / `cap.cancel` / `cap.ack` / `cap.error` |
//! | `severity` Extreme / Severe / Moderate / Minor | the same cityops severity |
//! | `severity` Unknown | `minor`: something was issued, so it is shown, but it is not ranked above what senders called minor |
//! | `msgType` Cancel | severity `normal` whatever the info says: the threat is over, and the map shows recovery |
//! | `sent` | observed time. Not `onset` or `effective`: those may lie hours in the future (a forecast), and lag (received minus observed) must measure the feed, not the hazard. Both are kept as fields. |
//! | polygons | position = the area-weighted centroid of all the area's polygons (planar, in degrees; a polygon spanning more than 180° of longitude is taken to cross the antimeridian). A degenerate polygon is placed at the mean of its vertices. |
//! | circles (no polygon) | position = the mean of the circle centres |
//! | neither | `mapping.fallback_position` (`[lon, lat]`, for example the city centre) if the feed sets it, with `position_source: "fallback"`; otherwise the area is refused with that advice. Many real alerts (IPAWS, NWS) carry only geocodes (SAME, FIPS, UGC), which cityops cannot place without a gazetteer. |
//! | `headline`, else `event` | title; prefixed `[Test] ` (and so on) when `status` is not Actual |
//!
//! Fields: `identifier`, `sender`, `sent`, `status`, `msgType`, `scope`, `references`, `source`,
//! `note`, `event`, `category`, `urgency`, `severity` (the CAP word), `certainty`, `language`,
//! `senderName`, `headline`, `description`, `instruction`, `web`, `contact`, `onset`,
//! `effective`, `expires`, `areaDesc`, `polygon` and `circle` (arrays of their text),
//! `geocode` (`name=value` strings), `cap_version`, `info_index`, `area_index`,
//! `position_source` (`polygon`, `circle` or `fallback`), `replaces` (below), and
//! `truncated` (the names of fields cut to their limit). Absent or empty CAP elements are
//! absent fields.
//!
//! # Updates and cancellations
//! The adapter remembers, per feed, the alerts it has seen ([`MAX_REMEMBERED_ALERTS`], oldest
//! forgotten first). An Update or Cancel whose `references` (`sender,identifier,sent` triples)
//! name a remembered alert takes over that alert's entity ids (the first named one that is
//! remembered; updates of updates follow the chain back to the first alert), so the map
//! replaces the earlier alert instead of adding a second one, and its observations carry
//! `replaces` (the entity prefix reused) and `references`. Areas the earlier alert had and the
//! new message no longer covers are closed too: with kind `cap.cancel` after a Cancel, kind
//! `cap.superseded` after an Update, severity `normal`, at their last position. An Ack or Error
//! refers to a message without superseding it, so it never takes over entities.
//!
//! A message that yields no observation says why in a refused entry (an alert without `info`,
//! a Cancel of alerts this feed never saw), so nothing disappears silently.
//!
//! # Refused input and limits
//! Whole-body rules (UTF-8, no DTD, [`xml::MAX_DEPTH`]) are in [`super::xml`]. A body larger than
//! [`MAX_CAP_BODY_BYTES`] is refused (the global [`super::MAX_BODY_BYTES`] applies first). An
//! alert with more than [`MAX_INFOS`] `info` blocks, an `info` with more than [`MAX_AREAS`]
//! areas, an area with more than [`MAX_SHAPES`] polygons and circles or a polygon of more than
//! [`MAX_POLYGON_POINTS`] points is refused, as is an index of more than
//! [`MAX_ALERTS_PER_INDEX`] alerts (the rest). Unknown `status`, `msgType`, `scope`, `urgency`,
//! `severity` or `certainty` words refuse their alert or info: guessing would misrank a warning.
//! Text is cut: `description` and `instruction` at [`LONG_TEXT_BYTES`], `references` at
//! [`REFERENCES_BYTES`], other text at [`TEXT_BYTES`], at most [`MAX_GEOCODES`] geocodes per
//! area; what was cut is listed in `truncated`. Elements CAP does not define here (`parameter`,
//! `resource` with its base64 `derefUri`, XML signatures) are skipped without being kept.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use cityops_core::model::{GeoPoint, Millis, Observation, Severity};
use cityops_core::shape::Shape;
use cityops_core::Fields;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Reader, XmlVersion};
use serde_json::Value;

use super::xml::{self, Bounded};
use super::{Adapter, AdapterConfigError, DecodeError, Decoded, MessageContext, Refusal, Rejected};

/// The largest CAP body (one alert or an index), below the global limit. The largest real
/// alert seen, an IPAWS alert with base64 audio and signatures, is 459 KB.
pub const MAX_CAP_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The most `info` blocks in one alert (real alerts have one per language).
pub const MAX_INFOS: usize = 64;
/// The most `area` blocks in one `info`.
pub const MAX_AREAS: usize = 256;
/// The most polygons and circles in one `area`.
pub const MAX_SHAPES: usize = 64;
/// The most points in one polygon.
pub const MAX_POLYGON_POINTS: usize = 10_000;
/// The most alerts decoded from one index.
pub const MAX_ALERTS_PER_INDEX: usize = 1_000;
/// The most geocodes kept per area.
pub const MAX_GEOCODES: usize = 64;
/// Bytes kept of `description` and `instruction`.
pub const LONG_TEXT_BYTES: usize = 4 * 1024;
/// Bytes kept of `references`.
pub const REFERENCES_BYTES: usize = 16 * 1024;
/// Bytes kept of every other text element.
pub const TEXT_BYTES: usize = 1024;
/// Bytes of polygon or circle text read; longer shapes are refused, not cut (a cut polygon
/// would be placed wrongly). Enough for [`MAX_POLYGON_POINTS`] points.
pub const SHAPE_TEXT_BYTES: usize = 512 * 1024;
/// Alerts remembered per feed to link updates and cancellations.
pub const MAX_REMEMBERED_ALERTS: usize = 4_096;
/// The most links [`index_links`] returns, and the longest link kept.
pub const MAX_LINKS: usize = 10_000;
/// See [`MAX_LINKS`].
pub const MAX_LINK_BYTES: usize = 2_048;

const NS_CAP12: &str = "urn:oasis:names:tc:emergency:cap:1.2";
const NS_CAP11: &str = "urn:oasis:names:tc:emergency:cap:1.1";
const NS_CAP10: &str = "http://www.incident.com/cap/1.0";
const NS_ATOM: &str = "http://www.w3.org/2005/Atom";

/// The CAP adapter of one feed: its mapping and what it remembers of earlier alerts.
#[derive(Debug, Default)]
pub struct CapAdapter {
    fallback: Option<GeoPoint>,
    memory: Memory,
}

impl CapAdapter {
    /// An adapter with the given mapping choices (see the module docs).
    pub fn new(fallback_position: Option<GeoPoint>) -> CapAdapter {
        CapAdapter {
            fallback: fallback_position,
            memory: Memory::default(),
        }
    }

    /// Builds the adapter from a feed's `mapping`: `null`, or a table with an optional
    /// `fallback_position = [lon, lat]`.
    pub fn from_mapping(feed: &str, mapping: &Value) -> Result<CapAdapter, AdapterConfigError> {
        let bad = |field: &str, reason: &str| AdapterConfigError {
            feed: feed.into(),
            field: field.into(),
            reason: reason.into(),
        };
        let table = match mapping {
            Value::Null => return Ok(CapAdapter::new(None)),
            Value::Object(t) => t,
            _ => return Err(bad("mapping", "must be a table")),
        };
        if let Some(key) = table.keys().find(|k| k.as_str() != "fallback_position") {
            return Err(bad(
                &format!("mapping.{key}"),
                "unknown key (CAP knows fallback_position)",
            ));
        }
        let fallback = match table.get("fallback_position") {
            None => None,
            Some(v) => {
                let pair = v
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)));
                let point = pair.and_then(|(lon, lat)| GeoPoint::new(lon, lat));
                Some(point.ok_or_else(|| bad("mapping.fallback_position", "must be [lon, lat] in degrees, in range"))?)
            }
        };
        Ok(CapAdapter::new(fallback))
    }
}

impl Adapter for CapAdapter {
    fn decode(&mut self, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
        let doc = parse(body)?;
        let mut out = Decoded::default();
        let mut idx = 0u32;
        for item in doc.alerts {
            match item {
                Ok(alert) => self.observe(ctx, alert, &mut out, &mut idx),
                Err(r) => out.rejected.push(r),
            }
        }
        Ok(out)
    }
}

/// Decodes one body with a fresh adapter (no memory of earlier alerts, no fallback position).
pub fn decode(ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    CapAdapter::default().decode(ctx, body)
}

/// The links of an Atom or RSS index of alerts, for the HTTP-poll transport to fetch: each
/// Atom entry's `link` (`rel` absent or `alternate`) and `content/@src`, each RSS item's `link`
/// and `enclosure/@url`. Only absolute `http` and `https` links are returned (relative links
/// and other schemes are dropped, so a feed cannot make the poller read local files), in
/// document order without repeats, at most [`MAX_LINKS`]. A single alert has no links.
pub fn index_links(body: &[u8]) -> Result<Vec<String>, DecodeError> {
    Ok(parse(body)?.links)
}

/// The `sent` time of the first alert in `body` that has a readable one: what `cityops decode`
/// takes for the arrival of an alert given without one, so an archived alert is judged as it
/// was received rather than against today.
pub fn header_time(body: &[u8]) -> Option<Millis> {
    parse(body)
        .ok()?
        .alerts
        .iter()
        .flatten()
        .find_map(|a| a.texts.get(F::Sent).and_then(cap_time))
}

/// Runs only the XML tokenizer over the whole body and counts its elements, reading no
/// attribute: the lower bound the decode benchmark prints beside [`super::xml::bare_parse`].
pub fn tokenize(body: &[u8]) -> Result<usize, DecodeError> {
    let mut reader = Reader::from_reader(body);
    let mut count = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_) | Event::Empty(_)) => count += 1,
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
// Parsing: one pass of a namespace-aware pull parser into small owned structs.

/// The CAP elements whose text is kept, by the element that holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    Identifier,
    Sender,
    Sent,
    Status,
    MsgType,
    Scope,
    References,
    Source,
    Note,
    Language,
    Category,
    Event,
    Urgency,
    Severity,
    Certainty,
    Effective,
    Onset,
    Expires,
    SenderName,
    Headline,
    Description,
    Instruction,
    Web,
    Contact,
    AreaDesc,
    Polygon,
    Circle,
    GeocodeName,
    GeocodeValue,
}

impl F {
    /// The field name in observations: the CAP element name.
    fn key(self) -> &'static str {
        match self {
            F::Identifier => "identifier",
            F::Sender => "sender",
            F::Sent => "sent",
            F::Status => "status",
            F::MsgType => "msgType",
            F::Scope => "scope",
            F::References => "references",
            F::Source => "source",
            F::Note => "note",
            F::Language => "language",
            F::Category => "category",
            F::Event => "event",
            F::Urgency => "urgency",
            F::Severity => "severity",
            F::Certainty => "certainty",
            F::Effective => "effective",
            F::Onset => "onset",
            F::Expires => "expires",
            F::SenderName => "senderName",
            F::Headline => "headline",
            F::Description => "description",
            F::Instruction => "instruction",
            F::Web => "web",
            F::Contact => "contact",
            F::AreaDesc => "areaDesc",
            F::Polygon => "polygon",
            F::Circle => "circle",
            F::GeocodeName => "valueName",
            F::GeocodeValue => "value",
        }
    }

    /// The element that holds it (geocode parts are handled apart).
    fn level(self) -> Level {
        match self {
            F::Identifier
            | F::Sender
            | F::Sent
            | F::Status
            | F::MsgType
            | F::Scope
            | F::References
            | F::Source
            | F::Note => Level::Alert,
            F::AreaDesc | F::Polygon | F::Circle | F::GeocodeName | F::GeocodeValue => Level::Area,
            _ => Level::Info,
        }
    }

    fn cap(self) -> usize {
        match self {
            F::Description | F::Instruction => LONG_TEXT_BYTES,
            F::References => REFERENCES_BYTES,
            F::Polygon | F::Circle => SHAPE_TEXT_BYTES,
            _ => TEXT_BYTES,
        }
    }

    fn of_alert(name: &str) -> Option<F> {
        Some(match name {
            "identifier" => F::Identifier,
            "sender" => F::Sender,
            "sent" => F::Sent,
            "status" => F::Status,
            "msgType" => F::MsgType,
            "scope" => F::Scope,
            "references" => F::References,
            "source" => F::Source,
            "note" => F::Note,
            _ => return None,
        })
    }

    fn of_info(name: &str) -> Option<F> {
        Some(match name {
            "language" => F::Language,
            "category" => F::Category,
            "event" => F::Event,
            "urgency" => F::Urgency,
            "severity" => F::Severity,
            "certainty" => F::Certainty,
            "effective" => F::Effective,
            "onset" => F::Onset,
            "expires" => F::Expires,
            "senderName" => F::SenderName,
            "headline" => F::Headline,
            "description" => F::Description,
            "instruction" => F::Instruction,
            "web" => F::Web,
            "contact" => F::Contact,
            _ => return None,
        })
    }

    fn of_area(name: &str) -> Option<F> {
        Some(match name {
            "areaDesc" => F::AreaDesc,
            "polygon" => F::Polygon,
            "circle" => F::Circle,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Alert,
    Info,
    Area,
}

/// Kept texts of one element level, in document order.
#[derive(Debug, Default)]
struct Texts(Vec<(F, Bounded)>);

impl Texts {
    fn get(&self, f: F) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == f).map(|(_, b)| b.text.trim())
    }

    fn all(&self, f: F) -> impl Iterator<Item = &Bounded> {
        self.0.iter().filter(move |(k, _)| *k == f).map(|(_, b)| b)
    }
}

#[derive(Debug, Default)]
struct RawArea {
    texts: Texts,
    geocodes: Vec<String>,
    geocodes_cut: bool,
}

#[derive(Debug, Default)]
struct RawInfo {
    texts: Texts,
    areas: Vec<RawArea>,
}

#[derive(Debug)]
struct RawAlert {
    version: &'static str,
    place: String,
    texts: Texts,
    infos: Vec<RawInfo>,
    /// The first reason this alert must be refused as a whole, found while reading it.
    problem: Option<String>,
}

/// What a body held: its alerts (or why each was refused) and, for an index, its links.
struct Doc {
    alerts: Vec<Result<RawAlert, Rejected>>,
    links: Vec<String>,
}

/// What an open element is to the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The root of an index (Atom `feed` or `rss`), and RSS `channel`.
    Index,
    /// An Atom `entry` or RSS `item`.
    Entry,
    Alert,
    Info,
    Area,
    Geocode,
    /// An element whose text is being kept.
    Leaf(F),
    /// An RSS `item/link`, whose text is a link.
    LinkText,
    /// Anything else: skipped, only counted for depth.
    Other,
}

struct Frame<'a> {
    role: Role,
    /// The element's local name, borrowed from the body, for places.
    name: Cow<'a, str>,
    /// For an entry, its index among entries (its place is `name[index]`).
    entry: Option<usize>,
}

impl Frame<'_> {
    fn push_label(&self, out: &mut String) {
        out.push_str(&self.name);
        if let Some(k) = self.entry {
            out.push('[');
            out.push_str(&k.to_string());
            out.push(']');
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    Single,
    Atom,
    Rss,
}

struct Walk<'a> {
    text: &'a str,
    mode: Mode,
    stack: Vec<Frame<'a>>,
    alert: Option<RawAlert>,
    /// Where the current alert's element sits in the stack.
    alert_depth: usize,
    capture: Option<Bounded>,
    geocode: (Option<String>, Option<String>),
    entries: usize,
    alerts: Vec<Result<RawAlert, Rejected>>,
    links: Vec<String>,
    root_closed: bool,
}

fn parse(body: &[u8]) -> Result<Doc, DecodeError> {
    if body.len() > MAX_CAP_BODY_BYTES {
        return Err(DecodeError {
            place: "$".into(),
            reason: format!(
                "CAP body of {} bytes exceeds the {MAX_CAP_BODY_BYTES}-byte limit",
                body.len()
            ),
        });
    }
    let (text, skipped) = xml::utf8_text(body)?;
    let mut reader = NsReader::from_str(text);
    let mut w = Walk {
        text,
        mode: Mode::Unknown,
        stack: Vec::new(),
        alert: None,
        alert_depth: 0,
        capture: None,
        geocode: (None, None),
        entries: 0,
        alerts: Vec::new(),
        links: Vec::new(),
        root_closed: false,
    };
    let at = |w: &Walk<'_>, pos: u64| {
        let p = xml::position(w.text, pos, skipped);
        if w.stack.is_empty() {
            p
        } else {
            format!("{} at {p}", w.path())
        }
    };
    loop {
        let before = reader.buffer_position();
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, ev)) => (namespace(&ns), ev),
            Err(e) => {
                let pos = reader.error_position();
                return Err(DecodeError {
                    place: at(&w, pos),
                    reason: format!("malformed XML: {e}"),
                });
            }
        };
        let fail = |w: &Walk<'_>, reason: String| DecodeError {
            place: at(w, before),
            reason,
        };
        match event {
            Event::Start(e) => w.start(ns, &e).map_err(|r| fail(&w, r.0))?,
            Event::Empty(e) => {
                w.start(ns, &e).map_err(|r| fail(&w, r.0))?;
                w.end();
            }
            Event::End(_) => w.end(),
            Event::Text(t) => {
                if let Some(c) = w.capture.as_mut() {
                    c.push(&t.xml_content(XmlVersion::Implicit1_0));
                } else if !w.inside() && !t.trim().is_empty() {
                    return Err(fail(
                        &w,
                        format!("text {} outside the root element", xml::excerpt(t.as_bytes())),
                    ));
                }
            }
            Event::CData(t) => {
                if let Some(c) = w.capture.as_mut() {
                    c.push(&t);
                } else if !w.inside() {
                    return Err(fail(&w, "CDATA outside the root element".into()));
                }
            }
            Event::GeneralRef(r) => {
                let mut sink = Bounded::new(0);
                xml::push_ref(&r, w.capture.as_mut().unwrap_or(&mut sink)).map_err(|r| fail(&w, r.0))?;
                if !w.inside() {
                    return Err(fail(&w, "entity reference outside the root element".into()));
                }
            }
            Event::Decl(d) => xml::check_decl(&d).map_err(|r| fail(&w, r.0))?,
            Event::DocType(_) => return Err(fail(&w, xml::DOCTYPE_REFUSED.into())),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !w.stack.is_empty() {
        return Err(DecodeError {
            place: at(&w, text.len() as u64),
            reason: format!(
                "truncated document: it ends inside <{}>",
                w.stack.last().map_or(String::new(), |f| w.label(f))
            ),
        });
    }
    if w.mode == Mode::Unknown {
        return Err(DecodeError {
            place: "$".into(),
            reason: "no XML element: not a CAP alert or an index of alerts".into(),
        });
    }
    Ok(Doc {
        alerts: w.alerts,
        links: w.links,
    })
}

/// The namespace an element resolved to.
fn namespace<'n>(ns: &ResolveResult<'n>) -> Option<&'n str> {
    match ns {
        ResolveResult::Bound(n) => Some(n.0),
        _ => None,
    }
}

impl<'a> Walk<'a> {
    fn inside(&self) -> bool {
        !self.stack.is_empty()
    }

    /// The labels of the open elements joined by dots (`feed.entry[2].content.alert`): built
    /// only for places, never per element.
    fn path(&self) -> String {
        let mut out = String::new();
        for (k, f) in self.stack.iter().enumerate() {
            if k > 0 {
                out.push('.');
            }
            f.push_label(&mut out);
        }
        out
    }

    fn label(&self, f: &Frame<'_>) -> String {
        let mut out = String::new();
        f.push_label(&mut out);
        out
    }

    fn start(&mut self, ns: Option<&str>, e: &BytesStart<'_>) -> Result<(), Refusal> {
        if self.stack.len() >= xml::MAX_DEPTH {
            return Err(format!("elements nested deeper than {} levels", xml::MAX_DEPTH).into());
        }
        if self.root_closed {
            return Err("a second root element after the first one closed".into());
        }
        let text = self.text;
        let local = e.local_name();
        let name = local.into_inner();
        let parent = self.stack.last().map(|f| f.role);
        let mut entry = None;
        let role = match parent {
            None => self.root(ns, name)?,
            Some(Role::Index) if name == "entry" && ns == Some(NS_ATOM) || name == "item" && self.mode == Mode::Rss => {
                entry = Some(self.entries);
                self.entries += 1;
                Role::Entry
            }
            Some(Role::Index) if name == "channel" && self.mode == Mode::Rss => Role::Index,
            Some(Role::Entry)
                if self.mode == Mode::Atom && ns == Some(NS_ATOM) && (name == "link" || name == "content") =>
            {
                let rel = attr(e, "rel")?;
                if name == "content" {
                    self.link(attr(e, "src")?);
                } else if rel.as_deref().is_none_or(|r| r == "alternate") {
                    self.link(attr(e, "href")?);
                }
                Role::Other
            }
            Some(Role::Entry) if self.mode == Mode::Rss && ns.is_none() && name == "link" => {
                self.capture = Some(Bounded::new(MAX_LINK_BYTES));
                Role::LinkText
            }
            Some(Role::Entry) if self.mode == Mode::Rss && ns.is_none() && name == "enclosure" => {
                self.link(attr(e, "url")?);
                Role::Other
            }
            _ if name == "alert" && self.alert.is_none() && self.mode != Mode::Single => {
                // An alert embedded in an index.
                match version(ns) {
                    Ok(v) => self.begin_alert(v, None),
                    Err(Refusal(reason))
                        if ns.is_some_and(|n| n.starts_with("urn:oasis:names:tc:emergency:cap:") || n == NS_CAP10) =>
                    {
                        self.begin_alert("?", Some(reason))
                    }
                    Err(_) => Role::Other,
                }
            }
            Some(parent) => self.alert_child(parent, ns, name)?,
        };
        if let Role::Leaf(f) = role {
            self.capture = Some(Bounded::new(f.cap()));
        }
        self.stack.push(Frame {
            role,
            name: xml::borrow_from(text, name),
            entry,
        });
        if role == Role::Alert {
            self.alert_depth = self.stack.len();
            let place = self.path();
            if let Some(a) = self.alert.as_mut() {
                a.place = place;
            }
        }
        Ok(())
    }

    fn root(&mut self, ns: Option<&str>, name: &str) -> Result<Role, Refusal> {
        match (ns, name) {
            (_, "alert") => {
                let v = version(ns)?;
                self.mode = Mode::Single;
                Ok(self.begin_alert(v, None))
            }
            (Some(NS_ATOM), "feed") => {
                self.mode = Mode::Atom;
                Ok(Role::Index)
            }
            (None, "rss") => {
                self.mode = Mode::Rss;
                Ok(Role::Index)
            }
            _ => Err(format!(
                "the root element <{name}>{} is not a CAP alert, an Atom feed or an RSS channel",
                ns.map(|n| format!(" in namespace {n}")).unwrap_or_default()
            )
            .into()),
        }
    }

    fn begin_alert(&mut self, version: &'static str, problem: Option<String>) -> Role {
        let mut problem = problem;
        if self.mode != Mode::Single && self.alerts.len() >= MAX_ALERTS_PER_INDEX {
            problem.get_or_insert_with(|| {
                format!("more than {MAX_ALERTS_PER_INDEX} alerts in one index; the rest are ignored")
            });
        }
        self.alert = Some(RawAlert {
            version,
            place: String::new(),
            texts: Texts::default(),
            infos: Vec::new(),
            problem,
        });
        Role::Alert
    }

    /// The role of an element inside an alert, after checking the alert's limits.
    fn alert_child(&mut self, parent: Role, ns: Option<&str>, name: &str) -> Result<Role, Refusal> {
        let Some(alert) = self.alert.as_mut() else {
            return Ok(Role::Other);
        };
        // Elements of other namespaces (an XML signature) and of a refused alert are skipped.
        let cap_ns = match alert.version {
            "1.2" => NS_CAP12,
            "1.1" => NS_CAP11,
            _ => return Ok(Role::Other),
        };
        if ns != Some(cap_ns) {
            return Ok(Role::Other);
        }
        let role = match (parent, name) {
            (Role::Alert, "info") => {
                if alert.infos.len() >= MAX_INFOS {
                    alert
                        .problem
                        .get_or_insert_with(|| format!("more than {MAX_INFOS} info blocks"));
                    return Ok(Role::Other);
                }
                alert.infos.push(RawInfo::default());
                Role::Info
            }
            (Role::Info, "area") => {
                let Some(info) = alert.infos.last_mut() else {
                    return Ok(Role::Other);
                };
                if info.areas.len() >= MAX_AREAS {
                    alert.problem.get_or_insert_with(|| {
                        format!("info[{}] has more than {MAX_AREAS} areas", alert.infos.len() - 1)
                    });
                    return Ok(Role::Other);
                }
                info.areas.push(RawArea::default());
                Role::Area
            }
            (Role::Area, "geocode") => {
                self.geocode = (None, None);
                Role::Geocode
            }
            (Role::Geocode, "valueName") => Role::Leaf(F::GeocodeName),
            (Role::Geocode, "value") => Role::Leaf(F::GeocodeValue),
            (Role::Alert, n) => F::of_alert(n).map_or(Role::Other, Role::Leaf),
            (Role::Info, n) => F::of_info(n).map_or(Role::Other, Role::Leaf),
            (Role::Area, n) => match F::of_area(n) {
                Some(f @ (F::Polygon | F::Circle)) => {
                    let area = alert.infos.last().and_then(|i| i.areas.last());
                    let shapes = area.map_or(0, |a| a.texts.all(F::Polygon).count() + a.texts.all(F::Circle).count());
                    if shapes >= MAX_SHAPES {
                        alert
                            .problem
                            .get_or_insert_with(|| format!("an area has more than {MAX_SHAPES} polygons and circles"));
                        return Ok(Role::Other);
                    }
                    Role::Leaf(f)
                }
                other => other.map_or(Role::Other, Role::Leaf),
            },
            _ => Role::Other,
        };
        Ok(role)
    }

    fn end(&mut self) {
        let Some(frame) = self.stack.pop() else { return };
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        match frame.role {
            Role::Leaf(f) => {
                let text = self.capture.take().unwrap_or_default();
                self.keep(f, text);
            }
            Role::LinkText => {
                let text = self.capture.take().unwrap_or_default();
                if !text.truncated {
                    self.link(Some(text.text.trim().to_owned()));
                }
            }
            Role::Geocode => {
                let (name, value) = std::mem::take(&mut self.geocode);
                if let Some(area) = self
                    .alert
                    .as_mut()
                    .and_then(|a| a.infos.last_mut())
                    .and_then(|i| i.areas.last_mut())
                {
                    if area.geocodes.len() < MAX_GEOCODES {
                        area.geocodes
                            .push(format!("{}={}", name.unwrap_or_default(), value.unwrap_or_default()));
                    } else {
                        area.geocodes_cut = true;
                    }
                }
            }
            Role::Alert if self.stack.len() + 1 == self.alert_depth => {
                if let Some(alert) = self.alert.take() {
                    self.alerts.push(Ok(alert));
                }
            }
            _ => {}
        }
    }

    /// Stores the text of a finished leaf element at its level.
    fn keep(&mut self, f: F, text: Bounded) {
        if f == F::GeocodeName {
            self.geocode.0 = Some(text.text.trim().to_owned());
            return;
        }
        if f == F::GeocodeValue {
            self.geocode.1 = Some(text.text.trim().to_owned());
            return;
        }
        let Some(alert) = self.alert.as_mut() else { return };
        if text.truncated && matches!(f, F::Polygon | F::Circle) {
            alert
                .problem
                .get_or_insert_with(|| format!("a {} longer than {SHAPE_TEXT_BYTES} bytes", f.key()));
            return;
        }
        let texts = match f.level() {
            Level::Alert => &mut alert.texts,
            Level::Info => match alert.infos.last_mut() {
                Some(i) => &mut i.texts,
                None => return,
            },
            Level::Area => match alert.infos.last_mut().and_then(|i| i.areas.last_mut()) {
                Some(a) => &mut a.texts,
                None => return,
            },
        };
        // Repeats are kept for the elements CAP allows more than once; for the others a bound
        // on repeats keeps a hostile alert of a million <note>s small.
        if texts.0.len() < 4 * MAX_SHAPES {
            texts.0.push((f, text));
        }
    }

    fn link(&mut self, link: Option<String>) {
        let Some(link) = link else { return };
        let link = link.trim();
        let absolute = link.starts_with("http://") || link.starts_with("https://");
        if absolute
            && link.len() <= MAX_LINK_BYTES
            && self.links.len() < MAX_LINKS
            && !self.links.iter().any(|l| l == link)
        {
            self.links.push(link.to_owned());
        }
    }
}

/// The value of an attribute (by local name), entities resolved; an undeclared entity refuses it.
fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, Refusal> {
    for a in e.attributes() {
        let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
        if a.key.local_name().into_inner() == name {
            let v = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("attribute {name}: {e}"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// The CAP version of an `alert` element's namespace.
fn version(ns: Option<&str>) -> Result<&'static str, Refusal> {
    match ns {
        Some(NS_CAP12) => Ok("1.2"),
        Some(NS_CAP11) => Ok("1.1"),
        Some(NS_CAP10) => {
            Err(format!("CAP 1.0 (namespace {NS_CAP10}) is not supported: only CAP 1.2 and 1.1 are accepted").into())
        }
        Some(other) => Err(format!("an alert in namespace {other:?} is not CAP 1.2 or 1.1").into()),
        None => Err(
            "an alert without a namespace: CAP 1.2 is told by xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"".into(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Mapping: alerts to observations, with the memory that links updates to what they update.

/// What the adapter remembers of the alerts it has seen.
#[derive(Debug, Default)]
struct Memory {
    /// `sender,identifier` of every remembered message, to the entity prefix it uses.
    alias: HashMap<String, String>,
    /// Per entity prefix: the messages that use it and its open areas.
    roots: HashMap<String, Root>,
    /// Entity prefixes, oldest first, to forget the oldest.
    order: VecDeque<String>,
}

#[derive(Debug, Default)]
struct Root {
    aliases: Vec<String>,
    /// Open areas: entity, position, title.
    open: Vec<(String, GeoPoint, String)>,
}

impl Memory {
    /// The entity prefix of the first referenced message that is remembered.
    fn resolve(&self, references: &str) -> Option<String> {
        references.split_whitespace().find_map(|triple| {
            let mut parts = triple.split(',');
            let (sender, identifier) = (parts.next()?, parts.next()?);
            self.alias.get(&format!("{sender},{identifier}")).cloned()
        })
    }

    /// Records that the message `key` uses prefix `root`, forgetting the oldest prefix when full.
    fn remember(&mut self, key: String, root: &str) {
        if !self.roots.contains_key(root) {
            if self.order.len() >= MAX_REMEMBERED_ALERTS {
                if let Some(old) = self.order.pop_front() {
                    if let Some(r) = self.roots.remove(&old) {
                        for a in r.aliases {
                            self.alias.remove(&a);
                        }
                    }
                }
            }
            self.order.push_back(root.to_owned());
        }
        let r = self.roots.entry(root.to_owned()).or_default();
        if !r.aliases.contains(&key) {
            // A long chain of updates keeps only its recent names; older ones are rarely cited.
            if r.aliases.len() >= 64 {
                let gone = r.aliases.remove(0);
                self.alias.remove(&gone);
            }
            r.aliases.push(key.clone());
        }
        self.alias.insert(key, root.to_owned());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MsgType {
    Alert,
    Update,
    Cancel,
    Ack,
    Error,
}

impl CapAdapter {
    fn observe(&mut self, ctx: MessageContext<'_>, alert: RawAlert, out: &mut Decoded, idx: &mut u32) {
        let place = alert.place.clone();
        if let Err(Refusal(reason)) = self.observe_alert(ctx, alert, out, idx) {
            out.rejected.push(Rejected { place, reason });
        }
    }

    fn observe_alert(
        &mut self,
        ctx: MessageContext<'_>,
        alert: RawAlert,
        out: &mut Decoded,
        idx: &mut u32,
    ) -> Result<(), Refusal> {
        if let Some(p) = alert.problem {
            return Err(p.into());
        }
        let t = &alert.texts;
        let identifier = required_id(t, F::Identifier)?;
        let sender = required_id(t, F::Sender)?;
        let sent = t.get(F::Sent).ok_or("no <sent>")?;
        let observed_ms = cap_time(sent).ok_or_else(|| format!("<sent> {sent:?} is not a CAP date and time"))?;
        let status =
            one_of(t, F::Status, &["Actual", "Exercise", "System", "Test", "Draft"], true)?.unwrap_or_default();
        let msg_type =
            match one_of(t, F::MsgType, &["Alert", "Update", "Cancel", "Ack", "Error"], true)?.unwrap_or_default() {
                "Update" => MsgType::Update,
                "Cancel" => MsgType::Cancel,
                "Ack" => MsgType::Ack,
                "Error" => MsgType::Error,
                _ => MsgType::Alert,
            };
        one_of(t, F::Scope, &["Public", "Restricted", "Private"], false)?;
        let references = t.get(F::References).filter(|r| !r.is_empty());
        let key = format!("{sender},{identifier}");
        let own_root = format!("cap:{sender}:{identifier}");
        let linked = match msg_type {
            MsgType::Update | MsgType::Cancel => references.and_then(|r| self.memory.resolve(r)),
            _ => None,
        };
        let root = linked.clone().unwrap_or_else(|| own_root.clone());

        // The fields every observation of this alert shares.
        let mut common: Gathered = Vec::with_capacity(12);
        let mut truncated: Vec<&str> = Vec::new();
        for f in [
            F::Identifier,
            F::Sender,
            F::Sent,
            F::Status,
            F::MsgType,
            F::Scope,
            F::References,
            F::Source,
            F::Note,
        ] {
            put(&mut common, &mut truncated, t, f);
        }
        common.push(("cap_version", alert.version.into()));
        if let Some(r) = &linked {
            common.push(("replaces", r.as_str().into()));
        }
        let kind = match msg_type {
            MsgType::Alert => "cap.alert",
            MsgType::Update => "cap.update",
            MsgType::Cancel => "cap.cancel",
            MsgType::Ack => "cap.ack",
            MsgType::Error => "cap.error",
        };
        let tag = if status == "Actual" {
            String::new()
        } else {
            format!("[{status}] ")
        };

        let mut opened: Vec<(String, GeoPoint, String)> = Vec::new();
        let first_rejected = out.rejected.len();
        for (i, info) in alert.infos.iter().enumerate() {
            let info_place = format!("{}.info[{i}]", alert.place);
            let severity = match info_severity(&info.texts, alert.version) {
                Ok(_) if msg_type == MsgType::Cancel => Severity::Normal,
                Ok(s) => s,
                Err(Refusal(reason)) => {
                    out.rejected.push(Rejected {
                        place: info_place,
                        reason,
                    });
                    continue;
                }
            };
            // Only this info's own fields: the alert's are shared, not copied per info.
            let mut info_fields: Gathered = Vec::with_capacity(16);
            let mut info_cut = truncated.clone();
            for f in [
                F::Language,
                F::Event,
                F::Urgency,
                F::Severity,
                F::Certainty,
                F::Effective,
                F::Onset,
                F::Expires,
                F::SenderName,
                F::Headline,
                F::Description,
                F::Instruction,
                F::Web,
                F::Contact,
            ] {
                put(&mut info_fields, &mut info_cut, &info.texts, f);
            }
            let categories: Vec<Value> = info.texts.all(F::Category).map(|b| b.text.trim().into()).collect();
            if !categories.is_empty() {
                info_fields.push(("category", Value::Array(categories)));
            }
            info_fields.push(("info_index", i.into()));
            let title = format!(
                "{tag}{}",
                info.texts
                    .get(F::Headline)
                    .filter(|h| !h.is_empty())
                    .or(info.texts.get(F::Event))
                    .unwrap_or("CAP alert")
            );
            // An info without areas is one area without geometry: placed only by the fallback.
            let no_area = [RawArea::default()];
            let areas: &[RawArea] = if info.areas.is_empty() { &no_area } else { &info.areas };
            for (j, area) in areas.iter().enumerate() {
                let area_place = if info.areas.is_empty() {
                    info_place.clone()
                } else {
                    format!("{info_place}.area[{j}]")
                };
                let (position, source) = match area_position(area) {
                    Ok(Some(p)) => p,
                    Ok(None) => match self.fallback {
                        Some(p) => (p, "fallback"),
                        None => {
                            let what = if info.areas.is_empty() {
                                "the info has no area"
                            } else {
                                "the area has no polygon or circle (only a description or geocodes)"
                            };
                            out.rejected.push(Rejected {
                                place: area_place,
                                reason: format!("{what}, so it cannot be placed; set the feed's mapping.fallback_position to place such alerts"),
                            });
                            continue;
                        }
                    },
                    Err(Refusal(reason)) => {
                        out.rejected.push(Rejected {
                            place: area_place,
                            reason,
                        });
                        continue;
                    }
                };
                let shape = match area_shape(area) {
                    Ok(shape) => shape.map(Box::new),
                    Err(Refusal(reason)) => {
                        out.rejected.push(Rejected {
                            place: area_place,
                            reason,
                        });
                        continue;
                    }
                };
                let mut fields: Gathered = Vec::with_capacity(8);
                let mut cut = info_cut.clone();
                put(&mut fields, &mut cut, &area.texts, F::AreaDesc);
                for f in [F::Polygon, F::Circle] {
                    let shapes: Vec<Value> = area
                        .texts
                        .all(f)
                        .map(|b| b.text.trim())
                        .filter(|s| !s.is_empty())
                        .map(Value::from)
                        .collect();
                    if !shapes.is_empty() {
                        fields.push((f.key(), Value::Array(shapes)));
                    }
                }
                if !area.geocodes.is_empty() {
                    fields.push((
                        "geocode",
                        area.geocodes.iter().map(|g| Value::from(g.as_str())).collect(),
                    ));
                }
                if area.geocodes_cut {
                    cut.push("geocode");
                }
                fields.push(("area_index", j.into()));
                fields.push(("position_source", source.into()));
                if !cut.is_empty() {
                    fields.push(("truncated", cut.iter().map(|c| Value::from(*c)).collect()));
                }
                let fields = merge(&common, &info_fields, fields);
                let entity = format!("{root}#{i}.{j}");
                opened.push((entity.clone(), position, title.clone()));
                out.observations.push(Observation {
                    feed: ctx.feed.to_owned(),
                    seq: ctx.seq,
                    idx: *idx,
                    received_ms: ctx.received_ms,
                    observed_ms,
                    layer: ctx.layer,
                    kind: kind.into(),
                    severity,
                    entity,
                    position,
                    title: title.clone(),
                    fields,
                    shape,
                });
                *idx = idx.saturating_add(1);
            }
        }

        // Close what the earlier alert had open and this message no longer covers.
        let mut closed = 0usize;
        if linked.is_some() {
            let previous = self
                .memory
                .roots
                .get_mut(&root)
                .map(|r| std::mem::take(&mut r.open))
                .unwrap_or_default();
            let closing_kind = if msg_type == MsgType::Cancel {
                "cap.cancel"
            } else {
                "cap.superseded"
            };
            for (entity, position, old_title) in previous {
                if opened.iter().any(|(e, _, _)| *e == entity) {
                    continue;
                }
                let fields = merge(
                    &common,
                    &[],
                    vec![("closes", "area no longer covered by the updating message".into())],
                );
                let verb = if msg_type == MsgType::Cancel {
                    "Cancelled"
                } else {
                    "Superseded"
                };
                out.observations.push(Observation {
                    feed: ctx.feed.to_owned(),
                    seq: ctx.seq,
                    idx: *idx,
                    received_ms: ctx.received_ms,
                    observed_ms,
                    layer: ctx.layer,
                    kind: closing_kind.into(),
                    severity: Severity::Normal,
                    entity,
                    position,
                    title: format!("{tag}{verb}: {old_title}"),
                    fields,
                    shape: None,
                });
                *idx = idx.saturating_add(1);
                closed += 1;
            }
        }
        if matches!(msg_type, MsgType::Alert | MsgType::Update | MsgType::Cancel) {
            self.memory.remember(key, &root);
            if let Some(r) = self.memory.roots.get_mut(&root) {
                // A cancelled alert has nothing open; an alert or update has what it placed.
                r.open = if msg_type == MsgType::Cancel {
                    Vec::new()
                } else {
                    opened.clone()
                };
            }
        }
        if opened.is_empty() && closed == 0 && out.rejected.len() == first_rejected {
            let why = match (msg_type, &linked, references) {
                (MsgType::Cancel, None, Some(r)) => {
                    format!(
                        "a Cancel without info of alerts this feed has not seen ({}): nothing on the map to cancel",
                        xml::prefix(r, 200)
                    )
                }
                (MsgType::Cancel, Some(root), _) => format!("a Cancel of {root}, which has nothing open any more"),
                _ => "the alert has no info block, so there is nothing to place".to_owned(),
            };
            return Err(why.into());
        }
        Ok(())
    }
}

/// Fields being gathered for observations, by name; distinct names within one observation.
type Gathered = Vec<(&'static str, Value)>;

/// One observation's fields: the alert's, the info's (copied, as every observation owns its
/// map) and the area's own (moved).
fn merge(alert: &[(&'static str, Value)], info: &[(&'static str, Value)], own: Gathered) -> Fields {
    alert
        .iter()
        .chain(info)
        .map(|(k, v)| (*k, v.clone()))
        .chain(own)
        .collect()
}

/// Copies a text element into the fields, noting whether it was cut.
fn put(fields: &mut Gathered, truncated: &mut Vec<&'static str>, texts: &Texts, f: F) {
    if let Some(b) = texts.all(f).next().filter(|b| !b.text.trim().is_empty()) {
        fields.push((f.key(), b.text.trim().into()));
        if b.truncated {
            truncated.push(f.key());
        }
    }
}

/// `identifier` or `sender`: required, and free of the characters `references` uses as
/// separators (CAP forbids spaces, commas, `<` and `&` in them).
fn required_id(texts: &Texts, f: F) -> Result<&str, Refusal> {
    let v = texts
        .get(f)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("no <{}>", f.key()))?;
    if v.contains(|c: char| c.is_whitespace() || c == ',' || c == '<' || c == '&') {
        return Err(format!(
            "<{}> {:?} contains a space, comma, < or &, which CAP forbids",
            f.key(),
            xml::prefix(v, 80)
        )
        .into());
    }
    Ok(v)
}

/// The value of a CAP enumeration, refused when it is not one of `allowed`.
fn one_of<'t>(texts: &'t Texts, f: F, allowed: &[&str], required: bool) -> Result<Option<&'t str>, Refusal> {
    match texts.get(f) {
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(format!(
            "<{}> {:?} is not one of {}",
            f.key(),
            xml::prefix(v, 40),
            allowed.join(", ")
        )
        .into()),
        None if required => Err(format!("no <{}>", f.key()).into()),
        None => Ok(None),
    }
}

fn info_severity(texts: &Texts, version: &str) -> Result<Severity, Refusal> {
    let severity = match one_of(
        texts,
        F::Severity,
        &["Extreme", "Severe", "Moderate", "Minor", "Unknown"],
        true,
    )? {
        Some("Extreme") => Severity::Extreme,
        Some("Severe") => Severity::Severe,
        Some("Moderate") => Severity::Moderate,
        Some("Minor") => Severity::Minor,
        _ => Severity::Minor,
    };
    one_of(
        texts,
        F::Urgency,
        &["Immediate", "Expected", "Future", "Past", "Unknown"],
        false,
    )?;
    let certainty: &[&str] = if version == "1.1" {
        // CAP 1.1 still allows the deprecated "Very Likely".
        &["Observed", "Likely", "Possible", "Unlikely", "Unknown", "Very Likely"]
    } else {
        &["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
    };
    one_of(texts, F::Certainty, certainty, false)?;
    Ok(severity)
}

/// A CAP `dateTime` (`2003-06-11T22:39:00-07:00`; `-00:00` and `Z` accepted) in milliseconds.
fn cap_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Where an area is: from its polygons, else its circles; `None` when it has neither.
fn area_position(area: &RawArea) -> Result<Option<(GeoPoint, &'static str)>, Refusal> {
    let mut weighted = (0.0, 0.0, 0.0);
    let mut vertex_mean = (0.0, 0.0, 0usize);
    let mut polygons = 0usize;
    for (k, p) in area.texts.all(F::Polygon).enumerate() {
        let text = p.text.trim();
        if text.is_empty() {
            // NWS sends an empty <polygon/> when the area is given by geocodes only.
            continue;
        }
        let points = parse_points(text).map_err(|r| format!("polygon[{k}]: {r}"))?;
        let (cx, cy, area) = centroid(&points);
        polygons += 1;
        if area > 0.0 {
            weighted = (weighted.0 + cx * area, weighted.1 + cy * area, weighted.2 + area);
        }
        for (lon, lat) in &points {
            vertex_mean = (vertex_mean.0 + lon, vertex_mean.1 + lat, vertex_mean.2 + 1);
        }
    }
    if polygons > 0 {
        let (lon, lat) = if weighted.2 > 1e-12 {
            (weighted.0 / weighted.2, weighted.1 / weighted.2)
        } else {
            (
                vertex_mean.0 / vertex_mean.2 as f64,
                vertex_mean.1 / vertex_mean.2 as f64,
            )
        };
        let lon = if lon > 180.0 { lon - 360.0 } else { lon };
        return GeoPoint::new(lon, lat)
            .map(|p| Some((p, "polygon")))
            .ok_or_else(|| Refusal(format!("polygon centroid {lat},{lon} out of range")));
    }
    let mut sum = (0.0, 0.0, 0usize);
    for (k, c) in area.texts.all(F::Circle).enumerate() {
        let text = c.text.trim();
        if text.is_empty() {
            continue;
        }
        let mut parts = text.split_whitespace();
        let (centre, radius) = (parts.next().unwrap_or_default(), parts.next());
        if parts.next().is_some() {
            return Err(format!("circle[{k}] {:?} is not \"lat,lon radius\"", xml::prefix(text, 60)).into());
        }
        let (lon, lat) = parse_pair(centre).map_err(|r| format!("circle[{k}]: {r}"))?;
        match radius.map(str::parse::<f64>) {
            Some(Ok(r)) if r.is_finite() && r >= 0.0 => {}
            _ => {
                return Err(format!(
                    "circle[{k}] {:?}: the radius is not a non-negative number of km",
                    xml::prefix(text, 60)
                )
                .into())
            }
        }
        sum = (sum.0 + lon, sum.1 + lat, sum.2 + 1);
    }
    if sum.2 > 0 {
        let (lon, lat) = (sum.0 / sum.2 as f64, sum.1 / sum.2 as f64);
        return Ok(GeoPoint::new(lon, lat).map(|p| (p, "circle")));
    }
    Ok(None)
}

/// What an area covers, for the map: its polygons (an open ring closed, as for its position)
/// and its circles (as polygons of 32 sides), checked like any shape; `None` when it has
/// neither, or only circles of radius 0.
fn area_shape(area: &RawArea) -> Result<Option<Shape>, Refusal> {
    let mut polygons = Vec::new();
    for (k, p) in area.texts.all(F::Polygon).enumerate() {
        let text = p.text.trim();
        if text.is_empty() {
            continue;
        }
        let mut ring = text
            .split_whitespace()
            .map(|pair| parse_pair(pair).map(|(lon, lat)| [lon, lat]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| format!("polygon[{k}]: {r}"))?;
        if ring.first() != ring.last() {
            ring.push(ring[0]);
        }
        let one = Shape::Polygon(vec![ring]);
        one.check().map_err(|e| format!("polygon[{k}]: {e}"))?;
        if let Shape::Polygon(rings) = one {
            polygons.push(rings);
        }
    }
    for c in area.texts.all(F::Circle) {
        let mut parts = c.text.split_whitespace();
        // Already read (and refused when malformed) for the area's position.
        let (Some(centre), Some(Ok(km))) = (parts.next(), parts.next().map(str::parse::<f64>)) else {
            continue;
        };
        let Some(centre) = parse_pair(centre).ok().and_then(|(lon, lat)| GeoPoint::new(lon, lat)) else {
            continue;
        };
        if let (true, Shape::Polygon(rings)) = (km > 0.0, Shape::circle(centre, km * 1000.0)) {
            polygons.push(rings);
        }
    }
    let shape = Shape::areas(polygons);
    if let Some(s) = &shape {
        s.check().map_err(|e| Refusal(e.to_string()))?;
    }
    Ok(shape)
}

/// `lat,lon` to `(lon, lat)`, in range.
fn parse_pair(pair: &str) -> Result<(f64, f64), Refusal> {
    let (lat, lon) = pair
        .split_once(',')
        .ok_or_else(|| format!("{:?} is not \"lat,lon\"", xml::prefix(pair, 60)))?;
    let (Ok(lat), Ok(lon)) = (lat.trim().parse::<f64>(), lon.trim().parse::<f64>()) else {
        return Err(format!("{:?} is not \"lat,lon\" in numbers", xml::prefix(pair, 60)).into());
    };
    if GeoPoint::new(lon, lat).is_none() {
        return Err(format!("{:?}: latitude or longitude out of range", xml::prefix(pair, 60)).into());
    }
    Ok((lon, lat))
}

/// A polygon's points as `(lon, lat)`: at least three, at most [`MAX_POLYGON_POINTS`]. CAP asks
/// for the first point repeated last; an open ring is closed implicitly rather than refused.
fn parse_points(text: &str) -> Result<Vec<(f64, f64)>, Refusal> {
    let mut points = Vec::new();
    for pair in text.split_whitespace() {
        if points.len() >= MAX_POLYGON_POINTS {
            return Err(format!("more than {MAX_POLYGON_POINTS} points").into());
        }
        points.push(parse_pair(pair)?);
    }
    if points.len() < 3 {
        return Err(format!("{} points; a polygon needs at least 3", points.len()).into());
    }
    // A polygon that spans more than half the globe in longitude crosses the antimeridian:
    // shift its western points by 360° so the centroid lands between the two halves.
    let (min, max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), (lon, _)| (a.min(*lon), b.max(*lon)));
    if max - min > 180.0 {
        for p in &mut points {
            if p.0 < 0.0 {
                p.0 += 360.0;
            }
        }
    }
    Ok(points)
}

/// The planar centroid `(lon, lat)` and absolute area (square degrees) of a ring.
fn centroid(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    // Coordinates relative to the first point keep the products small and precise.
    let (x0, y0) = points[0];
    for k in 0..points.len() {
        let (x1, y1) = (points[k].0 - x0, points[k].1 - y0);
        let (x2, y2) = (
            points[(k + 1) % points.len()].0 - x0,
            points[(k + 1) % points.len()].1 - y0,
        );
        let cross = x1 * y2 - x2 * y1;
        a += cross;
        cx += (x1 + x2) * cross;
        cy += (y1 + y2) * cross;
    }
    if a.abs() < 1e-12 {
        return (x0, y0, 0.0);
    }
    (x0 + cx / (3.0 * a), y0 + cy / (3.0 * a), (a / 2.0).abs())
}

#[cfg(test)]
#[path = "cap_tests.rs"]
mod tests;
