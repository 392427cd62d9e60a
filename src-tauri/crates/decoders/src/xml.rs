//! Guards shared by the XML adapters ([`super::cap`] and [`super::cot`]).
//!
//! Feed XML is hostile until proven otherwise, so every XML body goes through the same rules:
//!
//! - **UTF-8 only.** A UTF-8 byte-order mark is skipped; a UTF-16 one, an XML declaration naming
//!   another encoding, or any invalid byte sequence refuses the document, naming the byte offset
//!   and line. CAP and CoT producers send UTF-8 in practice, and transcoding would make every
//!   reported offset point somewhere else than the bytes the operator sees in the quarantine.
//! - **No DTDs, no entities.** A `<!DOCTYPE` anywhere refuses the document before anything in it
//!   is read. quick-xml never expands custom entities, and a reference to anything but the five
//!   predefined entities (`&lt;` ...) or a character reference is an error, so an entity bomb
//!   ("billion laughs") costs one scan of its bytes and an external entity (XXE) is never
//!   fetched.
//! - **Bounded nesting:** [`MAX_DEPTH`] elements. Real CAP (with an XML signature, inside an
//!   Atom entry) nests about ten deep and CoT about six.
//! - **Bounded text:** each adapter caps every piece of text it keeps ([`Bounded`]), so a large
//!   body never becomes a large observation.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::{BytesDecl, BytesRef, BytesStart};
use quick_xml::name::QName;
use quick_xml::XmlVersion;

use super::{DecodeError, Refusal};

/// The deepest element nesting accepted in an XML body; deeper documents are refused.
pub const MAX_DEPTH: usize = 32;

/// Why a document with a DTD is refused; tests match on its start.
pub(crate) const DOCTYPE_REFUSED: &str =
    "DOCTYPE declarations are refused: DTDs and entity declarations are never read or expanded (entity bombs, external entities)";

/// The body as text: UTF-8 checked, a UTF-8 byte-order mark skipped. The returned offset is the
/// number of bytes skipped, to add to the parser's positions.
pub(crate) fn utf8_text(body: &[u8]) -> Result<(&str, usize), DecodeError> {
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
        return Err(DecodeError {
            place: "byte 0".into(),
            reason: "UTF-16 byte-order mark: only UTF-8 XML is accepted".into(),
        });
    }
    let skip = if body.starts_with(&[0xEF, 0xBB, 0xBF]) { 3 } else { 0 };
    // SIMD validation first (several times faster than the standard library on the large
    // base64 payloads real CAP carries); only a refused body is validated again, by the
    // standard library, for the offset of its first bad byte.
    if let Ok(text) = simdutf8::basic::from_utf8(&body[skip..]) {
        return Ok((text, skip));
    }
    match std::str::from_utf8(&body[skip..]) {
        Ok(text) => Ok((text, skip)),
        Err(e) => {
            let at = skip + e.valid_up_to();
            let line = body[..at].iter().filter(|b| **b == b'\n').count() + 1;
            Err(DecodeError {
                place: format!("byte {at} (line {line})"),
                reason: format!("not UTF-8: invalid byte 0x{:02X}; only UTF-8 XML is accepted", body[at]),
            })
        }
    }
}

/// `byte N (line L, column C)` for a byte offset into `text`, for error places; `skip` is the
/// length of a byte-order mark before `text`, so that N counts the bytes of the body.
pub(crate) fn position(text: &str, offset: u64, skip: usize) -> String {
    let at = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = at - before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
    format!("byte {} (line {line}, column {column})", at + skip)
}

