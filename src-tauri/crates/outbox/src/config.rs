//! The backends file: one TOML file listing the systems operators' actions go to. Adding a
//! backend is a config change. The format is documented in `fixtures/backends/README.md`.
//!
//! Secrets (Open311 API keys, webhook signing secrets) are never written in the file: they
//! name an environment variable (`{ env = "NAME" }`), read when the outbox starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cityops_core::dispatch::BackendKind;
use serde::Deserialize;

use cityops_net::tls::TlsSpec;

/// A secret, by the name of the environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRef {
    /// The variable's name.
    pub env: String,
}

/// How to reach one backend and what it offers.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSpec {
    pub id: String,
    pub name: String,
    pub kind: BackendKind,
    /// HTTP endpoint (Open311 base URL, webhook or alert hub URL).
    pub url: Option<String>,
    /// MQTT broker or TAK server.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// MQTT command topic; `{device}` is replaced by the device id.
    pub command_topic: String,
    /// MQTT topic the device answers on; `{device}` as above.
    pub response_topic: String,
    /// Open311 API key or webhook signing secret.
    pub secret: Option<EnvRef>,
    /// Open311 `jurisdiction_id`, when the endpoint serves several.
    pub jurisdiction: Option<String>,
    /// Service codes, commands or task types offered to operators.
    pub choices: Vec<String>,
    /// Only supervisors and trainers may send (always true for CAP).
    pub supervisor_only: bool,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The first retry delay; later ones double up to `max_backoff`.
    pub retry_base: Duration,
    pub max_backoff: Duration,
    /// Attempts the backend answers with a failure before the action fails (unreachable
    /// attempts do not count: an offline link can last hours).
    pub retry_budget: u32,
    /// How often delivered Open311 requests are polled for their status.
    pub poll_interval: Duration,
    /// Who the sender is to the outside world (CAP `sender`, CoT and webhook source).
    pub sender: String,
    /// TLS for MQTT and CoT backends (a TAK server's client-certificate port, say).
    pub tls: Option<TlsSpec>,
    /// The folder the backends file is in: TLS files are read relative to it.
    pub base: PathBuf,
    /// The MQTT user name, and its password by environment variable.
    pub username: Option<String>,
    pub password: Option<EnvRef>,
    /// CoT: the callsign of the outbox's own TAK client. Each tasking is also addressed to it,
    /// and counts as delivered only once the TAK server has relayed it there; without it a
    /// tasking the server accepted on the wire is only "sent".
    pub confirm_callsign: Option<String>,
}

impl BackendSpec {
    /// Where actions go, for previews and lists.
    pub fn destination(&self, device: Option<&str>) -> String {
        match self.kind {
            BackendKind::Open311 => format!(
                "POST {}/requests.json",
                self.url.as_deref().unwrap_or_default().trim_end_matches('/')
            ),
            BackendKind::Webhook | BackendKind::Cap => format!("POST {}", self.url.as_deref().unwrap_or_default()),
            BackendKind::Mqtt => format!(
                "mqtt://{}:{} {}",
                self.host.as_deref().unwrap_or_default(),
                self.port.unwrap_or(1883),
                self.topic(&self.command_topic, device.unwrap_or("{device}"))
            ),
            BackendKind::Cot => format!(
                "tcp://{}:{}",
                self.host.as_deref().unwrap_or_default(),
                self.port.unwrap_or(8087)
            ),
        }
    }

    /// A topic with the device filled in.
    pub fn topic(&self, pattern: &str, device: &str) -> String {
        pattern.replace("{device}", device)
    }
}

/// A backends file that cannot be used: the file, the line where known, the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {field}: {reason}", path.display(), line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()))]
pub struct BackendsError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub field: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default = "default_sender")]
    sender: String,
    #[serde(default)]
    backends: Vec<RawBackend>,
}

