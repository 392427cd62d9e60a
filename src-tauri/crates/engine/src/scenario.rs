//! Loading a scenario folder: its manifest, its tape, and the assets and correlation rules the
//! manifest names.

use std::path::{Path, PathBuf};

use cityops_core::assets::AssetIndex;
use cityops_core::model::Millis;
use cityops_core::rules::Rules;
use cityops_core::scenario::Manifest;
use cityops_core::tape::{self, TapeIssue, TapeMessage};
use cityops_core::zones::Zones;

use crate::error::EngineError;
use cityops_decoders::MAX_BODY_BYTES;

pub use cityops_core::scenario::MANIFEST;

/// A loaded scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder it was loaded from.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The tape file.
    pub tape_path: PathBuf,
    /// The good tape lines, in file order.
    pub messages: Vec<TapeMessage>,
    /// The refused tape lines.
    pub tape_issues: Vec<TapeIssue>,
    /// The assets the manifest names (empty without an asset file).
    pub assets: AssetIndex,
    /// The correlation rules the manifest names; `None` replays without incidents.
    pub rules: Option<Rules>,
    /// The zones the manifest names (none without a zones file).
    pub zones: Zones,
}

impl Scenario {
    /// Loads `dir/scenario.toml`, its tape, assets and rules. A malformed tape line is kept as an
    /// issue, with a warning naming the file and line; the other lines are loaded. A bad asset
    /// or rules file fails the load: incidents built on half a rules file would mislead.
    pub fn load(dir: &Path) -> Result<Scenario, EngineError> {
        let manifest_path = dir.join(MANIFEST);
        let text = read(&manifest_path)?;
        let mut manifest = Manifest::parse(&text).map_err(|source| EngineError::Manifest {
            path: manifest_path,
            source,
        })?;
        // Operators' calls arrive on built-in feeds, one per layer (see `cityops_core::call`);
        // a tape recorded where operators entered calls holds their lines.
        manifest.feeds.extend(cityops_core::call::feed_specs());
        let tape_path = dir.join(&manifest.tape);
        let (messages, tape_issues) = read_tape(&tape_path)?;
        for issue in &tape_issues {
            tracing::warn!(file = %tape_path.display(), line = issue.line, reason = %issue.reason, "refused tape line");
        }
        let (assets, rules) = load_assets_and_rules(dir, manifest.assets.as_deref(), manifest.rules.as_deref())?;
        let rules_path = dir.join(manifest.rules.as_deref().unwrap_or_default());
        let zones = load_zones(dir, manifest.zones.as_deref(), rules.as_ref(), &rules_path)?;
        if !manifest.objectives.is_empty() {
            let types: Vec<&str> = rules
                .as_ref()
                .map(|r| r.types.iter().map(|t| t.id.as_str()).collect())
                .unwrap_or_default();
            cityops_core::objectives::validate(&manifest.objectives, &types).map_err(|source| {
                EngineError::Objectives {
                    path: dir.join(MANIFEST),
                    source,
                }
            })?;
        }
        Ok(Scenario {
            dir: dir.to_owned(),
            manifest,
            tape_path,
            messages,
            tape_issues,
            assets,
            rules,
            zones,
        })
    }

