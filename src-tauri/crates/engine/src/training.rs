//! Exercises: scoring a run of a scenario against the scenario's objectives, from what the
//! store recorded (incidents, lifecycle transitions, committed actions), all in scenario time.

use cityops_core::dispatch::BackendKind;
use cityops_core::model::{Millis, Severity};
use cityops_core::objectives::{self, ActionFact, IncidentFact, Objective, Score, TransitionFact};
use cityops_core::rules::Rules;

use cityops_store::{RunId, Store, StoreError, StoredIncident, TransitionRow};

/// What a run is scored against: the scenario's objectives, and the rules and the time up to
/// which escalations count (for `never_escalate`; without rules nothing escalates).
#[derive(Clone, Copy)]
pub struct Scoring<'a> {
    /// The scenario's objectives.
    pub objectives: &'a [Objective],
    /// The correlation rules, whose `[unacknowledged_s]` says when an incident escalates.
    pub rules: Option<&'a Rules>,
    /// Escalations after this scenario time have not happened yet.
    pub until_ms: Millis,
}

/// When an incident escalated by the rules' `[unacknowledged_s]`: its severity's limit passed,
/// by `until_ms`, before anyone moved it out of `new` and before it cleared. The after-action
/// report lists the same moments.
pub fn escalated_at(
    i: &StoredIncident,
    transitions: &[TransitionRow],
    rules: &Rules,
    until_ms: Millis,
) -> Option<Millis> {
    let severity = Severity::ALL.iter().find(|s| s.as_str() == i.severity)?;
    let limit = rules.unacknowledged_s.get(severity)?;
    let due = i.opened_ms + limit * 1000;
    let answered = transitions.iter().find(|t| t.incident == i.id).map(|t| t.scenario_ms);
    let cleared_first = i.cleared_ms.is_some_and(|c| c < due);
    (answered.is_none_or(|a| a > due) && !cleared_first && due <= until_ms).then_some(due)
}

/// The value of one field of an `application/x-www-form-urlencoded` body.
fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode_component(v))
    })
}

fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Scores run `run` of the database.
pub fn score_run(store: &Store, run: RunId, scoring: Scoring<'_>) -> Result<Score, StoreError> {
    score_run_of(store, run, scoring, None)
}

/// Scores what one trainee did in run `run` (`operator`; everyone's when `None`): the
/// incidents are everyone's, the acknowledgements, steps and actions the trainee's own, so
/// trainees of one exercise site are scored side by side.
pub fn score_run_of(
    store: &Store,
    run: RunId,
    scoring: Scoring<'_>,
    operator: Option<&str>,
) -> Result<Score, StoreError> {
    let mine = |who: &str| operator.is_none_or(|o| o == who);
    let all_transitions = store.transitions(run)?;
    // An incident escalates when nobody answered it, whoever the trainee: an acknowledgement
    // by another trainee of the site stops it for all.
    let incidents: Vec<IncidentFact> = store
        .stored_incidents(run)?
        .into_iter()
        .map(|i| IncidentFact {
            escalated_ms: scoring
                .rules
                .and_then(|r| escalated_at(&i, &all_transitions, r, scoring.until_ms)),
            id: i.id,
            incident_type: i.incident_type,
            opened_ms: i.opened_ms,
            number: i.number,
        })
        .collect();
    let transitions: Vec<TransitionFact> = all_transitions
        .into_iter()
        .filter(|t| mine(&t.operator))
        .map(|t| TransitionFact {
            incident: t.incident,
            to: t.to,
            at_ms: t.scenario_ms,
            operator: t.operator,
        })
        .collect();
    let actions: Vec<ActionFact> = store
        .actions_of_run(run)?
        .into_iter()
        .filter(|a| mine(&a.operator))
        .filter_map(|a| {
            let service_code = (a.kind == BackendKind::Open311)
                .then(|| form_value(&a.body, "service_code"))
                .flatten();
            Some(ActionFact {
                incident: a.incident,
                kind: a.kind,
                service_code,
                at_ms: a.scenario_ms?,
                operator: a.operator,
                summary: a.summary,
            })
        })
        .collect();
    Ok(objectives::score(
        scoring.objectives,
        &incidents,
        &transitions,
        &actions,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        let body = "service_code=utility-crew&description=Feeder+trip%3B+dark&x=%zz";
        assert_eq!(form_value(body, "service_code").as_deref(), Some("utility-crew"));
        assert_eq!(form_value(body, "description").as_deref(), Some("Feeder trip; dark"));
        assert_eq!(form_value(body, "x").as_deref(), Some("%zz"));
        assert_eq!(form_value(body, "nope"), None);
    }
}
