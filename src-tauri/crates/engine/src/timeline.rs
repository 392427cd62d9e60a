//! The picture index: where time travel finds the picture at any moment without grouping the
//! whole observation log.
//!
//! The picture at `t` is the latest row (by insert order, the row id) of every entity among the
//! rows that arrived at or before `t`. Asking SQLite for it groups every row up to `t` by
//! entity, which over a day of a million rows takes most of a second. Instead, the index keeps
//! *snapshots*: at arrival-time boundaries `k`, the id of every entity's latest row among those
//! received at or before `k`, a dense array over entity numbers (8 bytes per entity). The
//! picture at `t` is then the snapshot at or before `t`, updated with the (id, entity) of the
//! rows that arrived between the two, and only the final rows are read in full.
//!
//! The index follows the log by row id, not by time, so rows that land behind the boundaries
//! already taken (out-of-order tape lines, a trainer's inject, live rows committed late) patch
//! every snapshot they belong to: a snapshot always holds exactly what its boundary says.
//! Snapshots are taken every [`SNAPSHOT_MS`] of arrival time at first; beyond
//! [`MAX_SNAPSHOTS`] the spacing doubles and the snapshots off it are dropped, as the incident
//! desk does with its checkpoints, so a long run costs a bounded memory.

use std::collections::{BTreeMap, HashMap};

use cityops_core::model::{Millis, Observation};

use cityops_store::{RunId, Store, StoreError};

/// Arrival time between two snapshots, at first.
pub const SNAPSHOT_MS: Millis = 60_000;
/// The most snapshots kept (plus the one before everything).
pub const MAX_SNAPSHOTS: usize = 48;

/// The latest row id per entity number; 0 (no row id is 0) where the entity has no row yet.
type Latest = Vec<i64>;

fn set(latest: &mut Latest, entity: u32, id: i64) {
    let e = entity as usize;
    if latest.len() <= e {
        latest.resize(e + 1, 0);
    }
    latest[e] = latest[e].max(id);
}

/// Snapshots of which row is the picture's, per entity, over arrival time (see the module).
pub struct PictureIndex {
    run: RunId,
    numbers: HashMap<String, u32>,
    /// Every row received at or before `upto`, folded in.
    current: Latest,
    upto: Millis,
    /// Rows read from the log that arrived after `upto`, as (arrival, entity, id), in id order.
    pending: Vec<(Millis, u32, i64)>,
    /// The last row id read from the log.
    last_id: i64,
    spacing: Millis,
    /// Keyed by boundary; the first (the run's start, empty) is never dropped.
    snapshots: BTreeMap<Millis, Latest>,
}

impl PictureIndex {
    /// An index of run `run`'s rows, whose first boundary is just before `start_ms`.
    pub fn new(run: RunId, start_ms: Millis) -> PictureIndex {
        let upto = start_ms - 1;
        PictureIndex {
            run,
            numbers: HashMap::new(),
            current: Vec::new(),
            upto,
            pending: Vec::new(),
            last_id: 0,
            spacing: SNAPSHOT_MS,
            snapshots: BTreeMap::from([(upto, Vec::new())]),
        }
    }

    fn number(&mut self, entity: String) -> u32 {
        let next = self.numbers.len() as u32;
        *self.numbers.entry(entity).or_insert(next)
    }

