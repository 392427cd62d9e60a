//! Finding where an observation belongs: candidate matches per rule, against open incidents only.
//!
//! Dependency rules walk up the observation's supply chain (a few hops) and look each asset up
//! in the index of open incidents' roots; spatial and duplicate rules ask the grid of open
//! incidents' members for what lies within their radius. Neither looks at loose observations.

use std::collections::BTreeSet;

use crate::geo::distance_m;
use crate::model::{GeoPoint, Millis, Observation};
use crate::rules::{any_matches, RuleKind};

use super::explain::{self, Via};
use super::incident::{Explanation, IncidentId, Membership};
use super::{feeder_allowed, kind_hash, rule_bit, within_window, Correlator, Probe};

/// One way an observation could join an open incident.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub incident: IncidentId,
    /// Index of the rule in the rules file.
    pub rule: usize,
    pub confidence: f64,
    /// The member it was matched against, by entity.
    pub related: String,
    pub distance_m: f64,
    pub gap_ms: Millis,
    pub what: What,
}

/// What kind of match, with what only that kind needs.
#[derive(Debug, Clone)]
pub(crate) enum What {
    Dependency {
        path: Vec<String>,
        via: Via,
        feeder: Option<String>,
    },
    Spatial,
    Duplicate {
        of: String,
    },
}

/// The parts of a dependent needed to explain it.
pub(crate) struct Dependent<'a> {
    pub entity: &'a str,
    pub kind: &'a str,
    pub position: GeoPoint,
    pub observed_ms: Millis,
}

