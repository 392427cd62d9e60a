//! The correlation rules: a TOML file that operators' engineers edit, validated with errors that
//! name the line and the field. The format is documented in `fixtures/rules/README.md`; the
//! Helsinki default is `fixtures/rules/default.toml`.
//!
//! The file declares incident types (title, the kinds that open one, the SOP checklist), four
//! kinds of rule (spatio-temporal grouping, dependency grouping, duplicate merging, escalation)
//! and which kinds clear a problem. It holds no code: the correlator interprets it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::model::Severity;

/// The only format version this build reads.
pub const VERSION: u32 = 1;

/// A kind or a family of kinds: `signal.dark`, `camera.*` (every kind starting `camera.`) or `*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KindPattern {
    /// Every kind.
    Any,
    /// Exactly this kind.
    Exact(String),
    /// Every kind starting with this prefix (which ends with a dot).
    Prefix(String),
}

impl KindPattern {
    /// Parses `*`, `family.*` or an exact kind.
    pub fn parse(s: &str) -> Result<KindPattern, KindPatternError> {
        if s == "*" {
            return Ok(KindPattern::Any);
        }
        if let Some(prefix) = s.strip_suffix('*') {
            if prefix.ends_with('.') && prefix.len() > 1 && !prefix.contains('*') {
                return Ok(KindPattern::Prefix(prefix.to_owned()));
            }
        } else if !s.is_empty() && !s.contains(char::is_whitespace) {
            return Ok(KindPattern::Exact(s.to_owned()));
        }
        Err(KindPatternError { text: s.to_owned() })
    }

    /// True when `kind` is one of the kinds the pattern names.
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            KindPattern::Any => true,
            KindPattern::Exact(k) => k == kind,
            KindPattern::Prefix(p) => kind.starts_with(p.as_str()),
        }
    }
}

/// Text that is not a kind pattern, refused by [`KindPattern::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a kind pattern (a kind such as \"signal.dark\", a family such as \"camera.*\", or \"*\")")]
pub struct KindPatternError {
    /// The text as given.
    pub text: String,
}

/// True when any pattern of the list matches `kind`.
pub fn any_matches(patterns: &[KindPattern], kind: &str) -> bool {
    patterns.iter().any(|p| p.matches(kind))
}

/// A type of incident: what the operator sees as its title and works through as its SOP.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentType {
    /// Stable id, such as `power_outage`.
    pub id: String,
    /// Title template; `{name}`, `{entity}`, `{kind}` and `{asset_type}` come from the root.
    pub title: String,
    /// Kinds that open an incident of this type when nothing open explains them.
    pub seeds: Vec<KindPattern>,
    /// The severity the incident starts at, if higher than its root's.
    pub severity: Option<Severity>,
    /// The standard operating procedure: steps the operator ticks off, in order.
    pub sop: Vec<SopStep>,
}

/// One step of an incident type's standard operating procedure.
#[derive(Debug, Clone, PartialEq)]
pub struct SopStep {
    /// What to do, in words.
    pub text: String,
    /// Resolving the incident with this step unticked is refused (a supervisor may override,
    /// with a reason).
    pub required: bool,
    /// The step is due this many seconds after the incident opened; unticked after that, it is
    /// overdue.
    pub within_s: Option<i64>,
}

