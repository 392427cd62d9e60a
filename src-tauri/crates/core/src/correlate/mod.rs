//! The correlator: turns observations into incidents that explain themselves.
//!
//! Each observation is matched against the *open incidents* (through a grid of their members
//! and an index of their roots' assets) and the *asset index*, never against other loose
//! observations, so the cost per observation does not grow with the input rate (measured before
//! this code was written: matching against incidents held 2.6-3.4 million events/s, while
//! matching events against each other fell from 700,000/s at 100 events/s of input to 33,000/s at
//! 10,000). What it does with one observation:
//! 0. With zones and zone rules: notes which zones its entity is in, and the first zone rule it
//!    sets off (in a zone, come into one, left one) places it in the zone's incident.
//! 1. A normal reading or a clearing kind clears its entity's membership.
//! 2. A problem of an entity that is already a member updates that membership.
//! 3. Otherwise the most confident rule match (dependency, spatial, duplicate) adds a member.
//! 4. Otherwise, if its kind opens a type of incident, it opens one as its root; a root that
//!    can explain dependents also takes in open incidents rooted downstream of it (a sagging
//!    feeder seen before its substation trips).
//!
//! Determinism: the engine hands over one arrival second at a time ([`Correlator::ingest_second`])
//! and the batch is sorted canonically first, so the order within a second never matters; ids
//! come from observation keys; ties between matches are broken by rule order and ids.
//!
//! # Layout
//! - [`incident`]: the incident, membership and explanation types.
//! - `matching`: candidate matches per rule kind.
//! - `explain`: explanations in words.
//! - `manual`: operator merge, split, reassign and undo.

mod explain;
pub mod incident;
mod manual;
mod matching;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::assets::AssetIndex;
use crate::geo::GridIndex;
use crate::model::{Millis, Observation, Severity};
use crate::rules::{IncidentType, RuleKind, Rules, ZoneTrigger};
use crate::zones::Zones;

pub use incident::{ChangeKind, Explanation, Incident, IncidentChange, IncidentId, IncidentStatus, Membership, ObsKey};
pub use manual::{ManualAction, ManualDecision, ManualError};

use explain::Via;

/// Side of a cell of the member grid, in metres: close to the rules' typical radii, so a query
/// looks at about nine cells.
const MEMBER_CELL_M: f64 = 200.0;

/// Where a member sits: its incident and its position in the incident's member list.
type Slot = (IncidentId, usize);

/// What the member grid keeps of a member: where it sits, and enough of its kind for a query to
/// pass over the members no rule could take without reaching into their incidents. A query
/// meets dozens of members, and each visit to a member behind its incident is a chain of cache
/// misses; most of them fail on kind alone (a delayed vehicle looks for dark signals and meets
/// offline cameras).
#[derive(Debug, Clone)]
struct Probe {
    slot: Slot,
    /// Bit `i` is set when rule `i` is spatial and its `near` kinds take this member's kind.
    /// Rules past the 64th have no bit; queries for them look at every member.
    near: u64,
    /// A hash of the member's kind ([`kind_hash`]): duplicate rules want the same kind.
    kind: u64,
}

impl Probe {
    fn new(rules: &Rules, slot: Slot, kind: &str) -> Probe {
        let near = rules
            .rules
            .iter()
            .take(64)
            .enumerate()
            .fold(0u64, |bits, (i, r)| match &r.kind {
                RuleKind::Spatial { near, .. } if crate::rules::any_matches(near, kind) => bits | 1 << i,
                _ => bits,
            });
        Probe {
            slot,
            near,
            kind: kind_hash(kind),
        }
    }
}

/// The bit of rule `i` in [`Probe::near`]; none (every member passes) past the 64th rule.
fn rule_bit(i: usize) -> u64 {
    if i < 64 {
        1 << i
    } else {
        0
    }
}