fn default_sender() -> String {
    "cityops".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    id: String,
    #[serde(default)]
    name: String,
    kind: String,
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    command_topic: Option<String>,
    response_topic: Option<String>,
    api_key: Option<toml::Value>,
    secret: Option<toml::Value>,
    jurisdiction_id: Option<String>,
    #[serde(default)]
    choices: Vec<String>,
    supervisor_only: Option<bool>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_retry_base_ms")]
    retry_base_ms: u64,
    #[serde(default = "default_max_backoff_s")]
    max_backoff_s: u64,
    #[serde(default = "default_retry_budget")]
    retry_budget: u32,
    #[serde(default = "default_poll_s")]
    poll_s: u64,
    tls: Option<TlsSpec>,
    username: Option<String>,
    password: Option<toml::Value>,
    confirm_callsign: Option<String>,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_retry_base_ms() -> u64 {
    1_000
}
fn default_max_backoff_s() -> u64 {
    60
}
fn default_retry_budget() -> u32 {
    8
}
fn default_poll_s() -> u64 {
    30
}

/// Reads and validates a backends file.
pub fn load(path: &Path) -> Result<Vec<BackendSpec>, BackendsError> {
    let text = std::fs::read_to_string(path).map_err(|e| BackendsError {
        path: path.to_owned(),
        line: None,
        field: "(file)".into(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

/// Parses and validates backends text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<BackendSpec>, BackendsError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| BackendsError {
        path: path.to_owned(),
        line: e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)),
        field: "(syntax)".into(),
        reason: e.message().to_owned(),
    })?;
    let mut out: Vec<BackendSpec> = Vec::new();
    for (i, b) in raw.backends.into_iter().enumerate() {
        let err = |field: &str, reason: String| BackendsError {
            path: path.to_owned(),
            line: nth_line(text, i),
            field: format!("backends[{i}].{field}"),
            reason,
        };
        if b.id.trim().is_empty() || out.iter().any(|o| o.id == b.id) {
            return Err(err("id", format!("{:?} is empty or used twice", b.id)));
        }
        let kind = BackendKind::parse(&b.kind).ok_or_else(|| {
            err(
                "kind",
                format!("{:?} is not one of open311, webhook, mqtt, cot, cap", b.kind),
            )
        })?;
        let secret_field = if kind == BackendKind::Open311 {
            "api_key"
        } else {
            "secret"
        };
        let (given, other) = if kind == BackendKind::Open311 {
            (&b.api_key, &b.secret)
        } else {
            (&b.secret, &b.api_key)
        };
        if other.is_some() {
            return Err(err(
                if kind == BackendKind::Open311 {
                    "secret"
                } else {
                    "api_key"
                },
                format!("{} backends take {secret_field} instead", kind.as_str()),
            ));
        }
        let secret = match given {
            None => None,
            Some(v) => Some(v.clone().try_into::<EnvRef>().map_err(|_| {
                err(
                    secret_field,
                    "secrets are never written in the file; use { env = \"NAME\" }".into(),
                )
            })?),
        };
        match kind {
            BackendKind::Open311 | BackendKind::Webhook | BackendKind::Cap => {
                let url = b.url.as_deref().unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err("url", format!("{url:?} is not an http(s) URL")));
                }
                if matches!(kind, BackendKind::Webhook | BackendKind::Cap) && secret.is_none() {
                    return Err(err(
                        "secret",
                        "webhooks and alert hubs are signed: name the secret's environment variable".into(),
                    ));
                }
                // A webhook's secret only signs (the body travels, not the secret), but an
                // Open311 API key is sent in the form: never in clear off the machine.
                if kind == BackendKind::Open311 && secret.is_some() {
                    if let Some(why) = cityops_net::origin::secret_over_plain_http(url) {
                        return Err(err("url", why));
                    }
                }
            }
            BackendKind::Mqtt | BackendKind::Cot => {
                if b.host.as_deref().unwrap_or_default().is_empty() {
                    return Err(err("host", "is required".into()));
                }
            }
        }
        if kind == BackendKind::Mqtt && b.command_topic.is_none() {
            return Err(err("command_topic", "is required for MQTT command backends".into()));
        }
        if b.tls.is_some() && !matches!(kind, BackendKind::Mqtt | BackendKind::Cot) {
            return Err(err(
                "tls",
                "is for MQTT and CoT backends; HTTP backends take an https URL".into(),
            ));
        }
        if let Some(Err(e)) = b.tls.as_ref().map(TlsSpec::validate) {
            return Err(err("tls", e.to_string()));
        }
        if (b.username.is_some() || b.password.is_some()) && kind != BackendKind::Mqtt {
            return Err(err("username", "a user name and password are for MQTT backends".into()));
        }
        let password = match b.password {
            None => None,
            Some(v) => Some(v.try_into::<EnvRef>().map_err(|_| {
                err(
                    "password",
                    "secrets are never written in the file; use { env = \"NAME\" }".into(),
                )
            })?),
        };
        // A password over plain TCP to another machine is readable by anyone on the path.
        let host = b.host.as_deref().unwrap_or_default();
        if password.is_some() && b.tls.is_none() && !cityops_net::origin::host_is_loopback(host) {
            return Err(err(
                "password",
                format!("would travel in clear to {host}; add tls (plain MQTT is allowed only to this machine)"),
            ));
        }
        if b.confirm_callsign.is_some() && kind != BackendKind::Cot {
            return Err(err("confirm_callsign", "is for CoT backends".into()));
        }
        if b.timeout_ms == 0 || b.retry_base_ms == 0 || b.retry_budget == 0 {
            return Err(err(
                "timeout_ms",
                "timeout_ms, retry_base_ms and retry_budget must be at least 1".into(),
            ));
        }
        out.push(BackendSpec {
            name: if b.name.is_empty() { b.id.clone() } else { b.name },
            id: b.id,
            kind,
            url: b.url.map(|u| u.trim_end_matches('/').to_owned()),
            host: b.host,
            port: b.port,
            command_topic: b.command_topic.unwrap_or_default(),
            response_topic: b.response_topic.unwrap_or_else(|| "cityops/replies/{device}".into()),
            secret,
            jurisdiction: b.jurisdiction_id,
            choices: b.choices,
            supervisor_only: b.supervisor_only.unwrap_or(false) || kind == BackendKind::Cap,
            timeout: Duration::from_millis(b.timeout_ms),
            retry_base: Duration::from_millis(b.retry_base_ms),
            max_backoff: Duration::from_secs(b.max_backoff_s.max(1)),
            retry_budget: b.retry_budget,
            poll_interval: Duration::from_secs(b.poll_s.max(1)),
            sender: raw.sender.clone(),
            tls: b.tls,
            base: path.parent().map(Path::to_owned).unwrap_or_default(),
            username: b.username,
            password,
            confirm_callsign: b.confirm_callsign,
        });
    }
    Ok(out)
}