    /// The scenario a site runs with, from the configuration it published: its feeds, rules
    /// and assets, and no tape (the site's stream is the tape). `dir` resolves what the feeds'
    /// mappings name. Errors name the part of the configuration (`site:hel/rules`).
    pub fn from_site(dir: &Path, site: &str, config: &cityops_site::SiteConfig) -> Result<Scenario, EngineError> {
        let part = |name: &str| PathBuf::from(format!("site:{site}/{name}"));
        let mut manifest = Manifest::parse(&config.manifest).map_err(|source| EngineError::Manifest {
            path: part(MANIFEST),
            source,
        })?;
        manifest.feeds.extend(cityops_core::call::feed_specs());
        if !manifest.injects.is_empty() {
            // A trainer of the site (`cityops train`) injects on the built-in inject feeds, as
            // a replay's trainer does.
            manifest.feeds.extend(cityops_core::inject::feed_specs());
        }
        let assets = match &config.assets {
            Some(text) => AssetIndex::parse_geojson(text).map_err(|source| EngineError::Assets {
                path: part("assets"),
                source,
            })?,
            None => AssetIndex::default(),
        };
        let rules = match &config.rules {
            Some(text) => Some(Rules::parse(text).map_err(|source| EngineError::Rules {
                path: part("rules"),
                source,
            })?),
            None => None,
        };
        let zones = match &config.zones {
            Some(text) => Zones::parse_geojson(text).map_err(|e| EngineError::Zones {
                path: part("zones"),
                message: e.to_string(),
            })?,
            None => Zones::default(),
        };
        if let Some(rules) = &rules {
            rules.check_zones(&zones).map_err(|message| EngineError::Zones {
                path: part("rules"),
                message,
            })?;
        }
        Ok(Scenario {
            dir: dir.to_owned(),
            tape_path: part("stream"),
            manifest,
            messages: Vec::new(),
            tape_issues: Vec::new(),
            assets,
            rules,
            zones,
        })
    }

    /// What a site runs with, from this scenario's folder: its manifest with the texts of the
    /// rules and assets it names (`cityops publish` sends this before the tape).
    pub fn site_config(dir: &Path) -> Result<cityops_site::SiteConfig, EngineError> {
        let manifest_path = dir.join(MANIFEST);
        let text = read(&manifest_path)?;
        let manifest = Manifest::parse(&text).map_err(|source| EngineError::Manifest {
            path: manifest_path,
            source,
        })?;
        let rules = manifest.rules.as_deref().map(|f| read(&dir.join(f))).transpose()?;
        let assets = manifest.assets.as_deref().map(|f| read(&dir.join(f))).transpose()?;
        let zones = manifest.zones.as_deref().map(|f| read(&dir.join(f))).transpose()?;
        Ok(cityops_site::SiteConfig {
            manifest: text,
            rules,
            assets,
            zones,
        })
    }

    /// When the scenario clock stops: the manifest's end, else the last message, else the start.
    pub fn end_ms(&self) -> Millis {
        let last = self
            .messages
            .iter()
            .map(|m| m.time_ms)
            .max()
            .unwrap_or(self.manifest.start_ms);
        self.manifest.end_ms.unwrap_or(last).max(self.manifest.start_ms)
    }
}

/// Reads the asset and rules files named (relative to `dir`); shared by scenarios and live
/// feed configurations.
/// Reads a zones file (none: no zones) and checks that every zone the rules' zone rules name
/// is in it; `rules_path` names the rules file for that error.
pub(crate) fn load_zones(
    dir: &Path,
    zones: Option<&str>,
    rules: Option<&Rules>,
    rules_path: &Path,
) -> Result<Zones, EngineError> {
    let zones = match zones {
        Some(file) => {
            let path = dir.join(file);
            Zones::parse_geojson(&read(&path)?).map_err(|e| EngineError::Zones {
                path,
                message: e.to_string(),
            })?
        }
        None => Zones::default(),
    };
    if let Some(rules) = rules {
        rules.check_zones(&zones).map_err(|message| EngineError::Zones {
            path: rules_path.to_owned(),
            message,
        })?;
    }
    Ok(zones)
}

pub(crate) fn load_assets_and_rules(
    dir: &Path,
    assets: Option<&str>,
    rules: Option<&str>,
) -> Result<(AssetIndex, Option<Rules>), EngineError> {
    let assets = match assets {
        Some(file) => {
            let path = dir.join(file);
            AssetIndex::parse_geojson(&read(&path)?).map_err(|source| EngineError::Assets { path, source })?
        }
        None => AssetIndex::default(),
    };
    let rules = match rules {
        Some(file) => {
            let path = dir.join(file);
            Some(Rules::parse(&read(&path)?).map_err(|source| EngineError::Rules { path, source })?)
        }
        None => None,
    };
    Ok((assets, rules))
}

