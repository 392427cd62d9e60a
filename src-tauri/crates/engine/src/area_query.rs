//! "What happened here?": every observation of a run in a box and a time range, across layers
//! (or one), with counts per kind, through the store's place-and-time index. The map's box and
//! `cityops query` both ask it.

use std::collections::BTreeMap;

use cityops_core::grid::BBox;
use cityops_core::model::{Layer, Millis, Observation};
use cityops_store::{RunId, Store, StoreError};

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

impl AreaAnswer {
    /// The answer for the window: every count, and the `listed` newest observations (the map
    /// draws them; a long list would only slow the window down).
    pub fn dto(&self, listed: usize) -> AreaAnswerDto {
        let mut per_kind: Vec<KindCountDto> = self
            .per_kind
            .iter()
            .map(|(kind, (layer, count))| KindCountDto {
                kind: kind.clone(),
                layer: *layer,
                count: *count as u32,
            })
            .collect();
        per_kind.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
        // Newest observed first; among equal times, the later arrival first.
        let mut newest: Vec<&Observation> = self.observations.iter().rev().collect();
        newest.sort_by_key(|o| std::cmp::Reverse(o.observed_ms));
        AreaAnswerDto {
            count: self.observations.len() as u32,
            per_kind,
            observations: newest.into_iter().take(listed).map(MapFeatureDto::from).collect(),
            listed_all: self.observations.len() <= listed,
        }
    }
}
