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

use cityops_net::tls::TlsSpec;

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
    /// The zones file (GeoJSON polygons) the rules' zone rules watch, relative to this file.
    pub zones: Option<String>,
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
    pub fn resolve(&self) -> Result<String, MissingEnv> {
        match self {
            ValueRef::Env { env } => std::env::var(env).map_err(|_| MissingEnv { env: env.clone() }),
            ValueRef::Value { value } => Ok(value.clone()),
        }
    }
}

/// The environment variable a [`ValueRef`] names is not set (or does not hold Unicode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {env} is not set")]
pub struct MissingEnv {
    /// The variable's name.
    pub env: String,
}

/// How a feed's messages arrive.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transport {
    /// GET a URL (or several) every `interval_s` seconds; each answer body is one message. A
    /// SensorThings feed polls incrementally instead: see `live::http_poll`.
    HttpPoll {
        /// What to fetch (http or https). Exactly one of `url` and `urls` is given.
        #[serde(default)]
        url: Option<String>,
        /// Several URLs, each polled every interval as if it were the feed's only `url` (for
        /// SensorThings: one `Datastreams('id')/Observations` collection per datastream).
        #[serde(default)]
        urls: Vec<String>,
        /// Seconds between polls.
        interval_s: u64,
        /// Seconds before a request counts as hung.
        #[serde(default = "default_timeout_s")]
        timeout_s: u64,
        /// Request headers; credentials only as `{ env = "NAME" }`.
        #[serde(default)]
        headers: BTreeMap<String, ValueRef>,
        /// SensorThings only: how far back the first poll reaches, in seconds (default 600).
        #[serde(default)]
        lookback_s: Option<u64>,
        /// SensorThings only: how many `@iot.nextLink` pages one poll follows (default 10); the
        /// rest are read from where it stopped at the next poll.
        #[serde(default)]
        max_pages: Option<u32>,
        /// Other origins (`https://host[:port]`) whose links this feed may follow, with its
        /// headers: a CAP index's entries or a SensorThings `@iot.nextLink` elsewhere. Links to
        /// any other origin are refused, so content cannot send the feed's credentials, or the
        /// poller itself, where it likes.
        #[serde(default)]
        follow: Vec<String>,
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
        /// TLS to the broker (`tls = {}` trusts the system's roots).
        #[serde(default)]
        tls: Option<TlsSpec>,
    },
    /// A TCP stream of concatenated messages (Cursor-on-Target from a TAK server).
    Tcp {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// TLS to the server, with a client certificate where it asks for one (a TAK server's
        /// client-certificate port).
        #[serde(default)]
        tls: Option<TlsSpec>,
    },
    /// Files dropped into a folder; each file is one message.
    FileDrop {
        /// The folder to watch (relative to the config file's folder).
        dir: PathBuf,
    },
}

