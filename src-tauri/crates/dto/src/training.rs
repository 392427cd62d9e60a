//! Wire types of exercises: the trainer's inject palette and injects, the live score, the
//! shift's KPI charts and the end of an exercise.

use cityops_core::inject::InjectSpec;
use cityops_core::model::{Layer, Severity};
use cityops_core::objectives::{Outcome, Score};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One entry of the scenario's inject palette, as the trainer view offers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InjectOptionDto {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub layer: Layer,
    pub severity: Severity,
    /// The asset type the inject snaps to (`substation`), if any, and how far it looks.
    pub asset_type: Option<String>,
    pub snap_m: f64,
}

impl From<&InjectSpec> for InjectOptionDto {
    fn from(s: &InjectSpec) -> Self {
        InjectOptionDto {
            id: s.id.clone(),
            title: s.title.clone(),
            kind: s.kind.clone(),
            layer: s.layer,
            severity: s.severity,
            asset_type: s.asset_type.clone(),
            snap_m: s.snap_m,
        }
    }
}

/// What the trainer view asks for: a palette entry at a place, made by a named trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InjectRequestDto {
    pub inject: String,
    pub lon: f64,
    pub lat: f64,
    pub trainer: String,
}

/// One inject made in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InjectDto {
    #[ts(type = "number")]
    pub n: u64,
    pub inject: String,
    #[ts(type = "number")]
    pub scenario_ms: i64,
    pub trainer: String,
    /// The entity the observation is about: the snapped asset, or `inject/<n>`.
    pub entity: String,
    pub title: String,
}

/// How one objective went so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveScoreDto {
    pub id: String,
    pub title: String,
    /// `met`, `late`, `missed` or `violated` (an objective not yet due reads `missed` until
    /// it is met).
    pub outcome: String,
    pub points: f64,
    pub detail: String,
}

/// The trainee's score against the scenario's objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScoreDto {
    pub points: f64,
    pub max_points: f64,
    pub objectives: Vec<ObjectiveScoreDto>,
}

impl From<&Score> for ScoreDto {
    fn from(s: &Score) -> Self {
        let outcome = |o: &Outcome| match o {
            Outcome::Met => "met",
            Outcome::Late => "late",
            Outcome::Missed => "missed",
            Outcome::Violated => "violated",
        };
        ScoreDto {
            points: s.points,
            max_points: s.max_points,
            objectives: s
                .objectives
                .iter()
                .map(|o| ObjectiveScoreDto {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    outcome: outcome(&o.outcome).to_owned(),
                    points: o.points,
                    detail: o.detail.clone(),
                })
                .collect(),
        }
    }
}

/// One chart of the shift's KPIs: SVG markup drawn by the engine (plotters), and the totals it
/// was drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChartDto {
    pub id: String,
    pub title: String,
    pub svg: String,
    pub totals: std::collections::BTreeMap<String, f64>,
}

/// The exercise's state for the trainer view: injects so far and the live score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExerciseDto {
    pub injects: Vec<InjectDto>,
    /// `null` when the scenario has no objectives.
    pub score: Option<ScoreDto>,
    #[ts(type = "number | null")]
    pub ended_ms: Option<i64>,
    pub ended_by: Option<String>,
}
