//! The operators' workflow over an incident: its lifecycle, the roles of those who work it,
//! and the rules that say which step is allowed to whom. The engine records the steps; the
//! rules live here so that they have one home, free of storage and wire concerns.

use serde::{Deserialize, Serialize};

/// Where an incident stands in the operator's workflow. Correlation decides whether its members
/// are still a problem; this says what the operators did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum LifecycleStatus {
    /// Nobody has looked at it yet.
    New,
    /// An operator has seen it and owns it.
    Acknowledged,
    /// Field crews or partners have been sent.
    Dispatched,
    /// The operator considers the problem solved.
    Resolved,
    /// Closed for the record (a supervisor's or trainer's call).
    Closed,
}

impl LifecycleStatus {
    /// Every status, in workflow order.
    pub const ALL: [LifecycleStatus; 5] = [
        LifecycleStatus::New,
        LifecycleStatus::Acknowledged,
        LifecycleStatus::Dispatched,
        LifecycleStatus::Resolved,
        LifecycleStatus::Closed,
    ];

    /// The lowercase name used in the store, the audit trail and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStatus::New => "new",
            LifecycleStatus::Acknowledged => "acknowledged",
            LifecycleStatus::Dispatched => "dispatched",
            LifecycleStatus::Resolved => "resolved",
            LifecycleStatus::Closed => "closed",
        }
    }

    /// The status with this name.
    pub fn parse(s: &str) -> Option<LifecycleStatus> {
        LifecycleStatus::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Its place in the workflow: a transition may only move forward.
    pub fn rank(self) -> usize {
        LifecycleStatus::ALL.iter().position(|x| *x == self).unwrap_or(0)
    }
}

/// What a signed-in operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum OperatorRole {
    /// Works the queue: acknowledges, dispatches, resolves, merges and splits.
    Operator,
    /// Everything an operator does, and closes incidents.
    Supervisor,
    /// Runs exercises on replayed scenarios: everything a supervisor does.
    Trainer,
}

impl OperatorRole {
    /// The lowercase name used in the store and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Operator => "operator",
            OperatorRole::Supervisor => "supervisor",
            OperatorRole::Trainer => "trainer",
        }
    }

    /// The role with this name.
    pub fn parse(s: &str) -> Option<OperatorRole> {
        [OperatorRole::Operator, OperatorRole::Supervisor, OperatorRole::Trainer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// True when this role may close incidents.
    pub fn may_close(self) -> bool {
        matches!(self, OperatorRole::Supervisor | OperatorRole::Trainer)
    }
}

/// Why a lifecycle transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionRefusal {
    /// The transition does not move the incident forward.
    #[error("incident {incident} is {}; it cannot become {}", .from.as_str(), .to.as_str())]
    NotForward {
        /// The incident's id.
        incident: String,
        /// Its status now.
        from: LifecycleStatus,
        /// The status asked for.
        to: LifecycleStatus,
    },
    /// Only a supervisor or a trainer closes incidents.
    #[error("closing an incident is a supervisor's or trainer's call")]
    CloseNeedsSupervisor,
}

/// Whether an operator in `role` may move incident `incident` from `from` to `to`: forward
/// only (a step may be skipped), and closing needs a supervisor or trainer.
pub fn check_transition(
    incident: &str,
    from: LifecycleStatus,
    to: LifecycleStatus,
    role: OperatorRole,
) -> Result<(), TransitionRefusal> {
    if to.rank() <= from.rank() {
        return Err(TransitionRefusal::NotForward {
            incident: incident.to_owned(),
            from,
            to,
        });
    }
    if to == LifecycleStatus::Closed && !role.may_close() {
        return Err(TransitionRefusal::CloseNeedsSupervisor);
    }
    Ok(())
}

/// Whether a transition to `to` names its operator as the one who acknowledged the incident:
/// acknowledging does, and so does a later step that skipped acknowledging, when nobody
/// acknowledged it before.
pub fn acknowledges(to: LifecycleStatus, acknowledged_before: bool) -> bool {
    to == LifecycleStatus::Acknowledged || (!acknowledged_before && to.rank() > LifecycleStatus::Acknowledged.rank())
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleStatus::*;

    #[test]
    fn transitions_move_forward_and_closing_is_a_supervisors() {
        assert_eq!(
            check_transition("i", New, Dispatched, OperatorRole::Operator),
            Ok(()),
            "a step may be skipped"
        );
        let back = check_transition("i", Resolved, Acknowledged, OperatorRole::Supervisor).unwrap_err();
        assert_eq!(
            back.to_string(),
            "incident i is resolved; it cannot become acknowledged"
        );
        assert!(
            check_transition("i", Acknowledged, Acknowledged, OperatorRole::Trainer).is_err(),
            "standing still is no step"
        );
        assert_eq!(
            check_transition("i", Resolved, Closed, OperatorRole::Operator),
            Err(TransitionRefusal::CloseNeedsSupervisor)
        );
        assert_eq!(
            check_transition("i", Resolved, Closed, OperatorRole::Supervisor),
            Ok(())
        );
        assert_eq!(check_transition("i", New, Closed, OperatorRole::Trainer), Ok(()));
    }

    #[test]
    fn who_acknowledged_is_the_first_to_act() {
        assert!(
            acknowledges(Acknowledged, true),
            "acknowledging always names its operator"
        );
        assert!(
            acknowledges(Dispatched, false),
            "dispatching an unacknowledged incident acknowledges it"
        );
        assert!(!acknowledges(Dispatched, true));
        assert!(!acknowledges(New, false));
    }

    #[test]
    fn names_round_trip() {
        for s in LifecycleStatus::ALL {
            assert_eq!(LifecycleStatus::parse(s.as_str()), Some(s));
        }
        for r in [OperatorRole::Operator, OperatorRole::Supervisor, OperatorRole::Trainer] {
            assert_eq!(OperatorRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(LifecycleStatus::parse("open"), None);
    }
}