/// Checks an XML declaration: version 1.0 or 1.1, and UTF-8 (or its subset ASCII) if it
/// names an encoding at all.
pub(crate) fn check_decl(decl: &BytesDecl<'_>) -> Result<(), Refusal> {
    if let Some(enc) = decl.encoding() {
        let enc = enc.map_err(|e| format!("unreadable XML declaration: {e}"))?;
        if !["utf-8", "utf8", "us-ascii", "ascii"]
            .iter()
            .any(|name| enc.eq_ignore_ascii_case(name))
        {
            return Err(format!("the XML declaration names encoding {enc:?}; only UTF-8 is accepted").into());
        }
    }
    Ok(())
}

/// Appends what a reference in text stands for: a predefined entity or a character reference.
/// Anything else names an entity that could only come from a DTD, which is never read.
pub(crate) fn push_ref(r: &BytesRef<'_>, out: &mut Bounded) -> Result<(), Refusal> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => {
            out.push(c.encode_utf8(&mut [0u8; 4]));
            Ok(())
        }
        Ok(None) => match resolve_predefined_entity(r) {
            Some(s) => {
                out.push(s);
                Ok(())
            }
            None => Err(format!(
                "reference to the undeclared entity &{};: entities are never declared or expanded",
                &**r
            )
            .into()),
        },
        Err(e) => Err(format!("bad character reference &{};: {e}", &**r).into()),
    }
}

/// Text kept up to a byte limit, cut at a character boundary; remembers whether it was cut.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bounded {
    /// The text kept.
    pub text: String,
    /// The most bytes kept.
    pub cap: usize,
    /// Whether text was dropped.
    pub truncated: bool,
}

impl Bounded {
    /// Empty text that keeps at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Bounded {
        Bounded {
            text: String::new(),
            cap,
            truncated: false,
        }
    }

    /// Appends as much of `s` as fits.
    pub(crate) fn push(&mut self, s: &str) {
        let room = self.cap.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            self.text.push_str(prefix(s, room));
            self.truncated = true;
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `part` with the lifetime of `text` when it is a slice of `text`, which it is for everything a
/// reader made by `Reader::from_str(text)` hands out unchanged (names, raw tags, raw values);
/// otherwise an owned copy. Lets the adapters keep names and attribute values without
/// allocating.
pub(crate) fn borrow_from<'a>(text: &'a str, part: &str) -> Cow<'a, str> {
    let offset = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    match offset.checked_add(part.len()).and_then(|end| text.get(offset..end)) {
        Some(s) if std::ptr::eq(s.as_ptr(), part.as_ptr()) => Cow::Borrowed(s),
        _ => Cow::Owned(part.to_owned()),
    }
}

/// The text of a start tag (name and attributes) with `text`'s lifetime (see [`borrow_from`]).
pub(crate) fn tag_text<'a>(text: &'a str, e: &BytesStart<'_>) -> Cow<'a, str> {
    borrow_from(text, e)
}

/// Calls `f` with each attribute's local name and value (normalized, entities resolved) of a
/// start tag's text whose name is `name_len` bytes long; an undeclared entity or a malformed
/// attribute is an error naming it.
///
/// Plain attributes (`key="value"`, at most [`FAST_ATTRIBUTES`] of them, no duplicates) are
/// split here without allocating; anything else, and every malformed tag, goes through
/// quick-xml's own attribute iterator, so what is accepted and every error message are
/// quick-xml's. A value holding `&`, a tab or a line break is normalized by quick-xml too.
pub(crate) fn each_attribute<'t>(
    tag: &'t str,
    name_len: usize,
    mut f: impl FnMut(&'t str, Cow<'t, str>),
) -> Result<(), Refusal> {
    let mut spans = [(0usize, 0usize, 0usize, 0usize); FAST_ATTRIBUTES];
    if let Some(n) = split_attributes(tag.as_bytes(), name_len, &mut spans) {
        for &(ks, ke, vs, ve) in &spans[..n] {
            let qname = QName(&tag[ks..ke]);
            let key = qname.local_name().into_inner();
            let raw = &tag[vs..ve];
            let value = if raw.bytes().any(|b| matches!(b, b'\t' | b'\r' | b'\n' | b'&')) {
                let a = Attribute {
                    key: qname,
                    value: Cow::Borrowed(raw),
                };
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| format!("attribute {key}: {e}"))?
            } else {
                Cow::Borrowed(raw)
            };
            f(key, value);
        }
        return Ok(());
    }
    for a in Attributes::new(tag, name_len) {
        let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
        let key = a.key.local_name().into_inner();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("attribute {key}: {e}"))?;
        f(key, value);
    }
    Ok(())
}

