//! The after-action report (`cityops report`): one self-contained HTML file with the score
//! against the scenario's objectives, a timeline of incidents, operators' transitions and
//! actions, and charts drawn with plotters as inline SVG.
//!
//! The document is well-formed XML as well as HTML (every element closed, every text
//! escaped), so tests parse it strictly; every chart's figure carries the totals it was drawn
//! from (`data-totals`), so tests compare them with the store.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

use cityops_core::model::Millis;
use cityops_core::objectives::{Outcome, Score};
use plotters::prelude::*;

use crate::error::EngineError;
use crate::scenario::Scenario;
use cityops_store::{RunId, Store};

/// The font charts are measured with; the SVG names the family, the viewer draws it.
const FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
/// Charts bucket time in minutes.
const BUCKET_MS: i64 = 60_000;
const COLORS: [RGBColor; 9] = [
    RGBColor(0, 150, 199),
    RGBColor(168, 85, 247),
    RGBColor(234, 160, 20),
    RGBColor(225, 60, 60),
    RGBColor(40, 160, 90),
    RGBColor(90, 90, 90),
    RGBColor(20, 60, 160),
    RGBColor(200, 90, 160),
    RGBColor(130, 110, 40),
];

/// A series' colour: a layer's is the app's colour of that layer (the map's dots and the layer
/// panel's swatches, `ui/src/map/palette.ts`), so a chart reads like the map; other series take
/// the palette in turn.
fn colour_of(series: &str, i: usize) -> RGBColor {
    match series {
        "transport" => RGBColor(0x2e, 0xc5, 0xf0),
        "security" => RGBColor(0xc9, 0x5c, 0xf5),
        "utility" => RGBColor(0xf5, 0xa6, 0x23),
        "alerts" => RGBColor(0xff, 0x4f, 0x6e),
        _ => COLORS[i % COLORS.len()],
    }
}

fn font() -> Result<(), EngineError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidInput(
            "the report font (assets/fonts/DejaVuSans.ttf) cannot be read".into(),
        ))
    }
}

/// Escapes text for HTML/XML content and attribute values.
pub fn esc(s: &str) -> String {
    cityops_core::dispatch::xml_escape(s)
}

pub(crate) fn hhmm(ms: Millis) -> String {
    crate::incidents::clock_time(ms)
}

/// One chart: SVG markup and the totals per series it was drawn from.
struct Chart {
    id: &'static str,
    title: String,
    svg: String,
    totals: BTreeMap<String, f64>,
}

fn chart_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidInput(format!("drawing a chart: {e}"))
}

/// A line chart of counts per minute for each series.
fn lines(
    id: &'static str,
    title: &str,
    y_desc: &str,
    series: &BTreeMap<String, BTreeMap<Millis, f64>>,
    span: (Millis, Millis),
) -> Result<Chart, EngineError> {
    let (x0, x1) = (span.0 as f64, (span.1.max(span.0 + BUCKET_MS)) as f64);
    // Whole numbers on the axis: counts have no halves.
    let y_max = (series.values().flat_map(|s| s.values()).copied().fold(1.0f64, f64::max) * 1.1).ceil();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, 0f64..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|x| hhmm(*x as Millis)[..5].to_owned())
            .y_labels((y_max as usize + 1).min(11))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc(y_desc)
            .draw()
            .map_err(chart_error)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = colour_of(name, i);
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|(t, v)| (*t as f64, *v)),
                    color.stroke_width(2),
                ))
                .map_err(chart_error)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    let totals = series.iter().map(|(k, s)| (k.clone(), s.values().sum())).collect();
    Ok(Chart {
        id,
        title: title.to_owned(),
        svg,
        totals,
    })
}

/// A histogram of durations in seconds, in buckets of `step_s`.
fn histogram(id: &'static str, title: &str, values_s: &[f64], step_s: f64) -> Result<Chart, EngineError> {
    let buckets = ((values_s.iter().copied().fold(0.0, f64::max) / step_s).floor() as u32 + 1).max(5);
    let mut counts = vec![0u32; buckets as usize];
    for v in values_s {
        counts[((v / step_s).floor().max(0.0) as usize).min(buckets as usize - 1)] += 1;
    }
    let y_max = counts.iter().copied().max().unwrap_or(0).max(1) + 1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..buckets).into_segmented(), 0u32..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("seconds after the incident opened, in steps of {step_s:.0} s"))
            .y_desc("incidents")
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(b) | SegmentValue::Exact(b) => format!("{:.0}", f64::from(*b) * step_s),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(COLORS[0].filled())
                    .margin(4)
                    .data(counts.iter().enumerate().map(|(i, c)| (i as u32, *c))),
            )
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    let mut totals = BTreeMap::new();
    totals.insert("incidents".to_owned(), values_s.len() as f64);
    Ok(Chart {
        id,
        title: title.to_owned(),
        svg,
        totals,
    })
}

