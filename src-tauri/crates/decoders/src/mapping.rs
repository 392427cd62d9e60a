//! Pieces the adapters share: reading a feed's `mapping` table with errors that name the field,
//! threshold rules that raise a reading's severity, the window of believable timestamps, and
//! JSON parse errors that say what was wrong in words an operator can act on.
//!
//! The mapping is read by hand rather than through `serde` derive because a derived reader
//! cannot say *which* field of a nested table was wrong (`mapping.thresholds[2].below`), and
//! that is what a person fixing a config file needs.

use cityops_core::model::{Millis, Severity};
use serde_json::{Map, Value};

use super::{AdapterConfigError, DecodeError, Refusal};

/// How far an observed time may lie from the arrival time before the observation is refused:
/// one year either way. Clocks of field devices drift by minutes, feeds lag by hours after an
/// outage, but a timestamp a year off is a broken clock, a unit mix-up (seconds read as
/// milliseconds) or hostile input, and would put the observation outside any replay window.
pub const MAX_CLOCK_SKEW_MS: Millis = 366 * 24 * 3600 * 1000;

/// Refuses an observed time too far from the arrival time (see [`MAX_CLOCK_SKEW_MS`]).
pub fn check_skew(observed_ms: Millis, received_ms: Millis) -> Result<(), Refusal> {
    let skew = observed_ms.saturating_sub(received_ms);
    if skew.unsigned_abs() > MAX_CLOCK_SKEW_MS as u64 {
        let days = skew / (24 * 3600 * 1000);
        return Err(format!(
            "timestamp {} is {days} days from the arrival time {} (the limit is 366 days either way)",
            rfc3339(observed_ms),
            rfc3339(received_ms)
        )
        .into());
    }
    Ok(())
}

/// An instant as RFC 3339 with milliseconds in UTC, or the raw number when it is out of range.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Parses an RFC 3339 timestamp into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Turns a `serde_json` error on a whole body into a [`DecodeError`] that says where (line and
/// column) and explains the cases serde's own words leave puzzling: `NaN`/`Infinity` literals,
/// the nesting limit and numbers beyond `f64`.
pub fn json_error(e: &serde_json::Error, body: &[u8]) -> DecodeError {
    let place = format!("$ (line {}, column {})", e.line(), e.column());
    let msg = e.to_string();
    let reason = if msg.starts_with("recursion limit exceeded") {
        "nested deeper than 128 levels (the JSON parser's recursion limit); the message is refused whole".to_owned()
    } else if msg.starts_with("number out of range") {
        format!("a number is beyond the range of a 64-bit float: {msg}")
    } else if let Some(word) = non_json_literal(body, e) {
        format!("{word} is not a JSON value (RFC 8259 has no NaN or Infinity); send null or a string instead")
    } else {
        format!("not JSON: {msg}")
    };
    DecodeError { place, reason }
}

/// The `NaN`/`Infinity` literal at the place serde_json stopped, if that is what stopped it.
fn non_json_literal(body: &[u8], e: &serde_json::Error) -> Option<&'static str> {
    // serde_json reports 1-based lines and columns; find the byte offset of the column, then
    // look around it, since the column points at or just after the offending character.
    let line_start = body
        .split_inclusive(|b| *b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(<[u8]>::len)
        .sum::<usize>();
    let at = line_start + e.column().saturating_sub(1);
    let from = at.saturating_sub(9);
    let window = body.get(from..(at + 9).min(body.len()))?;
    let text = String::from_utf8_lossy(window);
    ["Infinity", "NaN"].into_iter().find(|w| text.contains(w))
}

/// Reads a feed's mapping: a table (or nothing) whose keys are checked against a known list,
/// so a misspelt key is an error rather than a silently ignored choice.
pub struct MappingReader<'a> {
    feed: &'a str,
}

impl<'a> MappingReader<'a> {
    /// A reader for the mapping of `feed`.
    pub fn new(feed: &'a str) -> Self {
        MappingReader { feed }
    }

