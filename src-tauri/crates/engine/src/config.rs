//! The live feed configuration: one TOML file listing the feeds a workstation connects to.
//! Adding a feed is a config change. The format is documented in `fixtures/feeds/README.md`.
//!
//! Credentials are never written in the file: a header or password names an environment
//! variable (`{ env = "NAME" }`) whose value is read when the feed starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cityops_core::model::Layer;
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use serde::Deserialize;

/// A parsed and validated feed configuration.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// The file it was read from; relative paths in it are relative to its folder.
    pub path: PathBuf,
    /// What the desktop shows in its title in live mode; defaults to the file's name.
    pub name: String,
    /// The asset file (GeoJSON) the incident desk matches against, relative to this file.
    pub assets: Option<String>,
    /// The correlation rules file (TOML), relative to this file; without one, live mode shows
    /// observations but no incidents.
    pub rules: Option<String>,
    /// The basemap archive recordings of these feeds are drawn on.
    pub map: String,
    /// Where a recording's map opens: `[lon, lat, zoom]`.
    pub view: [f64; 3],
    /// The feeds, in file order.
    pub feeds: Vec<LiveFeed>,
}

/// One configured feed.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    /// What the pipeline needs: id, layer, format, name, mapping.
    pub spec: FeedSpec,
    /// How messages arrive.
    pub transport: Transport,
    /// After how long without a message the feed counts as stale.
    pub stale_after: Duration,
}

/// A value that may be secret: given literally, or by the name of an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum ValueRef {
    /// Read from this environment variable when the feed starts.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Written in the file; refused for credentials.
    Value {
        /// The literal value.
        value: String,
    },
}

impl ValueRef {
    /// The value, reading the environment if it is a reference.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            ValueRef::Env { env } => std::env::var(env).map_err(|_| format!("environment variable {env} is not set")),
            ValueRef::Value { value } => Ok(value.clone()),
        }
    }
}

/// How a feed's messages arrive.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transport {
    /// GET a URL every `interval_s` seconds; each answer body is one message.
    HttpPoll {
        /// What to fetch (http or https).
        url: String,
        /// Seconds between polls.
        interval_s: u64,
        /// Seconds before a request counts as hung.
        #[serde(default = "default_timeout_s")]
        timeout_s: u64,
        /// Request headers; credentials only as `{ env = "NAME" }`.
        #[serde(default)]
        headers: BTreeMap<String, ValueRef>,
    },
    /// Subscribe to MQTT topics; each publish is one message, its topic kept with it.
    Mqtt {
        /// Broker host.
        host: String,
        /// Broker port.
        #[serde(default = "default_mqtt_port")]
        port: u16,
        /// Topic filters (`+` and `#` wildcards allowed).
        topics: Vec<String>,
        /// Client id; defaults to `cityops-<feed id>`.
        #[serde(default)]
        client_id: Option<String>,
        /// User name, if the broker wants one.
        #[serde(default)]
        username: Option<ValueRef>,
        /// Password, only as `{ env = "NAME" }`.
        #[serde(default)]
        password: Option<ValueRef>,
    },
    /// A TCP stream of concatenated messages (Cursor-on-Target from a TAK server).
    Tcp {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
    },
    /// Files dropped into a folder; each file is one message.
    FileDrop {
        /// The folder to watch (relative to the config file's folder).
        dir: PathBuf,
    },
}

impl Transport {
    /// The transport's `type` name, as the file and feed health spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::HttpPoll { .. } => "http-poll",
            Transport::Mqtt { .. } => "mqtt",
            Transport::Tcp { .. } => "tcp",
            Transport::FileDrop { .. } => "file-drop",
        }
    }
}

fn default_timeout_s() -> u64 {
    10
}

fn default_mqtt_port() -> u16 {
    1883
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    assets: Option<String>,
    #[serde(default)]
    rules: Option<String>,
    #[serde(default = "default_map")]
    map: String,
    #[serde(default = "default_view")]
    view: [f64; 3],
    #[serde(default)]
    feeds: Vec<RawFeed>,
}

fn default_map() -> String {
    "helsinki".into()
}

fn default_view() -> [f64; 3] {
    [24.945, 60.171, 14.0]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    id: String,
    layer: Layer,
    format: FeedFormat,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stale_after_s: Option<u64>,
    transport: Transport,
    #[serde(default)]
    mapping: serde_json::Value,
}

/// A configuration that cannot be used: the file, the line where known, the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {field}: {reason}", path.display(), line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()))]
pub struct ConfigError {
    /// The configuration file.
    pub path: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The field at fault, for example `feeds[2].transport.url`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Header names that carry credentials and must therefore come from the environment.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "x-api-key"];

