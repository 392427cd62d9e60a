//! Exercises: scoring a run of a scenario against the scenario's objectives, from what the
//! store recorded (incidents, lifecycle transitions, committed actions), all in scenario time.

use cityops_core::dispatch::BackendKind;
use cityops_core::objectives::{self, ActionFact, IncidentFact, Objective, Score, TransitionFact};

use cityops_store::{RunId, Store, StoreError};

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

/// Scores run `run` of the database against `objectives`.
pub fn score_run(store: &Store, run: RunId, objectives: &[Objective]) -> Result<Score, StoreError> {
    score_run_of(store, run, objectives, None)
}

/// Scores what one trainee did in run `run` (`operator`; everyone's when `None`): the
/// incidents are everyone's, the acknowledgements, steps and actions the trainee's own, so
/// trainees of one exercise site are scored side by side.
pub fn score_run_of(
    store: &Store,
    run: RunId,
    objectives: &[Objective],
    operator: Option<&str>,
) -> Result<Score, StoreError> {
    let mine = |who: &str| operator.is_none_or(|o| o == who);
    let incidents: Vec<IncidentFact> = store
        .stored_incidents(run)?
        .into_iter()
        .map(|i| IncidentFact {
            id: i.id,
            incident_type: i.incident_type,
            opened_ms: i.opened_ms,
        })
        .collect();
    let transitions: Vec<TransitionFact> = store
        .transitions(run)?
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
    Ok(objectives::score(objectives, &incidents, &transitions, &actions))
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