impl Transport {
    /// The URLs an `http-poll` transport polls (`url`, or else `urls`); empty for others.
    pub fn poll_urls(&self) -> Vec<String> {
        match self {
            Transport::HttpPoll { url: Some(url), .. } => vec![url.clone()],
            Transport::HttpPoll { urls, .. } => urls.clone(),
            _ => Vec::new(),
        }
    }

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
    #[serde(default)]
    zones: Option<String>,
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
            if f.format == FeedFormat::ByExtension && !matches!(f.transport, Transport::FileDrop { .. }) {
                return Err(err(
                    "format",
                    format!(
                        "\"auto\" (format by file extension) is for file-drop feeds only, not {}",
                        f.transport.kind()
                    ),
                ));
            }
            let expected = match &f.transport {
                Transport::HttpPoll {
                    url,
                    urls,
                    interval_s,
                    timeout_s,
                    headers,
                    lookback_s,
                    max_pages,
                    follow,
                } => {
                    let field = if url.is_some() {
                        "transport.url"
                    } else {
                        "transport.urls"
                    };
                    if url.is_some() != urls.is_empty() {
                        return Err(err(
                            field,
                            "give exactly one of url (one URL) and urls (a list of URLs)".into(),
                        ));
                    }
                    for url in f.transport.poll_urls() {
                        if !(url.starts_with("http://") || url.starts_with("https://")) {
                            return Err(err(field, format!("{url:?} is not an http(s) URL")));
                        }
                    }
                    if f.format != FeedFormat::SensorThings && (lookback_s.is_some() || max_pages.is_some()) {
                        return Err(err("transport", "lookback_s and max_pages are for incremental SensorThings polls (format = \"sensorthings\")".into()));
                    }
                    if f.format == FeedFormat::SensorThings {
                        if let Some(url) = f
                            .transport
                            .poll_urls()
                            .into_iter()
                            .find(|u| u.contains("$filter") || u.contains("$expand"))
                        {
                            return Err(err(field, format!("{url:?}: a SensorThings poll adds its own $filter (on phenomenonTime) and $expand; leave them out")));
                        }
                    }
                    // The adapter refuses readings more than a year from their arrival, so a
                    // longer lookback could only fetch what is then refused.
                    if lookback_s.is_some_and(|s| s > 365 * 86_400) {
                        return Err(err("transport.lookback_s", "at most 31536000 (a year)".into()));
                    }
                    if *max_pages == Some(0) {
                        return Err(err("transport.max_pages", "must be at least 1".into()));
                    }
                    if *interval_s == 0 || *timeout_s == 0 {
                        return Err(err("transport", "interval_s and timeout_s must be at least 1".into()));
                    }
                    for (name, value) in headers {
                        if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                            && matches!(value, ValueRef::Value { .. })
                        {
                            return Err(err(
                                &format!("transport.headers.{name}"),
                                "credentials are never written in the file; use { env = \"NAME\" }".into(),
                            ));
                        }
                    }
                    for o in follow {
                        if cityops_net::origin::origin(o).is_none() {
                            return Err(err("transport.follow", format!("{o:?} is not an http(s) origin")));
                        }
                    }
                    // A header read from the environment is a credential: it never travels in
                    // clear off the machine, to the feed's URLs or to the origins it follows.
                    if let Some(name) = headers
                        .iter()
                        .find(|(_, v)| matches!(v, ValueRef::Env { .. }))
                        .map(|(n, _)| n)
                    {
                        let targets = f
                            .transport
                            .poll_urls()
                            .into_iter()
                            .chain(follow.iter().cloned())
                            .collect::<Vec<_>>();
                        if let Some(why) = targets
                            .iter()
                            .find_map(|u| cityops_net::origin::secret_over_plain_http(u))
                        {
                            return Err(err(&format!("transport.headers.{name}"), why));
                        }
                    }
                    Duration::from_secs(interval_s * 3)
                }
                Transport::Mqtt {
                    host,
                    topics,
                    password,
                    tls,
                    ..
                } => {
                    if topics.is_empty() {
                        return Err(err("transport.topics", "at least one topic filter is needed".into()));
                    }
                    if matches!(password, Some(ValueRef::Value { .. })) {
                        return Err(err(
                            "transport.password",
                            "credentials are never written in the file; use { env = \"NAME\" }".into(),
                        ));
                    }
                    // A password over plain MQTT to another machine is readable on the path.
                    if password.is_some() && tls.is_none() && !cityops_net::origin::host_is_loopback(host) {
                        return Err(err(
                            "transport.password",
                            format!(
                                "would travel in clear to {host}; add tls (plain MQTT is allowed only to this machine)"
                            ),
                        ));
                    }
                    if let Some(Err(e)) = tls.as_ref().map(TlsSpec::validate) {
                        return Err(err("transport.tls", e.to_string()));
                    }
                    Duration::from_secs(300)
                }
                Transport::Tcp { tls, .. } => {
                    if let Some(Err(e)) = tls.as_ref().map(TlsSpec::validate) {
                        return Err(err("transport.tls", e.to_string()));
                    }
                    Duration::from_secs(300)
                }
                Transport::FileDrop { .. } => Duration::from_secs(3600),
            };
            feeds.push(LiveFeed {
                spec: FeedSpec {
                    id: f.id,
                    layer: f.layer,
                    format: f.format,
                    name: f.name,
                    mapping: f.mapping,
                },
                transport: f.transport,
                stale_after: f.stale_after_s.map(Duration::from_secs).unwrap_or(expected),
            });
        }
        let name = raw.name.unwrap_or_else(|| {
            format!(
                "Live: {}",
                path.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        });
        Ok(LiveConfig {
            path: path.to_owned(),
            name,
            assets: raw.assets,
            rules: raw.rules,
            zones: raw.zones,
            map: raw.map,
            view: raw.view,
            feeds,
        })
    }

    /// The folder relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_owned).unwrap_or_default()
    }
}

