//! "What happened here?": the observations of a run in a box and a time range, across layers
//! (or one), with counts per kind, through the store's place-and-time index: every one of them
//! for `cityops query`, and for the map's box the counts and the newest, which the store
//! answers without reading every row ([`Store::area_summary`]).

use std::collections::BTreeMap;

use cityops_core::grid::BBox;
use cityops_core::model::{Layer, Millis, Observation};
use cityops_store::{AreaSummary, RunId, Sighting, Store, StoreError};

use crate::dto::{AreaAnswerDto, KindCountDto, MapFeatureDto};

/// What was observed in the box and the time range.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaAnswer {
    /// In arrival order.
    pub observations: Vec<Observation>,
    /// How many of each kind, with the kind's layer.
    pub per_kind: BTreeMap<String, (Layer, usize)>,
}

/// The observations of `run` observed in `[from, to]` inside `bbox` that arrived by
/// `arrived_by` (a replay's clock: the store holds the tape ahead of it), of `layer` when given.
pub fn area(
    store: &Store,
    run: RunId,
    bbox: BBox,
    (from, to): (Millis, Millis),
    arrived_by: Millis,
    layer: Option<Layer>,
) -> Result<AreaAnswer, StoreError> {
    let observations: Vec<Observation> = store
        .in_area(Some(run), bbox, from, to)?
        .into_iter()
        .filter(|o| o.received_ms <= arrived_by && layer.is_none_or(|l| o.layer == l))
        .collect();
    let mut per_kind = BTreeMap::new();
    for o in &observations {
        per_kind.entry(o.kind.clone()).or_insert((o.layer, 0)).1 += 1;
    }
    Ok(AreaAnswer { observations, per_kind })
}

/// The window's answer: every count of the summary, and its newest observations.
pub fn answer_dto(summary: &AreaSummary, listed: usize) -> AreaAnswerDto {
    let mut per_kind: Vec<KindCountDto> = summary
        .per_kind
        .iter()
        .map(|(kind, (layer, count))| KindCountDto {
            kind: kind.clone(),
            layer: *layer,
            count: *count as u32,
        })
        .collect();
    per_kind.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    AreaAnswerDto {
        count: summary.total as u32,
        per_kind,
        observations: summary.newest.iter().take(listed).map(feature).collect(),
        listed_all: summary.total as usize <= listed,
    }
}

fn feature(s: &Sighting) -> MapFeatureDto {
    MapFeatureDto {
        id: s.entity.clone(),
        layer: s.layer,
        kind: s.kind.clone(),
        severity: s.severity,
        lon: s.position.lon,
        lat: s.position.lat,
        title: s.title.clone(),
        observed_ms: s.observed_ms,
        shape: s.shape.as_deref().cloned(),
    }
}
