//! Operator control: merge two incidents, split a member out, reassign a member, and undo.
//!
//! Every decision is recorded with who and when. An entity an operator placed is pinned: it is
//! never grouped automatically again, and an incident an operator touched is never merged away
//! automatically. Undo takes back the latest decision (a stack); right after the decision it
//! restores the exact previous state, and later it reverses only what the decision moved, so
//! observations correlated in between stay where they went.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::Millis;

use super::explain;
use super::incident::{ChangeKind, Explanation, Incident, IncidentChange, IncidentId, IncidentStatus, Membership};
use super::{edit, Correlator};

/// What an operator did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum ManualAction {
    /// Moved every member of `from` into `into`.
    Merge {
        /// The incident that kept the members.
        into: IncidentId,
        /// The incident merged away.
        from: IncidentId,
    },
    /// Moved one member out of `from` into a new incident `new`.
    Split {
        /// Where the member was.
        from: IncidentId,
        /// The member, by entity.
        entity: String,
        /// The incident made for it.
        new: IncidentId,
    },
    /// Moved one member from `from` to `to`.
    Reassign {
        /// Where the member was.
        from: IncidentId,
        /// The member, by entity.
        entity: String,
        /// Where it is now.
        to: IncidentId,
    },
}

/// One recorded operator decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualDecision {
    /// Who decided (the signed-in operator's name).
    pub operator: String,
    /// When, in scenario (or wall) time.
    pub at_ms: Millis,
    /// What.
    pub action: ManualAction,
}

/// Why an operator action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    /// No incident has that id.
    #[error("no incident {0}")]
    UnknownIncident(IncidentId),
    /// The incident is cleared or merged.
    #[error("incident {0} is not open")]
    NotOpen(IncidentId),
    /// The incident has no member for that entity.
    #[error("incident {incident} has no member {entity:?}")]
    UnknownMember {
        /// The incident.
        incident: IncidentId,
        /// The entity asked for.
        entity: String,
    },
    /// Both sides of a merge or reassignment are the same incident.
    #[error("incident {0} cannot be merged with or moved into itself")]
    SameIncident(IncidentId),
    /// Moving out the only member would leave an empty incident; merge instead.
    #[error("{entity:?} is the only member of {incident}; merge the incident instead")]
    LastMember {
        /// The incident.
        incident: IncidentId,
        /// The entity.
        entity: String,
    },
    /// The member has since become part of another open incident, so the decision can no
    /// longer be taken back.
    #[error("{0:?} has since joined another open incident; the decision can no longer be undone")]
    Superseded(String),
    /// There is no decision to undo.
    #[error("nothing to undo")]
    NothingToUndo,
}

/// What undoing a decision needs.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    Merge {
        into_len: usize,
        into_manual: bool,
        from_before: Box<Incident>,
    },
    Move {
        index: usize,
        before: Box<Membership>,
        pin: Option<IncidentId>,
        from_manual: bool,
        from_root: Option<String>,
        to_manual: bool,
    },
}

impl Correlator {
    /// The decisions that can still be undone, oldest first.
    pub fn decisions(&self) -> impl Iterator<Item = &ManualDecision> {
        self.decisions.iter().map(|(d, _)| d)
    }

    fn open(&self, id: &IncidentId) -> Result<&Incident, ManualError> {
        let inc = self
            .incidents
            .get(id)
            .ok_or_else(|| ManualError::UnknownIncident(id.clone()))?;
        if inc.is_open() {
            Ok(inc)
        } else {
            Err(ManualError::NotOpen(id.clone()))
        }
    }

    fn member_index(&self, id: &IncidentId, entity: &str) -> Result<usize, ManualError> {
        let inc = self.open(id)?;
        let i = inc
            .members
            .iter()
            .position(|m| m.entity == entity)
            .ok_or_else(|| ManualError::UnknownMember {
                incident: id.clone(),
                entity: entity.to_owned(),
            })?;
        if inc.members.len() == 1 {
            return Err(ManualError::LastMember {
                incident: id.clone(),
                entity: entity.to_owned(),
            });
        }
        Ok(i)
    }

    fn inc(&mut self, id: &IncidentId) -> &mut Incident {
        edit(&mut self.incidents, id).expect("checked before")
    }

    fn manual_explanation(&self, m: &Membership, text: String) -> Explanation {
        Explanation {
            rule: "manual".into(),
            related: None,
            distance_m: 0.0,
            time_gap_s: 0.0,
            dependency_path: m.asset.iter().cloned().collect(),
            confidence: 1.0,
            text: format!("{} {text}", explain::subject(&self.assets, &m.entity)),
        }
    }

