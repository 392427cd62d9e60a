//! Incidents an operator enters by hand: a phone call or a radio report becomes an incident.
//!
//! The operator picks an incident type of the rules file, a place, a severity and a layer, and
//! describes what was reported. That becomes one tape message, a GeoJSON feature on the built-in
//! feed of its layer (`call.<layer>`), of kind `call.<type>` and stamped with the scenario time
//! it was entered. From there it goes through the pipeline, the store and the correlator like any
//! feed message: the correlator opens an incident of the chosen type with the call as its root
//! (never folding it into another incident: the operator asked for a new one), and observations
//! join it through the rules (a `spatial` rule whose `near` names `call.*`). A replay of the tape
//! therefore gives the same incident, with the same number.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{GeoPoint, Layer, Millis, Severity};
use crate::rules::Rules;
use crate::scenario::FeedSpec;
use crate::tape::TapeMessage;

/// The kind family of operators' calls: `call.<incident type>`.
pub const KIND_PREFIX: &str = "call.";

/// The longest description kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// How much of the description becomes the observation's title (and the incident's name).
const TITLE_CHARS: usize = 80;

/// What the operator entered; the window sends it as is (`NewIncidentDto` in TypeScript).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "NewIncidentDto"))]
#[serde(rename_all = "camelCase")]
pub struct CallSpec {
    /// The incident type's id in the rules file (`power_outage`).
    pub incident_type: String,
    /// The layer it belongs to on the map.
    pub layer: Layer,
    /// How bad the caller says it is.
    pub severity: Severity,
    /// What was reported, in the operator's words.
    pub description: String,
    /// Where, in WGS 84 degrees.
    pub lon: f64,
    /// Where, in WGS 84 degrees.
    pub lat: f64,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The rules file has no such incident type.
    #[error("the rules have no incident type {0:?}")]
    UnknownType(String),
    /// The place is not a position on Earth.
    #[error("{lon},{lat} is not a valid position")]
    BadPlace {
        /// Longitude given.
        lon: f64,
        /// Latitude given.
        lat: f64,
    },
    /// An incident needs something to go on.
    #[error("describe what was reported (1 to {MAX_DESCRIPTION_CHARS} characters)")]
    Description,
    /// `normal` is not a problem, so it would open nothing.
    #[error("a call's severity is minor or worse; normal opens no incident")]
    Normal,
}

/// The kind of a call of incident type `type_id`.
pub fn kind(type_id: &str) -> String {
    format!("{KIND_PREFIX}{type_id}")
}

/// The incident type id a kind names, if it is a call's kind.
pub fn type_of(kind: &str) -> Option<&str> {
    kind.strip_prefix(KIND_PREFIX).filter(|t| !t.is_empty())
}

/// The built-in feed a call on `layer` arrives on.
pub fn feed_id(layer: Layer) -> String {
    format!("call.{}", layer.as_str())
}

/// The built-in call feeds, one per layer, all GeoJSON.
pub fn feed_specs() -> Vec<FeedSpec> {
    crate::scenario::built_in_feeds(feed_id, "Operators' calls")
}

/// The entity of the `n`th call of a run (from 1).
pub fn entity(n: u64) -> String {
    format!("call/{n}")
}

/// Checks a call against the rules; answers the place and the description, trimmed.
pub fn validate<'a>(spec: &'a CallSpec, rules: &Rules) -> Result<(GeoPoint, &'a str), CallError> {
    if rules.incident_type(&spec.incident_type).is_none() {
        return Err(CallError::UnknownType(spec.incident_type.clone()));
    }
    let at = GeoPoint::new(spec.lon, spec.lat).ok_or(CallError::BadPlace {
        lon: spec.lon,
        lat: spec.lat,
    })?;
    let text = spec.description.trim();
    if text.is_empty() || text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(CallError::Description);
    }
    if spec.severity == Severity::Normal {
        return Err(CallError::Normal);
    }
    Ok((at, text))
}