impl Correlator {
    /// The most confident match for an observation; ties go to the earlier rule, then the lower
    /// incident id, then the lower related entity, so the choice never depends on order.
    pub(crate) fn best_candidate(&self, o: &Observation, resolved: Option<&(String, Via)>) -> Option<Candidate> {
        let mut all = Vec::new();
        for (ri, rule) in self.rules.rules.iter().enumerate() {
            match &rule.kind {
                RuleKind::Dependency {
                    roots,
                    kinds,
                    max_hops,
                    window_s,
                    near_m,
                } if any_matches(kinds, &o.kind) => {
                    let starts: Vec<(String, Via)> = match (resolved, near_m) {
                        (Some(r), _) => vec![r.clone()],
                        (None, Some(r)) => self
                            .assets
                            .within(o.position, *r)
                            .into_iter()
                            .map(|(d, a)| (a.id.clone(), Via::Near(d)))
                            .collect(),
                        (None, None) => Vec::new(),
                    };
                    for (asset, via) in starts {
                        let before = all.len();
                        let mut path = vec![asset.clone()];
                        let mut cur = Some(asset);
                        for hop in 0..=*max_hops {
                            let Some(a) = cur.take() else { break };
                            if hop > 0 {
                                path.push(a.clone());
                            }
                            for id in self.roots_by_asset.get(&a).into_iter().flatten() {
                                let inc = &self.incidents[id];
                                let Some(root) = inc.root() else { continue };
                                if !any_matches(roots, &root.kind) || !within_window(root, o.observed_ms, *window_s) {
                                    continue;
                                }
                                let feeder = self.feeder_of(o, &path);
                                if !feeder_allowed(inc, feeder.as_deref()) {
                                    continue;
                                }
                                let mut confidence = rule.confidence * 0.95f64.powi(hop.saturating_sub(1) as i32);
                                if let (Via::Near(d), Some(r)) = (&via, near_m) {
                                    confidence *= 1.0 - 0.5 * d / r;
                                }
                                all.push(Candidate {
                                    incident: id.clone(),
                                    rule: ri,
                                    confidence: explain::round2(confidence),
                                    related: root.entity.clone(),
                                    distance_m: distance_m(o.position, root.position),
                                    gap_ms: o.observed_ms - root.observed_ms,
                                    what: What::Dependency {
                                        path: path.clone(),
                                        via: via.clone(),
                                        feeder,
                                    },
                                });
                            }
                            cur = self.assets.get(&a).and_then(|x| x.fed_by.clone());
                        }
                        // Near matches: the nearest asset that connects to an open root stands
                        // for the observation; farther ones would only repeat the same incident.
                        if matches!(via, Via::Near(_)) && all.len() > before {
                            break;
                        }
                    }
                }
                RuleKind::Spatial {
                    kinds,
                    near,
                    radius_m,
                    window_s,
                } if any_matches(kinds, &o.kind) => {
                    let bit = rule_bit(ri);
                    for (d, m, id) in self.members_near(o.position, *radius_m, |p| p.near & bit == bit) {
                        if m.entity != o.entity
                            && any_matches(near, &m.kind)
                            && within_window(m, o.observed_ms, *window_s)
                        {
                            all.push(Candidate {
                                incident: id.clone(),
                                rule: ri,
                                confidence: explain::round2(rule.confidence * (1.0 - 0.5 * d / radius_m)),
                                related: m.entity.clone(),
                                distance_m: d,
                                gap_ms: o.observed_ms - m.observed_ms,
                                what: What::Spatial,
                            });
                        }
                    }
                }
                RuleKind::Duplicate {
                    kinds,
                    radius_m,
                    window_s,
                } if any_matches(kinds, &o.kind) => {
                    let kind = kind_hash(&o.kind);
                    for (d, m, id) in self.members_near(o.position, *radius_m, |p| p.kind == kind) {
                        let close_in_time = (o.observed_ms - m.last_ms).abs() <= window_s.saturating_mul(1000);
                        if m.entity != o.entity && m.kind == o.kind && close_in_time {
                            all.push(Candidate {
                                incident: id.clone(),
                                rule: ri,
                                confidence: explain::round2(rule.confidence * (1.0 - 0.5 * d / radius_m)),
                                related: m.entity.clone(),
                                distance_m: d,
                                gap_ms: o.observed_ms - m.observed_ms,
                                what: What::Duplicate {
                                    of: m.duplicate_of.clone().unwrap_or_else(|| m.entity.clone()),
                                },
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        all.into_iter().min_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.rule.cmp(&b.rule))
                .then_with(|| a.incident.cmp(&b.incident))
                .then_with(|| a.related.cmp(&b.related))
        })
    }

    /// Members of open incidents within `radius_m` of `p` whose grid entry `keep` accepts,
    /// with their distance and incident. `keep` only narrows: callers still check the member.
    fn members_near<'a>(
        &'a self,
        p: GeoPoint,
        radius_m: f64,
        keep: impl Fn(&Probe) -> bool + 'a,
    ) -> impl Iterator<Item = (f64, &'a Membership, &'a IncidentId)> + 'a {
        self.grid
            .within_where(p, radius_m, keep)
            .map(|(d, Probe { slot: (id, i), .. })| (d, &*self.incidents[id].members[*i], id))
    }

    /// The explanation, duplicate reference and feeder of a chosen candidate.
    pub(crate) fn explain(
        &self,
        o: &Observation,
        resolved: Option<&(String, Via)>,
        c: &Candidate,
    ) -> (Explanation, Option<String>, Option<String>) {
        let inc = &self.incidents[&c.incident];
        let related = inc.member(&c.related).expect("candidates name members");
        let rule = &self.rules.rules[c.rule];
        let subject = explain::subject(&self.assets, &o.entity);
        let phrase = self.rules.phrase(&o.kind);
        let own_feeder = || {
            o.fields
                .get("feeder")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    resolved
                        .and_then(|(a, _)| self.assets.get(a))
                        .and_then(|a| a.feeder.clone())
                })
        };
        match &c.what {
            What::Dependency { path, via, feeder } => {
                let dep = Dependent {
                    entity: &o.entity,
                    kind: &o.kind,
                    position: o.position,
                    observed_ms: o.observed_ms,
                };
                (
                    self.dependency_explanation(c.rule, &dep, via, path, feeder.as_deref(), related, c.confidence),
                    None,
                    feeder.clone(),
                )
            }
            What::Spatial => {
                let other = explain::subject(&self.assets, &related.entity);
                let text = explain::spatial(
                    &subject,
                    &phrase,
                    c.distance_m,
                    &other,
                    &self.rules.phrase(&related.kind),
                    c.gap_ms,
                    related.cleared,
                );
                (self.explanation(&rule.id, c, Vec::new(), text), None, own_feeder())
            }
            What::Duplicate { of } => {
                let other = explain::subject(&self.assets, &related.entity);
                let text = explain::duplicate(&subject, &phrase, c.distance_m, &other, c.gap_ms);
                (
                    self.explanation(&rule.id, c, Vec::new(), text),
                    Some(of.clone()),
                    own_feeder(),
                )
            }
        }
    }

