//! Wire types that cross IPC to the UI. TypeScript declarations are generated from these by
//! `cargo test` into `ui/src/ipc/gen/` (see the `bindings_are_fresh` test) and committed.

use cityops_core::model::{Layer, Observation, Severity};
use cityops_core::scenario::Manifest;
pub use cityops_core::shape::Shape;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

mod dispatch;
mod feeds;
mod incidents;
mod training;
pub use dispatch::*;
pub use feeds::*;
pub use incidents::*;
pub use training::*;

/// The few error kinds the UI acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ApiErrorCode {
    /// The thing asked for does not exist (for example an observation id no longer shown).
    NotFound,
    /// The request itself was wrong.
    InvalidInput,
    /// Nobody is signed in, or the signed-in role may not do this: the UI asks for a sign-in.
    Forbidden,
    /// Anything else; the message says what, the log has the full chain.
    Internal,
}

/// An error as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub code: ApiErrorCode,
    /// A sentence for the operator.
    pub message: String,
}

/// One entity on the map: the compact form sent in diffs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MapFeatureDto {
    /// The entity id; stable, used as the map feature id.
    pub id: String,
    pub layer: Layer,
    pub kind: String,
    pub severity: Severity,
    pub lon: f64,
    pub lat: f64,
    /// Untrusted feed text.
    pub title: String,
    #[ts(type = "number")]
    pub observed_ms: i64,
    /// The area or line it covers, as a GeoJSON geometry; absent for a point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub shape: Option<Shape>,
}

impl From<&Observation> for MapFeatureDto {
    fn from(o: &Observation) -> MapFeatureDto {
        MapFeatureDto {
            id: o.entity.clone(),
            layer: o.layer,
            kind: o.kind.clone(),
            severity: o.severity,
            lon: o.position.lon,
            lat: o.position.lat,
            title: o.title.clone(),
            observed_ms: o.observed_ms,
            shape: o.shape.as_deref().cloned(),
        }
    }
}

/// A place-and-time question from the map's box: what was observed inside it between two
/// scenario times, of one layer or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AreaQueryDto {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
    pub layer: Option<Layer>,
}

/// How many observations of one kind the box holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct KindCountDto {
    pub kind: String,
    pub layer: Layer,
    pub count: u32,
}

/// The answer to an [`AreaQueryDto`]: every count, and the newest observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AreaAnswerDto {
    /// Every observation in the box and the range.
    pub count: u32,
    /// Per kind, the most first.
    pub per_kind: Vec<KindCountDto>,
    /// The newest first; all of them when `listed_all`.
    pub observations: Vec<MapFeatureDto>,
    pub listed_all: bool,
}

/// The replay clock as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClockDto {
    #[ts(type = "number")]
    pub start_ms: i64,
    #[ts(type = "number")]
    pub end_ms: i64,
    /// The scenario time the picture shows.
    #[ts(type = "number")]
    pub now_ms: i64,
    pub playing: bool,
    /// Speed factor; `null` means as fast as the pipeline goes.
    pub speed: Option<f64>,
    /// How far the tape has been ingested into the store.
    #[ts(type = "number")]
    pub ingested_until_ms: i64,
    /// The clock reached the end of the scenario.
    pub finished: bool,
    /// The scenario time the exercise was ended at; the trainee's record is closed after it.
    #[ts(type = "number | null")]
    pub ended_ms: Option<i64>,
    /// A trainer view is open and controls the clock; the trainee's window only shows it.
    pub trainer_view: bool,
}

/// Per-layer freshness and size of the picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LayerAgeDto {
    pub layer: Layer,
    /// Observed time of the newest observation on this layer, if any.
    #[ts(type = "number | null")]
    pub newest_observed_ms: Option<i64>,
    /// Entities shown on this layer.
    pub count: u32,
}

