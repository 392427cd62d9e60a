//! What correlation produces: incidents, their members, and why each member belongs.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{GeoPoint, Layer, Millis, Observation, Severity};

/// Identifies one observation within a run: its feed, message sequence number and position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObsKey {
    /// The feed that delivered it.
    pub feed: String,
    /// The message's sequence number in the run.
    pub seq: u64,
    /// Its position inside the message.
    pub idx: u32,
}

impl ObsKey {
    /// The key of an observation.
    pub fn of(o: &Observation) -> ObsKey {
        ObsKey {
            feed: o.feed.clone(),
            seq: o.seq,
            idx: o.idx,
        }
    }
}

impl fmt::Display for ObsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.feed, self.seq, self.idx)
    }
}

/// An incident's id. It is derived from the key of the observation that opened it, never from a
/// counter, so the same tape gives the same ids whatever the arrival order within a second.
///
/// The text is shared, not copied, between clones: the correlator's indexes name an incident
/// once per member and per grid cell, and the engine keeps checkpoints (clones) of all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentId(pub Arc<str>);

impl From<String> for IncidentId {
    fn from(s: String) -> IncidentId {
        IncidentId(s.into())
    }
}

impl From<&str> for IncidentId {
    fn from(s: &str) -> IncidentId {
        IncidentId(s.into())
    }
}

impl IncidentId {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of an incident opened by the observation with this key (`n` > 1 disambiguates an
    /// incident an operator split out of one already named after that observation).
    pub fn from_key(key: &ObsKey, n: u32) -> IncidentId {
        if n <= 1 {
            IncidentId::from(format!("inc/{key}"))
        } else {
            IncidentId::from(format!("inc/{key}#{n}"))
        }
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an incident stands in correlation. The operator's lifecycle (new, acknowledged,
/// dispatched, ...) is kept by the engine next to this, not here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum IncidentStatus {
    /// Some member is still a problem.
    Open,
    /// Every member cleared (events expired).
    Cleared,
    /// Its members were moved into another incident.
    Merged {
        /// The incident that holds them now.
        into: IncidentId,
    },
}

/// Why a member belongs to its incident, in numbers and in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The rule that matched (`seed` for the observation that opened the incident, `manual` for
    /// an operator's decision).
    pub rule: String,
    /// The member or root it was matched against, by entity.
    pub related: Option<String>,
    /// Distance to that member, in metres (one decimal).
    pub distance_m: f64,
    /// Observed time of this one minus that member's, in seconds (one decimal; negative when
    /// it was seen first).
    pub time_gap_s: f64,
    /// The supply path from this observation's asset up to the root's asset, asset ids.
    pub dependency_path: Vec<String>,
    /// How sure the match is, 0 to 1 (two decimals).
    pub confidence: f64,
    /// The explanation in words, for the operator.
    pub text: String,
}

/// One entity's part in an incident. Later observations of the same entity update it (so a tram
/// that stays late is one member, not fifty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// The observation that made it a member.
    pub key: ObsKey,
    /// The latest observation of the entity folded into it.
    pub last_key: ObsKey,
    /// The entity observed.
    pub entity: String,
    /// Its layer.
    pub layer: Layer,
    /// Its latest problem kind.
    pub kind: String,
    /// The worst severity seen.
    pub severity: Severity,
    /// Where it was when it joined.
    pub position: GeoPoint,
    /// Observed time of the joining observation.
    pub observed_ms: Millis,
    /// Observed time of the latest observation folded in.
    pub last_ms: Millis,
    /// How many observations were folded in (1 for the joining one).
    pub reports: u32,
    /// The asset the observation is about, when known.
    pub asset: Option<String>,
    /// The payload field that named `asset`, when the entity is not the asset itself.
    pub asset_field: Option<String>,
    /// The feeder it hangs on, when known.
    pub feeder: Option<String>,
    /// A one-off event (a citizen report) rather than a state.
    pub event: bool,
    /// The rule that grouped it (the same as `explanation.rule`).
    pub rule: String,
    /// Why it belongs.
    pub explanation: Explanation,
    /// The member it duplicates, when it is the same thing reported again.
    pub duplicate_of: Option<String>,
    /// True when it is no longer a problem (restored, back online, expired event).
    pub cleared: bool,
    /// When it cleared.
    pub cleared_ms: Option<Millis>,
}