/// A hash of a kind (64-bit FNV-1a): equal kinds hash equal, so a different hash is a
/// different kind; an equal hash is confirmed on the member itself.
fn kind_hash(kind: &str) -> u64 {
    kind.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Keeps the incidents of one run up to date as observations arrive.
#[derive(Debug, Clone)]
pub struct Correlator {
    // Shared, not copied, between clones: the engine keeps checkpoints of the correlator, and a
    // city's asset index is far larger than its open incidents.
    rules: Arc<Rules>,
    assets: Arc<AssetIndex>,
    now_ms: Millis,
    incidents: Incidents,
    /// Operator decisions that keep an entity in the incident they put it in.
    pins: BTreeMap<String, IncidentId>,
    decisions: Vec<(ManualDecision, manual::Undo)>,
    // Indexes over open incidents only, rebuilt per incident whenever one changes shape.
    entity_in: HashMap<String, Slot>,
    roots_by_asset: HashMap<String, BTreeSet<IncidentId>>,
    grid: GridIndex<Probe>,
    due: BTreeSet<(Millis, IncidentId)>,
    due_of: HashMap<IncidentId, Millis>,
    /// What changed during the current call.
    changes: BTreeMap<IncidentId, ChangeKind>,
    /// The last incident number given, per year of opening.
    numbers: BTreeMap<i32, u32>,
    /// The zones zone rules watch.
    zones: Arc<Zones>,
    /// Which zones each entity was last seen in (kept only when some rule watches zones).
    zone_of: HashMap<String, Vec<String>>,
    /// The incident a zone rule opened, by incident type and zone, while it may be open.
    zone_open: BTreeMap<(String, String), IncidentId>,
}

/// The incidents, each behind an `Arc`: the engine keeps checkpoints (clones) of the
/// correlator, and this way they share every incident that has not changed since instead of
/// copying it.
type Incidents = BTreeMap<IncidentId, Arc<Incident>>;

/// The incident `id`, for changing: copied first if a checkpoint still shares it.
fn edit<'a>(incidents: &'a mut Incidents, id: &IncidentId) -> Option<&'a mut Incident> {
    incidents.get_mut(id).map(Arc::make_mut)
}

/// Everything that defines the correlator's state, for comparisons in tests and for the engine
/// to check that two runs agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Every incident, in id order.
    pub incidents: Vec<Incident>,
    /// Entities an operator placed, and where.
    pub pins: BTreeMap<String, IncidentId>,
    /// Operator decisions that can still be undone, oldest first.
    pub decisions: Vec<ManualDecision>,
}

/// The canonical order of a second's batch: roots first (so a dependent reported in the same
/// second as its cause is explained by it), then by observed time, then by key.
fn canonical_key<'a>(rules: &Rules, o: &'a Observation) -> (bool, Millis, &'a str, u64, u32) {
    let root = o.severity > Severity::Normal && rules.is_root_kind(&o.kind);
    (!root, o.observed_ms, o.feed.as_str(), o.seq, o.idx)
}

impl Correlator {
    /// A correlator with no incidents.
    pub fn new(rules: Rules, assets: AssetIndex) -> Correlator {
        let grid = GridIndex::new(MEMBER_CELL_M, assets.ref_lat());
        Correlator {
            rules: Arc::new(rules),
            assets: Arc::new(assets),
            now_ms: Millis::MIN,
            incidents: BTreeMap::new(),
            pins: BTreeMap::new(),
            decisions: Vec::new(),
            entity_in: HashMap::new(),
            roots_by_asset: HashMap::new(),
            grid,
            due: BTreeSet::new(),
            due_of: HashMap::new(),
            changes: BTreeMap::new(),
            numbers: BTreeMap::new(),
            zones: Arc::new(Zones::default()),
            zone_of: HashMap::new(),
            zone_open: BTreeMap::new(),
        }
    }

    /// The same correlator watching `zones` for the rules' zone rules (without zone rules it
    /// keeps none, and no observation pays for them).
    pub fn with_zones(mut self, zones: Zones) -> Correlator {
        if self.rules.has_zone_rules() {
            self.zones = Arc::new(zones);
        }
        self
    }

