//! The scenario manifest: what a scenario is called, where it happens, when it starts, and
//! which feeds its tape carries. The format is documented in `fixtures/README.md`.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::model::{Layer, Millis};
use crate::tape::FeedFormat;

/// The file name of a scenario's manifest, in its folder.
pub const MANIFEST: &str = "scenario.toml";

/// A parsed and validated `scenario.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Short name shown in the window title.
    pub name: String,
    /// What happens, for trainers.
    pub description: String,
    /// The basemap archive the scenario is drawn on (a file `maps/<map>.mbtiles`).
    pub map: String,
    /// Scenario time at which the clock starts.
    pub start_ms: Millis,
    /// Scenario time at which the clock stops; `None` means the tape's last message.
    pub end_ms: Option<Millis>,
    /// The tape file, relative to the scenario folder.
    pub tape: String,
    /// The asset file (GeoJSON), relative to the scenario folder, if any.
    pub assets: Option<String>,
    /// The correlation rules file (TOML), relative to the scenario folder, if any. Without one
    /// the scenario is replayed without incidents.
    pub rules: Option<String>,
    /// The zones file (GeoJSON polygons, `cityops_core::zones`), relative to the scenario
    /// folder, if any.
    pub zones: Option<String>,
    /// Where the map opens: `[lon, lat, zoom]`.
    pub view: [f64; 3],
    /// The feeds the tape carries.
    pub feeds: Vec<FeedSpec>,
    /// What a trainee should do, for scoring (`objectives`); checked against the rules' incident
    /// types when the scenario is loaded.
    pub objectives: Vec<crate::objectives::Objective>,
    /// What a trainer may inject during an exercise (`injects`, see [`crate::inject`]).
    pub injects: Vec<crate::inject::InjectSpec>,
}

/// One feed of a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    /// The id used on tape lines.
    pub id: String,
    /// The layer its observations belong to.
    pub layer: Layer,
    /// The payload format it speaks.
    pub format: FeedFormat,
    /// A human name for the feed.
    #[serde(default)]
    pub name: String,
    /// Per-feed mapping choices, read by the feed's adapter (for example sensor thresholds);
    /// `null` when the feed has none.
    #[serde(default)]
    pub mapping: serde_json::Value,
}

/// Feeds every scenario has without declaring them, one per layer, all GeoJSON: `id_of`
/// names each (`inject.utility`), and `name` says whose they are ("Trainer injects").
pub fn built_in_feeds(id_of: fn(Layer) -> String, name: &str) -> Vec<FeedSpec> {
    Layer::ALL
        .iter()
        .map(|l| FeedSpec {
            id: id_of(*l),
            layer: *l,
            format: FeedFormat::GeoJson,
            name: format!("{name} ({})", l.as_str()),
            mapping: serde_json::Value::Null,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    #[serde(default)]
    description: String,
    map: String,
    start: String,
    #[serde(default)]
    end: Option<String>,
    #[serde(default = "default_tape")]
    tape: String,
    #[serde(default)]
    assets: Option<String>,
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    zones: Option<String>,
    view: [f64; 3],
    #[serde(default)]
    feeds: Vec<FeedSpec>,
    #[serde(default)]
    objectives: Vec<crate::objectives::Objective>,
    #[serde(default)]
    injects: Vec<crate::inject::InjectSpec>,
}

fn default_tape() -> String {
    "tape.ndjson".to_owned()
}

/// Why a manifest was refused. `line` is 1-based when the problem has a place in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Finds the line on which `key = ...` first appears, to point errors found after parsing.
fn line_of_key(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(key) && l.contains(value)
        })
        .map(|i| i + 1)
}

