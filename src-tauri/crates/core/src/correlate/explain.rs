//! Explanations in words. The operator reads these in the incident detail, so they name the
//! things involved, the distance, the time between them and the supply path, in one sentence.

use crate::assets::AssetIndex;
use crate::model::Millis;

/// How a dependent observation reached the asset graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Via {
    /// Its entity is an asset.
    Entity,
    /// A payload field (such as `site`) names the asset.
    Field(String),
    /// It is about no asset; the nearest asset this many metres away stands for it.
    Near(f64),
}

/// "signal node/1234" for an asset, the bare id for anything else.
pub(crate) fn subject(assets: &AssetIndex, entity: &str) -> String {
    match assets.get(entity) {
        Some(a) => format!("{} {}", noun(&a.asset_type), entity),
        None => entity.to_owned(),
    }
}

/// An asset type as a word: `tram_stop` reads "tram stop".
pub(crate) fn noun(asset_type: &str) -> String {
    asset_type.replace('_', " ")
}

/// A duration in words: "40 s", "2 min 5 s", "1 h 3 min".
pub(crate) fn duration(ms: Millis) -> String {
    let s = (ms.abs() + 500) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 if s % 60 == 0 => format!("{} min", s / 60),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// "40 s after" / "12 s before" / "at the same time as".
pub(crate) fn relative(gap_ms: Millis, after: &str, before: &str) -> String {
    if gap_ms.abs() < 500 {
        "at the same time as".to_owned()
    } else if gap_ms > 0 {
        format!("{} {after}", duration(gap_ms))
    } else {
        format!("{} {before}", duration(gap_ms))
    }
}

/// What the dependency explanation needs to know.
pub(crate) struct Dependency<'a> {
    pub subject: String,
    pub phrase: String,
    pub gap_ms: Millis,
    pub root_subject: String,
    pub root_phrase: String,
    pub root_noun: String,
    pub via: &'a Via,
    /// From the observation's asset up to the root's asset.
    pub path: &'a [String],
    pub feeder: Option<&'a str>,
    pub assets: &'a AssetIndex,
}

/// "signal node/1 went dark 40 s after substation way/2 tripped; it is fed by that substation".
pub(crate) fn dependency(d: &Dependency<'_>) -> String {
    let that = format!("that {}", d.root_noun);
    let hops = d.path.len().saturating_sub(1);
    let chain = |from: usize| -> String {
        // The assets between the first named one and the root, as "fed through x, y by".
        let between: Vec<String> = d.path[from..d.path.len() - 1]
            .iter()
            .map(|a| subject(d.assets, a))
            .collect();
        if between.is_empty() {
            format!("fed by {that}")
        } else {
            format!("fed through {} by {that}", between.join(", "))
        }
    };
    let relation = match (d.via, hops) {
        (Via::Entity, 0) => format!("it is {that} itself"),
        (Via::Entity, _) => format!("it is {}", chain(1)),
        (Via::Field(f), 0) => format!("its {f} is {that}"),
        (Via::Field(f), _) => format!("its {f} {} is {}", subject(d.assets, &d.path[0]), chain(1)),
        (Via::Near(m), 0) => format!("it is {m:.0} m from {that}"),
        (Via::Near(m), _) => format!(
            "it is {m:.0} m from {}, which is {}",
            subject(d.assets, &d.path[0]),
            chain(1)
        ),
    };
    let feeder = d.feeder.map(|f| format!(" on feeder {f}")).unwrap_or_default();
    format!(
        "{} {} {} {} {}; {relation}{feeder}",
        d.subject,
        d.phrase,
        relative(d.gap_ms, "after", "before"),
        d.root_subject,
        d.root_phrase
    )
}

/// "vehicle/tram-3 was delayed 8 m from signal node/1, which went dark 2 min earlier".
pub(crate) fn spatial(
    subject: &str,
    phrase: &str,
    distance_m: f64,
    other: &str,
    other_phrase: &str,
    gap_ms: Millis,
    other_cleared: bool,
) -> String {
    let when = if gap_ms.abs() < 500 {
        "at the same time".to_owned()
    } else {
        relative(gap_ms, "earlier", "later")
    };
    let still = if other_cleared { " (since cleared)" } else { "" };
    format!("{subject} {phrase} {distance_m:.0} m from {other}, which {other_phrase} {when}{still}")
}

/// "report/2 reported an outage 40 m from report/1 and 3 min after it; likely the same thing".
pub(crate) fn duplicate(subject: &str, phrase: &str, distance_m: f64, other: &str, gap_ms: Millis) -> String {
    format!(
        "{subject} {phrase} {distance_m:.0} m from {other} and {} it; likely the same thing reported twice",
        relative(gap_ms, "after", "before")
    )
}

/// The root's own line.
pub(crate) fn seed(subject: &str, phrase: &str) -> String {
    format!("{subject} {phrase}; it opened this incident and is its probable root cause")
}

/// Rounds for stable, readable numbers in snapshots and the UI.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds a confidence to two decimals.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(40_200), "40 s");
        assert_eq!(duration(-125_000), "2 min 5 s");
        assert_eq!(duration(120_000), "2 min");
        assert_eq!(duration(3_780_000), "1 h 3 min");
        assert_eq!(relative(-12_000, "after", "before"), "12 s before");
    }
}