/// Counts per series and minute, with every minute of `origin..=end` present (a quiet minute
/// is a zero, not a line drawn across it).
fn per_bucket(
    rows: Vec<(String, Millis, u64)>,
    origin: Millis,
    end: Millis,
) -> BTreeMap<String, BTreeMap<Millis, f64>> {
    let mut out: BTreeMap<String, BTreeMap<Millis, f64>> = BTreeMap::new();
    for (k, t, n) in rows {
        *out.entry(k).or_default().entry(t).or_default() += n as f64;
    }
    for series in out.values_mut() {
        let mut t = origin;
        while t <= end {
            series.entry(t).or_insert(0.0);
            t += BUCKET_MS;
        }
    }
    out
}

/// What a report covers.
pub struct ReportInput<'a> {
    pub store: &'a Store,
    pub run: RunId,
    /// The scenario, for its name and objectives (a live run has none).
    pub scenario: Option<&'a Scenario>,
    /// Another trainee's run of the same scenario, scored side by side.
    pub versus: Option<RunId>,
    /// Trainees of this run (an exercise site, where every trainee's cache holds everyone's
    /// decisions), each scored by what they did, side by side; the whole run when empty.
    pub trainees: &'a [String],
    /// Other teams' runs of the same scenario, each from its own site's cache, side by side.
    pub teams: &'a [Team<'a>],
    /// A PNG of the main incident's area taken from the app's map, embedded as it is.
    pub map_png: Option<&'a [u8]>,
}

/// Another team's run of the scenario: the cache of its own site, and the run there.
pub struct Team<'a> {
    pub name: String,
    pub store: &'a Store,
    pub run: RunId,
}

/// The largest map image a report embeds.
pub const MAX_MAP_PNG: usize = 8 << 20;

/// Checks that bytes are a PNG image of a reasonable size before they are embedded.
pub fn check_png(bytes: &[u8]) -> Result<(), EngineError> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.len() < 33 {
        return Err(EngineError::InvalidInput("the map image is not a PNG".into()));
    }
    if bytes.len() > MAX_MAP_PNG {
        return Err(EngineError::InvalidInput(format!(
            "the map image is {} bytes; at most {MAX_MAP_PNG} are embedded",
            bytes.len()
        )));
    }
    Ok(())
}

/// The time a run covers: from the scenario's start (or the first arrival) to its end (or the
/// last arrival), whichever is wider.
fn span_of(input: &ReportInput<'_>) -> Result<(Millis, Millis), EngineError> {
    let span = input.store.arrival_span(input.run)?.unwrap_or((0, BUCKET_MS));
    let origin = input
        .scenario
        .map(|s| s.manifest.start_ms)
        .unwrap_or(span.0)
        .min(span.0);
    let end = input.scenario.map(|s| s.end_ms()).unwrap_or(span.1).max(span.1);
    Ok((origin, end))
}

