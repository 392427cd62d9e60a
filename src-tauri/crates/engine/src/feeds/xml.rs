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

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesRef};

use super::DecodeError;

/// The deepest element nesting accepted in an XML body; deeper documents are refused.
pub const MAX_DEPTH: usize = 32;

/// Why a document with a DTD is refused; tests match on its start.
pub(crate) const DOCTYPE_REFUSED: &str =
    "DOCTYPE declarations are refused: DTDs and entity declarations are never read or expanded (entity bombs, external entities)";

/// The body as text: UTF-8 checked, a UTF-8 byte-order mark skipped. The returned offset is the
/// number of bytes skipped, to add to the parser's positions.
pub(crate) fn utf8_text(body: &[u8]) -> Result<(&str, usize), DecodeError> {
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
        return Err(DecodeError { place: "byte 0".into(), reason: "UTF-16 byte-order mark: only UTF-8 XML is accepted".into() });
    }
    let skip = if body.starts_with(&[0xEF, 0xBB, 0xBF]) { 3 } else { 0 };
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
pub(crate) fn check_decl(decl: &BytesDecl<'_>) -> Result<(), String> {
    if let Some(enc) = decl.encoding() {
        let enc = enc.map_err(|e| format!("unreadable XML declaration: {e}"))?;
        let lower = enc.to_ascii_lowercase();
        if !matches!(lower.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
            return Err(format!("the XML declaration names encoding {enc:?}; only UTF-8 is accepted"));
        }
    }
    Ok(())
}

/// Appends what a reference in text stands for: a predefined entity or a character reference.
/// Anything else names an entity that could only come from a DTD, which is never read.
pub(crate) fn push_ref(r: &BytesRef<'_>, out: &mut Bounded) -> Result<(), String> {
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
            None => Err(format!("reference to the undeclared entity &{};: entities are never declared or expanded", &**r)),
        },
        Err(e) => Err(format!("bad character reference &{};: {e}", &**r)),
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
        Bounded { text: String::new(), cap, truncated: false }
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

/// A short, printable excerpt of raw bytes for error messages (never the whole input).
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(24)];
    let mut s: String = String::from_utf8_lossy(head).chars().map(|c| if c.is_control() { '.' } else { c }).collect();
    if bytes.len() > head.len() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
