//! Exercise objectives and their scoring: what a good operator does in a scenario and by when,
//! and how a trainee's record measures against it.
//!
//! Objectives are written in the scenario manifest (`[[objectives]]`, see `fixtures/README.md`).
//! Scoring is a pure function of the objectives and of what happened, all in scenario time:
//! when incidents opened, the lifecycle transitions operators made, and the actions they
//! committed. The same record always scores the same.

use serde::{Deserialize, Serialize};

use crate::dispatch::BackendKind;
use crate::model::Millis;

/// What an objective asks of the trainee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Acknowledge the incident.
    Acknowledge,
    /// Commit an action for the incident (of `backend`'s kind, and `service_code` if given).
    Dispatch,
    /// Commit a CAP public alert for the incident.
    PublishAlert,
    /// Mark the incident resolved.
    Resolve,
    /// Never commit an action for an incident an operator already resolved or closed.
    NeverDispatchResolved,
    /// Never let an incident (of `incident_type`, or any) escalate: each is acknowledged within
    /// its severity's limit in the rules file (`[unacknowledged_s]`).
    NeverEscalate,
}

impl Task {
    fn needs_deadline(self) -> bool {
        !self.is_never()
    }

    fn is_never(self) -> bool {
        matches!(self, Task::NeverDispatchResolved | Task::NeverEscalate)
    }
}

/// One objective, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// A short id, unique in the scenario.
    pub id: String,
    /// What the trainee reads ("Acknowledge the substation outage within 60 s").
    pub title: String,
    /// What to do.
    pub task: Task,
    /// Which incident: the first one of this type (a type id of the rules file) to open.
    /// `None` for objectives about every incident (`never_dispatch_resolved`).
    #[serde(default)]
    pub incident_type: Option<String>,
    /// Seconds after the incident opened by which it is met.
    #[serde(default)]
    pub within_s: Option<u32>,
    /// Seconds after the incident opened until which doing it still counts, as late; after
    /// that (or without it, after `within_s`) it is missed.
    #[serde(default)]
    pub late_until_s: Option<u32>,
    /// For `dispatch`: the kind of backend the action must go to.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// For `dispatch` to Open311: the service code the request must carry.
    #[serde(default)]
    pub service_code: Option<String>,
}

/// Why an objective list is refused; `index` is the objective's position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("objectives[{index}] ({id}): {message}")]
pub struct ObjectiveError {
    /// The objective's position in the manifest, from 0.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

/// Checks objectives against themselves and the incident types the rules define.
pub fn validate(objectives: &[Objective], incident_types: &[&str]) -> Result<(), ObjectiveError> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, o) in objectives.iter().enumerate() {
        let err = |message: String| ObjectiveError {
            index,
            id: o.id.clone(),
            message,
        };
        if o.id.trim().is_empty() || !seen.insert(o.id.as_str()) {
            return Err(err("id is empty or used twice".into()));
        }
        match (&o.incident_type, o.task) {
            (None, Task::NeverDispatchResolved | Task::NeverEscalate) => {}
            (None, _) => return Err(err("incident_type is required for this task".into())),
            (Some(t), _) if !incident_types.contains(&t.as_str()) => {
                return Err(err(format!(
                    "incident_type {t:?} is not a type of the rules file ({})",
                    incident_types.join(", ")
                )))
            }
            _ => {}
        }
        if o.task.needs_deadline() && o.within_s.is_none() {
            return Err(err("within_s is required for this task".into()));
        }
        if let (Some(w), Some(l)) = (o.within_s, o.late_until_s) {
            if l < w {
                return Err(err("late_until_s is before within_s".into()));
            }
        }
        if o.task == Task::PublishAlert && o.backend.is_some_and(|b| b != BackendKind::Cap) {
            return Err(err("a public alert goes to a cap backend".into()));
        }
        if o.service_code.is_some() && !(o.task == Task::Dispatch && o.backend == Some(BackendKind::Open311)) {
            return Err(err(
                "service_code applies to dispatch objectives with backend = \"open311\"".into(),
            ));
        }
    }
    Ok(())
}

/// An incident as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFact {
    /// The incident's id.
    pub id: String,
    /// Its type id from the rules file.
    pub incident_type: String,
    /// When it opened, in scenario time.
    pub opened_ms: Millis,
    /// Its number, as operators know it.
    pub number: String,
    /// When it escalated (nobody acknowledged it within its severity's limit), if it did.
    pub escalated_ms: Option<Millis>,
}