fn parse_time(text: &str, key: &str, value: &str) -> Result<Millis, ManifestError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ManifestError {
            line: line_of_key(text, key, value),
            message: format!("{key} = {value:?} is not an RFC 3339 timestamp"),
        })
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let start_ms = parse_time(text, "start", &raw.start)?;
        let end_ms = raw.end.as_deref().map(|e| parse_time(text, "end", e)).transpose()?;
        if let Some(end) = end_ms {
            if end < start_ms {
                return Err(ManifestError {
                    line: line_of_key(text, "end", raw.end.as_deref().unwrap_or_default()),
                    message: "end is before start".to_owned(),
                });
            }
        }
        let mut seen = BTreeSet::new();
        for feed in &raw.feeds {
            if feed.id.trim().is_empty() || !seen.insert(feed.id.as_str()) {
                return Err(ManifestError {
                    line: line_of_key(text, "id", &format!("\"{}\"", feed.id)),
                    message: format!("feed id {:?} is empty or used twice", feed.id),
                });
            }
        }
        if let Err(e) = crate::inject::validate(&raw.injects) {
            let index = match &e {
                crate::inject::InjectError::Spec { index, .. } => *index,
                _ => 0,
            };
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.trim() == "[[injects]]")
                .nth(index)
                .map(|(n, _)| n + 1);
            return Err(ManifestError {
                line,
                message: e.to_string(),
            });
        }
        let [lon, lat, zoom] = raw.view;
        if crate::GeoPoint::new(lon, lat).is_none() || !(0.0..=22.0).contains(&zoom) {
            return Err(ManifestError {
                line: line_of_key(text, "view", "["),
                message: "view must be [lon, lat, zoom] with zoom 0..22".to_owned(),
            });
        }
        Ok(Manifest {
            name: raw.name,
            description: raw.description,
            map: raw.map,
            start_ms,
            end_ms,
            tape: raw.tape,
            assets: raw.assets,
            rules: raw.rules,
            zones: raw.zones,
            view: raw.view,
            feeds: raw.feeds,
            objectives: raw.objectives,
            injects: raw.injects,
        })
    }

    /// The feed with the given id.
    pub fn feed(&self, id: &str) -> Option<&FeedSpec> {
        self.feeds.iter().find(|f| f.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "Storm"
description = "A storm night."
map = "helsinki"
start = "2026-11-26T21:00:00Z"
view = [24.945, 60.171, 14.5]

[[feeds]]
id = "scada"
layer = "utility"
format = "geojson"
"#;

    #[test]
    fn parses_a_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.name, "Storm");
        assert_eq!(m.tape, "tape.ndjson");
        assert_eq!(m.rules, None);
        let with_rules = GOOD.replace("view =", "rules = \"../../rules/default.toml\"\nview =");
        assert_eq!(
            Manifest::parse(&with_rules).unwrap().rules.as_deref(),
            Some("../../rules/default.toml")
        );
        assert_eq!(m.feed("scada").unwrap().layer, Layer::Utility);
        assert_eq!(m.start_ms, 1_795_726_800_000);
    }

    #[test]
    fn errors_name_the_line() {
        let bad_layer = GOOD.replace("\"utility\"", "\"power\"");
        let e = Manifest::parse(&bad_layer).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("power"), "{e}");

        let bad_time = GOOD.replace("2026-11-26T21:00:00Z", "tonight");
        let e = Manifest::parse(&bad_time).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");

        let dup = format!("{GOOD}\n[[feeds]]\nid = \"scada\"\nlayer = \"alerts\"\nformat = \"geojson\"\n");
        assert!(Manifest::parse(&dup).unwrap_err().message.contains("used twice"));

        let twice = format!("{GOOD}\n[[injects]]\nid = \"a\"\ntitle = \"A\"\nkind = \"x\"\nlayer = \"alerts\"\n\n[[injects]]\nid = \"a\"\ntitle = \"B\"\nkind = \"x\"\nlayer = \"alerts\"\n");
        let e = Manifest::parse(&twice).unwrap_err();
        assert_eq!(e.line, Some(19), "{e}");
        assert!(e.message.contains("used twice"), "{e}");

        let missing = GOOD.replace("map = \"helsinki\"\n", "");
        assert!(Manifest::parse(&missing).unwrap_err().message.contains("map"));
    }
}