/// The line of the `i`-th `[[feeds]]` table, to point errors found after parsing.
fn feed_line(text: &str, i: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[feeds]]")
        .nth(i)
        .map(|(n, _)| n + 1)
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
        let Transport::HttpPoll { headers, .. } = &c.feeds[0].transport else {
            panic!("http-poll expected")
        };
        assert_eq!(
            headers["Authorization"],
            ValueRef::Env {
                env: "SCADA_TOKEN".into()
            }
        );
        assert_eq!(c.base_dir(), PathBuf::from("/etc/cityops"));
        assert_eq!(
            (c.name.as_str(), c.rules.as_deref(), c.assets.as_deref()),
            ("Live: feeds.toml", None, None)
        );
        let named = parse(&format!(
            "name = \"Control room\"\nrules = \"rules.toml\"\nassets = \"grid.geojson\"\n{GOOD}"
        ))
        .unwrap();
        assert_eq!(
            (named.name.as_str(), named.rules.as_deref(), named.assets.as_deref()),
            ("Control room", Some("rules.toml"), Some("grid.geojson"))
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/feeds/example.toml");
        let c = LiveConfig::load(&path).unwrap();
        let kinds: Vec<&str> = c.feeds.iter().map(|f| f.transport.kind()).collect();
        assert_eq!(kinds, ["http-poll", "http-poll", "mqtt", "tcp", "file-drop"]);
        assert_eq!(
            (c.feeds[1].spec.format, c.feeds[4].spec.format),
            (FeedFormat::SensorThings, FeedFormat::ByExtension)
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let inline = GOOD.replace(r#"{ env = "SCADA_TOKEN" }"#, r#"{ value = "Bearer s3cret" }"#);
        let e = parse(&inline).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(2), "feeds[0].transport.headers.Authorization"),
            "{e}"
        );
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

    #[test]
    fn auto_format_is_for_drop_folders_only() {
        let drop_auto = GOOD.replace(
            "format = \"geojson\"\nstale_after_s",
            "format = \"auto\"\nstale_after_s",
        );
        assert_eq!(parse(&drop_auto).unwrap().feeds[1].spec.format, FeedFormat::ByExtension);
        let poll_auto = GOOD.replace("format = \"geojson\"\nname", "format = \"auto\"\nname");
        let e = parse(&poll_auto).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "feeds[0].format"), "{e}");
        assert!(e.reason.contains("file-drop"), "{e}");
    }

    const STA: &str = r#"
[[feeds]]
id = "scada-sta"
layer = "utility"
format = "sensorthings"
[feeds.transport]
type = "http-poll"
urls = ["http://127.0.0.1:9/v1.1/Datastreams('1')/Observations", "http://127.0.0.1:9/v1.1/Datastreams('2')/Observations"]
interval_s = 5
lookback_s = 60
max_pages = 3
"#;

    #[test]
    fn sensorthings_polls_take_urls_a_lookback_and_a_page_limit() {
        let c = parse(STA).unwrap();
        assert_eq!(c.feeds[0].transport.poll_urls().len(), 2);
        let Transport::HttpPoll {
            lookback_s, max_pages, ..
        } = &c.feeds[0].transport
        else {
            panic!("http-poll expected")
        };
        assert_eq!((*lookback_s, *max_pages), (Some(60), Some(3)));

        let both = STA.replace(
            "interval_s = 5",
            "url = \"http://127.0.0.1:9/v1.1/Observations\"\ninterval_s = 5",
        );
        let e = parse(&both).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "feeds[0].transport.url"), "{e}");
        let neither = STA.replace("urls = [", "# urls = [");
        assert!(parse(&neither).unwrap_err().reason.contains("exactly one of url"));
        let bad = STA.replace("http://127.0.0.1:9/v1.1/Datastreams('2')", "ftp://x");
        assert_eq!(parse(&bad).unwrap_err().field, "feeds[0].transport.urls");
        let own_filter = STA.replace("Datastreams('2')/Observations", "Observations?$filter=result%20gt%201");
        assert!(parse(&own_filter).unwrap_err().reason.contains("adds its own $filter"));
        let far = STA.replace("lookback_s = 60", "lookback_s = 99999999999");
        assert_eq!(parse(&far).unwrap_err().field, "feeds[0].transport.lookback_s");
        let zero = STA.replace("max_pages = 3", "max_pages = 0");
        assert_eq!(parse(&zero).unwrap_err().field, "feeds[0].transport.max_pages");
        let not_sta = STA.replace("\"sensorthings\"", "\"geojson\"");
        let e = parse(&not_sta).unwrap_err();
        assert!(
            (e.field.as_str(), e.reason.contains("lookback_s")) == ("feeds[0].transport", true),
            "{e}"
        );
    }
}