/// A change to the picture, coalesced over one clock tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MapDiffDto {
    /// Drop everything before applying `upserts` (after a seek or on subscription).
    pub reset: bool,
    pub upserts: Vec<MapFeatureDto>,
    pub clock: ClockDto,
    pub layers: Vec<LayerAgeDto>,
    /// Incident changes in the same tick; `null` when none changed.
    pub incidents: Option<IncidentsDiffDto>,
    /// The outbox after a change (an action committed, attempted, delivered, failed or
    /// cancelled); `null` when nothing changed.
    pub outbox: Option<OutboxDto>,
    /// Live mode: every feed's health, when it changed; always `null` in a replay.
    pub feeds: Option<Vec<FeedHealthDto>>,
    /// Live mode: whether the store takes what arrives, when that changed; always `null` in a
    /// replay.
    pub storage: Option<StorageHealthDto>,
    /// A workstation of a site: its link to the site, when that changed; always `null`
    /// otherwise.
    pub site: Option<SiteStatusDto>,
}

/// One observation in full, for the details panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ObservationDto {
    /// The entity id.
    pub id: String,
    pub feed: String,
    pub feed_name: String,
    pub layer: Layer,
    pub kind: String,
    pub severity: Severity,
    pub lon: f64,
    pub lat: f64,
    /// Untrusted feed text.
    pub title: String,
    #[ts(type = "number")]
    pub observed_ms: i64,
    #[ts(type = "number")]
    pub received_ms: i64,
    /// Every other payload field, untrusted feed text.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl ObservationDto {
    /// The full form of an observation, naming its feed.
    pub fn new(o: &Observation, feed_name: &str) -> ObservationDto {
        ObservationDto {
            id: o.entity.clone(),
            feed: o.feed.clone(),
            feed_name: feed_name.to_owned(),
            layer: o.layer,
            kind: o.kind.clone(),
            severity: o.severity,
            lon: o.position.lon,
            lat: o.position.lat,
            title: o.title.clone(),
            observed_ms: o.observed_ms,
            received_ms: o.received_ms,
            fields: o.fields.to_map(),
        }
    }
}

/// A feed of the loaded scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FeedDto {
    pub id: String,
    pub name: String,
    pub layer: Layer,
    pub format: String,
}

/// The loaded scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioDto {
    pub name: String,
    pub description: String,
    /// The basemap archive name, the first path segment of tile URLs.
    pub map: String,
    /// Where the map opens: lon, lat, zoom.
    pub view: [f64; 3],
    #[ts(type = "number")]
    pub start_ms: i64,
    #[ts(type = "number")]
    pub end_ms: i64,
    pub feeds: Vec<FeedDto>,
    /// Live feeds on the wall clock rather than a replayed tape: no play, pause, speed or seek.
    pub live: bool,
    /// What a trainer may inject (the manifest's `injects`).
    pub injects: Vec<InjectOptionDto>,
    /// A workstation of a site: the site's id (its clock is the site's, not the wall's).
    pub site: Option<String>,
    /// The site is an exercise: its clock is the trainer's and nothing is sent.
    pub exercise_site: bool,
    /// What an operator may enter a call as (the rules' incident types; none without rules).
    pub incident_types: Vec<IncidentTypeDto>,
    /// The zones the map draws (none without a zones file).
    pub zones: Vec<ZoneDto>,
}

/// A zone the control room watches, as the map draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ZoneDto {
    pub id: String,
    /// Its name (the zones file's text).
    pub name: String,
    pub shape: Shape,
}

impl ZoneDto {
    /// Every zone of a zones file, in file order.
    pub fn all(zones: &cityops_core::zones::Zones) -> Vec<ZoneDto> {
        zones
            .all()
            .iter()
            .map(|z| ZoneDto {
                id: z.id.clone(),
                name: z.name.clone(),
                shape: z.shape.clone(),
            })
            .collect()
    }
}