    fn explanation(&self, rule: &str, c: &Candidate, path: Vec<String>, text: String) -> Explanation {
        Explanation {
            rule: rule.to_owned(),
            related: Some(c.related.clone()),
            distance_m: explain::round1(c.distance_m),
            time_gap_s: explain::round1(c.gap_ms as f64 / 1000.0),
            dependency_path: path,
            confidence: c.confidence,
            text,
        }
    }

    /// The explanation of a dependent grouped under `root` by rule `rule`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dependency_explanation(
        &self,
        rule: usize,
        dep: &Dependent<'_>,
        via: &Via,
        path: &[String],
        feeder: Option<&str>,
        root: &Membership,
        confidence: f64,
    ) -> Explanation {
        let root_noun = root
            .asset
            .as_deref()
            .and_then(|a| self.assets.get(a))
            .map(|a| explain::noun(&a.asset_type))
            .unwrap_or_else(|| "asset".into());
        let gap_ms = dep.observed_ms - root.observed_ms;
        let text = explain::dependency(&explain::Dependency {
            subject: explain::subject(&self.assets, dep.entity),
            phrase: self.rules.phrase(dep.kind),
            gap_ms,
            root_subject: explain::subject(&self.assets, &root.entity),
            root_phrase: self.rules.phrase(&root.kind),
            root_noun,
            via,
            path,
            feeder,
            assets: &self.assets,
        });
        Explanation {
            rule: self.rules.rules[rule].id.clone(),
            related: Some(root.entity.clone()),
            distance_m: explain::round1(distance_m(dep.position, root.position)),
            time_gap_s: explain::round1(gap_ms as f64 / 1000.0),
            dependency_path: path.to_vec(),
            confidence,
            text,
        }
    }

    /// Open, automatic incidents whose root depends on the root of `new`, with the explanation
    /// their root gets as a dependent of it, in id order.
    pub(crate) fn absorbable(&self, new: &IncidentId) -> Vec<(IncidentId, Explanation)> {
        let inc = &self.incidents[new];
        let Some(root) = inc.root() else { return Vec::new() };
        let Some(root_asset) = root.asset.clone() else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (ri, rule) in self.rules.rules.iter().enumerate() {
            let RuleKind::Dependency {
                roots,
                kinds,
                max_hops,
                window_s,
                ..
            } = &rule.kind
            else {
                continue;
            };
            if !any_matches(roots, &root.kind) {
                continue;
            }
            let below = self.assets.downstream(&root_asset, *max_hops);
            let levels =
                std::iter::once((0, root_asset.as_str())).chain(below.iter().map(|(d, a)| (*d, a.id.as_str())));
            for (depth, asset) in levels {
                for id in self.roots_by_asset.get(asset).into_iter().flatten() {
                    let victim = &self.incidents[id];
                    let Some(vr) = victim.root() else { continue };
                    if id == new
                        || victim.manual
                        || seen.contains(id)
                        || !any_matches(kinds, &vr.kind)
                        || !within_window(root, vr.observed_ms, *window_s)
                    {
                        continue;
                    }
                    // The supply path from the victim's asset up to the new root's asset.
                    let mut path = vec![asset.to_owned()];
                    path.extend(self.assets.upstream(asset).take(depth).map(|a| a.id.clone()));
                    let feeder = path[..path.len() - 1]
                        .iter()
                        .find_map(|a| self.assets.get(a).and_then(|a| a.feeder.clone()))
                        .or_else(|| vr.feeder.clone());
                    if !feeder_allowed(inc, feeder.as_deref()) {
                        continue;
                    }
                    let via = match &vr.asset_field {
                        Some(f) => Via::Field(f.clone()),
                        None => Via::Entity,
                    };
                    let dep = Dependent {
                        entity: &vr.entity,
                        kind: &vr.kind,
                        position: vr.position,
                        observed_ms: vr.observed_ms,
                    };
                    let confidence = explain::round2(rule.confidence * 0.95f64.powi(depth.saturating_sub(1) as i32));
                    seen.insert(id.clone());
                    out.push((
                        id.clone(),
                        self.dependency_explanation(ri, &dep, &via, &path, feeder.as_deref(), root, confidence),
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
