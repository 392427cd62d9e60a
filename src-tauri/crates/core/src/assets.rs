//! The city's assets (substations, signals, cameras, stops, ...) and how they depend on each
//! other, read from a scenario's `assets.geojson`.
//!
//! Each asset names the asset that supplies it (`fed_by`), so a substation's trip can explain a
//! dark signal two streets away. The index answers the two questions correlation asks: "what is
//! upstream of this asset" (by id) and "which assets are within r metres of here" (a uniform
//! grid). The format is described in `fixtures/README.md` (d) and (f).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::geo::GridIndex;
use crate::model::{GeoPoint, Layer};

/// Side of a cell of the asset grid, in metres: about one city block, so a 50-200 m query
/// touches a handful of cells.
const ASSET_CELL_M: f64 = 150.0;

/// One real-world asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Stable id, the OSM id for real assets (`node/25502085`, `way/644615094`).
    pub id: String,
    /// What it is: `substation`, `signal`, `camera`, `tram_stop`, `bus_stop`, ...
    pub asset_type: String,
    /// A human name (derived from the streets when OSM has none).
    pub name: String,
    /// Where it is.
    pub position: GeoPoint,
    /// The domain it belongs to.
    pub layer: Layer,
    /// The asset that supplies it (a substation for a signal), if modelled.
    pub fed_by: Option<String>,
    /// The feeder of `fed_by` it hangs on, if known (`F1`..`F4` in the demo).
    pub feeder: Option<String>,
}