/// One step of an escalation: reaching `members` members, or being open `after_s` seconds,
/// raises the incident to at least `severity`.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationStep {
    /// Distinct members (duplicates not counted) that trigger the step.
    pub members: Option<usize>,
    /// Seconds since the root was observed that trigger the step.
    pub after_s: Option<i64>,
    /// The severity the incident rises to.
    pub severity: Severity,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Spatio-temporal grouping: an observation of `kinds` within `radius_m` metres of a member
    /// of `near` kinds of an open incident, while that member is active or at most `window_s`
    /// after it stopped, joins that incident.
    Spatial {
        /// Kinds of the candidate observation.
        kinds: Vec<KindPattern>,
        /// Kinds of the incident member it must be near.
        near: Vec<KindPattern>,
        /// Maximum distance in metres.
        radius_m: f64,
        /// Time window in seconds.
        window_s: i64,
    },
    /// Dependency grouping: an observation of `kinds` on an asset supplied (within `max_hops`
    /// levels) by the asset of an open incident whose root is of `roots` kinds joins it.
    Dependency {
        /// Root kinds that can explain dependents, such as `substation.trip`.
        roots: Vec<KindPattern>,
        /// Kinds of the dependent observation.
        kinds: Vec<KindPattern>,
        /// How many supply levels may separate the dependent's asset from the root's (0: the
        /// observation is about the root's asset itself, such as an alarm at its site).
        max_hops: usize,
        /// Time window in seconds around the root's active period.
        window_s: i64,
        /// When the observation is about no asset, the nearest asset within this many metres
        /// stands for it (a citizen report in a street).
        near_m: Option<f64>,
    },
    /// Duplicate merging: an observation of `kinds` by another entity, of the same kind, within
    /// `radius_m` and `window_s` of a member joins as a duplicate of it.
    Duplicate {
        /// Kinds that can be duplicates.
        kinds: Vec<KindPattern>,
        /// Maximum distance in metres.
        radius_m: f64,
        /// Maximum time between the two, in seconds.
        window_s: i64,
    },
    /// A zone rule: an observation of `kinds` whose entity is in one of `zones` (`inside`), has
    /// just come into it (`enter`) or has just left it (`exit`) opens an incident of type
    /// `opens` for that zone, or joins the one open. Zone ids are checked against the zones
    /// file where both are loaded ([`Rules::check_zones`]).
    Zone {
        /// What about the zone sets it off.
        trigger: ZoneTrigger,
        /// The zones it watches, by id.
        zones: Vec<String>,
        /// Kinds of the observation.
        kinds: Vec<KindPattern>,
        /// The incident type it opens.
        opens: String,
    },
    /// Escalation: incidents of `types` (every type when empty) rise in severity by breadth and
    /// duration.
    Escalation {
        /// Incident type ids the rule applies to.
        types: Vec<String>,
        /// The steps.
        steps: Vec<EscalationStep>,
    },
}

/// What about a zone sets a zone rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneTrigger {
    /// The observation is in the zone.
    Inside,
    /// The entity was last seen outside the zone and is now in it.
    Enter,
    /// The entity was last seen in the zone and is now outside it.
    Exit,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable id, recorded in every membership it explains.
    pub id: String,
    /// How sure a match of this rule is, 0 to 1, before distance lowers it.
    pub confidence: f64,
    /// What it does.
    pub kind: RuleKind,
}

/// A parsed and validated rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Payload fields naming the asset an observation is about when its entity is not an asset
    /// (an alarm's `site`, a feeder reading's `substation`), tried in order.
    pub asset_fields: Vec<String>,
    /// Payload field of a root observation listing the feeders it affects; dependents on other
    /// feeders are not grouped under it.
    pub feeders_field: Option<String>,
    /// Whether an observation of severity `normal` clears every problem of its entity.
    pub normal_clears: bool,
    /// Kinds that are events, not states: nothing clears them, they stop keeping their incident
    /// open `event_hold_s` after they were observed.
    pub events: Vec<KindPattern>,
    /// How long an event keeps its incident open, in seconds.
    pub event_hold_s: i64,
    /// Verb phrases for explanations, by kind (`signal.dark` = "went dark").
    pub phrases: BTreeMap<String, String>,
    /// Clearing kinds and the kinds of the same entity they clear.
    pub clears: BTreeMap<String, Vec<KindPattern>>,
    /// Incident types.
    pub types: Vec<IncidentType>,
    /// Grouping and escalation rules, in file order (which breaks ties between equal matches).
    pub rules: Vec<Rule>,
    /// The prefix of incident numbers (`HEL` in `HEL-2026-000123`): the city's or the site's.
    pub incident_prefix: String,
    /// How long an incident of each severity may stay unacknowledged before it escalates (the
    /// alarm sounds again, the queue puts it on top), in seconds; severities not named never do.
    pub unacknowledged_s: BTreeMap<Severity, i64>,
}