/// The report's charts, up to scenario time `upto` (the end of the run for the report; the
/// clock for the live KPI view, so the charts never show what has not happened yet).
fn charts(input: &ReportInput<'_>, upto: Option<Millis>) -> Result<Vec<Chart>, EngineError> {
    font()?;
    let store = input.store;
    let run = input.run;
    let (origin, full_end) = span_of(input)?;
    let end = upto.map_or(full_end, |u| u.clamp(origin, full_end));
    let shown = |t: Millis| t <= end;
    let incidents: Vec<_> = store
        .stored_incidents(run)?
        .into_iter()
        .filter(|i| shown(i.opened_ms))
        .collect();
    let transitions: Vec<_> = store
        .transitions(run)?
        .into_iter()
        .filter(|t| shown(t.scenario_ms))
        .collect();
    let actions: Vec<_> = store
        .actions_of_run(run)?
        .into_iter()
        .filter(|a| a.scenario_ms.is_none_or(shown))
        .collect();
    let trim = |rows: Vec<(String, Millis, u64)>| rows.into_iter().filter(|r| r.1 <= end).collect::<Vec<_>>();

    let mut charts = Vec::new();
    charts.push(lines(
        "observations-per-layer",
        "Observations per layer, per minute",
        "observations",
        &per_bucket(
            trim(store.layer_counts_per_bucket(run, origin, BUCKET_MS)?),
            origin,
            end,
        ),
        (origin, end),
    )?);
    let mut active: BTreeMap<String, BTreeMap<Millis, f64>> = BTreeMap::new();
    // Active: still a problem (not cleared), whether or not anyone has closed it; the queue's
    // "not closed" also counts incidents cleared and awaiting close.
    let series = active.entry("active incidents".into()).or_default();
    let mut t = origin;
    while t <= end {
        let n = incidents
            .iter()
            .filter(|i| i.opened_ms <= t && i.cleared_ms.is_none_or(|c| c > t))
            .count();
        series.insert(t, n as f64);
        t += BUCKET_MS;
    }
    let mut active_chart = lines(
        "active-incidents",
        "Active incidents over time",
        "incidents",
        &active,
        (origin, end),
    )?;
    active_chart.totals = BTreeMap::from([("incidents".to_owned(), incidents.len() as f64)]);
    charts.push(active_chart);
    let opened: BTreeMap<&str, Millis> = incidents.iter().map(|i| (i.id.as_str(), i.opened_ms)).collect();
    let first = |to: &str| -> Vec<f64> {
        let mut seen = BTreeMap::new();
        for tr in transitions.iter().filter(|tr| tr.to == to) {
            if let Some(o) = opened.get(tr.incident.as_str()) {
                seen.entry(tr.incident.clone())
                    .or_insert(((tr.scenario_ms - o) as f64 / 1000.0).max(0.0));
            }
        }
        seen.into_values().collect()
    };
    charts.push(histogram(
        "time-to-acknowledge",
        "Time to acknowledge",
        &first("acknowledged"),
        30.0,
    )?);
    let mut dispatch = BTreeMap::new();
    for a in &actions {
        if let (Some(inc), Some(at)) = (a.incident.as_deref(), a.scenario_ms) {
            if let Some(o) = opened.get(inc) {
                dispatch
                    .entry(inc.to_owned())
                    .or_insert(((at - o) as f64 / 1000.0).max(0.0));
            }
        }
    }
    charts.push(histogram(
        "time-to-dispatch",
        "Time to the first action",
        &dispatch.into_values().collect::<Vec<_>>(),
        60.0,
    )?);
    let mut health = per_bucket(trim(store.feed_counts_per_bucket(run, origin, BUCKET_MS)?), origin, end);
    for (feed, points) in per_bucket(
        trim(store.quarantine_counts_per_bucket(run, origin, BUCKET_MS)?),
        origin,
        end,
    ) {
        health.insert(format!("{feed} (refused)"), points);
    }
    charts.push(lines(
        "feed-health",
        "Feed health: messages accepted and refused per minute, per feed",
        "observations",
        &health,
        (origin, end),
    )?);
    Ok(charts)
}

/// The shift's KPI charts up to the clock's time `now`: the report's charts, for the app.
pub fn kpi(input: &ReportInput<'_>, now: Millis) -> Result<Vec<crate::dto::ChartDto>, EngineError> {
    Ok(charts(input, Some(now))?
        .into_iter()
        .map(|c| crate::dto::ChartDto {
            id: c.id.to_owned(),
            title: c.title,
            svg: c.svg,
            totals: c.totals,
        })
        .collect())
}