impl LiveConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<LiveConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            field: "(file)".into(),
            reason: e.to_string(),
        })?;
        LiveConfig::parse(path, &text)
    }

    /// Parses and validates configuration text read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<LiveConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)),
            field: "(syntax)".into(),
            reason: e.message().to_owned(),
        })?;
        let mut feeds = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in raw.feeds.into_iter().enumerate() {
            let err = |field: &str, reason: String| ConfigError {
                path: path.to_owned(),
                line: feed_line(text, i),
                field: format!("feeds[{i}].{field}"),
                reason,
            };
            if f.id.trim().is_empty() || !seen.insert(f.id.clone()) {
                return Err(err("id", format!("{:?} is empty or used twice", f.id)));
            }
            let expected = match &f.transport {
                Transport::HttpPoll { url, interval_s, timeout_s, headers } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(err("transport.url", format!("{url:?} is not an http(s) URL")));
                    }
                    if *interval_s == 0 || *timeout_s == 0 {
                        return Err(err("transport", "interval_s and timeout_s must be at least 1".into()));
                    }
                    for (name, value) in headers {
                        if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) && matches!(value, ValueRef::Value { .. }) {
                            return Err(err(
                                &format!("transport.headers.{name}"),
                                "credentials are never written in the file; use { env = \"NAME\" }".into(),
                            ));
                        }
                    }
                    Duration::from_secs(interval_s * 3)
                }
                Transport::Mqtt { topics, password, .. } => {
                    if topics.is_empty() {
                        return Err(err("transport.topics", "at least one topic filter is needed".into()));
                    }
                    if matches!(password, Some(ValueRef::Value { .. })) {
                        return Err(err("transport.password", "credentials are never written in the file; use { env = \"NAME\" }".into()));
                    }
                    Duration::from_secs(300)
                }
                Transport::Tcp { .. } => Duration::from_secs(300),
                Transport::FileDrop { .. } => Duration::from_secs(3600),
            };
            feeds.push(LiveFeed {
                spec: FeedSpec { id: f.id, layer: f.layer, format: f.format, name: f.name, mapping: f.mapping },
                transport: f.transport,
                stale_after: f.stale_after_s.map(Duration::from_secs).unwrap_or(expected),
            });
        }
        let name = raw.name.unwrap_or_else(|| format!("Live: {}", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()));
        Ok(LiveConfig { path: path.to_owned(), name, assets: raw.assets, rules: raw.rules, map: raw.map, view: raw.view, feeds })
    }

    /// The folder relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_owned).unwrap_or_default()
    }
}

/// The line of the `i`-th `[[feeds]]` table, to point errors found after parsing.
fn feed_line(text: &str, i: usize) -> Option<usize> {
    text.lines().enumerate().filter(|(_, l)| l.trim() == "[[feeds]]").nth(i).map(|(n, _)| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[feeds]]
id = "scada"
layer = "utility"
format = "geojson"
name = "SCADA"
[feeds.transport]
type = "http-poll"
url = "http://127.0.0.1:9/scada.json"
interval_s = 5
headers = { Authorization = { env = "SCADA_TOKEN" }, Accept = { value = "application/geo+json" } }

[[feeds]]
id = "drop"
layer = "alerts"
format = "geojson"
stale_after_s = 10
[feeds.transport]
type = "file-drop"
dir = "inbox"
"#;

    fn parse(text: &str) -> Result<LiveConfig, ConfigError> {
        LiveConfig::parse(Path::new("/etc/cityops/feeds.toml"), text)
    }

    #[test]
    fn parses_feeds_and_their_transports() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.feeds.len(), 2);
        assert_eq!(c.feeds[0].stale_after, Duration::from_secs(15));
        assert_eq!(c.feeds[1].stale_after, Duration::from_secs(10));
        let Transport::HttpPoll { headers, .. } = &c.feeds[0].transport else { panic!("http-poll expected") };
        assert_eq!(headers["Authorization"], ValueRef::Env { env: "SCADA_TOKEN".into() });
        assert_eq!(c.base_dir(), PathBuf::from("/etc/cityops"));
        assert_eq!((c.name.as_str(), c.rules.as_deref(), c.assets.as_deref()), ("Live: feeds.toml", None, None));
        let named = parse(&format!("name = \"Control room\"\nrules = \"rules.toml\"\nassets = \"grid.geojson\"\n{GOOD}")).unwrap();
        assert_eq!((named.name.as_str(), named.rules.as_deref(), named.assets.as_deref()), ("Control room", Some("rules.toml"), Some("grid.geojson")));
    }

    #[test]
    fn the_documented_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/feeds/example.toml");
        let c = LiveConfig::load(&path).unwrap();
        let kinds: Vec<&str> = c.feeds.iter().map(|f| f.transport.kind()).collect();
        assert_eq!(kinds, ["http-poll", "mqtt", "tcp", "file-drop"]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let inline = GOOD.replace(r#"{ env = "SCADA_TOKEN" }"#, r#"{ value = "Bearer s3cret" }"#);
        let e = parse(&inline).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "feeds[0].transport.headers.Authorization"), "{e}");
        assert!(e.to_string().starts_with("/etc/cityops/feeds.toml:2: "), "{e}");

        let typo = GOOD.replace("interval_s = 5", "intervall_s = 5");
        let e = parse(&typo).unwrap_err();
        assert!(e.reason.contains("intervall_s"), "{e}");
        assert!(e.line.is_some());

        let bad_url = GOOD.replace("http://127.0.0.1:9/scada.json", "ftp://x");
        assert_eq!(parse(&bad_url).unwrap_err().field, "feeds[0].transport.url");

        let dup = GOOD.replace("id = \"drop\"", "id = \"scada\"");
        let e = parse(&dup).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(13), "feeds[1].id"));

        let bad_format = GOOD.replace("format = \"geojson\"\nname", "format = \"kml\"\nname");
        assert!(parse(&bad_format).unwrap_err().reason.contains("kml"));
    }
}
