//! The operational picture: what the operator sees at one moment, the latest observation of
//! every entity received so far, and the diffs that bring a view of it up to date.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Layer, Millis, Observation};

/// The latest observation per entity, plus which entities changed since the last diff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picture {
    entities: BTreeMap<String, Observation>,
    newest: BTreeMap<Layer, Millis>,
    dirty: BTreeSet<String>,
    reset: bool,
}

/// What changed in a picture since the last diff.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PictureDiff {
    /// The view must drop everything it has before applying `upserts`.
    pub reset: bool,
    /// The current observation of every entity that changed, in entity order.
    pub upserts: Vec<Observation>,
    /// The newest observed time per layer.
    pub newest: BTreeMap<Layer, Millis>,
}

impl PictureDiff {
    /// True when the diff changes nothing.
    pub fn is_empty(&self) -> bool {
        !self.reset && self.upserts.is_empty()
    }
}

impl Picture {
    /// An empty picture.
    pub fn new() -> Picture {
        Picture::default()
    }

    /// Applies observations in arrival order: each replaces its entity's previous one.
    pub fn apply<'a>(&mut self, observations: impl IntoIterator<Item = &'a Observation>) {
        for obs in observations {
            self.take(obs.clone());
        }
    }

    fn take(&mut self, obs: Observation) {
        self.dirty.insert(obs.entity.clone());
        self.place(obs);
    }

    /// Puts an observation in its entity's place, without marking it changed.
    fn place(&mut self, obs: Observation) {
        let newest = self.newest.entry(obs.layer).or_insert(obs.observed_ms);
        *newest = (*newest).max(obs.observed_ms);
        self.entities.insert(obs.entity.clone(), obs);
    }

    /// Replaces the whole picture, for a seek, taking the observations (in arrival order)
    /// rather than copying them; the next diff is a reset, which carries every entity, so none
    /// is marked changed.
    pub fn rebuild(&mut self, observations: Vec<Observation>) {
        *self = Picture {
            reset: true,
            ..Picture::default()
        };
        for obs in observations {
            self.place(obs);
        }
    }

    /// The current observation of an entity.
    pub fn get(&self, entity: &str) -> Option<&Observation> {
        self.entities.get(entity)
    }

    /// Every current observation, in entity order.
    pub fn observations(&self) -> impl Iterator<Item = &Observation> {
        self.entities.values()
    }

    /// The number of entities shown.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when nothing is shown.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The newest observed time per layer.
    pub fn newest(&self) -> &BTreeMap<Layer, Millis> {
        &self.newest
    }

    /// Takes what changed since the last call.
    pub fn take_diff(&mut self) -> PictureDiff {
        let dirty = std::mem::take(&mut self.dirty);
        let reset = std::mem::take(&mut self.reset);
        // After a reset the view needs every entity, changed or not.
        let upserts = match reset {
            true => self.entities.values().cloned().collect(),
            false => dirty.iter().filter_map(|e| self.entities.get(e).cloned()).collect(),
        };
        PictureDiff {
            reset,
            upserts,
            newest: self.newest.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GeoPoint, Severity};

    pub(crate) fn obs(entity: &str, seq: u64, layer: Layer, severity: Severity) -> Observation {
        Observation {
            feed: "f".into(),
            seq,
            idx: 0,
            received_ms: seq as i64 * 1000,
            observed_ms: seq as i64 * 1000 - 500,
            layer,
            kind: "k".into(),
            severity,
            entity: entity.into(),
            position: GeoPoint { lon: 24.9, lat: 60.1 },
            title: String::new(),
            fields: Default::default(),
            shape: None,
        }
    }

    #[test]
    fn latest_per_entity_and_coalesced_diffs() {
        let mut p = Picture::new();
        let a1 = obs("a", 1, Layer::Utility, Severity::Severe);
        let b2 = obs("b", 2, Layer::Transport, Severity::Minor);
        let a3 = obs("a", 3, Layer::Utility, Severity::Normal);
        p.apply([&a1, &b2, &a3]);
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("a").unwrap().severity, Severity::Normal);
        let d = p.take_diff();
        assert!(!d.reset);
        assert_eq!(
            d.upserts,
            vec![a3.clone(), b2.clone()],
            "one upsert per entity, the latest"
        );
        assert_eq!(d.newest[&Layer::Utility], 2500);
        assert!(p.take_diff().is_empty());

        p.rebuild(vec![a1.clone()]);
        let d = p.take_diff();
        assert!(d.reset);
        assert_eq!(d.upserts, vec![a1]);
        assert_eq!(p.len(), 1);
        assert!(!p.newest().contains_key(&Layer::Transport));

        // What arrives after a rebuild, before the diff is taken, goes out with the reset.
        p.rebuild(vec![a3.clone()]);
        p.apply([&b2]);
        let d = p.take_diff();
        assert!(d.reset);
        assert_eq!(d.upserts, vec![a3, b2]);
    }
}