    /// Correlates the observations that arrived during one second (`second` is Unix seconds of
    /// arrival time) and returns the incidents that changed, in id order.
    ///
    /// Call it once per second in order; empty batches are allowed and let time-driven changes
    /// (escalation by duration, expiring events) happen, but skipping empty seconds gives the
    /// same incidents. A second earlier than one already seen is treated as the latest one. The
    /// batch is sorted in place into the canonical order.
    pub fn ingest_second(&mut self, second: i64, batch: &mut [Observation]) -> Vec<IncidentChange> {
        self.now_ms = self.now_ms.max(second.saturating_mul(1000));
        self.run_due(self.now_ms);
        let rules = &self.rules;
        batch.sort_by(|a, b| canonical_key(rules, a).cmp(&canonical_key(rules, b)));
        for o in batch.iter() {
            self.observe(o);
        }
        self.take_changes()
    }

    /// Every incident, in id order (open, cleared and merged ones).
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values().map(|i| &**i)
    }

    /// The open incidents, in id order.
    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values().map(|i| &**i).filter(|i| i.is_open())
    }

    /// One incident.
    pub fn incident(&self, id: &IncidentId) -> Option<&Incident> {
        self.incidents.get(id).map(|i| &**i)
    }

    /// The incidents after an id (all of them after `None`), in id order, as the correlator
    /// shares them (with its clones, until one of them changes one): a holder of an earlier
    /// copy tells an unchanged incident by pointer.
    pub fn shared_incidents_after(&self, id: Option<&IncidentId>) -> impl Iterator<Item = &Arc<Incident>> {
        use std::ops::Bound::{Excluded, Unbounded};
        match id {
            Some(id) => self.incidents.range((Excluded(id), Unbounded)),
            None => self.incidents.range::<IncidentId, _>(..),
        }
        .map(|(_, i)| i)
    }

    /// One incident as the correlator shares it (see [`Correlator::shared_incidents_after`]).
    pub fn shared_incident(&self, id: &IncidentId) -> Option<&Arc<Incident>> {
        self.incidents.get(id)
    }

    /// The incident type of an incident, with its SOP checklist.
    pub fn incident_type(&self, incident: &Incident) -> Option<&IncidentType> {
        self.rules.incident_type(&incident.incident_type)
    }

    /// The rules in use.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The asset index in use.
    pub fn assets(&self) -> &AssetIndex {
        &self.assets
    }

    /// The start of the latest second ingested, in ms.
    pub fn now_ms(&self) -> Millis {
        self.now_ms
    }

    /// The state that defines the incidents, for comparisons.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            incidents: self.incidents.values().map(|i| (**i).clone()).collect(),
            pins: self.pins.clone(),
            decisions: self.decisions.iter().map(|(d, _)| d.clone()).collect(),
        }
    }

    fn take_changes(&mut self) -> Vec<IncidentChange> {
        std::mem::take(&mut self.changes)
            .into_iter()
            .map(|(id, kind)| IncidentChange { id, kind })
            .collect()
    }

    /// Records a change, keeping the most significant one per incident.
    fn changed(&mut self, id: &IncidentId, kind: ChangeKind) {
        let e = self.changes.entry(id.clone()).or_insert(ChangeKind::Updated);
        if kind > *e {
            *e = kind;
        }
    }

    fn run_due(&mut self, upto: Millis) {
        while let Some((t, id)) = self.due.first().cloned() {
            if t > upto {
                break;
            }
            self.due.remove(&(t, id.clone()));
            self.due_of.remove(&id);
            self.refresh(&id, t);
        }
    }

    fn observe(&mut self, o: &Observation) {
        // Zones first: a zone rule sees every observation, normal positions included (a unit
        // entering a perimeter reports nothing wrong).
        if !self.zones.is_empty() && self.zone_rules(o) {
            return;
        }
        let clearing =
            (o.severity == Severity::Normal && self.rules.normal_clears) || self.rules.is_clearing_kind(&o.kind);
        if clearing {
            self.clear(o);
            return;
        }
        if o.severity == Severity::Normal {
            return;
        }
        if let Some(slot) = self.entity_in.get(&o.entity).cloned() {
            self.fold(&slot, o);
            return;
        }
        let resolved = self.resolve_asset(o);
        // An operator's call opens an incident of the type the operator chose, whatever is
        // open nearby: the operator asked for a new incident (and may still merge it).
        if let Some(ty) = crate::call::type_of(&o.kind)
            .and_then(|t| self.rules.incident_type(t))
            .cloned()
        {
            self.seed(o, resolved, &ty);
            return;
        }
        // An entity an operator placed is never grouped automatically again; it can still open
        // an incident of its own.
        if !self.pins.contains_key(&o.entity) {
            if let Some(c) = self.best_candidate(o, resolved.as_ref()) {
                self.join(o, resolved, c);
                return;
            }
        }
        if let Some(ty) = self.rules.type_for_seed(&o.kind).cloned() {
            let id = self.seed(o, resolved, &ty);
            if self.rules.is_root_kind(&o.kind) {
                self.absorb(&id);
            }
        }
    }

    /// The asset an observation is about: its entity, or an asset a payload field names.
    fn resolve_asset(&self, o: &Observation) -> Option<(String, Via)> {
        if self.assets.get(&o.entity).is_some() {
            return Some((o.entity.clone(), Via::Entity));
        }
        self.rules.asset_fields.iter().find_map(|f| match o.fields.get(f) {
            Some(Value::String(s)) if self.assets.get(s).is_some() => Some((s.clone(), Via::Field(f.clone()))),
            _ => None,
        })
    }

    fn clear(&mut self, o: &Observation) {
        let Some((id, i)) = self.entity_in.get(&o.entity).cloned() else {
            return;
        };
        let normal = o.severity == Severity::Normal && self.rules.normal_clears;
        let m = &self.incidents[&id].members[i];
        // Nothing clears an event: it stops counting `event_hold_s` after its latest report.
        if m.cleared || m.event || !(normal || self.rules.clears(&o.kind, &m.kind)) {
            return;
        }
        let m = Arc::make_mut(&mut edit(&mut self.incidents, &id).expect("indexed").members[i]);
        m.cleared = true;
        m.cleared_ms = Some(o.observed_ms);
        m.last_key = ObsKey::of(o);
        self.changed(&id, ChangeKind::Updated);
        self.refresh(&id, self.now_ms);
    }

    fn fold(&mut self, (id, i): &Slot, o: &Observation) {
        let m = Arc::make_mut(&mut edit(&mut self.incidents, id).expect("indexed").members[*i]);
        m.reports += 1;
        m.last_key = ObsKey::of(o);
        m.last_ms = m.last_ms.max(o.observed_ms);
        let new_kind = m.kind != o.kind;
        m.kind.clone_from(&o.kind);
        m.severity = m.severity.max(o.severity);
        m.cleared = false;
        m.cleared_ms = None;
        if new_kind {
            // The grid keeps what the member's kind matches; it follows the kind.
            let (position, probe) = (m.position, Probe::new(&self.rules, (id.clone(), *i), &o.kind));
            let entry = self.grid.find_mut(position, |p| p.slot.0 == *id && p.slot.1 == *i);
            debug_assert!(entry.is_some(), "open members are in the grid");
            if let Some(entry) = entry {
                *entry = probe;
            }
        }
        self.changed(id, ChangeKind::Updated);
        self.refresh(id, self.now_ms);
    }

    /// A fresh membership for an observation.
    fn membership(
        &self,
        o: &Observation,
        resolved: Option<&(String, Via)>,
        explanation: Explanation,
        duplicate_of: Option<String>,
        feeder: Option<String>,
    ) -> Membership {
        let key = ObsKey::of(o);
        Membership {
            last_key: key.clone(),
            key,
            entity: o.entity.clone(),
            layer: o.layer,
            kind: o.kind.clone(),
            severity: o.severity,
            position: o.position,
            observed_ms: o.observed_ms,
            last_ms: o.observed_ms,
            reports: 1,
            asset: resolved.map(|(a, _)| a.clone()),
            asset_field: match resolved {
                Some((_, Via::Field(f))) => Some(f.clone()),
                _ => None,
            },
            feeder,
            event: self.rules.is_event(&o.kind),
            rule: explanation.rule.clone(),
            explanation,
            duplicate_of,
            cleared: false,
            cleared_ms: None,
        }
    }

    /// The feeder an observation hangs on: from the first asset on its supply path that names
    /// one, else from its own `feeder` field.
    fn feeder_of(&self, o: &Observation, path: &[String]) -> Option<String> {
        let last = path.len().saturating_sub(1);
        path[..last]
            .iter()
            .find_map(|a| self.assets.get(a).and_then(|a| a.feeder.clone()))
            .or_else(|| o.fields.get("feeder").and_then(Value::as_str).map(str::to_owned))
    }

    fn join(&mut self, o: &Observation, resolved: Option<(String, Via)>, c: matching::Candidate) {
        let (explanation, duplicate_of, feeder) = self.explain(o, resolved.as_ref(), &c);
        let m = self.membership(o, resolved.as_ref(), explanation, duplicate_of, feeder);
        let id = c.incident;
        self.add_member(&id, m);
        self.changed(&id, ChangeKind::Updated);
        self.refresh(&id, self.now_ms);
    }

    fn add_member(&mut self, id: &IncidentId, m: Membership) {
        let slot = (id.clone(), self.incidents[id].members.len());
        self.entity_in.insert(m.entity.clone(), slot.clone());
        self.grid.insert(m.position, Probe::new(&self.rules, slot, &m.kind));
        edit(&mut self.incidents, id)
            .expect("candidate incidents exist")
            .members
            .push(Arc::new(m));
    }

    /// The next incident number for an incident opened at `opened_ms`.
    fn next_number(&mut self, opened_ms: Millis) -> String {
        let year = incident::utc_year(opened_ms);
        let n = self.numbers.entry(year).or_insert(0);
        *n += 1;
        incident::format_number(&self.rules.incident_prefix, year, *n)
    }

    /// A fresh id for an incident rooted at `key`.
    fn new_id(&self, key: &ObsKey) -> IncidentId {
        (1..)
            .map(|n| IncidentId::from_key(key, n))
            .find(|id| !self.incidents.contains_key(id))
            .expect("some suffix is free")
    }

    /// The title of an incident of type `ty` rooted at `o`.
    fn title(&self, ty: &IncidentType, entity: &str, kind: &str, o_title: &str, name_field: Option<&str>) -> String {
        let asset = self.assets.get(entity);
        let name = asset.map(|a| a.name.as_str()).or(name_field).unwrap_or(o_title);
        let asset_type = asset
            .map(|a| explain::noun(&a.asset_type))
            .unwrap_or_else(|| kind.split('.').next().unwrap_or(kind).to_owned());
        ty.title
            .replace("{name}", name)
            .replace("{entity}", entity)
            .replace("{kind}", kind)
            .replace("{asset_type}", &asset_type)
    }

    /// Notes which zones the observation's entity is in and applies the first zone rule it sets
    /// off; true when one did (the observation is then placed).
    fn zone_rules(&mut self, o: &Observation) -> bool {
        let now: Vec<String> = self.zones.containing(o.position).map(str::to_owned).collect();
        let before = self.zone_of.insert(o.entity.clone(), now.clone());
        let rules = Arc::clone(&self.rules);
        for r in &rules.rules {
            let RuleKind::Zone {
                trigger,
                zones,
                kinds,
                opens,
            } = &r.kind
            else {
                continue;
            };
            if !crate::rules::any_matches(kinds, &o.kind) {
                continue;
            }
            let was_in = |z: &String| before.as_ref().map(|b| b.contains(z));
            let hit = zones.iter().find(|z| match trigger {
                ZoneTrigger::Inside => now.contains(z),
                ZoneTrigger::Enter => now.contains(z) && was_in(z) == Some(false),
                ZoneTrigger::Exit => !now.contains(z) && was_in(z) == Some(true),
            });
            let (Some(zone), Some(ty)) = (hit, rules.incident_type(opens)) else {
                continue;
            };
            self.zone_event(o, &r.id, *trigger, zone, ty);
            return true;
        }
        false
    }

    /// A zone rule went off for `o` in `zone`: the entity's membership is updated, or it joins
    /// the zone's open incident of type `ty`, or it opens one.
    fn zone_event(&mut self, o: &Observation, rule: &str, trigger: ZoneTrigger, zone: &str, ty: &IncidentType) {
        if let Some(slot) = self.entity_in.get(&o.entity).cloned() {
            self.fold(&slot, o);
            return;
        }
        let name = self
            .zones
            .get(zone)
            .map(|z| z.name.clone())
            .unwrap_or_else(|| zone.to_owned());
        let verb = match trigger {
            ZoneTrigger::Inside => "was in",
            ZoneTrigger::Enter => "entered",
            ZoneTrigger::Exit => "left",
        };
        let subject = explain::subject(&self.assets, &o.entity);
        let explanation = Explanation {
            rule: rule.to_owned(),
            related: None,
            distance_m: 0.0,
            time_gap_s: 0.0,
            dependency_path: Vec::new(),
            confidence: 1.0,
            text: format!("{subject} {verb} zone {name} ({})", self.rules.phrase(&o.kind)),
        };
        let mut m = self.membership(o, None, explanation, None, None);
        // A zone event is an event (it holds the incident `event_hold_s`, nothing clears it),
        // and a problem even when the observation itself is normal (a unit's position).
        m.event = true;
        m.severity = m.severity.max(Severity::Minor);
        let key = (ty.id.clone(), zone.to_owned());
        let open = self
            .zone_open
            .get(&key)
            .filter(|id| self.incidents.get(*id).is_some_and(|i| i.is_open()))
            .cloned();
        match open {
            Some(id) => {
                self.add_member(&id, m);
                self.changed(&id, ChangeKind::Updated);
                self.refresh(&id, self.now_ms);
            }
            None => {
                let title = self.title(ty, "", &o.kind, &name, Some(&name));
                let id = self.open_with(o, ty, m, title, None);
                self.zone_open.insert(key, id);
            }
        }
    }

    fn seed(&mut self, o: &Observation, resolved: Option<(String, Via)>, ty: &IncidentType) -> IncidentId {
        let subject = explain::subject(&self.assets, &o.entity);
        let explanation = Explanation {
            rule: "seed".into(),
            related: None,
            distance_m: 0.0,
            time_gap_s: 0.0,
            dependency_path: resolved.iter().map(|(a, _)| a.clone()).collect(),
            confidence: 1.0,
            text: explain::seed(&subject, &self.rules.phrase(&o.kind)),
        };
        let feeder = o
            .fields
            .get("feeder")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                resolved
                    .as_ref()
                    .and_then(|(a, _)| self.assets.get(a))
                    .and_then(|a| a.feeder.clone())
            });
        let m = self.membership(o, resolved.as_ref(), explanation, None, feeder);
        let root_feeders = self.rules.feeders_field.as_ref().and_then(|f| match o.fields.get(f) {
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
            _ => None,
        });
        // An empty list names no feeders, which restricts nothing.
        let root_feeders = root_feeders.filter(|f| !f.is_empty());
        let title = self.title(
            ty,
            &o.entity,
            &o.kind,
            &o.title,
            o.fields.get("name").and_then(Value::as_str),
        );
        self.open_with(o, ty, m, title, root_feeders)
    }

    /// Opens an incident of type `ty` with `m`, the membership of `o`, as its root.
    fn open_with(
        &mut self,
        o: &Observation,
        ty: &IncidentType,
        m: Membership,
        title: String,
        root_feeders: Option<Vec<String>>,
    ) -> IncidentId {
        let id = self.new_id(&ObsKey::of(o));
        let inc = Incident {
            id: id.clone(),
            number: self.next_number(o.observed_ms),
            incident_type: ty.id.clone(),
            title,
            status: IncidentStatus::Open,
            severity: o.severity,
            opened_ms: o.observed_ms,
            cleared_ms: None,
            root_cause: Some(o.entity.clone()),
            root_cleared: false,
            root_feeders,
            manual: false,
            members: vec![Arc::new(m)],
        };
        self.incidents.insert(id.clone(), Arc::new(inc));
        self.index(&id);
        self.changed(&id, ChangeKind::Opened);
        self.refresh(&id, self.now_ms);
        id
    }

    /// Adds an open incident's members and root to the indexes.
    fn index(&mut self, id: &IncidentId) {
        let inc = &self.incidents[id];
        if !inc.is_open() {
            return;
        }
        for (i, m) in inc.members.iter().enumerate() {
            self.entity_in.insert(m.entity.clone(), (id.clone(), i));
            self.grid
                .insert(m.position, Probe::new(&self.rules, (id.clone(), i), &m.kind));
        }
        if let Some(a) = inc.root().and_then(|r| r.asset.clone()) {
            self.roots_by_asset.entry(a).or_default().insert(id.clone());
        }
    }

    /// Removes an incident from every index (before its members move or it stops being open).
    fn unindex(&mut self, id: &IncidentId) {
        let inc = &self.incidents[id];
        for (i, m) in inc.members.iter().enumerate() {
            let slot = (id.clone(), i);
            if self.entity_in.get(&m.entity) == Some(&slot) {
                self.entity_in.remove(&m.entity);
            }
            self.grid.remove_where(m.position, |p| p.slot == slot);
        }
        if let Some(a) = inc.root().and_then(|r| r.asset.as_ref()) {
            if let Some(set) = self.roots_by_asset.get_mut(a) {
                set.remove(id);
                if set.is_empty() {
                    self.roots_by_asset.remove(a);
                }
            }
        }
        if let Some(t) = self.due_of.remove(id) {
            self.due.remove(&(t, id.clone()));
        }
    }

    /// Recomputes what follows from the members at time `now`: expired events, open or cleared,
    /// root cleared, severity, and when to look again.
    fn refresh(&mut self, id: &IncidentId, now: Millis) {
        let hold = self.rules.event_hold_s.saturating_mul(1000);
        let inc = edit(&mut self.incidents, id).expect("refreshed incidents exist");
        if !inc.is_open() {
            return;
        }
        let before = (
            inc.severity,
            inc.root_cleared,
            inc.members.iter().filter(|m| m.cleared).count(),
        );
        for m in inc.members.iter_mut().filter(|m| m.event && !m.cleared) {
            if m.last_ms.saturating_add(hold) <= now {
                let m = Arc::make_mut(m);
                m.cleared = true;
                m.cleared_ms = Some(m.last_ms.saturating_add(hold));
            }
        }
        inc.root_cleared = inc.root().is_some_and(|r| r.cleared);
        inc.severity = severity(&self.rules, inc, now);
        let after = (
            inc.severity,
            inc.root_cleared,
            inc.members.iter().filter(|m| m.cleared).count(),
        );
        let open = inc.members.iter().any(|m| !m.cleared);
        let next_due = if open {
            next_due(&self.rules, inc, now, hold)
        } else {
            None
        };
        if !open {
            inc.status = IncidentStatus::Cleared;
            inc.cleared_ms = inc.members.iter().filter_map(|m| m.cleared_ms).max();
            self.unindex(id);
            self.changed(id, ChangeKind::Cleared);
            return;
        }
        if before != after {
            self.changed(id, ChangeKind::Updated);
        }
        if let Some(t) = self.due_of.remove(id) {
            self.due.remove(&(t, id.clone()));
        }
        if let Some(t) = next_due {
            self.due.insert((t, id.clone()));
            self.due_of.insert(id.clone(), t);
        }
    }

    /// Takes open incidents rooted downstream of a new root into it.
    fn absorb(&mut self, new: &IncidentId) {
        for (victim, root_explanation) in self.absorbable(new) {
            self.unindex(&victim);
            self.unindex(new);
            let mut members = std::mem::take(&mut edit(&mut self.incidents, &victim).expect("found").members);
            let root = self.incidents[&victim].root_cause.clone();
            for m in members.iter_mut().filter(|m| Some(&m.entity) == root.as_ref()) {
                let m = Arc::make_mut(m);
                m.rule = root_explanation.rule.clone();
                m.explanation = root_explanation.clone();
            }
            let v = edit(&mut self.incidents, &victim).expect("found");
            v.status = IncidentStatus::Merged { into: new.clone() };
            v.members = members.clone();
            // The merged incident keeps a copy of what it held, for the record; only the
            // absorbing incident is indexed.
            edit(&mut self.incidents, new).expect("new").members.extend(members);
            self.index(new);
            self.changed(&victim, ChangeKind::Merged { into: new.clone() });
            self.changed(new, ChangeKind::Updated);
            self.refresh(new, self.now_ms);
        }
    }

    /// Checks that the indexes agree with the incidents (tests only).
    #[cfg(test)]
    fn assert_consistent(&self) {
        let mut fresh = Correlator::new((*self.rules).clone(), AssetIndex::default());
        fresh.incidents = self.incidents.clone();
        let ids: Vec<IncidentId> = fresh.incidents.keys().cloned().collect();
        for id in &ids {
            fresh.index(id);
        }
        let sorted = |m: &HashMap<String, Slot>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(sorted(&fresh.entity_in), sorted(&self.entity_in), "entity index");
        assert_eq!(fresh.roots_by_asset, self.roots_by_asset, "root index");
        let probes = |c: &Correlator| {
            let mut v: Vec<(Slot, u64, u64)> = c.grid.items().map(|p| (p.slot.clone(), p.near, p.kind)).collect();
            v.sort();
            v
        };
        assert_eq!(probes(&fresh), probes(self), "member grid");
    }
}