/// Why an asset file was refused. `feature` is the 0-based index in `features`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", feature.map(|i| format!("features[{i}]")).unwrap_or_else(|| "$".into()))]
pub struct AssetError {
    /// The feature at fault, when one is.
    pub feature: Option<usize>,
    /// The field at fault, such as `.properties.fed_by` (empty for the feature as a whole).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(feature: Option<usize>, field: &str, message: impl Into<String>) -> AssetError {
    AssetError {
        feature,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The layer an asset type belongs to when the file does not say (`properties.layer`).
/// These are the types the OSM-derived files carry; other types must name their layer.
pub fn default_layer(asset_type: &str) -> Option<Layer> {
    match asset_type {
        "substation" | "transformer" | "pump" | "sensor" => Some(Layer::Utility),
        "signal" | "tram_stop" | "bus_stop" => Some(Layer::Transport),
        "camera" | "alarm" => Some(Layer::Security),
        _ => None,
    }
}

/// All assets of a city, by id, by place and by supply.
#[derive(Debug, Clone)]
pub struct AssetIndex {
    assets: Vec<Asset>,
    by_id: HashMap<String, usize>,
    /// Assets each asset supplies directly, in id order.
    children: HashMap<String, Vec<usize>>,
    grid: GridIndex<usize>,
    ref_lat: f64,
}

impl Default for AssetIndex {
    fn default() -> AssetIndex {
        AssetIndex::new(Vec::new()).expect("an empty index is valid")
    }
}

impl AssetIndex {
    /// Builds an index, checking that ids are unique, every `fed_by` names a listed asset and
    /// supply has no cycles. Errors name the position of the asset in `assets`.
    pub fn new(mut assets: Vec<Asset>) -> Result<AssetIndex, AssetError> {
        let mut by_id = HashMap::with_capacity(assets.len());
        for (i, a) in assets.iter().enumerate() {
            if by_id.insert(a.id.clone(), i).is_some() {
                return Err(err(Some(i), ".id", format!("{:?} is listed twice", a.id)));
            }
        }
        for (i, a) in assets.iter().enumerate() {
            if let Some(up) = &a.fed_by {
                if !by_id.contains_key(up) {
                    return Err(err(
                        Some(i),
                        ".properties.fed_by",
                        format!("{up:?} is not an asset of this file"),
                    ));
                }
            }
        }
        // A supply cycle would make "what is upstream" endless: walk each chain at most n steps.
        for (i, a) in assets.iter().enumerate() {
            let mut cur = a.fed_by.as_deref();
            let mut steps = 0;
            while let Some(up) = cur {
                steps += 1;
                if up == a.id || steps > assets.len() {
                    return Err(err(
                        Some(i),
                        ".properties.fed_by",
                        format!("supply of {:?} loops back to itself", a.id),
                    ));
                }
                cur = assets[by_id[up]].fed_by.as_deref();
            }
        }
        let ref_lat = if assets.is_empty() {
            0.0
        } else {
            assets.iter().map(|a| a.position.lat).sum::<f64>() / assets.len() as f64
        };
        let mut grid = GridIndex::new(ASSET_CELL_M, ref_lat);
        let mut children: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in assets.iter_mut().enumerate() {
            grid.insert(a.position, i);
            if let Some(up) = &a.fed_by {
                children.entry(up.clone()).or_default().push(i);
            }
        }
        let index = AssetIndex {
            assets,
            by_id,
            children,
            grid,
            ref_lat,
        };
        let mut children = index.children;
        for v in children.values_mut() {
            v.sort_by(|x, y| index.assets[*x].id.cmp(&index.assets[*y].id));
        }
        Ok(AssetIndex { children, ..index })
    }

    /// Parses a GeoJSON FeatureCollection of Point features (the scenario's `assets.geojson`).
    ///
    /// Each feature's `id` is the asset id; `properties.asset_type` is required; `name`,
    /// `fed_by`, `feeder` and `layer` are optional (`layer` defaults by type, see
    /// [`default_layer`]). Other properties and foreign members are ignored.
    pub fn parse_geojson(text: &str) -> Result<AssetIndex, AssetError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            err(
                None,
                "",
                format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
            )
        })?;
        if doc.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
            return Err(err(None, ".type", "not a FeatureCollection"));
        }
        let features = doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| err(None, ".features", "missing or not an array"))?;
        let assets = features
            .iter()
            .enumerate()
            .map(|(i, f)| asset(i, f))
            .collect::<Result<Vec<_>, _>>()?;
        AssetIndex::new(assets)
    }

    /// The asset with the given id.
    pub fn get(&self, id: &str) -> Option<&Asset> {
        self.by_id.get(id).map(|i| &self.assets[*i])
    }

    /// Every asset, in file order.
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// The number of assets.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// True when there are no assets.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// The mean latitude of the assets, which makes other grids over the same city square.
    pub fn ref_lat(&self) -> f64 {
        self.ref_lat
    }

    /// The supply chain above an asset: the asset that feeds it, the one that feeds that, ...
    pub fn upstream<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a Asset> + 'a {
        let mut cur = self.get(id).and_then(|a| a.fed_by.as_deref());
        std::iter::from_fn(move || {
            let a = self.get(cur?)?;
            cur = a.fed_by.as_deref();
            Some(a)
        })
    }

    /// The assets `id` supplies directly, in id order.
    pub fn fed_by<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a Asset> + 'a {
        self.children.get(id).into_iter().flatten().map(|i| &self.assets[*i])
    }

    /// Every asset `id` supplies, directly or through at most `max_depth` levels, with its depth
    /// (1 = directly), in depth then id order.
    pub fn downstream(&self, id: &str, max_depth: usize) -> Vec<(usize, &Asset)> {
        let mut out = Vec::new();
        let mut level: Vec<&str> = vec![id];
        for depth in 1..=max_depth {
            let next: Vec<&Asset> = level.iter().flat_map(|p| self.fed_by(p)).collect();
            if next.is_empty() {
                break;
            }
            level = next.iter().map(|a| a.id.as_str()).collect();
            out.extend(next.into_iter().map(|a| (depth, a)));
        }
        out
    }

    /// The assets within `radius_m` metres of `p`, nearest first (ties by id).
    pub fn within(&self, p: GeoPoint, radius_m: f64) -> Vec<(f64, &Asset)> {
        let mut v: Vec<(f64, &Asset)> = self
            .grid
            .within(p, radius_m)
            .map(|(d, i)| (d, &self.assets[*i]))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        v
    }
}

fn opt_string(props: &serde_json::Map<String, Value>, i: usize, key: &str) -> Result<Option<String>, AssetError> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(err(
            Some(i),
            &format!(".properties.{key}"),
            "must be a non-empty string or null",
        )),
    }
}