/// Why a rules file was refused. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct RulesError {
    /// The 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// The field at fault, such as `rules[2].radius_m`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    version: Spanned<u32>,
    #[serde(default)]
    asset_fields: Vec<String>,
    #[serde(default)]
    feeders_field: Option<String>,
    #[serde(default = "yes")]
    normal_clears: bool,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    #[serde(default)]
    event_hold_s: Option<Spanned<i64>>,
    #[serde(default)]
    phrases: BTreeMap<String, String>,
    #[serde(default)]
    clears: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    types: Vec<RawType>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    incident_prefix: Option<Spanned<String>>,
    #[serde(default)]
    unacknowledged_s: Option<Spanned<BTreeMap<Severity, i64>>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    id: Spanned<String>,
    title: Spanned<String>,
    seeds: Vec<Spanned<String>>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    sop: Vec<RawSopStep>,
}

/// A SOP step: its text, or a table with `step`, `required` and `within_s`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSopStep {
    Text(String),
    Full {
        step: String,
        #[serde(default)]
        required: bool,
        // Plain, not `Spanned`: an untagged enum buffers its input, which loses spans.
        #[serde(default)]
        within_s: Option<i64>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    members: Option<usize>,
    after_s: Option<i64>,
    severity: Severity,
}

/// Every field any rule may have; which apply depends on `type`, checked after parsing so the
/// error can say "radius_m does not apply to a dependency rule" rather than "unknown field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    confidence: Option<Spanned<f64>>,
    kinds: Option<Spanned<Vec<Spanned<String>>>>,
    near: Option<Spanned<Vec<Spanned<String>>>>,
    roots: Option<Spanned<Vec<Spanned<String>>>>,
    radius_m: Option<Spanned<f64>>,
    window_s: Option<Spanned<i64>>,
    max_hops: Option<Spanned<usize>>,
    near_m: Option<Spanned<f64>>,
    types: Option<Spanned<Vec<Spanned<String>>>>,
    steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
    zones: Option<Spanned<Vec<Spanned<String>>>>,
    opens: Option<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Builds errors pointing into one file.
struct Ctx<'a> {
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: Option<std::ops::Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<T, RulesError> {
        Err(RulesError {
            line: span.map(|s| line_of(self.text, s.start)),
            field: field.into(),
            message: message.into(),
        })
    }

    fn patterns(&self, list: &[Spanned<String>], field: &str) -> Result<Vec<KindPattern>, RulesError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                KindPattern::parse(s.get_ref())
                    .or_else(|m| self.err(Some(s.span()), format!("{field}[{i}]"), m.to_string()))
            })
            .collect()
    }
}

/// The prefix of incident numbers when the rules file names none.
pub const DEFAULT_PREFIX: &str = "INC";