/// The line of the `i`-th `[[backends]]` table, for errors.
fn nth_line(text: &str, i: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[backends]]")
        .nth(i)
        .map(|(n, _)| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
sender = "cityops@hel.example"

[[backends]]
id = "works"
name = "City works"
kind = "open311"
url = "http://127.0.0.1:8311/"
api_key = { env = "WORKS_KEY" }
choices = ["utility-crew"]

[[backends]]
id = "hub"
kind = "cap"
url = "http://127.0.0.1:9000/hooks/cap"
secret = { env = "HUB_SECRET" }
"#;

    #[test]
    fn parses_and_defaults() {
        let b = parse(Path::new("b.toml"), GOOD).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].destination(None), "POST http://127.0.0.1:8311/requests.json");
        assert!(!b[0].supervisor_only);
        assert!(b[1].supervisor_only, "public alerts are a supervisor's call");
        assert_eq!(b[1].sender, "cityops@hel.example");
        assert_eq!(
            b[1].secret,
            Some(EnvRef {
                env: "HUB_SECRET".into()
            })
        );
    }

    #[test]
    fn literal_secrets_and_bad_fields_name_the_line() {
        let e = parse(
            Path::new("b.toml"),
            &GOOD.replace(r#"{ env = "HUB_SECRET" }"#, r#""s3cret""#),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(12), "backends[1].secret"), "{e}");
        let e = parse(Path::new("b.toml"), &GOOD.replace("kind = \"cap\"", "kind = \"fax\"")).unwrap_err();
        assert_eq!(e.field, "backends[1].kind");
        assert!(e.to_string().starts_with("b.toml:12: backends[1].kind:"), "{e}");
        let e = parse(
            Path::new("b.toml"),
            &GOOD.replace("url = \"http://127.0.0.1:9000/hooks/cap\"", "url = \"ftp://x\""),
        )
        .unwrap_err();
        assert_eq!(e.field, "backends[1].url");
    }

    #[test]
    fn an_api_key_over_plain_http_off_the_machine_is_refused() {
        let e = parse(
            Path::new("b.toml"),
            &GOOD.replace("http://127.0.0.1:8311/", "http://works.example.org/"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "backends[0].url"), "{e}");
        assert!(
            e.reason.contains("plain http") && e.reason.contains("works.example.org"),
            "{e}"
        );
        parse(
            Path::new("b.toml"),
            &GOOD.replace("http://127.0.0.1:8311/", "https://works.example.org/"),
        )
        .expect("https carries the key");
        let keyless = GOOD
            .replace("http://127.0.0.1:8311/", "http://works.example.org/")
            .replace("api_key = { env = \"WORKS_KEY\" }\n", "");
        parse(Path::new("b.toml"), &keyless).expect("without a key nothing secret travels");
    }
}