/// The observation's title: the description's first line, cut at a word near 80 characters.
pub fn title(description: &str) -> String {
    let first = description.trim().lines().next().unwrap_or_default().trim();
    if first.chars().count() <= TITLE_CHARS {
        return first.to_owned();
    }
    let cut: String = first.chars().take(TITLE_CHARS).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > TITLE_CHARS / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{cut}…")
}

/// The tape message of the `n`th call of a run (from 1), entered at scenario time `at_ms` by
/// `operator`. The spec must have passed [`validate`].
pub fn message(spec: &CallSpec, n: u64, at_ms: Millis, operator: &str) -> TapeMessage {
    let description = spec.description.trim();
    let mut props = serde_json::Map::new();
    props.insert("kind".into(), Value::String(kind(&spec.incident_type)));
    props.insert(
        "severity".into(),
        serde_json::to_value(spec.severity).expect("a severity serializes"),
    );
    props.insert("title".into(), Value::String(title(description)));
    props.insert("name".into(), Value::String(title(description)));
    props.insert("description".into(), Value::String(description.to_owned()));
    props.insert("operator".into(), Value::String(operator.to_owned()));
    let at = GeoPoint {
        lon: spec.lon,
        lat: spec.lat,
    };
    crate::tape::point_message(feed_id(spec.layer), n, at_ms, &entity(n), at, props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::parse("version = 1\n[[types]]\nid = \"fire\"\ntitle = \"Fire: {name}\"\nseeds = [\"smoke.alarm\"]\n")
            .unwrap()
    }

    fn spec() -> CallSpec {
        CallSpec {
            incident_type: "fire".into(),
            layer: Layer::Alerts,
            severity: Severity::Severe,
            description: "  Smoke from a cellar window, Fleminginkatu 7.\nCaller: resident  ".into(),
            lon: 24.95,
            lat: 60.18,
        }
    }

    #[test]
    fn a_call_becomes_one_feature_on_its_layers_feed() {
        let s = spec();
        assert!(validate(&s, &rules()).is_ok());
        let msg = message(&s, 4, 2_000, "Aino");
        assert_eq!((msg.line, msg.time_ms, msg.feed.as_str()), (4, 2_000, "call.alerts"));
        let v: Value = serde_json::from_slice(&msg.body).unwrap();
        let f = &v["features"][0];
        assert_eq!(f["id"], "call/4");
        assert_eq!(f["properties"]["kind"], "call.fire");
        assert_eq!(f["properties"]["severity"], "severe");
        assert_eq!(f["properties"]["title"], "Smoke from a cellar window, Fleminginkatu 7.");
        assert_eq!(
            f["properties"]["description"],
            "Smoke from a cellar window, Fleminginkatu 7.\nCaller: resident"
        );
        assert_eq!(f["properties"]["operator"], "Aino");
        assert_eq!(f["properties"]["time"], "1970-01-01T00:00:02.000Z");
        assert_eq!(type_of("call.fire"), Some("fire"));
        assert_eq!(type_of("call."), None);
        assert_eq!(type_of("smoke.alarm"), None);
    }

    #[test]
    fn a_call_is_refused_with_the_reason() {
        let r = rules();
        let mut s = spec();
        s.incident_type = "flood".into();
        assert_eq!(validate(&s, &r), Err(CallError::UnknownType("flood".into())));
        let mut s = spec();
        s.lat = 91.0;
        assert!(matches!(validate(&s, &r), Err(CallError::BadPlace { .. })));
        let mut s = spec();
        s.description = " \n ".into();
        assert_eq!(validate(&s, &r), Err(CallError::Description));
        s.description = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert_eq!(validate(&s, &r), Err(CallError::Description));
        let mut s = spec();
        s.severity = Severity::Normal;
        assert_eq!(validate(&s, &r), Err(CallError::Normal));
    }

    #[test]
    fn a_long_first_line_is_cut_at_a_word() {
        let long = "word ".repeat(40);
        let t = title(&long);
        assert!(t.ends_with('…'));
        assert!(t.chars().count() <= TITLE_CHARS + 1);
        assert!(!t.contains("wor…"), "cut at a word: {t}");
    }
}
