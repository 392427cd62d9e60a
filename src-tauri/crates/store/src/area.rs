//! "What happened here?" as the window asks it: how many observations of each kind a box and a
//! time range hold, and the newest of them, through the place-and-time index. Counting is done
//! by SQLite without reading the rows out, and only the newest are read, without their payload
//! fields: a dense square kilometre holds thousands of observations per quarter hour, and
//! reading and decoding each was what the question cost (`BENCHMARKS.md`).

use std::collections::BTreeMap;

use cityops_core::grid::{self, BBox};
use cityops_core::model::{GeoPoint, Layer, Millis, Severity};
use cityops_core::shape::Shape;
use rusqlite::params;

use super::{RunId, Store, StoreError};

/// An observation as a list of them shows it: no payload fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub entity: String,
    pub layer: Layer,
    pub kind: String,
    pub severity: Severity,
    pub position: GeoPoint,
    pub title: String,
    pub observed_ms: Millis,
    pub shape: Option<Box<Shape>>,
}

/// What a box and a time range hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AreaSummary {
    /// Every observation found.
    pub total: u64,
    /// How many of each kind, with the kind's layer.
    pub per_kind: BTreeMap<String, (Layer, u64)>,
    /// The newest observed first (the later row first among equal times), at most as many as
    /// asked for.
    pub newest: Vec<Sighting>,
}

/// The conditions both statements share: one index range (a time bucket and a row of grid
/// cells), the exact box and range, the run, what had arrived, and the layer when given.
const WHERE: &str = "tbucket = ?1 AND cell BETWEEN ?2 AND ?3 AND observed_ms BETWEEN ?4 AND ?5 AND run = ?6 \
     AND lon BETWEEN ?7 AND ?8 AND lat BETWEEN ?9 AND ?10 AND received_ms <= ?11 AND (?12 IS NULL OR layer = ?12)";

impl Store {
    /// Counts per kind and the `listed` newest observations of run `run` observed in
    /// `[from, to]` inside `area` that arrived by `arrived_by`, of `layer` when given: the same
    /// observations as [`Store::in_area`], counted rather than read. One pass over the
    /// place-and-time index, which holds every column the count and the order need, so no row
    /// is read for it; then the newest rows alone, by id.
    pub fn area_summary(
        &self,
        run: RunId,
        area: BBox,
        (from, to): (Millis, Millis),
        arrived_by: Millis,
        layer: Option<Layer>,
        listed: usize,
    ) -> Result<AreaSummary, StoreError> {
        let mut found = self.conn.prepare_cached(&format!(
            "SELECT kind, layer, observed_ms, id FROM observations WHERE {WHERE}"
        ))?;
        let layer = layer.map(|l| l.as_str());
        let mut out = AreaSummary::default();
        // Counted by kind and layer as text, parsed once per kind at the end.
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut order: Vec<(Millis, i64)> = Vec::new();
        for bucket in grid::bucket(from)..=grid::bucket(to) {
            for (lo, hi) in area.cell_rows() {
                let p = params![
                    bucket,
                    lo,
                    hi,
                    from,
                    to,
                    run,
                    area.min.lon,
                    area.max.lon,
                    area.min.lat,
                    area.max.lat,
                    arrived_by,
                    layer,
                ];
                let mut rows = found.query(p)?;
                while let Some(r) = rows.next()? {
                    let kind = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                    let l = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                    match counts.get_mut(&(kind.to_owned(), l.to_owned())) {
                        Some(n) => *n += 1,
                        None => {
                            counts.insert((kind.to_owned(), l.to_owned()), 1);
                        }
                    }
                    order.push((r.get(2)?, r.get(3)?));
                }
            }
        }
        for ((kind, l), n) in counts {
            let l: Layer = l
                .parse()
                .map_err(|e: cityops_core::model::UnknownLayer| StoreError::Corrupt {
                    row: 0,
                    reason: e.to_string(),
                })?;
            out.per_kind.entry(kind).or_insert((l, 0)).1 += n;
            out.total += n;
        }
        // The newest observed first, the later row first among equal times.
        let listed = listed.min(order.len());
        if listed > 0 {
            order.select_nth_unstable_by(listed - 1, |a, b| b.cmp(a));
        }
        order.truncate(listed);
        order.sort_unstable_by(|a, b| b.cmp(a));
        out.newest = self.sightings(&order)?;
        Ok(out)
    }

    /// The rows `order` names (observed time and id), in that order, as sightings.
    fn sightings(&self, order: &[(Millis, i64)]) -> Result<Vec<Sighting>, StoreError> {
        let ids: std::rc::Rc<Vec<rusqlite::types::Value>> =
            std::rc::Rc::new(order.iter().map(|(_, id)| rusqlite::types::Value::from(*id)).collect());
        let mut stmt = self.conn.prepare_cached(
            "SELECT entity, layer, kind, severity, lon, lat, title, observed_ms, shape, id FROM observations \
             WHERE id IN rarray(?1)",
        )?;
        let mut by_id = std::collections::HashMap::with_capacity(order.len());
        let mut rows = stmt.query(params![ids])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(9)?;
            let corrupt = |reason: String| StoreError::Corrupt { row: id, reason };
            let l: String = r.get(1)?;
            let severity: u8 = r.get(3)?;
            let shape: Option<String> = r.get(8)?;
            by_id.insert(
                id,
                Sighting {
                    entity: r.get(0)?,
                    layer: l
                        .parse()
                        .map_err(|e: cityops_core::model::UnknownLayer| corrupt(e.to_string()))?,
                    kind: r.get(2)?,
                    severity: Severity::from_rank(severity).ok_or_else(|| corrupt(format!("severity {severity}")))?,
                    position: GeoPoint {
                        lon: r.get(4)?,
                        lat: r.get(5)?,
                    },
                    title: r.get(6)?,
                    observed_ms: r.get(7)?,
                    shape: shape
                        .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(format!("shape: {e}"))))
                        .transpose()?,
                },
            );
        }
        Ok(order.iter().filter_map(|(_, id)| by_id.remove(id)).collect())
    }
}