/// The most attributes of one tag [`each_attribute`] splits itself.
pub(crate) const FAST_ATTRIBUTES: usize = 24;

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

/// Splits the attributes of a tag (from `from`) into `(key start, key end, value start, value
/// end)`, exactly as quick-xml's iterator reads them, when they are all well formed, quoted,
/// distinct and at most [`FAST_ATTRIBUTES`]; `None` otherwise (quick-xml then decides).
fn split_attributes(
    tag: &[u8],
    from: usize,
    out: &mut [(usize, usize, usize, usize); FAST_ATTRIBUTES],
) -> Option<usize> {
    let len = tag.len();
    let skip_space = |mut i: usize| {
        while i < len && is_xml_space(tag[i]) {
            i += 1;
        }
        i
    };
    let mut n = 0;
    let mut i = from.min(len);
    loop {
        i = skip_space(i);
        if i == len {
            return Some(n);
        }
        // The key runs from its first byte (whatever it is) to `=` or a space after it.
        let ks = i;
        i += 1;
        while i < len && tag[i] != b'=' && !is_xml_space(tag[i]) {
            i += 1;
        }
        let ke = i;
        i = skip_space(i);
        if i == len || tag[i] != b'=' {
            return None;
        }
        i = skip_space(i + 1);
        let quote = *tag.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let vs = i + 1;
        let ve = vs + memchr::memchr(quote, &tag[vs..])?;
        let key = &tag[ks..ke];
        if n == FAST_ATTRIBUTES || out[..n].iter().any(|&(a, b, _, _)| &tag[a..b] == key) {
            return None;
        }
        out[n] = (ks, ke, vs, ve);
        n += 1;
        i = ve + 1;
    }
}

/// Calls `f` with each attribute of a start tag read from `text` (see [`each_attribute`]), its
/// value borrowing from `text` where it can, so a caller can keep it without allocating.
pub(crate) fn each_attribute_in<'a>(
    text: &'a str,
    e: &BytesStart<'_>,
    mut f: impl FnMut(&str, Cow<'a, str>),
) -> Result<(), Refusal> {
    let name_len = e.name().as_ref().len();
    match tag_text(text, e) {
        Cow::Borrowed(tag) => each_attribute(tag, name_len, f),
        Cow::Owned(tag) => each_attribute(&tag, name_len, |k, v| f(k, Cow::Owned(v.into_owned()))),
    }
}

/// A short, printable excerpt of raw bytes for error messages (never the whole input).
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(24)];
    let mut s: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if bytes.len() > head.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// The complete parse an XML adapter starts from, for the decode benchmark: quick-xml's reader
