//! Wire types of the incident workflow: the queue, the detail view, the operator, and the
//! incident part of the coalesced diff.

use cityops_core::model::{Layer, Severity};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use cityops_core::workflow::{LifecycleStatus, OperatorRole};

/// The signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OperatorDto {
    pub name: String,
    pub role: OperatorRole,
}

/// One operator of the roster, as a supervisor sees it (never the PIN or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RosterEntryDto {
    pub name: String,
    pub role: OperatorRole,
    pub has_pin: bool,
    /// Locked after too many wrong PINs, until this wall time.
    #[ts(type = "number | null")]
    pub locked_until_ms: Option<i64>,
}

/// The affected area: the bounding box of the members that are still a problem (of all members
/// once everything cleared), in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AreaDto {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

/// One line of the incident queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IncidentEntryDto {
    /// Stable id, derived from the observation that opened it (internal: the UI shows `number`).
    pub id: String,
    /// The human number, CAD style (`HEL-2026-000123`), unique per site and year.
    pub number: String,
    /// Built from the rules' title template and the root's asset name (feed text: untrusted).
    pub title: String,
    /// The incident type id from the rules file, such as `power_outage`.
    pub incident_type: String,
    /// After escalation.
    pub severity: Severity,
    /// The operators' workflow status.
    pub status: LifecycleStatus,
    /// False once every member cleared: nothing is wrong any more, the operator still closes it.
    pub active: bool,
    #[ts(type = "number")]
    pub opened_ms: i64,
    #[ts(type = "number | null")]
    pub cleared_ms: Option<i64>,
    /// Members, duplicates included.
    pub members: u32,
    /// Members that are still a problem.
    pub open_members: u32,
    /// The layers its members belong to, in display order.
    pub layers: Vec<Layer>,
    /// The probable root cause, by entity.
    pub root_cause: Option<String>,
    /// The root cause cleared while other members are still a problem.
    pub root_cleared: bool,
    /// An operator merged, split or moved something in it.
    pub manual: bool,
    pub area: AreaDto,
    /// The operator who acknowledged it, if anyone did.
    pub acknowledged_by: Option<String>,
    /// The operator who owns it (took it, or was given it), if anyone.
    pub owner: Option<String>,
    /// When it escalated for want of an acknowledgement (its opening plus the rules' limit for
    /// its severity), while nobody has acknowledged it; null otherwise.
    #[ts(type = "number | null")]
    pub escalated_ms: Option<i64>,
}

/// One member in the detail view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MemberDto {
    pub entity: String,
    pub layer: Layer,
    pub kind: String,
    pub severity: Severity,
    pub lon: f64,
    pub lat: f64,
    #[ts(type = "number")]
    pub observed_ms: i64,
    /// Observations of the entity folded into this membership.
    pub reports: u32,
    /// The rule that grouped it (`seed` for the root, `manual` for an operator's decision).
    pub rule: String,
    /// 0 to 1.
    pub confidence: f64,
    /// Why it belongs, in words.
    pub explanation: String,
    pub distance_m: f64,
    pub time_gap_s: f64,
    /// The supply path from its asset up to the root's asset.
    pub dependency_path: Vec<String>,
    /// The member it duplicates, if it is the same thing reported again.
    pub duplicate_of: Option<String>,
    /// No longer a problem.
    pub cleared: bool,
    /// It is the incident's probable root cause.
    pub root: bool,
}

/// The members of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LayerGroupDto {
    pub layer: Layer,
    pub members: Vec<MemberDto>,
}

/// One thing that happened to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntryDto {
    /// Scenario time.
    #[ts(type = "number")]
    pub at_ms: i64,
    /// `opened`, `joined`, `cleared`, `lifecycle`, `manual`, `sop` or `note` (an operator's
    /// words, feed-free but still shown as text).
    pub kind: String,
    /// What happened, in words.
    pub text: String,
    /// Who, for operator actions.
    pub operator: Option<String>,
}

/// One step of the incident type's standard operating procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SopStepDto {
    pub index: u32,
    pub text: String,
    pub ticked: bool,
    /// Who ticked it.
    pub by: Option<String>,
    /// Resolving is refused while it is unticked (a supervisor may override, with a reason).
    pub required: bool,
    /// When it is due (the incident's opening plus the step's `within_s`), if it has a deadline.
    #[ts(type = "number | null")]
    pub due_ms: Option<i64>,
    /// Unticked past its deadline, at the clock's time.
    pub overdue: bool,
}

/// Everything the detail view shows about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IncidentDetailDto {
    pub entry: IncidentEntryDto,
    /// The probable root cause's membership.
    pub root: Option<MemberDto>,
    /// Members by layer, in layer display order, the root first within its layer.
    pub groups: Vec<LayerGroupDto>,
    /// Oldest first.
    pub timeline: Vec<TimelineEntryDto>,
    pub sop: Vec<SopStepDto>,
    /// Some operator decision can be taken back.
    pub can_undo: bool,
}

/// Incident changes, coalesced over one clock tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IncidentsDiffDto {
    /// Drop every incident before applying `upserts` (on subscription and after a seek).
    pub reset: bool,
    /// Incidents that appeared or changed.
    pub upserts: Vec<IncidentEntryDto>,
    /// Incidents that left the queue (merged into another, or an undone split), by id.
    pub removed: Vec<String>,
}

/// An incident type of the rules, as the "New incident" form offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IncidentTypeDto {
    pub id: String,
    /// The type's title without its placeholders ("Power outage").
    pub label: String,
}

impl IncidentTypeDto {
    /// The types of a rules file, in its order.
    pub fn all(rules: &cityops_core::rules::Rules) -> Vec<IncidentTypeDto> {
        rules
            .types
            .iter()
            .map(|t| {
                let head = t.title.split('{').next().unwrap_or_default();
                let label = head.trim().trim_end_matches([':', '-', '–']).trim();
                IncidentTypeDto {
                    id: t.id.clone(),
                    label: if label.is_empty() {
                        t.id.clone()
                    } else {
                        label.to_owned()
                    },
                }
            })
            .collect()
    }
}

/// An incident an operator enters by hand from a phone call or a radio report: the core's
/// call, as the window sends it.
pub use cityops_core::call::CallSpec as NewIncidentDto;

/// A call the engine accepted: its observation's entity, whose incident opens once the clock
/// has correlated the second it was entered in (on a site, once the site applied it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CallDto {
    /// `call/<n>`; `None` on a site, where the number is given where the stream places the
    /// call.
    pub entity: Option<String>,
}