/// A lifecycle transition an operator made.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionFact {
    /// The incident.
    pub incident: String,
    /// `acknowledged`, `dispatched`, `resolved`, `closed`.
    pub to: String,
    /// When, in scenario time.
    pub at_ms: Millis,
    /// Who.
    pub operator: String,
}

/// An action an operator committed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFact {
    /// The incident it was for.
    pub incident: Option<String>,
    /// The kind of backend it went to.
    pub kind: BackendKind,
    /// An Open311 request's service code.
    pub service_code: Option<String>,
    /// When it was committed, in scenario time.
    pub at_ms: Millis,
    /// Who committed it.
    pub operator: String,
    /// Its one-line summary.
    pub summary: String,
}

/// How one objective went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Done in time.
    Met,
    /// Done, after `within_s` but before `late_until_s`.
    Late,
    /// Not done in time (or never), or the incident never opened.
    Missed,
    /// A "never" objective that was broken.
    Violated,
}

/// The score of one objective, with the measured time and what it was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveScore {
    /// The objective's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// How it went.
    pub outcome: Outcome,
    /// Points: 1 met (or a "never" kept), 0.5 late, 0 missed or violated.
    pub points: f64,
    /// The incident it was measured on.
    pub incident: Option<String>,
    /// Seconds from the incident's opening to the deed, when it was done.
    pub after_s: Option<f64>,
    /// In words, for the report ("acknowledged by Aino 42 s after it opened; the limit was 60 s").
    pub detail: String,
}

/// A trainee's score over all objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Each objective, in manifest order.
    pub objectives: Vec<ObjectiveScore>,
    /// Points earned.
    pub points: f64,
    /// Points possible (one per objective).
    pub max_points: f64,
}

/// Scores a record against objectives. Times are scenario milliseconds.
pub fn score(
    objectives: &[Objective],
    incidents: &[IncidentFact],
    transitions: &[TransitionFact],
    actions: &[ActionFact],
) -> Score {
    let out: Vec<ObjectiveScore> = objectives
        .iter()
        .map(|o| score_one(o, incidents, transitions, actions))
        .collect();
    let points = out.iter().map(|s| s.points).sum();
    Score {
        max_points: out.len() as f64,
        points,
        objectives: out,
    }
}