/// A group of observations with one probable root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id.
    pub id: IncidentId,
    /// The human number, CAD style (`HEL-2026-000123`): given in the order incidents open,
    /// counted per year of opening, so the same tape (and the same decisions) gives the same
    /// numbers. Never reused, not even by an incident merged away.
    pub number: String,
    /// Its type, an id from the rules file.
    pub incident_type: String,
    /// The title the operator sees.
    pub title: String,
    /// Open, cleared or merged.
    pub status: IncidentStatus,
    /// How bad, after escalation.
    pub severity: Severity,
    /// Observed time of the observation that opened it.
    pub opened_ms: Millis,
    /// When it cleared.
    pub cleared_ms: Option<Millis>,
    /// The member that is the probable root cause, by entity.
    pub root_cause: Option<String>,
    /// True when the root cause cleared but other members are still a problem: they stay in
    /// the incident, visible, as problems of their own.
    pub root_cleared: bool,
    /// Feeders the root says it affects; dependents on other feeders are not grouped here.
    pub root_feeders: Option<Vec<String>>,
    /// True once an operator changed it: automatic correlation then never merges it away.
    pub manual: bool,
    /// Members, the root first, then in the order they joined. Each is shared between clones
    /// of the incident: a checkpoint's copy of a changed incident copies pointers, and only the
    /// member that changes is copied again.
    pub members: Vec<Arc<Membership>>,
}

impl Incident {
    /// The member for an entity.
    pub fn member(&self, entity: &str) -> Option<&Membership> {
        self.members.iter().find(|m| m.entity == entity).map(|m| &**m)
    }

    /// The root cause's membership.
    pub fn root(&self) -> Option<&Membership> {
        self.root_cause.as_deref().and_then(|e| self.member(e))
    }

    /// Distinct members that are not duplicates of another: the incident's breadth.
    pub fn breadth(&self) -> usize {
        self.members.iter().filter(|m| m.duplicate_of.is_none()).count()
    }

    /// True while it is open.
    pub fn is_open(&self) -> bool {
        self.status == IncidentStatus::Open
    }
}

/// What happened to an incident during one call, for the engine to fetch and forward.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ChangeKind {
    /// Members, severity or clearing of members changed.
    Updated,
    /// It cleared.
    Cleared,
    /// It was opened (or reopened by an undo).
    Opened,
    /// Its members moved into another incident.
    Merged {
        /// Where they went.
        into: IncidentId,
    },
    /// It no longer exists (an undone split).
    Removed,
}

/// One incident that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentChange {
    /// Which.
    pub id: IncidentId,
    /// The most significant thing that happened to it in the call.
    pub kind: ChangeKind,
}

/// The UTC calendar year of a time: incident numbers count from 1 again each year.
pub fn utc_year(ms: Millis) -> i32 {
    // Days to civil date (H. Hinnant's algorithm), kept to the year.
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + i64::from(mp >= 10);
    year as i32
}

/// An incident's number: `PREFIX-YEAR-NNNNNN`.
pub fn format_number(prefix: &str, year: i32, n: u32) -> String {
    format!("{prefix}-{year}-{n:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_year_of_a_time_is_utc_and_turns_at_midnight() {
        assert_eq!(utc_year(0), 1970);
        assert_eq!(utc_year(-1), 1969);
        // 2026-12-31T23:59:59.999Z, then 2027-01-01T00:00:00Z.
        assert_eq!(utc_year(1_798_761_599_999), 2026);
        assert_eq!(utc_year(1_798_761_600_000), 2027);
        // 2024-02-29T12:00:00Z, a leap day; 2000-03-01T00:00:00Z, after a century's leap day.
        assert_eq!(utc_year(1_709_208_000_000), 2024);
        assert_eq!(utc_year(951_868_800_000), 2000);
        assert_eq!(format_number("HEL", 2026, 123), "HEL-2026-000123");
    }
}