    /// An error about `field` (a path such as `mapping.thresholds[0].below`).
    pub fn err(&self, field: &str, reason: impl Into<String>) -> AdapterConfigError {
        AdapterConfigError {
            feed: self.feed.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The table at `path`, empty when the value is absent or null; refuses unknown keys.
    pub fn table<'v>(
        &self,
        v: Option<&'v Value>,
        path: &str,
        known: &[&str],
    ) -> Result<Option<&'v Map<String, Value>>, AdapterConfigError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(self.err(
                        &format!("{path}.{k}"),
                        format!("unknown key (known: {})", known.join(", ")),
                    ));
                }
                Ok(Some(m))
            }
            Some(other) => Err(self.err(path, format!("expected a table, found {}", type_name(other)))),
        }
    }

    /// An optional string.
    pub fn string(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<Option<String>, AdapterConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(self.err(&format!("{path}.{key}"), "is empty")),
            Some(other) => Err(self.err(
                &format!("{path}.{key}"),
                format!("expected a string, found {}", type_name(other)),
            )),
        }
    }

    /// An optional finite number.
    pub fn number(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<Option<f64>, AdapterConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| self.err(&format!("{path}.{key}"), "not a finite number")),
            Some(other) => Err(self.err(
                &format!("{path}.{key}"),
                format!("expected a number, found {}", type_name(other)),
            )),
        }
    }

    /// An optional non-negative integer.
    pub fn unsigned(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<Option<u64>, AdapterConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                self.err(
                    &format!("{path}.{key}"),
                    format!("expected a non-negative integer, found {v}"),
                )
            }),
        }
    }

    /// An optional severity word.
    pub fn severity(
        &self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<Severity>, AdapterConfigError> {
        self.string(m, path, key)?
            .map(|s| {
                s.parse::<Severity>()
                    .map_err(|e| self.err(&format!("{path}.{key}"), e.to_string()))
            })
            .transpose()
    }

    /// An optional array of tables.
    pub fn tables<'v>(
        &self,
        m: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Vec<&'v Map<String, Value>>, AdapterConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_object().ok_or_else(|| {
                        self.err(
                            &format!("{path}.{key}[{i}]"),
                            format!("expected a table, found {}", type_name(v)),
                        )
                    })
                })
                .collect(),
            Some(other) => Err(self.err(
                &format!("{path}.{key}"),
                format!("expected an array of tables, found {}", type_name(other)),
            )),
        }
    }
}

/// A JSON type's name, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One rule that turns a reading into a utility observation: when the watched value is above
/// `above`, below `below`, or equal to `equals`, the reading becomes `kind` at `severity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is watched: an ObservedProperty name (SensorThings) or a field path (MQTT).
    pub watch: String,
    /// Triggers when the value is strictly greater.
    pub above: Option<f64>,
    /// Triggers when the value is strictly smaller.
    pub below: Option<f64>,
    /// Triggers when the value equals this JSON scalar (a breaker state such as `"open"`).
    pub equals: Option<Value>,
    /// The severity the reading gets.
    pub severity: Severity,
    /// The kind the reading gets.
    pub kind: String,
}

impl Threshold {
    /// Reads `mapping.thresholds[i]`; `watch_key` is `property` or `field`.
    pub fn read(
        r: &MappingReader<'_>,
        m: &Map<String, Value>,
        path: &str,
        watch_key: &str,
    ) -> Result<Threshold, AdapterConfigError> {
        let known = [watch_key, "above", "below", "equals", "severity", "kind"];
        if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(r.err(
                &format!("{path}.{k}"),
                format!("unknown key (known: {})", known.join(", ")),
            ));
        }
        let watch = r
            .string(m, path, watch_key)?
            .ok_or_else(|| r.err(&format!("{path}.{watch_key}"), "missing"))?;
        let above = r.number(m, path, "above")?;
        let below = r.number(m, path, "below")?;
        let equals = match m.get("equals") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Bool(_) | Value::Number(_))) => Some(v.clone()),
            Some(other) => {
                return Err(r.err(
                    &format!("{path}.equals"),
                    format!("expected a string, number or boolean, found {}", type_name(other)),
                ))
            }
        };
        if above.is_none() && below.is_none() && equals.is_none() {
            return Err(r.err(path, "needs at least one of above, below or equals"));
        }
        let severity = r
            .severity(m, path, "severity")?
            .ok_or_else(|| r.err(&format!("{path}.severity"), "missing"))?;
        let kind = r
            .string(m, path, "kind")?
            .ok_or_else(|| r.err(&format!("{path}.kind"), "missing"))?;
        Ok(Threshold {
            watch,
            above,
            below,
            equals,
            severity,
            kind,
        })
    }

    /// Whether the rule triggers on `value`. A number is compared with `above`/`below`; any
    /// scalar with `equals`. `Err` names a value of the wrong type for a numeric rule.
    pub fn triggers(&self, value: &Value) -> Result<bool, Refusal> {
        if let Some(eq) = &self.equals {
            if json_scalar_eq(eq, value) {
                return Ok(true);
            }
        }
        if self.above.is_none() && self.below.is_none() {
            return Ok(false);
        }
        let Some(x) = value.as_f64() else {
            // An `equals` rule may watch a string field; only a purely numeric rule insists.
            if self.equals.is_some() {
                return Ok(false);
            }
            return Err(format!(
                "expected a number to compare with the threshold, found {}",
                type_name(value)
            )
            .into());
        };
        Ok(self.above.is_some_and(|a| x > a) || self.below.is_some_and(|b| x < b))
    }

    /// A short description of what triggered, for titles: `voltage 190 below 200`.
    pub fn describe(&self, value: &Value) -> String {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let x = value.as_f64();
        if let (Some(b), Some(x)) = (self.below, x) {
            if x < b {
                return format!("{} {shown} below {b}", self.watch);
            }
        }
        if let (Some(a), Some(x)) = (self.above, x) {
            if x > a {
                return format!("{} {shown} above {a}", self.watch);
            }
        }
        format!("{} is {shown}", self.watch)
    }
}