/// Writes the report as one HTML document.
pub fn render(input: &ReportInput<'_>) -> Result<String, EngineError> {
    let store = input.store;
    let run = input.run;
    let name = input
        .scenario
        .map(|s| s.manifest.name.clone())
        .unwrap_or_else(|| format!("run {run}"));
    let (origin, end) = span_of(input)?;
    let incidents = store.stored_incidents(run)?;
    let transitions = store.transitions(run)?;
    let actions = store.actions_of_run(run)?;
    let injects = store.injects(run)?;
    let ended = store.exercise_end(run)?;
    let charts = charts(input, None)?;

    // The document.
    let mut h = String::with_capacity(256 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>After-action report: {n}</title><style>{CSS}</style></head><body>\n<h1>After-action report: {n}</h1>\n<p class=\"meta\">Run {run}; scenario time {a} to {b} (Helsinki); {i} incidents, {t} operator transitions, {c} actions.</p>\n",
        n = esc(&name),
        a = hhmm(origin),
        b = hhmm(end),
        i = incidents.len(),
        t = transitions.len(),
        c = actions.len(),
    );
    if let Some((at, by)) = &ended {
        let _ = writeln!(
            h,
            "<p class=\"meta\" data-ended=\"{at}\">Exercise ended at {} by {}.</p>",
            hhmm(*at),
            esc(by)
        );
    }
    if let Some(scenario) = input.scenario.filter(|s| !s.manifest.objectives.is_empty()) {
        let objectives = crate::training::Scoring {
            objectives: &scenario.manifest.objectives,
            rules: scenario.rules.as_ref(),
            until_ms: end,
        };
        let mut columns = Vec::new();
        if input.trainees.is_empty() {
            columns.push((
                format!("run {run}"),
                crate::training::score_run(store, run, objectives)?,
            ));
        }
        for t in input.trainees {
            let score = crate::training::score_run_of(store, run, objectives, Some(t))?;
            columns.push((t.clone(), score));
        }
        if let Some(v) = input.versus {
            columns.push((format!("run {v}"), crate::training::score_run(store, v, objectives)?));
        }
        for team in input.teams {
            let score = crate::training::score_run(team.store, team.run, objectives)?;
            columns.push((format!("team {}", team.name), score));
        }
        objectives_table(&mut h, &columns);
    }
    if let Some(png) = input.map_png {
        use base64::Engine as _;
        let _ = writeln!(
            h,
            "<h2>Main incident</h2>\n<figure data-map=\"main-incident\"><img alt=\"Map of the main incident's area\" src=\"data:image/png;base64,{}\"/><figcaption>The main incident's area, from the operator's map.</figcaption></figure>",
            base64::engine::general_purpose::STANDARD.encode(png)
        );
    }
    h.push_str("<h2>Timeline</h2>\n<table class=\"timeline\"><thead><tr><th>time</th><th>what</th><th>detail</th></tr></thead><tbody>\n");
    let mut rows: Vec<(Millis, &str, String)> = Vec::new();
    // Incidents are named by their numbers, as the operators saw them; ids stay internal.
    let number: HashMap<&str, &str> = incidents.iter().map(|i| (i.id.as_str(), i.number.as_str())).collect();
    for i in &incidents {
        rows.push((
            i.opened_ms,
            "incident opened",
            format!("{} {} ({}, {})", i.number, i.title, i.incident_type, i.severity),
        ));
        if let Some(c) = i.cleared_ms {
            rows.push((c, "incident cleared", format!("{} {}", i.number, i.title)));
        }
    }
    for tr in &transitions {
        let named = number
            .get(tr.incident.as_str())
            .copied()
            .unwrap_or(tr.incident.as_str());
        rows.push((
            tr.scenario_ms,
            "transition",
            format!("{named} → {} by {} ({})", tr.to, tr.operator, tr.role),
        ));
    }
    for a in &actions {
        rows.push((
            a.scenario_ms.unwrap_or(end),
            "action",
            format!("{} by {}", a.summary, a.operator),
        ));
    }
    for i in &injects {
        rows.push((
            i.scenario_ms,
            "inject",
            format!("{} by {} (trainer)", i.title, i.trainer),
        ));
    }
    // Incidents nobody acknowledged in time, by the scenario's rules: the first transition out
    // of `new` came after the limit for the incident's severity, or never.
    if let Some(rules) = input.scenario.and_then(|sc| sc.rules.as_ref()) {
        for i in &incidents {
            if let Some(due) = crate::training::escalated_at(i, &transitions, rules, end) {
                rows.push((
                    due,
                    "escalated",
                    format!(
                        "{} {}: not acknowledged within {} s",
                        i.number,
                        i.title,
                        (due - i.opened_ms) / 1000
                    ),
                ));
            }
        }
    }
    // Supervisors who resolved past required SOP steps, and why.
    for o in store.overrides(run)? {
        let named = number.get(o.incident.as_str()).copied().unwrap_or(o.incident.as_str());
        rows.push((
            o.scenario_ms,
            "override",
            format!(
                "{named}: required SOP steps {} unticked, overridden by {} ({}): {}",
                o.steps, o.operator, o.role, o.reason
            ),
        ));
    }
    // The narrative log: what operators wrote down, in their words (escaped like all text).
    for n in store.notes(run)? {
        let named = number.get(n.incident.as_str()).copied().unwrap_or(n.incident.as_str());
        rows.push((
            n.scenario_ms,
            "note",
            format!("{named}: {} ({}, {})", n.text, n.operator, n.role),
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    for (t, what, detail) in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            hhmm(t),
            esc(what),
            esc(&detail)
        );
    }
    h.push_str("</tbody></table>\n<h2>Charts</h2>\n");
    for c in &charts {
        let totals = serde_json::to_string(&c.totals).unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure data-chart=\"{}\" data-totals=\"{}\">{}<figcaption>{}</figcaption></figure>",
            c.id,
            esc(&totals),
            c.svg,
            esc(&c.title)
        );
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

fn outcome_cell(o: &Outcome) -> &'static str {
    match o {
        Outcome::Met => "met",
        Outcome::Late => "late",
        Outcome::Missed => "missed",
        Outcome::Violated => "violated",
    }
}

/// The objectives with one column per score (a run, a trainee, a team), side by side.
fn objectives_table(h: &mut String, columns: &[(String, Score)]) {
    h.push_str("<h2>Score</h2>\n<p class=\"score\">");
    for (k, (label, score)) in columns.iter().enumerate() {
        let _ = write!(
            h,
            "{sep}<span data-column=\"{l}\" data-points=\"{p}\">{l}: <strong>{p} of {m} points</strong></span>",
            sep = if k == 0 { "" } else { "; " },
            l = esc(label),
            p = score.points,
            m = score.max_points
        );
    }
    h.push_str("</p>\n<table class=\"objectives\"><thead><tr><th>objective</th>");
    for (label, _) in columns {
        let _ = write!(h, "<th>{}</th>", esc(label));
    }
    h.push_str("</tr></thead><tbody>\n");
    let Some((_, first)) = columns.first() else {
        h.push_str("</tbody></table>\n");
        return;
    };
    for (i, o) in first.objectives.iter().enumerate() {
        let _ = write!(h, "<tr data-objective=\"{}\"><td>{}</td>", esc(&o.id), esc(&o.title));
        for (label, score) in columns {
            match score.objectives.get(i) {
                Some(s) => {
                    let _ = write!(
                        h,
                        "<td class=\"{c}\" data-column=\"{l}\" data-outcome=\"{c}\"><strong>{c}</strong> ({p}) {d}</td>",
                        c = outcome_cell(&s.outcome),
                        l = esc(label),
                        p = s.points,
                        d = esc(&s.detail)
                    );
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

const CSS: &str = "body{font-family:'DejaVu Sans',sans-serif;margin:2em;color:#111;max-width:60em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
.met{background:#e3f6e8}.late{background:#fff4d6}.missed,.violated{background:#fde2e2}\
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ccc}figcaption{color:#555;font-size:.9em}.meta{color:#555}";

#[cfg(test)]
mod tests {
    use super::*;

    /// A chart of the layers draws each in the app's colour of that layer, whatever order the
    /// series come in.
    #[test]
    fn layer_series_take_the_apps_layer_colours() {
        let mut series: BTreeMap<String, BTreeMap<Millis, f64>> = BTreeMap::new();
        for (n, layer) in ["alerts", "security", "transport", "utility"].into_iter().enumerate() {
            series.insert(layer.into(), [(0, n as f64), (60_000, 1.0)].into_iter().collect());
        }
        font().unwrap();
        let chart = lines(
            "layers",
            "Observations per minute",
            "observations",
            &series,
            (0, 120_000),
        )
        .unwrap();
        let svg = chart.svg.to_ascii_uppercase();
        for colour in ["#2EC5F0", "#C95CF5", "#F5A623", "#FF4F6E"] {
            assert!(svg.contains(colour), "{colour} missing");
        }
        assert!(!svg.contains("#0096C7"), "the palette's first colour is not a layer's");
    }
}