fn read(path: &Path) -> Result<String, EngineError> {
    std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a tape as bytes and judges each line alone, so a line that is not UTF-8 (or holds a
/// NUL, or a body over [`MAX_BODY_BYTES`]) is one issue with its line number instead of an
/// error that refuses the whole file. Only a file that cannot be read at all fails.
fn read_tape(path: &Path) -> Result<(Vec<TapeMessage>, Vec<TapeIssue>), EngineError> {
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(tape::parse_tape(&bytes, MAX_BODY_BYTES))
}

/// Every problem of a scenario folder, each as `file:line: what` (`cityops check`): the
/// manifest, each tape line (unparseable, or naming a feed the manifest does not list), the
/// asset and rules files, and the objectives against the rules' incident types. Unlike
/// [`Scenario::load`], it does not stop at the first problem where it can go on.
pub fn check(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let manifest_path = dir.join(MANIFEST);
    let text = match read(&manifest_path) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let mut manifest = match Manifest::parse(&text) {
        Ok(m) => m,
        Err(e) => {
            return vec![format!(
                "{}:{}: {}",
                manifest_path.display(),
                e.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                e.message
            )]
        }
    };
    // The built-in call feeds need no declaration, as when the scenario is loaded.
    manifest.feeds.extend(cityops_core::call::feed_specs());
    let tape_path = dir.join(&manifest.tape);
    match read_tape(&tape_path) {
        Err(e) => problems.push(e.to_string()),
        Ok((messages, issues)) => {
            for issue in issues {
                problems.push(format!("{}:{}: {}", tape_path.display(), issue.line, issue.reason));
            }
            for m in &messages {
                if manifest.feed(&m.feed).is_none() {
                    problems.push(format!(
                        "{}:{}: feed {:?} is not listed in {MANIFEST}",
                        tape_path.display(),
                        m.line,
                        m.feed
                    ));
                }
            }
            if messages.is_empty() {
                problems.push(format!("{}: the tape has no messages", tape_path.display()));
            }
        }
    }
    match load_assets_and_rules(dir, manifest.assets.as_deref(), manifest.rules.as_deref()) {
        Err(e) => problems.push(e.to_string()),
        Ok((assets, rules)) => {
            let rules_path = dir.join(manifest.rules.as_deref().unwrap_or_default());
            if let Err(e) = load_zones(dir, manifest.zones.as_deref(), rules.as_ref(), &rules_path) {
                problems.push(e.to_string());
            }
            // An inject that snaps to an asset type the scenario has none of could never be made.
            for (i, inject) in manifest.injects.iter().enumerate() {
                if let Some(t) = &inject.asset_type {
                    if !assets.assets().iter().any(|a| &a.asset_type == t) {
                        let line = text
                            .lines()
                            .enumerate()
                            .filter(|(_, l)| l.trim() == "[[injects]]")
                            .nth(i)
                            .map(|(n, _)| n + 1);
                        problems.push(format!(
                            "{}:{}: injects[{i}] ({}): the scenario has no asset of type {t:?} to snap to",
                            manifest_path.display(),
                            line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                            inject.id
                        ));
                    }
                }
            }
            if !manifest.objectives.is_empty() {
                let types: Vec<&str> = rules
                    .as_ref()
                    .map(|r| r.types.iter().map(|t| t.id.as_str()).collect())
                    .unwrap_or_default();
                if let Err(e) = cityops_core::objectives::validate(&manifest.objectives, &types) {
                    let line = text
                        .lines()
                        .enumerate()
                        .filter(|(_, l)| l.trim() == "[[objectives]]")
                        .nth(e.index)
                        .map(|(n, _)| n + 1);
                    problems.push(format!(
                        "{}:{}: {e}",
                        manifest_path.display(),
                        line.map(|l| l.to_string()).unwrap_or_else(|| "?".into())
                    ));
                }
            }
        }
    }
    problems
}