impl Rules {
    /// Parses and validates a rules file.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let cx = Ctx { text };
        let raw: RawRules = toml::from_str(text).map_err(|e| RulesError {
            line: e.span().map(|s| line_of(text, s.start)),
            field: String::new(),
            message: e.message().to_owned(),
        })?;
        if *raw.version.get_ref() != VERSION {
            return cx.err(
                Some(raw.version.span()),
                "version",
                format!("this build reads version {VERSION}"),
            );
        }
        let event_hold_s = match raw.event_hold_s {
            Some(h) if *h.get_ref() < 0 => return cx.err(Some(h.span()), "event_hold_s", "must not be negative"),
            Some(h) => h.into_inner(),
            None => 900,
        };
        let mut clears = BTreeMap::new();
        for (k, v) in &raw.clears {
            KindPattern::parse(k)
                .ok()
                .filter(|p| matches!(p, KindPattern::Exact(_)))
                .map_or_else(
                    || {
                        cx.err(
                            v.first().map(|s| s.span()),
                            format!("clears.{k:?}"),
                            "a clearing kind must be one exact kind",
                        )
                    },
                    Ok,
                )?;
            clears.insert(k.clone(), cx.patterns(v, &format!("clears.{k:?}"))?);
        }
        let incident_prefix = match raw.incident_prefix {
            Some(p) => {
                let text = p.get_ref();
                // A CAD number is read aloud and typed: a short code of capitals and digits.
                if text.is_empty()
                    || text.len() > 8
                    || !text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                {
                    return cx.err(
                        Some(p.span()),
                        "incident_prefix",
                        format!("{text:?} is not 1 to 8 capital letters or digits"),
                    );
                }
                p.into_inner()
            }
            None => DEFAULT_PREFIX.to_owned(),
        };
        let unacknowledged_s = match raw.unacknowledged_s {
            Some(u) => {
                if let Some((sev, s)) = u.get_ref().iter().find(|(_, s)| **s <= 0) {
                    return cx.err(
                        Some(u.span()),
                        format!("unacknowledged_s.{}", sev.as_str()),
                        format!("{s} is not a number of seconds above 0"),
                    );
                }
                u.into_inner()
            }
            None => BTreeMap::new(),
        };
        let types = types(&cx, raw.types)?;
        let type_ids: BTreeSet<&str> = types.iter().map(|t| t.id.as_str()).collect();
        let mut ids = BTreeSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            if r.id.get_ref().trim().is_empty() || !ids.insert(r.id.get_ref().clone()) {
                return cx.err(
                    Some(r.id.span()),
                    format!("rules[{i}].id"),
                    format!("{:?} is empty or used twice", r.id.get_ref()),
                );
            }
            rules.push(rule(&cx, i, r, &type_ids)?);
        }
        Ok(Rules {
            asset_fields: raw.asset_fields,
            feeders_field: raw.feeders_field,
            normal_clears: raw.normal_clears,
            events: cx.patterns(&raw.events, "events")?,
            event_hold_s,
            phrases: raw.phrases,
            clears,
            types,
            rules,
            incident_prefix,
            unacknowledged_s,
        })
    }

    /// The incident type an observation of `kind` opens, if any.
    pub fn type_for_seed(&self, kind: &str) -> Option<&IncidentType> {
        self.types.iter().find(|t| any_matches(&t.seeds, kind))
    }

    /// The incident type with the given id.
    pub fn incident_type(&self, id: &str) -> Option<&IncidentType> {
        self.types.iter().find(|t| t.id == id)
    }

    /// True when some dependency rule lets an incident rooted at `kind` explain dependents.
    pub fn is_root_kind(&self, kind: &str) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(&r.kind, RuleKind::Dependency { roots, .. } if any_matches(roots, kind)))
    }

    /// True when some rule watches zones.
    pub fn has_zone_rules(&self) -> bool {
        self.rules.iter().any(|r| matches!(r.kind, RuleKind::Zone { .. }))
    }

    /// Checks that every zone a rule names is in `zones`; the error names the rule. Without a
    /// zones file there is nothing to check against: one rules file serves places with zones
    /// and places without, where its zone rules watch nothing.
    pub fn check_zones(&self, zones: &crate::zones::Zones) -> Result<(), String> {
        if zones.is_empty() {
            return Ok(());
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let RuleKind::Zone { zones: ids, .. } = &r.kind {
                if let Some(missing) = ids.iter().find(|z| zones.get(z).is_none()) {
                    return Err(format!(
                        "rules[{i}] ({}).zones: no zone {missing:?} in the zones file",
                        r.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// True when `kind` is an event rather than a state.
    pub fn is_event(&self, kind: &str) -> bool {
        any_matches(&self.events, kind)
    }

    /// True when an observation of `clearing` clears a problem of kind `problem` of the same
    /// entity (severity `normal` clearing everything is decided by the caller).
    pub fn clears(&self, clearing: &str, problem: &str) -> bool {
        self.clears.get(clearing).is_some_and(|p| any_matches(p, problem))
    }

    /// True when `kind` is listed as a clearing kind.
    pub fn is_clearing_kind(&self, kind: &str) -> bool {
        self.clears.contains_key(kind)
    }

    /// The verb phrase for a kind in explanations ("went dark"), or a neutral one.
    pub fn phrase(&self, kind: &str) -> String {
        if let Some(p) = self.phrases.get(kind) {
            return p.clone();
        }
        match crate::call::type_of(kind) {
            Some(t) => format!("was reported to an operator by phone or radio ({t})"),
            None => format!("reported {kind}"),
        }
    }
}

const PLACEHOLDERS: [&str; 4] = ["{name}", "{entity}", "{kind}", "{asset_type}"];

fn types(cx: &Ctx<'_>, raw: Vec<RawType>) -> Result<Vec<IncidentType>, RulesError> {
    let mut out: Vec<IncidentType> = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("types[{i}].{f}");
        let id_span = t.id.span();
        let id = t.id.get_ref();
        if id.trim().is_empty() || out.iter().any(|o| &o.id == id) {
            return cx.err(Some(t.id.span()), field("id"), format!("{id:?} is empty or used twice"));
        }
        let mut rest = t.title.get_ref().clone();
        for p in PLACEHOLDERS {
            rest = rest.replace(p, "");
        }
        if t.title.get_ref().trim().is_empty() || rest.contains('{') || rest.contains('}') {
            return cx.err(
                Some(t.title.span()),
                field("title"),
                format!("must be non-empty; placeholders are {}", PLACEHOLDERS.join(", ")),
            );
        }
        if t.seeds.is_empty() {
            return cx.err(
                Some(t.id.span()),
                field("seeds"),
                "an incident type needs at least one seed kind",
            );
        }
        let seeds = cx.patterns(&t.seeds, &field("seeds"))?;
        for (s, raw_seed) in seeds.iter().zip(&t.seeds) {
            if let Some(other) = out.iter().find(|o| o.seeds.contains(s)) {
                return cx.err(
                    Some(raw_seed.span()),
                    field("seeds"),
                    format!(
                        "{:?} already opens incidents of type {:?}",
                        raw_seed.get_ref(),
                        other.id
                    ),
                );
            }
        }
        let mut sop = Vec::with_capacity(t.sop.len());
        for (n, step) in t.sop.into_iter().enumerate() {
            sop.push(match step {
                RawSopStep::Text(text) => SopStep {
                    text,
                    required: false,
                    within_s: None,
                },
                RawSopStep::Full {
                    step,
                    required,
                    within_s,
                } => {
                    if within_s.is_some_and(|w| w <= 0) {
                        // The type's line: the step's own span is not kept (see `RawSopStep`).
                        return cx.err(
                            Some(id_span.clone()),
                            field(&format!("sop[{n}].within_s")),
                            "must be above 0",
                        );
                    }
                    SopStep {
                        text: step,
                        required,
                        within_s,
                    }
                }
            });
        }
        out.push(IncidentType {
            id: id.clone(),
            title: t.title.into_inner(),
            seeds,
            severity: t.severity,
            sop,
        });
    }
    Ok(out)
}

fn rule(cx: &Ctx<'_>, i: usize, r: RawRule, type_ids: &BTreeSet<&str>) -> Result<Rule, RulesError> {
    let field = |f: &str| format!("rules[{i}].{f}");
    let ty = r.kind.get_ref().as_str();
    let allowed: &[&str] = match ty {
        "spatial" => &["kinds", "near", "radius_m", "window_s"],
        "dependency" => &["roots", "kinds", "max_hops", "window_s", "near_m"],
        "duplicate" => &["kinds", "radius_m", "window_s"],
        "escalation" => &["types", "steps"],
        "inside" | "enter" | "exit" => &["kinds", "zones", "opens"],
        other => {
            return cx.err(
                Some(r.kind.span()),
                field("type"),
                format!(
                    "{other:?} is not a rule type (spatial, dependency, duplicate, escalation, inside, enter, exit)"
                ),
            )
        }
    };
    let zone_rule = matches!(ty, "inside" | "enter" | "exit");
    let present: [(&str, Option<std::ops::Range<usize>>); 11] = [
        ("kinds", r.kinds.as_ref().map(|s| s.span())),
        ("near", r.near.as_ref().map(|s| s.span())),
        ("roots", r.roots.as_ref().map(|s| s.span())),
        ("radius_m", r.radius_m.as_ref().map(|s| s.span())),
        ("window_s", r.window_s.as_ref().map(|s| s.span())),
        ("max_hops", r.max_hops.as_ref().map(|s| s.span())),
        ("near_m", r.near_m.as_ref().map(|s| s.span())),
        ("types", r.types.as_ref().map(|s| s.span())),
        ("steps", r.steps.as_ref().map(|s| s.span())),
        ("zones", r.zones.as_ref().map(|s| s.span())),
        ("opens", r.opens.as_ref().map(|s| s.span())),
    ];
    for (name, span) in &present {
        if span.is_some() && !allowed.contains(name) {
            return cx.err(span.clone(), field(name), format!("does not apply to a {ty} rule"));
        }
    }
    let id_span = Some(r.id.span());
    let confidence = match &r.confidence {
        None if ty == "escalation" || zone_rule => 1.0,
        None => return cx.err(id_span, field("confidence"), format!("required for a {ty} rule")),
        Some(c) if ty == "escalation" || zone_rule => {
            return cx.err(
                Some(c.span()),
                field("confidence"),
                format!("does not apply to an {ty} rule"),
            )
        }
        Some(c) if !(*c.get_ref() > 0.0 && *c.get_ref() <= 1.0) => {
            return cx.err(Some(c.span()), field("confidence"), "must be in (0, 1]")
        }
        Some(c) => *c.get_ref(),
    };
    let kinds = |name: &str, v: &Option<Spanned<Vec<Spanned<String>>>>| -> Result<Vec<KindPattern>, RulesError> {
        match v {
            None => cx.err(id_span.clone(), field(name), format!("required for a {ty} rule")),
            Some(list) if list.get_ref().is_empty() => {
                cx.err(Some(list.span()), field(name), "must list at least one kind")
            }
            Some(list) => cx.patterns(list.get_ref(), &field(name)),
        }
    };
    let metres = |name: &str, v: &Option<Spanned<f64>>, required: bool| -> Result<Option<f64>, RulesError> {
        match v {
            None if required => cx.err(id_span.clone(), field(name), format!("required for a {ty} rule")),
            None => Ok(None),
            Some(m) if !(m.get_ref().is_finite() && *m.get_ref() > 0.0 && *m.get_ref() <= 50_000.0) => cx.err(
                Some(m.span()),
                field(name),
                "must be a distance in metres, above 0 and at most 50000",
            ),
            Some(m) => Ok(Some(*m.get_ref())),
        }
    };
    let window = || -> Result<i64, RulesError> {
        match &r.window_s {
            None => cx.err(id_span.clone(), field("window_s"), format!("required for a {ty} rule")),
            Some(w) if *w.get_ref() < 0 => cx.err(Some(w.span()), field("window_s"), "must not be negative"),
            Some(w) => Ok(*w.get_ref()),
        }
    };
    let kind = match ty {
        "spatial" => RuleKind::Spatial {
            kinds: kinds("kinds", &r.kinds)?,
            near: kinds("near", &r.near)?,
            radius_m: metres("radius_m", &r.radius_m, true)?.unwrap_or_default(),
            window_s: window()?,
        },
        "dependency" => RuleKind::Dependency {
            roots: kinds("roots", &r.roots)?,
            kinds: kinds("kinds", &r.kinds)?,
            max_hops: match &r.max_hops {
                None => 1,
                Some(h) if *h.get_ref() > 16 => return cx.err(Some(h.span()), field("max_hops"), "at most 16"),
                Some(h) => *h.get_ref(),
            },
            window_s: window()?,
            near_m: metres("near_m", &r.near_m, false)?,
        },
        "duplicate" => RuleKind::Duplicate {
            kinds: kinds("kinds", &r.kinds)?,
            radius_m: metres("radius_m", &r.radius_m, true)?.unwrap_or_default(),
            window_s: window()?,
        },
        "inside" | "enter" | "exit" => {
            let zones: Vec<String> = match r.zones {
                None => return cx.err(id_span, field("zones"), format!("required for an {ty} rule")),
                Some(z) if z.get_ref().is_empty() => {
                    return cx.err(Some(z.span()), field("zones"), "must name at least one zone")
                }
                Some(z) => z.into_inner().into_iter().map(Spanned::into_inner).collect(),
            };
            let opens = match r.opens {
                None => return cx.err(id_span, field("opens"), format!("required for an {ty} rule")),
                Some(o) if !type_ids.contains(o.get_ref().as_str()) => {
                    return cx.err(
                        Some(o.span()),
                        field("opens"),
                        format!("{:?} is not an incident type of this file", o.get_ref()),
                    )
                }
                Some(o) => o.into_inner(),
            };
            RuleKind::Zone {
                trigger: match ty {
                    "inside" => ZoneTrigger::Inside,
                    "enter" => ZoneTrigger::Enter,
                    _ => ZoneTrigger::Exit,
                },
                zones,
                kinds: kinds("kinds", &r.kinds)?,
                opens,
            }
        }
        _ => {
            let types: Vec<String> = r
                .types
                .map(|t| t.into_inner())
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    if type_ids.contains(t.get_ref().as_str()) {
                        Ok(t.into_inner())
                    } else {
                        cx.err(
                            Some(t.span()),
                            field("types"),
                            format!("{:?} is not an incident type of this file", t.get_ref()),
                        )
                    }
                })
                .collect::<Result<_, _>>()?;
            let Some(raw_steps) = r.steps.filter(|s| !s.get_ref().is_empty()) else {
                return cx.err(id_span, field("steps"), "an escalation rule needs at least one step");
            };
            let mut steps = Vec::new();
            for (j, s) in raw_steps.into_inner().into_iter().enumerate() {
                let span = s.span();
                let s = s.into_inner();
                if s.members.is_some() == s.after_s.is_some() || s.after_s.is_some_and(|a| a < 0) {
                    return cx.err(
                        Some(span),
                        field(&format!("steps[{j}]")),
                        "a step has exactly one of members and after_s (not negative)",
                    );
                }
                steps.push(EscalationStep {
                    members: s.members,
                    after_s: s.after_s,
                    severity: s.severity,
                });
            }
            RuleKind::Escalation { types, steps }
        }
    };
    Ok(Rule {
        id: r.id.into_inner(),
        confidence,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version = 1
asset_fields = ["site"]
events = ["report.*"]

[phrases]
"signal.dark" = "went dark"

[clears]
"signal.restored" = ["signal.dark"]

[[types]]
id = "outage"
title = "Outage: {name}"
seeds = ["substation.trip"]
sop = ["Call the grid operator"]

[[rules]]
id = "fed"
type = "dependency"
roots = ["substation.trip"]
kinds = ["signal.dark", "camera.*"]
max_hops = 2
window_s = 120
confidence = 0.9

[[rules]]
id = "near"
type = "spatial"
kinds = ["report.outage"]
near = ["*"]
radius_m = 150
window_s = 300
confidence = 0.7

[[rules]]
id = "dup"
type = "duplicate"
kinds = ["report.outage"]
radius_m = 50
window_s = 600
confidence = 0.9

[[rules]]
id = "grow"
type = "escalation"
steps = [{ members = 10, severity = "severe" }, { after_s = 1800, severity = "extreme" }]
"#;

    #[test]
    fn parses_every_rule_kind() {
        let r = Rules::parse(GOOD).unwrap();
        assert_eq!(r.rules.len(), 4);
        assert!(r.is_root_kind("substation.trip") && !r.is_root_kind("signal.dark"));
        assert!(r.is_event("report.outage") && !r.is_event("signal.dark"));
        assert!(r.clears("signal.restored", "signal.dark") && !r.clears("signal.restored", "camera.offline"));
        assert_eq!(r.phrase("signal.dark"), "went dark");
        assert_eq!(r.phrase("x.y"), "reported x.y");
        assert_eq!(
            r.type_for_seed("substation.trip").unwrap().sop,
            [SopStep {
                text: "Call the grid operator".into(),
                required: false,
                within_s: None
            }]
        );
        assert!(r.normal_clears);
        assert_eq!(r.event_hold_s, 900);
        let RuleKind::Dependency { kinds, max_hops, .. } = &r.rules[0].kind else {
            panic!()
        };
        assert!(any_matches(kinds, "camera.offline") && !any_matches(kinds, "cameras.offline"));
        assert_eq!(*max_hops, 2);
    }

    /// Each broken variant of the good file, and the line and field its error must name.
    #[test]
    fn errors_name_the_line_and_field() {
        let cases: &[(&str, &str, Option<usize>, &str)] = &[
            ("radius_m = 150", "radius_m = -3", Some(31), "rules[1].radius_m"),
            (
                "max_hops = 2",
                "max_hops = 2\nradius_m = 5",
                Some(23),
                "rules[0].radius_m",
            ),
            ("type = \"spatial\"", "type = \"nearby\"", Some(28), "rules[1].type"),
            ("confidence = 0.7", "confidence = 1.5", Some(33), "rules[1].confidence"),
            (
                "kinds = [\"signal.dark\", \"camera.*\"]",
                "kinds = [\"signal.dark\", \"camera*\"]",
                Some(21),
                "rules[0].kinds[1]",
            ),
            ("id = \"dup\"", "id = \"near\"", Some(36), "rules[2].id"),
            ("window_s = 600\n", "", Some(36), "rules[2].window_s"),
            (
                "{ members = 10, ",
                "{ members = 10, after_s = 5, ",
                Some(46),
                "rules[3].steps[0]",
            ),
            (
                "title = \"Outage: {name}\"",
                "title = \"Outage: {nmae}\"",
                Some(13),
                "types[0].title",
            ),
            ("version = 1", "version = 2", Some(1), "version"),
            ("asset_fields", "asset_feilds", Some(2), ""),
        ];
        for (from, to, line, field) in cases {
            assert!(GOOD.contains(from), "{from}");
            let e = Rules::parse(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (*line, *field), "{from} -> {to}: {e}");
        }
        let e = Rules::parse(&GOOD.replace(
            "\n[[rules]]\nid = \"grow\"",
            "\n[[types]]\nid = \"again\"\ntitle = \"x\"\nseeds = [\"substation.trip\"]\n\n[[rules]]\nid = \"grow\"",
        ))
        .unwrap_err();
        assert!(e.message.contains("already opens"), "{e}");
    }

    #[test]
    fn the_helsinki_default_is_valid() {
        let text = include_str!("../../../../fixtures/rules/default.toml");
        let r = Rules::parse(text).unwrap_or_else(|e| panic!("default.toml: {e}"));
        assert!(r.type_for_seed("substation.trip").is_some());
    }
}

#[cfg(test)]
mod sop_tests {
    use super::*;

    fn with_sop(sop: &str) -> Result<Rules, RulesError> {
        Rules::parse(&format!(
            "version = 1\n\n[[types]]\nid = \"warning\"\ntitle = \"Warning: {{name}}\"\nseeds = [\"weather.*\"]\nsop = {sop}\n"
        ))
    }

    #[test]
    fn sop_steps_are_text_or_tables_with_required_and_a_deadline() {
        let r = with_sop(
            r#"["Brief the shift.", { step = "Pre-alert field crews.", required = true, within_s = 600 }, { step = "Log it." }]"#,
        )
        .unwrap();
        let sop = &r.types[0].sop;
        assert_eq!(
            sop.iter()
                .map(|s| (s.text.as_str(), s.required, s.within_s))
                .collect::<Vec<_>>(),
            [
                ("Brief the shift.", false, None),
                ("Pre-alert field crews.", true, Some(600)),
                ("Log it.", false, None),
            ]
        );
        let e = Rules::parse("version = 1\n[unacknowledged_s]\nextreme = 60\nsevere = 0\n").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("unacknowledged_s.severe", Some(2)));
        let u = Rules::parse("version = 1\n[unacknowledged_s]\nextreme = 60\n")
            .unwrap()
            .unacknowledged_s;
        assert_eq!(u.get(&Severity::Extreme), Some(&60));
        assert_eq!(u.get(&Severity::Severe), None);
        assert!(Rules::parse("version = 1\n[unacknowledged_s]\ncritical = 60\n").is_err());
        let e = with_sop(r#"[{ step = "Now", within_s = 0 }]"#).unwrap_err();
        assert_eq!(e.field, "types[0].sop[0].within_s");
        assert_eq!(e.line, Some(4), "the type's line");
    }
}