impl ScenarioDto {
    /// The wire form of a manifest whose clock runs from its start to `end_ms`.
    pub fn new(m: &Manifest, end_ms: i64) -> ScenarioDto {
        ScenarioDto {
            name: m.name.clone(),
            description: m.description.clone(),
            map: m.map.clone(),
            view: m.view,
            start_ms: m.start_ms,
            end_ms,
            feeds: m
                .feeds
                .iter()
                .map(|f| FeedDto {
                    id: f.id.clone(),
                    name: if f.name.is_empty() {
                        f.id.clone()
                    } else {
                        f.name.clone()
                    },
                    layer: f.layer,
                    format: f.format.as_str().to_owned(),
                })
                .collect(),
            live: false,
            injects: m.injects.iter().map(InjectOptionDto::from).collect(),
            site: None,
            exercise_site: false,
            incident_types: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// Every declaration the UI needs, as `(file name, TypeScript source)`.
pub fn typescript_bindings() -> Vec<(String, String)> {
    fn one<T: TS + 'static + ?Sized>() -> (String, String) {
        let cfg = ts_rs::Config::default();
        let path = T::output_path().expect("exportable type");
        (
            path.to_string_lossy().into_owned(),
            T::export_to_string(&cfg).expect("declaration renders"),
        )
    }
    vec![
        one::<Layer>(),
        one::<Severity>(),
        one::<ApiErrorCode>(),
        one::<ApiError>(),
        one::<MapFeatureDto>(),
        one::<Shape>(),
        one::<ZoneDto>(),
        one::<AreaQueryDto>(),
        one::<KindCountDto>(),
        one::<AreaAnswerDto>(),
        one::<ClockDto>(),
        one::<IncidentTypeDto>(),
        one::<NewIncidentDto>(),
        one::<CallDto>(),
        one::<LayerAgeDto>(),
        one::<MapDiffDto>(),
        one::<ObservationDto>(),
        one::<serde_json::Value>(),
        one::<FeedDto>(),
        one::<ScenarioDto>(),
        one::<FeedHealthDto>(),
        one::<StorageHealthDto>(),
        one::<SiteStatusDto>(),
        one::<PresenceDto>(),
        one::<QuarantineEntryDto>(),
        one::<QuarantineFeedDto>(),
        one::<QuarantineDto>(),
        one::<LifecycleStatus>(),
        one::<OperatorRole>(),
        one::<OperatorDto>(),
        one::<RosterEntryDto>(),
        one::<AreaDto>(),
        one::<IncidentEntryDto>(),
        one::<MemberDto>(),
        one::<LayerGroupDto>(),
        one::<TimelineEntryDto>(),
        one::<SopStepDto>(),
        one::<IncidentDetailDto>(),
        one::<IncidentsDiffDto>(),
        one::<BackendKind>(),
        one::<BackendDto>(),
        one::<AlertSeverity>(),
        one::<ActionParams>(),
        one::<ActionRequestDto>(),
        one::<HeaderDto>(),
        one::<ActionPreviewDto>(),
        one::<ActionStatus>(),
        one::<ActionDto>(),
        one::<OutboxDto>(),
        one::<InjectOptionDto>(),
        one::<InjectRequestDto>(),
        one::<InjectDto>(),
        one::<ObjectiveScoreDto>(),
        one::<ScoreDto>(),
        one::<ChartDto>(),
        one::<ExerciseDto>(),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Regenerates `ui/src/ipc/gen/` and fails if anything there was stale, so a change to a
    /// DTO cannot land without its TypeScript twin.
    #[test]
    fn bindings_are_fresh() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../ui/src/ipc/gen");
        let mut stale = Vec::new();
        let generated = super::typescript_bindings();
        for (file, source) in &generated {
            let path = dir.join(file);
            let header = "// Generated from Rust by `cargo test` (cityops-dto). Do not edit.\n";
            let want = format!("{header}{}", source.trim_start_matches(|c| c != '\n').trim_start());
            if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &want).unwrap();
                stale.push(file.clone());
            }
        }
        // A file no DTO generates any more is stale too.
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
                // The command client is the desktop's: its build.rs writes it from the command
                // declarations, beside the types it imports.
                if rel == "commands.ts" {
                    continue;
                }
                if !generated.iter().any(|(f, _)| *f == rel) {
                    std::fs::remove_file(&path).unwrap();
                    stale.push(rel);
                }
            }
        }
        assert!(
            stale.is_empty(),
            "regenerated stale TypeScript bindings {stale:?}; commit them"
        );
    }
}