fn score_one(
    o: &Objective,
    incidents: &[IncidentFact],
    transitions: &[TransitionFact],
    actions: &[ActionFact],
) -> ObjectiveScore {
    let base = |outcome: Outcome, incident: Option<String>, after_s: Option<f64>, detail: String| ObjectiveScore {
        id: o.id.clone(),
        title: o.title.clone(),
        points: match outcome {
            Outcome::Met => 1.0,
            Outcome::Late => 0.5,
            Outcome::Missed | Outcome::Violated => 0.0,
        },
        outcome,
        incident,
        after_s,
        detail,
    };
    if o.task == Task::NeverDispatchResolved {
        // The moment each incident was resolved or closed by an operator (the first such).
        let violation = actions.iter().find_map(|a| {
            let id = a.incident.as_deref()?;
            let resolved = transitions
                .iter()
                .filter(|t| t.incident == id && (t.to == "resolved" || t.to == "closed"))
                .map(|t| t.at_ms)
                .min()?;
            (a.at_ms > resolved).then_some((a, resolved))
        });
        return match violation {
            Some((a, resolved)) => base(
                Outcome::Violated,
                a.incident.clone(),
                None,
                format!(
                    "{} by {} {:.0} s after the incident was resolved",
                    a.summary,
                    a.operator,
                    (a.at_ms - resolved) as f64 / 1000.0
                ),
            ),
            None => base(Outcome::Met, None, None, "no action went to a resolved incident".into()),
        };
    }
    if o.task == Task::NeverEscalate {
        let first = incidents
            .iter()
            .filter(|i| o.incident_type.as_ref().is_none_or(|t| *t == i.incident_type))
            .filter_map(|i| i.escalated_ms.map(|at| (at, i)))
            .min_by_key(|(at, i)| (*at, i.id.clone()));
        return match first {
            Some((at, i)) => base(
                Outcome::Violated,
                Some(i.id.clone()),
                Some((at - i.opened_ms) as f64 / 1000.0),
                format!(
                    "{} escalated {:.0} s after it opened: nobody acknowledged it in time",
                    i.number,
                    (at - i.opened_ms) as f64 / 1000.0
                ),
            ),
            None => base(Outcome::Met, None, None, "no incident escalated".into()),
        };
    }
    let ty = o.incident_type.as_deref().unwrap_or_default();
    let Some(incident) = incidents
        .iter()
        .filter(|i| i.incident_type == ty)
        .min_by_key(|i| (i.opened_ms, i.id.clone()))
    else {
        return base(Outcome::Missed, None, None, format!("no {ty} incident opened"));
    };
    let after = |at: Millis| (at - incident.opened_ms) as f64 / 1000.0;
    // The first deed that satisfies the task, as (time, who, what).
    let deed: Option<(Millis, String, String)> = match o.task {
        Task::Acknowledge | Task::Resolve => {
            let to = if o.task == Task::Acknowledge {
                "acknowledged"
            } else {
                "resolved"
            };
            transitions
                .iter()
                .filter(|t| t.incident == incident.id && t.to == to)
                .min_by_key(|t| t.at_ms)
                .map(|t| (t.at_ms, t.operator.clone(), to.to_owned()))
        }
        Task::Dispatch | Task::PublishAlert => {
            let kind = if o.task == Task::PublishAlert {
                Some(BackendKind::Cap)
            } else {
                o.backend
            };
            actions
                .iter()
                .filter(|a| a.incident.as_deref() == Some(incident.id.as_str()))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .filter(|a| o.service_code.is_none() || a.service_code == o.service_code)
                .min_by_key(|a| a.at_ms)
                .map(|a| (a.at_ms, a.operator.clone(), a.summary.clone()))
        }
        Task::NeverDispatchResolved | Task::NeverEscalate => unreachable!("scored above"),
    };
    let within = f64::from(o.within_s.unwrap_or(0));
    let late = o.late_until_s.map(f64::from);
    match deed {
        None => base(
            Outcome::Missed,
            Some(incident.id.clone()),
            None,
            format!("not done; the limit was {within:.0} s after the incident opened"),
        ),
        Some((at, who, what)) => {
            let s = after(at);
            let outcome = if s <= within {
                Outcome::Met
            } else if late.is_some_and(|l| s <= l) {
                Outcome::Late
            } else {
                Outcome::Missed
            };
            base(
                outcome,
                Some(incident.id.clone()),
                Some(s),
                format!("{what} by {who} {s:.0} s after the incident opened; the limit was {within:.0} s"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objectives() -> Vec<Objective> {
        let text = r#"
[[objectives]]
id = "ack"
title = "Acknowledge the outage within 60 s"
task = "acknowledge"
incident_type = "power_outage"
within_s = 60
late_until_s = 120

[[objectives]]
id = "crew"
title = "Send a utility crew within 5 min"
task = "dispatch"
incident_type = "power_outage"
backend = "open311"
service_code = "utility-crew"
within_s = 300

[[objectives]]
id = "alert"
title = "Publish a public alert within 10 min"
task = "publish_alert"
incident_type = "power_outage"
within_s = 600

[[objectives]]
id = "never"
title = "Never dispatch to a resolved incident"
task = "never_dispatch_resolved"
"#;
        #[derive(Deserialize)]
        struct F {
            objectives: Vec<Objective>,
        }
        toml::from_str::<F>(text).unwrap().objectives
    }

    fn incidents() -> Vec<IncidentFact> {
        vec![
            IncidentFact {
                id: "inc/b".into(),
                incident_type: "power_outage".into(),
                opened_ms: 2_000_000,
                number: "HEL-2026-000002".into(),
                escalated_ms: None,
            },
            IncidentFact {
                id: "inc/a".into(),
                incident_type: "power_outage".into(),
                opened_ms: 1_000_000,
                number: "HEL-2026-000001".into(),
                escalated_ms: None,
            },
        ]
    }

    fn ack(at_s: i64) -> TransitionFact {
        TransitionFact {
            incident: "inc/a".into(),
            to: "acknowledged".into(),
            at_ms: 1_000_000 + at_s * 1000,
            operator: "Aino".into(),
        }
    }

    fn action(kind: BackendKind, code: Option<&str>, at_s: i64) -> ActionFact {
        ActionFact {
            incident: Some("inc/a".into()),
            kind,
            service_code: code.map(Into::into),
            at_ms: 1_000_000 + at_s * 1000,
            operator: "Aino".into(),
            summary: format!("{kind:?}"),
        }
    }

    #[test]
    fn validation_points_at_the_objective() {
        let mut o = objectives();
        assert_eq!(validate(&o, &["power_outage"]), Ok(()));
        let e = validate(&o, &["signal_failure"]).unwrap_err();
        assert_eq!((e.index, e.id.as_str()), (0, "ack"));
        o[1].within_s = None;
        assert!(validate(&o, &["power_outage"])
            .unwrap_err()
            .message
            .contains("within_s"));
        let mut o = objectives();
        o[2].backend = Some(BackendKind::Webhook);
        assert_eq!(validate(&o, &["power_outage"]).unwrap_err().index, 2);
        let mut o = objectives();
        o[3].id = "ack".into();
        assert!(validate(&o, &["power_outage"]).unwrap_err().message.contains("twice"));
    }

    #[test]
    fn a_trainee_who_does_everything_in_time_scores_full_marks() {
        let s = score(
            &objectives(),
            &incidents(),
            &[ack(42)],
            &[
                action(BackendKind::Open311, Some("utility-crew"), 200),
                action(BackendKind::Cap, None, 500),
            ],
        );
        assert_eq!((s.points, s.max_points), (4.0, 4.0));
        assert!(s.objectives.iter().all(|o| o.outcome == Outcome::Met), "{s:?}");
        assert_eq!(
            s.objectives[0].incident.as_deref(),
            Some("inc/a"),
            "the first incident of the type to open"
        );
        assert_eq!(s.objectives[0].after_s, Some(42.0));
        assert_eq!(
            s.objectives[0].detail,
            "acknowledged by Aino 42 s after the incident opened; the limit was 60 s"
        );
    }

    #[test]
    fn late_wrong_and_absent_trainees_score_as_the_objectives_say() {
        // Late acknowledgement, a crew of the wrong service, no alert.
        let s = score(
            &objectives(),
            &incidents(),
            &[ack(90)],
            &[action(BackendKind::Open311, Some("public-works"), 100)],
        );
        let outcomes: Vec<Outcome> = s.objectives.iter().map(|o| o.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [Outcome::Late, Outcome::Missed, Outcome::Missed, Outcome::Met]
        );
        assert_eq!(s.points, 1.5);
        // Too late even for late.
        assert_eq!(
            score(&objectives(), &incidents(), &[ack(121)], &[]).objectives[0].outcome,
            Outcome::Missed
        );
        // Absent: nothing at all; the "never" objective is kept.
        let s = score(&objectives(), &incidents(), &[], &[]);
        assert_eq!(s.points, 1.0);
        // No incident of the type: every incident objective is missed, saying why.
        let s = score(&objectives(), &[], &[], &[]);
        assert_eq!(s.objectives[0].detail, "no power_outage incident opened");
    }

    #[test]
    fn dispatching_to_a_resolved_incident_is_a_violation() {
        let resolved = TransitionFact {
            incident: "inc/a".into(),
            to: "resolved".into(),
            at_ms: 1_000_000 + 300_000,
            operator: "Aino".into(),
        };
        let s = score(
            &objectives(),
            &incidents(),
            &[ack(10), resolved],
            &[
                action(BackendKind::Open311, Some("utility-crew"), 200),
                action(BackendKind::Webhook, None, 400),
            ],
        );
        assert_eq!(s.objectives[3].outcome, Outcome::Violated);
        assert_eq!(s.objectives[3].points, 0.0);
        assert!(
            s.objectives[3].detail.contains("100 s after the incident was resolved"),
            "{}",
            s.objectives[3].detail
        );
    }

    #[test]
    fn an_escalated_incident_breaks_the_never_escalate_objective() {
        let text = r#"
[[objectives]]
id = "calm"
title = "Let no outage escalate"
task = "never_escalate"
incident_type = "power_outage"
"#;
        #[derive(Deserialize)]
        struct F {
            objectives: Vec<Objective>,
        }
        let o = toml::from_str::<F>(text).unwrap().objectives;
        validate(&o, &["power_outage"]).unwrap();
        let kept = score(&o, &incidents(), &[], &[]);
        assert_eq!((kept.objectives[0].outcome.clone(), kept.points), (Outcome::Met, 1.0));
        let mut late = incidents();
        late[0].escalated_ms = Some(2_000_000 + 60_000);
        late[1].escalated_ms = Some(1_000_000 + 180_000);
        let broken = score(&o, &late, &[], &[]);
        let s = &broken.objectives[0];
        assert_eq!((s.outcome.clone(), s.points), (Outcome::Violated, 0.0));
        assert_eq!(s.incident.as_deref(), Some("inc/a"), "the first to escalate");
        assert_eq!(
            s.detail,
            "HEL-2026-000001 escalated 180 s after it opened: nobody acknowledged it in time"
        );
        // Another type's escalation does not count against it.
        let mut other = late.clone();
        for i in &mut other {
            i.incident_type = "camera_outage".into();
        }
        assert_eq!(score(&o, &other, &[], &[]).objectives[0].outcome, Outcome::Met);
    }
}