    /// Moves every member of `from` into `into`; `from` is then marked merged.
    pub fn merge(
        &mut self,
        into: &IncidentId,
        from: &IncidentId,
        operator: &str,
        at_ms: Millis,
    ) -> Result<Vec<IncidentChange>, ManualError> {
        self.open(into)?;
        self.open(from)?;
        if into == from {
            return Err(ManualError::SameIncident(into.clone()));
        }
        self.unindex(into);
        self.unindex(from);
        let from_before = Box::new((*self.incidents[from]).clone());
        let into_len = self.incidents[into].members.len();
        let into_manual = self.incidents[into].manual;
        let moved = from_before.members.clone();
        let f = self.inc(from);
        f.status = IncidentStatus::Merged { into: into.clone() };
        f.manual = true;
        let t = self.inc(into);
        t.members.extend(moved);
        t.manual = true;
        self.index(into);
        self.refresh(into, self.now_ms);
        self.changed(into, ChangeKind::Updated);
        self.changed(from, ChangeKind::Merged { into: into.clone() });
        let action = ManualAction::Merge {
            into: into.clone(),
            from: from.clone(),
        };
        self.decisions.push((
            ManualDecision {
                operator: operator.to_owned(),
                at_ms,
                action,
            },
            Undo::Merge {
                into_len,
                into_manual,
                from_before,
            },
        ));
        Ok(self.take_changes())
    }

    /// Moves one member out of `from` into a new incident of its own and pins it there.
    pub fn split(
        &mut self,
        from: &IncidentId,
        entity: &str,
        operator: &str,
        at_ms: Millis,
    ) -> Result<(IncidentId, Vec<IncidentChange>), ManualError> {
        let index = self.member_index(from, entity)?;
        self.unindex(from);
        let (before, from_root, from_manual) = self.take_member(from, index);
        let ty = self.rules.type_for_seed(&before.kind).cloned();
        let f = &self.incidents[from];
        let incident_type = ty
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_else(|| f.incident_type.clone());
        let title = match &ty {
            Some(t) => self.title(t, entity, &before.kind, entity, None),
            None => format!("{} (split)", f.title),
        };
        let new = self.new_id(&before.key);
        let mut m = (*before).clone();
        m.explanation = self.manual_explanation(&m, format!("was split out of {from} by {operator}"));
        m.rule = m.explanation.rule.clone();
        m.duplicate_of = None;
        let inc = Incident {
            id: new.clone(),
            number: self.next_number(m.observed_ms),
            incident_type,
            title,
            status: IncidentStatus::Open,
            severity: m.severity,
            opened_ms: m.observed_ms,
            cleared_ms: None,
            root_cause: Some(m.entity.clone()),
            root_cleared: false,
            root_feeders: None,
            manual: true,
            members: vec![Arc::new(m)],
        };
        self.incidents.insert(new.clone(), Arc::new(inc));
        let pin = self.pins.insert(entity.to_owned(), new.clone());
        self.index(from);
        self.index(&new);
        self.refresh(from, self.now_ms);
        self.refresh(&new, self.now_ms);
        self.changed(from, ChangeKind::Updated);
        self.changed(&new, ChangeKind::Opened);
        let action = ManualAction::Split {
            from: from.clone(),
            entity: entity.to_owned(),
            new: new.clone(),
        };
        let undo = Undo::Move {
            index,
            before,
            pin,
            from_manual,
            from_root,
            to_manual: true,
        };
        self.decisions.push((
            ManualDecision {
                operator: operator.to_owned(),
                at_ms,
                action,
            },
            undo,
        ));
        Ok((new, self.take_changes()))
    }

    /// Moves one member from `from` to `to` and pins it there.
    pub fn reassign(
        &mut self,
        from: &IncidentId,
        entity: &str,
        to: &IncidentId,
        operator: &str,
        at_ms: Millis,
    ) -> Result<Vec<IncidentChange>, ManualError> {
        let index = self.member_index(from, entity)?;
        self.open(to)?;
        if from == to {
            return Err(ManualError::SameIncident(to.clone()));
        }
        self.unindex(from);
        self.unindex(to);
        let (before, from_root, from_manual) = self.take_member(from, index);
        let to_manual = self.incidents[to].manual;
        let mut m = (*before).clone();
        m.explanation = self.manual_explanation(&m, format!("was moved here from {from} by {operator}"));
        m.rule = m.explanation.rule.clone();
        m.duplicate_of = None;
        let t = self.inc(to);
        t.members.push(Arc::new(m));
        t.manual = true;
        let pin = self.pins.insert(entity.to_owned(), to.clone());
        self.index(from);
        self.index(to);
        self.refresh(from, self.now_ms);
        self.refresh(to, self.now_ms);
        self.changed(from, ChangeKind::Updated);
        self.changed(to, ChangeKind::Updated);
        let action = ManualAction::Reassign {
            from: from.clone(),
            entity: entity.to_owned(),
            to: to.clone(),
        };
        let undo = Undo::Move {
            index,
            before,
            pin,
            from_manual,
            from_root,
            to_manual,
        };
        self.decisions.push((
            ManualDecision {
                operator: operator.to_owned(),
                at_ms,
                action,
            },
            undo,
        ));
        Ok(self.take_changes())
    }