/// An incident's severity at `now`: the worst member, the type's floor, and escalation.
fn severity(rules: &Rules, inc: &Incident, now: Millis) -> Severity {
    let mut s = inc.members.iter().map(|m| m.severity).max().unwrap_or(Severity::Minor);
    if let Some(floor) = rules.incident_type(&inc.incident_type).and_then(|t| t.severity) {
        s = s.max(floor);
    }
    let breadth = inc.breadth();
    for r in &rules.rules {
        let RuleKind::Escalation { types, steps } = &r.kind else {
            continue;
        };
        if !types.is_empty() && !types.contains(&inc.incident_type) {
            continue;
        }
        for step in steps {
            let reached = step.members.is_some_and(|n| breadth >= n)
                || step
                    .after_s
                    .is_some_and(|a| now.saturating_sub(inc.opened_ms) >= a.saturating_mul(1000));
            if reached {
                s = s.max(step.severity);
            }
        }
    }
    s
}

/// The next time something changes by itself: an event expires or a duration step is reached.
fn next_due(rules: &Rules, inc: &Incident, now: Millis, hold: Millis) -> Option<Millis> {
    let expiries = inc
        .members
        .iter()
        .filter(|m| m.event && !m.cleared)
        .map(|m| m.last_ms.saturating_add(hold));
    let steps = rules.rules.iter().filter_map(|r| match &r.kind {
        RuleKind::Escalation { types, steps } if types.is_empty() || types.contains(&inc.incident_type) => Some(steps),
        _ => None,
    });
    let durations = steps
        .flatten()
        .filter_map(|s| s.after_s)
        .map(|a| inc.opened_ms.saturating_add(a.saturating_mul(1000)));
    expiries.chain(durations).filter(|t| *t > now).min()
}

/// True when an observation at `t` is within `window_s` of member `m`'s active period.
fn within_window(m: &Membership, t: Millis, window_s: i64) -> bool {
    let w = window_s.saturating_mul(1000);
    let end = if m.event {
        m.last_ms
    } else if m.cleared {
        m.cleared_ms.unwrap_or(m.last_ms)
    } else {
        Millis::MAX
    };
    t >= m.observed_ms.saturating_sub(w) && t <= end.saturating_add(w)
}

/// True when a root that names its feeders allows a dependent on `feeder`.
fn feeder_allowed(inc: &Incident, feeder: Option<&str>) -> bool {
    match (&inc.root_feeders, feeder) {
        (Some(list), Some(f)) => list.iter().any(|x| x == f),
        _ => true,
    }
}