    /// Reads the rows committed since the last call, and takes the snapshots of every boundary
    /// up to `settled`, the arrival time up to which every row is committed (a time the run
    /// reached, not an open bound: one snapshot boundary is passed per [`SNAPSHOT_MS`] or more).
    pub fn follow(&mut self, store: &Store, settled: Millis) -> Result<(), StoreError> {
        let rows = store.rows_after(self.run, self.last_id)?;
        for (id, entity, received) in rows {
            let e = self.number(entity);
            self.last_id = id;
            if received <= self.upto {
                // Behind the boundaries taken: it belongs to every snapshot from its arrival on.
                set(&mut self.current, e, id);
                for (_, snap) in self.snapshots.range_mut(received..) {
                    set(snap, e, id);
                }
            } else {
                self.pending.push((received, e, id));
            }
        }
        // A stable sort: rows of the same arrival stay in id order.
        self.pending.sort_by_key(|p| p.0);
        let mut taken = 0;
        loop {
            let boundary = (self.upto.div_euclid(self.spacing) + 1) * self.spacing;
            if boundary > settled {
                break;
            }
            while let Some(&(received, e, id)) = self.pending.get(taken) {
                if received > boundary {
                    break;
                }
                set(&mut self.current, e, id);
                taken += 1;
            }
            self.upto = boundary;
            if self.snapshots.len() > MAX_SNAPSHOTS {
                self.spacing *= 2;
                let (spacing, first) = (
                    self.spacing,
                    *self.snapshots.keys().next().expect("the first snapshot stays"),
                );
                self.snapshots.retain(|k, _| *k == first || k.rem_euclid(spacing) == 0);
                tracing::debug!(spacing, kept = self.snapshots.len(), "picture snapshots thinned");
            }
            if boundary.rem_euclid(self.spacing) == 0 {
                self.snapshots.insert(boundary, self.current.clone());
            }
        }
        self.pending.drain(..taken);
        Ok(())
    }

    /// The picture at `t`: the latest observation of every entity that had arrived by then, in
    /// arrival (row id) order, the same as [`Store::picture_at`]. Call [`PictureIndex::follow`]
    /// first so that every committed row is indexed.
    pub fn picture_at(&mut self, store: &Store, t: Millis) -> Result<Vec<Observation>, StoreError> {
        let Some((&k, snap)) = self.snapshots.range(..=t).next_back() else {
            // Before the run's start: whatever arrived that early, from the log itself.
            return store.picture_at(self.run, t);
        };
        let mut latest = snap.clone();
        for (id, entity) in store.arrival_ids_between(self.run, k, t)? {
            let e = self.number(entity);
            set(&mut latest, e, id);
        }
        let mut ids: Vec<i64> = latest.into_iter().filter(|id| *id > 0).collect();
        ids.sort_unstable();
        store.observations_by_id(&ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cityops_core::model::{GeoPoint, Layer, Severity};

    fn obs(entity: &str, received_ms: Millis, seq: u64) -> Observation {
        Observation {
            feed: "f".into(),
            seq,
            idx: 0,
            received_ms,
            observed_ms: received_ms,
            layer: Layer::Utility,
            kind: "k".into(),
            severity: Severity::Minor,
            entity: entity.into(),
            position: GeoPoint { lon: 24.9, lat: 60.1 },
            title: format!("{entity} at {received_ms}"),
            fields: Default::default(),
            shape: None,
        }
    }

    /// Rows in and out of order, some behind boundaries already taken, across many thinnings:
    /// the index's picture equals the log's own at every moment asked.
    #[test]
    fn the_index_agrees_with_the_log_at_any_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let run = store.begin_run("t", "now").unwrap();
        let start = 1_000_000;
        let mut index = PictureIndex::new(run, start);
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut clock = start;
        for round in 0..120u64 {
            let mut batch = Vec::new();
            for i in 0..40 {
                clock += (next() % 20_000) as Millis;
                // One row in eight arrives stamped up to an hour behind the clock.
                let received = if next() % 8 == 0 {
                    clock - (next() % 3_600_000) as Millis
                } else {
                    clock
                };
                batch.push(obs(&format!("e{}", next() % 60), received, round * 100 + i));
            }
            store.append(run, &batch, &[], (round, clock)).unwrap();
            index.follow(&store, clock).unwrap();
            for _ in 0..3 {
                let t = start - 10_000 + (next() % (clock - start + 20_000) as u64) as Millis;
                assert_eq!(
                    index.picture_at(&store, t).unwrap(),
                    store.picture_at(run, t).unwrap(),
                    "round {round}, t {t}"
                );
            }
        }
        assert!(
            index.snapshots.len() <= MAX_SNAPSHOTS + 2,
            "{} snapshots",
            index.snapshots.len()
        );
        assert!(index.spacing > SNAPSHOT_MS, "the spacing doubled as the run grew");
    }
}