    /// Removes member `index` from an (unindexed) incident, electing a new root if it was the
    /// root; returns the member and what undo needs to restore.
    fn take_member(&mut self, from: &IncidentId, index: usize) -> (Box<Membership>, Option<String>, bool) {
        let f = self.inc(from);
        let m = Arc::unwrap_or_clone(f.members.remove(index));
        let from_root = f.root_cause.clone();
        let from_manual = f.manual;
        if f.root_cause.as_deref() == Some(m.entity.as_str()) {
            // The earliest remaining member that is not a duplicate is the next probable cause.
            let next = f
                .members
                .iter()
                .find(|x| x.duplicate_of.is_none())
                .or(f.members.first());
            f.root_cause = next.map(|x| x.entity.clone());
        }
        f.manual = true;
        (Box::new(m), from_root, from_manual)
    }

    /// Takes back the latest decision.
    pub fn undo(&mut self) -> Result<(ManualDecision, Vec<IncidentChange>), ManualError> {
        let (decision, undo) = self.decisions.pop().ok_or(ManualError::NothingToUndo)?;
        match (&decision.action, undo) {
            (
                ManualAction::Merge { into, from },
                Undo::Merge {
                    into_len,
                    into_manual,
                    from_before,
                },
            ) => {
                self.unindex(into);
                let n = from_before.members.len();
                let t = self.inc(into);
                let moved: Vec<Arc<Membership>> = t.members.drain(into_len..into_len + n).collect();
                t.manual = into_manual;
                reopen(t);
                let mut f = *from_before;
                f.members = moved;
                reopen(&mut f);
                self.incidents.insert(from.clone(), Arc::new(f));
                for id in [into, from] {
                    self.index(id);
                    self.refresh(id, self.now_ms);
                }
                self.changed(into, ChangeKind::Updated);
                self.changed(from, ChangeKind::Opened);
            }
            (
                ManualAction::Split { from, entity, new: to } | ManualAction::Reassign { from, entity, to },
                Undo::Move {
                    index,
                    before,
                    pin,
                    from_manual,
                    from_root,
                    to_manual,
                },
            ) => {
                // After its incident cleared, the entity may have opened a new one; putting the
                // old membership back would place one entity in two open incidents.
                if self.entity_in.get(entity).is_some_and(|(id, _)| id != to && id != from) {
                    let entity = entity.clone();
                    let undo = Undo::Move {
                        index,
                        before,
                        pin,
                        from_manual,
                        from_root,
                        to_manual,
                    };
                    self.decisions.push((decision, undo));
                    return Err(ManualError::Superseded(entity));
                }
                let split = matches!(decision.action, ManualAction::Split { .. });
                self.unindex(from);
                self.unindex(to);
                let t = self.inc(to);
                let at = t
                    .members
                    .iter()
                    .position(|m| &m.entity == entity)
                    .expect("a pinned member stays where it was put");
                let mut m = Arc::unwrap_or_clone(t.members.remove(at));
                let rest = if split {
                    std::mem::take(&mut t.members)
                } else {
                    Vec::new()
                };
                t.manual = to_manual;
                reopen(t);
                m.rule = before.rule;
                m.explanation = before.explanation;
                m.duplicate_of = before.duplicate_of;
                let f = self.inc(from);
                f.members.insert(index, Arc::new(m));
                f.members.extend(rest);
                f.root_cause = from_root;
                f.manual = from_manual;
                reopen(f);
                match pin {
                    Some(p) => self.pins.insert(entity.clone(), p),
                    None => self.pins.remove(entity),
                };
                if split {
                    self.incidents.remove(to);
                    self.changed(to, ChangeKind::Removed);
                } else {
                    self.index(to);
                    self.refresh(to, self.now_ms);
                    self.changed(to, ChangeKind::Updated);
                }
                self.index(from);
                self.refresh(from, self.now_ms);
                self.changed(from, ChangeKind::Updated);
            }
            _ => unreachable!("each action is recorded with its own kind of undo"),
        }
        Ok((decision, self.take_changes()))
    }
}

/// Marks an incident open again before a refresh decides whether it still is.
fn reopen(inc: &mut Incident) {
    inc.status = IncidentStatus::Open;
    inc.cleared_ms = None;
}