fn asset(i: usize, f: &Value) -> Result<Asset, AssetError> {
    let id = match f.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(err(Some(i), ".id", "missing: every asset needs a stable id")),
    };
    let props = f
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| err(Some(i), ".properties", "missing or not an object"))?;
    let asset_type =
        opt_string(props, i, "asset_type")?.ok_or_else(|| err(Some(i), ".properties.asset_type", "missing"))?;
    let layer = match opt_string(props, i, "layer")? {
        Some(l) => l
            .parse()
            .map_err(|e: crate::model::UnknownLayer| err(Some(i), ".properties.layer", e.to_string()))?,
        None => default_layer(&asset_type).ok_or_else(|| {
            err(
                Some(i),
                ".properties.layer",
                format!("missing, and asset_type {asset_type:?} has no default layer"),
            )
        })?,
    };
    let geometry = f.get("geometry").ok_or_else(|| err(Some(i), ".geometry", "missing"))?;
    if geometry.get("type").and_then(Value::as_str) != Some("Point") {
        return Err(err(Some(i), ".geometry.type", "assets are Points"));
    }
    let c = geometry.get("coordinates").and_then(Value::as_array);
    let position = c
        .and_then(|c| GeoPoint::new(c.first()?.as_f64()?, c.get(1)?.as_f64()?))
        .ok_or_else(|| err(Some(i), ".geometry.coordinates", "not a [lon, lat] pair in range"))?;
    let name = opt_string(props, i, "name")?.unwrap_or_else(|| id.clone());
    Ok(Asset {
        id,
        asset_type,
        name,
        position,
        layer,
        fed_by: opt_string(props, i, "fed_by")?,
        feeder: opt_string(props, i, "feeder")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(id: &str, ty: &str, lon: f64, fed_by: Option<&str>, feeder: Option<&str>) -> Value {
        serde_json::json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, 60.17]},
            "properties": {"asset_type": ty, "name": format!("{ty} {id}"), "fed_by": fed_by, "feeder": feeder}})
    }

    fn collection(features: Vec<Value>) -> String {
        serde_json::json!({"type": "FeatureCollection", "attribution": "test", "features": features}).to_string()
    }

    #[test]
    fn parses_supply_and_answers_near_and_upstream_queries() {
        let text = collection(vec![
            feature("way/1", "substation", 24.940, None, None),
            feature("node/2", "signal", 24.941, Some("way/1"), Some("F1")),
            feature("node/3", "camera", 24.945, Some("way/1"), Some("F2")),
            feature("node/4", "camera", 24.960, None, None),
        ]);
        let idx = AssetIndex::parse_geojson(&text).unwrap();
        assert_eq!(idx.len(), 4);
        let s = idx.get("node/2").unwrap();
        assert_eq!(
            (s.layer, s.fed_by.as_deref(), s.feeder.as_deref()),
            (Layer::Transport, Some("way/1"), Some("F1"))
        );
        assert_eq!(idx.get("way/1").unwrap().layer, Layer::Utility);
        let up: Vec<&str> = idx.upstream("node/3").map(|a| a.id.as_str()).collect();
        assert_eq!(up, ["way/1"]);
        let down: Vec<&str> = idx.downstream("way/1", 3).iter().map(|(_, a)| a.id.as_str()).collect();
        assert_eq!(down, ["node/2", "node/3"]);
        // 0.001° of longitude at 60.17° N is about 55 m.
        let near: Vec<&str> = idx
            .within(
                GeoPoint {
                    lon: 24.9402,
                    lat: 60.17,
                },
                100.0,
            )
            .iter()
            .map(|(_, a)| a.id.as_str())
            .collect();
        assert_eq!(near, ["way/1", "node/2"], "nearest first, node/3 is 270 m away");
    }

    #[test]
    fn errors_name_the_feature_and_field() {
        let cases = [
            (
                vec![feature("a", "signal", 24.9, Some("nope"), None)],
                "features[0].properties.fed_by",
            ),
            (
                vec![
                    feature("a", "signal", 24.9, None, None),
                    feature("a", "camera", 24.9, None, None),
                ],
                "features[1].id",
            ),
            (
                vec![feature("a", "windmill", 24.9, None, None)],
                "features[0].properties.layer",
            ),
            (
                vec![feature("a", "signal", 240.0, None, None)],
                "features[0].geometry.coordinates",
            ),
            (
                vec![
                    feature("a", "signal", 24.9, Some("b"), None),
                    feature("b", "signal", 24.9, Some("a"), None),
                ],
                "features[0].properties.fed_by",
            ),
        ];
        for (features, want) in cases {
            let e = AssetIndex::parse_geojson(&collection(features)).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e} should start with {want}");
        }
        let mut no_type = feature("a", "signal", 24.9, None, None);
        no_type["properties"].as_object_mut().unwrap().remove("asset_type");
        assert_eq!(
            AssetIndex::parse_geojson(&collection(vec![no_type])).unwrap_err().field,
            ".properties.asset_type"
        );
        assert!(AssetIndex::parse_geojson("[]")
            .unwrap_err()
            .to_string()
            .starts_with("$.type"));
    }
}