/// over the whole body, every element's name, every attribute checked and its value
/// normalized (entities resolved), every text and CDATA section read and every entity
/// reference resolved, with nothing kept. Returns the number of elements. This is the XML
/// counterpart of the JSON adapters' `serde_json::Value` and GTFS-RT's `FeedMessage`: the
/// parser's whole output, without any mapping. `cap::tokenize` and `cot::tokenize`, the
/// tokenizer alone, are the lower bound beside it.
pub fn bare_parse(body: &[u8]) -> Result<usize, DecodeError> {
    let (text, skip) = utf8_text(body)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let err = |reader: &quick_xml::Reader<&[u8]>, e: &dyn std::fmt::Display| DecodeError {
        place: position(text, reader.error_position(), skip),
        reason: format!("malformed XML: {e}"),
    };
    let (mut elements, mut seen) = (0usize, 0usize);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                elements += 1;
                seen += e.local_name().into_inner().len();
                for a in e.attributes() {
                    let a = a.map_err(|x| err(&reader, &x))?;
                    seen += a.key.local_name().into_inner().len()
                        + a.normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|x| err(&reader, &x))?
                            .len();
                }
            }
            Ok(quick_xml::events::Event::Text(t)) => seen += t.xml10_content().len(),
            Ok(quick_xml::events::Event::CData(c)) => seen += c.xml10_content().len(),
            Ok(quick_xml::events::Event::GeneralRef(r)) => {
                let known = r.resolve_char_ref().map_err(|x| err(&reader, &x))?.is_some()
                    || resolve_predefined_entity(&r).is_some();
                if !known {
                    return Err(err(&reader, &format!("undeclared entity &{};", &*r)));
                }
                seen += 1;
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(err(&reader, &e)),
        }
    }
    std::hint::black_box(seen);
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What quick-xml's own attribute iterator makes of a tag: the reference for the fast path.
    fn reference(tag: &str, name_len: usize) -> Result<Vec<(String, String)>, Refusal> {
        let mut out = Vec::new();
        for a in Attributes::new(tag, name_len) {
            let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
            let key = a.key.local_name().into_inner();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("attribute {key}: {e}"))?;
            out.push((key.to_owned(), value.into_owned()));
        }
        Ok(out)
    }

    fn fast(tag: &str, name_len: usize) -> Result<Vec<(String, String)>, Refusal> {
        let mut out = Vec::new();
        each_attribute(tag, name_len, |k, v| out.push((k.to_owned(), v.into_owned())))?;
        Ok(out)
    }

    #[test]
    fn attributes_are_read_as_quick_xml_reads_them() {
        for tag in [
            r#"t a="1" b='2'"#,
            r#"t a = "1"	b="x&amp;y" c="l1
l2""#,
            r#"t p:a="1" q:a="2""#,
            r#"t a="1"b="2""#,
            r#"t a="1" a="2""#,
            r#"t ="1""#,
            r#"t a"#,
            r#"t a="1"#,
            r#"t a=1"#,
            r#"t a="&undeclared;""#,
            "t ",
            "t",
        ] {
            assert_eq!(fast(tag, 1), reference(tag, 1), "{tag:?}");
        }
        let many: String = (0..40).map(|k| format!(" a{k}=\"{k}\"")).collect();
        let many = format!("t{many}");
        assert_eq!(fast(&many, 1), reference(&many, 1));
    }

    proptest! {
        #[test]
        fn random_tags_read_as_quick_xml_reads_them(body in "[ab:= \"'&;\t\nxé<>]{0,40}") {
            let tag = format!("t{body}");
            prop_assert_eq!(fast(&tag, 1), reference(&tag, 1));
        }
    }

    #[test]
    fn encodings_other_than_utf8_are_refused_with_their_offset() {
        assert_eq!(utf8_text(b"\xEF\xBB\xBF<a/>").unwrap(), ("<a/>", 3));
        let e = utf8_text(b"<a>\n caf\xE9</a>").unwrap_err();
        assert_eq!(e.place, "byte 8 (line 2)");
        assert!(e.reason.contains("0xE9"), "{e}");
        assert!(utf8_text(b"\xFF\xFE<\0a\0").unwrap_err().reason.contains("UTF-16"));
    }

    #[test]
    fn bounded_text_cuts_on_a_character_boundary() {
        let mut b = Bounded::new(5);
        b.push("ab");
        b.push("cdé");
        assert_eq!((b.text.as_str(), b.truncated), ("abcd", true));
        assert_eq!(position("a\nbc", 3, 0), "byte 3 (line 2, column 2)");
        assert_eq!(excerpt(b"\x00\x01abc"), "\"..abc\"");
    }
}
