//! The normalized observation and the vocabularies it uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, in scenario time (or wall time for live feeds).
pub type Millis = i64;

/// The operational domain an observation belongs to; each is one group of map layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Trams, buses, stops, traffic signals.
    Transport,
    /// Cameras, intrusion alarms, field units.
    Security,
    /// Power, water, district heating and their sensors.
    Utility,
    /// Public warnings and citizen reports.
    Alerts,
}

impl Layer {
    /// Every layer, in display order.
    pub const ALL: [Layer; 4] = [Layer::Transport, Layer::Security, Layer::Utility, Layer::Alerts];

    /// The lowercase name used in files, the store and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Transport => "transport",
            Layer::Security => "security",
            Layer::Utility => "utility",
            Layer::Alerts => "alerts",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown layer {0:?} (expected transport, security, utility or alerts)")]
pub struct UnknownLayer(pub String);

impl FromStr for Layer {
    type Err = UnknownLayer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLayer(s.to_owned()))
    }
}

/// How bad an observation is. The upper four follow CAP 1.2's `severity`; `Normal` says a thing
/// is working (a signal back on, a camera online) so the map can show recovery, not just alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Working as expected.
    Normal,
    /// Minor threat or degradation.
    Minor,
    /// Moderate threat.
    Moderate,
    /// Significant threat.
    Severe,
    /// Extraordinary threat.
    Extreme,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Normal,
        Severity::Minor,
        Severity::Moderate,
        Severity::Severe,
        Severity::Extreme,
    ];

    /// The lowercase name used in files, the store and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Minor => "minor",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
            Severity::Extreme => "extreme",
        }
    }

    /// A small integer for storage and ordering (0 = normal, 4 = extreme).
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The severity with the given [`Severity::rank`].
    pub fn from_rank(rank: u8) -> Option<Severity> {
        Severity::ALL.get(usize::from(rank)).copied()
    }
}

/// A word that names no severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected normal, minor, moderate, severe or extreme)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == lower)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// A WGS84 position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
}

impl GeoPoint {
    /// A point, if both coordinates are finite and in range.
    pub fn new(lon: f64, lat: f64) -> Option<GeoPoint> {
        let ok = lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
        ok.then_some(GeoPoint { lon, lat })
    }
}

/// One normalized observation: whatever a feed said, reduced to what the pipeline needs.
///
/// `(feed, seq, idx)` identifies it within one run: `seq` is the message's position in the
/// feed stream (the tape line for a replay) and `idx` its position inside that message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The feed that delivered it.
    pub feed: String,
    /// The message's sequence number in the run (tape line number for replays).
    pub seq: u64,
    /// Position of this observation inside its message.
    pub idx: u32,
    /// When the message arrived (scenario time for replays).
    pub received_ms: Millis,
    /// When the source says the thing happened.
    pub observed_ms: Millis,
    /// The domain it belongs to.
    pub layer: Layer,
    /// What happened, in the feed's vocabulary (for example `signal.dark`).
    pub kind: String,
    /// How bad it is.
    pub severity: Severity,
    /// The stable id of the thing observed (an asset, a vehicle, a report).
    pub entity: String,
    /// Where it is.
    pub position: GeoPoint,
    /// A one-line human summary, untrusted feed text.
    pub title: String,
    /// Every other field of the source payload, untrusted feed text.
    pub fields: crate::Fields,
    /// What it covers when that is more than a point (a warning's area, a closed road), as the
    /// feed gave it; `position` stays the point correlation uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Box<crate::shape::Shape>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_and_severity_names_round_trip() {
        for l in Layer::ALL {
            assert_eq!(l.as_str().parse::<Layer>().unwrap(), l);
        }
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
            assert_eq!(Severity::from_rank(s.rank()), Some(s));
        }
        assert_eq!("SEVERE".parse::<Severity>().unwrap(), Severity::Severe);
        assert!("storm".parse::<Layer>().is_err());
        assert!("bad".parse::<Severity>().is_err());
    }

    #[test]
    fn points_out_of_range_are_refused() {
        assert!(GeoPoint::new(24.94, 60.17).is_some());
        assert!(GeoPoint::new(181.0, 0.0).is_none());
        assert!(GeoPoint::new(0.0, f64::NAN).is_none());
    }
}
