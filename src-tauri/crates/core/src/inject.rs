//! Trainer injects: events a trainer adds to a running exercise by picking one of the
//! scenario's inject kinds and a place on the map.
//!
//! The scenario manifest lists what a trainer may inject (`[[injects]]`, documented in
//! `fixtures/README.md`). An inject becomes one tape message, a GeoJSON feature on the built-in
//! feed of its layer (`inject.<layer>`), stamped with the scenario time it was made; from there
//! it goes through the pipeline, the store and the correlator like any recorded message, so
//! time travel, scoring and the report see it as they see the tape. When the entry names an
//! asset type, the inject snaps to the nearest asset of that type: a trip injected near a
//! substation is about that substation, so the dependency rules group what it feeds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::assets::{Asset, AssetIndex};
use crate::model::{GeoPoint, Layer, Millis, Severity};
use crate::scenario::FeedSpec;
use crate::tape::TapeMessage;

/// One entry of a scenario's inject palette.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InjectSpec {
    /// A short id, unique in the scenario.
    pub id: String,
    /// What the trainer reads in the palette, and the observation's title.
    pub title: String,
    /// The observation kind (`substation.trip`), as the rules file names kinds.
    pub kind: String,
    /// The layer the observation belongs to.
    pub layer: Layer,
    /// The observation's severity.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Snap to the nearest asset of this type (`substation`); an inject of this entry needs one
    /// within `snap_m` of the place picked.
    #[serde(default)]
    pub asset_type: Option<String>,
    /// How far from the place picked an asset is looked for, in metres.
    #[serde(default = "default_snap_m")]
    pub snap_m: f64,
    /// The property that names the asset (`site` for an alarm at a substation). Without it the
    /// asset itself is the observation's entity.
    #[serde(default)]
    pub asset_field: Option<String>,
    /// Further properties the observation carries, as the tape's features would.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

fn default_severity() -> Severity {
    Severity::Moderate
}

fn default_snap_m() -> f64 {
    150.0
}

/// Why an inject palette or one inject was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InjectError {
    /// An entry of the palette is wrong; `index` is its position in the manifest.
    #[error("injects[{index}] ({id}): {message}")]
    Spec {
        /// The entry's position, from 0.
        index: usize,
        /// Its id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The scenario has no inject of this id.
    #[error("the scenario has no inject {0:?}")]
    Unknown(String),
    /// The place is not a position on Earth.
    #[error("{lon},{lat} is not a valid position")]
    BadPlace {
        /// Longitude given.
        lon: f64,
        /// Latitude given.
        lat: f64,
    },
    /// The entry snaps to an asset type and none is near enough.
    #[error("no {asset_type} within {snap_m} m of the place picked")]
    NoAsset {
        /// The asset type looked for.
        asset_type: String,
        /// How far it was looked for.
        snap_m: f64,
    },
}

/// Checks a palette: ids unique and non-empty, kinds non-empty, snapping distances positive.
pub fn validate(specs: &[InjectSpec]) -> Result<(), InjectError> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, s) in specs.iter().enumerate() {
        let bad = |message: &str| InjectError::Spec {
            index,
            id: s.id.clone(),
            message: message.to_owned(),
        };
        if s.id.trim().is_empty() || !seen.insert(s.id.as_str()) {
            return Err(bad("the id is empty or used twice"));
        }
        if s.kind.trim().is_empty() {
            return Err(bad("kind is empty"));
        }
        if !(s.snap_m.is_finite() && s.snap_m > 0.0) {
            return Err(bad("snap_m must be a positive number of metres"));
        }
        if s.asset_field.is_some() && s.asset_type.is_none() {
            return Err(bad("asset_field needs an asset_type to snap to"));
        }
    }
    Ok(())
}

/// The built-in feed an inject of `layer` arrives on.
pub fn feed_id(layer: Layer) -> String {
    format!("inject.{}", layer.as_str())
}

/// The built-in inject feeds, one per layer, all GeoJSON.
pub fn feed_specs() -> Vec<FeedSpec> {
    crate::scenario::built_in_feeds(feed_id, "Trainer injects")
}

/// Where an inject lands: the place picked, or the asset it snapped to.
pub fn place<'a>(
    spec: &InjectSpec,
    assets: &'a AssetIndex,
    lon: f64,
    lat: f64,
) -> Result<(GeoPoint, Option<&'a Asset>), InjectError> {
    let p = GeoPoint::new(lon, lat).ok_or(InjectError::BadPlace { lon, lat })?;
    let Some(asset_type) = &spec.asset_type else {
        return Ok((p, None));
    };
    let asset = assets
        .within(p, spec.snap_m)
        .into_iter()
        .map(|(_, a)| a)
        .find(|a| &a.asset_type == asset_type)
        .ok_or_else(|| InjectError::NoAsset {
            asset_type: asset_type.clone(),
            snap_m: spec.snap_m,
        })?;
    Ok((asset.position, Some(asset)))
}

/// The entity the `n`th inject is about: the asset it snapped to, unless the inject only names
/// the asset in a field (a camera's report about a signal), else an entity of its own.
pub fn entity(spec: &InjectSpec, n: u64, asset: Option<&Asset>) -> String {
    match (asset, &spec.asset_field) {
        (Some(a), None) => a.id.clone(),
        _ => format!("inject/{n}"),
    }
}

/// An inject's title: the palette's, with the asset's name when it snapped to one.
pub fn title(spec: &InjectSpec, asset: Option<&Asset>) -> String {
    match asset {
        Some(a) => format!("{}: {}", spec.title, a.name),
        None => spec.title.clone(),
    }
}