fn json_scalar_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The rule that wins among those that trigger: the highest severity, and among equals the
/// first listed, so the order of the config file is the tie-break an operator can see.
pub fn worst<'t>(hits: impl IntoIterator<Item = &'t Threshold>) -> Option<&'t Threshold> {
    let mut best: Option<&Threshold> = None;
    for t in hits {
        if best.is_none_or(|b| t.severity > b.severity) {
            best = Some(t);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_errors_explain_nan_nesting_and_range() {
        let e = serde_json::from_slice::<Value>(b"{\"v\": NaN}").unwrap_err();
        let d = json_error(&e, b"{\"v\": NaN}");
        assert!(d.reason.starts_with("NaN is not a JSON value"), "{d}");
        assert_eq!(d.place, "$ (line 1, column 7)");
        let body = b"{\"a\":1,\n \"v\": -Infinity}";
        let e = serde_json::from_slice::<Value>(body).unwrap_err();
        assert!(
            json_error(&e, body).reason.starts_with("Infinity is not"),
            "{}",
            json_error(&e, body)
        );
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let e = serde_json::from_str::<Value>(&deep).unwrap_err();
        assert!(json_error(&e, deep.as_bytes()).reason.contains("deeper than 128"));
        let e = serde_json::from_slice::<Value>(b"[1e400]").unwrap_err();
        assert!(json_error(&e, b"[1e400]").reason.contains("64-bit float"));
        let e = serde_json::from_slice::<Value>(b"{").unwrap_err();
        assert!(json_error(&e, b"{").reason.starts_with("not JSON"));
    }

    #[test]
    fn skew_window_is_a_year_either_way() {
        let day = 24 * 3600 * 1000;
        assert!(check_skew(365 * day, 0).is_ok());
        assert!(check_skew(-365 * day, 0).is_ok());
        assert!(check_skew(367 * day, 0).unwrap_err().0.contains("367 days"));
        assert!(check_skew(i64::MIN, i64::MAX).is_err());
    }

    #[test]
    fn thresholds_read_trigger_and_rank() {
        let r = MappingReader::new("grid");
        let m = json!({"field": "voltage_kv", "below": 9.5, "severity": "moderate", "kind": "feeder.voltage_low"});
        let t = Threshold::read(&r, m.as_object().unwrap(), "mapping.thresholds[0]", "field").unwrap();
        assert_eq!(t.triggers(&json!(8.9)), Ok(true));
        assert_eq!(t.triggers(&json!(9.5)), Ok(false));
        assert!(t.triggers(&json!("8.9")).unwrap_err().0.contains("found a string"));
        assert_eq!(t.describe(&json!(8.9)), "voltage_kv 8.9 below 9.5");
        let e = Threshold::read(
            &r,
            json!({"field": "x", "severity": "severe", "kind": "k"})
                .as_object()
                .unwrap(),
            "mapping.thresholds[1]",
            "field",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "feed \"grid\": mapping.thresholds[1]: needs at least one of above, below or equals"
        );
        let e = Threshold::read(
            &r,
            json!({"field": "x", "below": 1, "severity": "purple", "kind": "k"})
                .as_object()
                .unwrap(),
            "mapping.thresholds[2]",
            "field",
        )
        .unwrap_err();
        assert_eq!(e.field, "mapping.thresholds[2].severity");
        let e = Threshold::read(
            &r,
            json!({"field": "x", "bellow": 1}).as_object().unwrap(),
            "mapping.thresholds[3]",
            "field",
        )
        .unwrap_err();
        assert_eq!(e.field, "mapping.thresholds[3].bellow");
        let trip = Threshold::read(
            &r,
            json!({"field": "breaker", "equals": "open", "severity": "extreme", "kind": "feeder.trip"})
                .as_object()
                .unwrap(),
            "p",
            "field",
        )
        .unwrap();
        assert_eq!(trip.triggers(&json!("open")), Ok(true));
        assert_eq!(trip.triggers(&json!("closed")), Ok(false));
        assert_eq!(worst([&t, &trip]).unwrap().kind, "feeder.trip");
        assert_eq!(worst([&t, &t.clone()]).map(|w| w as *const _), Some(&t as *const _));
    }
}