/// The tape message of the `n`th inject (from 1) of a run, made at scenario time `at_ms` by
/// `trainer`: one GeoJSON feature on the layer's inject feed, its sequence number `n`.
pub fn message(
    spec: &InjectSpec,
    n: u64,
    at_ms: Millis,
    at: GeoPoint,
    asset: Option<&Asset>,
    trainer: &str,
) -> TapeMessage {
    let entity = entity(spec, n, asset);
    let title = title(spec, asset);
    let mut props = spec.fields.clone();
    props.insert("kind".into(), Value::String(spec.kind.clone()));
    props.insert(
        "severity".into(),
        serde_json::to_value(spec.severity).expect("a severity serializes"),
    );
    props.insert("title".into(), Value::String(title));
    props.insert("inject".into(), Value::String(spec.id.clone()));
    props.insert("trainer".into(), Value::String(trainer.to_owned()));
    if let (Some(a), Some(field)) = (asset, &spec.asset_field) {
        props.insert(field.clone(), Value::String(a.id.clone()));
    }
    crate::tape::point_message(feed_id(spec.layer), n, at_ms, &entity, at, props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> AssetIndex {
        AssetIndex::parse_geojson(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","id":"way/1","geometry":{"type":"Point","coordinates":[24.94,60.17]},
               "properties":{"asset_type":"substation","name":"Test substation"}},
              {"type":"Feature","id":"node/2","geometry":{"type":"Point","coordinates":[24.9401,60.1701]},
               "properties":{"asset_type":"signal","name":"Signal 2","fed_by":"way/1"}}]}"#,
        )
        .unwrap()
    }

    fn spec(toml_text: &str) -> InjectSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn an_inject_snaps_to_the_nearest_asset_of_its_type_and_becomes_its_entity() {
        let trip = spec("id = \"trip\"\ntitle = \"Substation trip\"\nkind = \"substation.trip\"\nlayer = \"utility\"\nseverity = \"extreme\"\nasset_type = \"substation\"");
        let index = assets();
        // Picked about 30 m from the substation, nearer to the signal: the type decides.
        let (at, asset) = place(&trip, &index, 24.9402, 60.1702).unwrap();
        assert_eq!(asset.map(|a| a.id.as_str()), Some("way/1"));
        assert_eq!((at.lon, at.lat), (24.94, 60.17));
        let msg = message(&trip, 3, 1_000, at, asset, "Tiina");
        assert_eq!((msg.line, msg.time_ms, msg.feed.as_str()), (3, 1_000, "inject.utility"));
        let v: Value = serde_json::from_slice(&msg.body).unwrap();
        let f = &v["features"][0];
        assert_eq!(f["id"], "way/1");
        assert_eq!(f["properties"]["kind"], "substation.trip");
        assert_eq!(f["properties"]["severity"], "extreme");
        assert_eq!(f["properties"]["title"], "Substation trip: Test substation");
        assert_eq!(f["properties"]["trainer"], "Tiina");
        assert_eq!(f["properties"]["time"], "1970-01-01T00:00:01.000Z");

        let far = place(&trip, &index, 24.96, 60.17).unwrap_err();
        assert_eq!(
            far,
            InjectError::NoAsset {
                asset_type: "substation".into(),
                snap_m: 150.0
            }
        );
        assert!(matches!(
            place(&trip, &index, 200.0, 60.0),
            Err(InjectError::BadPlace { .. })
        ));
    }

    #[test]
    fn an_asset_field_names_the_asset_and_the_inject_keeps_its_own_entity() {
        let alarm = spec("id = \"alarm\"\ntitle = \"Intrusion alarm\"\nkind = \"alarm.intrusion\"\nlayer = \"security\"\nasset_type = \"substation\"\nasset_field = \"site\"\nfields = { zone = \"door\" }");
        let index = assets();
        let (at, asset) = place(&alarm, &index, 24.94, 60.17).unwrap();
        let v: Value = serde_json::from_slice(&message(&alarm, 1, 0, at, asset, "T").body).unwrap();
        let f = &v["features"][0];
        assert_eq!(f["id"], "inject/1");
        assert_eq!(f["properties"]["site"], "way/1");
        assert_eq!(f["properties"]["zone"], "door");
        assert_eq!(f["properties"]["severity"], "moderate");

        let free = spec("id = \"report\"\ntitle = \"Citizen report\"\nkind = \"report.outage\"\nlayer = \"alerts\"");
        let (at, asset) = place(&free, &index, 24.95, 60.18).unwrap();
        assert!(asset.is_none());
        let msg = message(&free, 7, 0, at, asset, "T");
        assert_eq!(msg.feed, "inject.alerts");
        let v: Value = serde_json::from_slice(&msg.body).unwrap();
        assert_eq!(
            v["features"][0]["geometry"]["coordinates"],
            serde_json::json!([24.95, 60.18])
        );
    }

    #[test]
    fn a_bad_palette_is_refused_with_its_place() {
        let ok = spec("id = \"a\"\ntitle = \"A\"\nkind = \"x.y\"\nlayer = \"alerts\"");
        assert_eq!(validate(std::slice::from_ref(&ok)), Ok(()));
        let e = validate(&[ok.clone(), ok.clone()]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("injects[1] (a): the id is empty or used twice"),
            "{e}"
        );
        let far = InjectSpec {
            snap_m: -1.0,
            ..ok.clone()
        };
        assert!(validate(&[far]).unwrap_err().to_string().contains("snap_m"));
        let field = InjectSpec {
            asset_field: Some("site".into()),
            ..ok
        };
        assert!(validate(&[field]).unwrap_err().to_string().contains("asset_type"));
        assert!(toml::from_str::<InjectSpec>(
            "id = \"a\"\ntitle = \"A\"\nkind = \"x\"\nlayer = \"alerts\"\ncolour = 1"
        )
        .is_err());
    }
}
