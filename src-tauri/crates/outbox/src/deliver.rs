//! One link per backend: the connection (HTTP client, MQTT session, TAK address) and its
//! secret, and one delivery attempt of one committed action over it.
//!
//! An attempt ends in one of three ways: delivered (with the backend's reference), retry (the
//! backend could not be reached, answered 5xx/429/408, answered 409 because it is still
//! working on the same key, or timed out: the idempotency key makes sending again safe), or
//! rejected (the backend refused the request itself with another 4xx, redirected it elsewhere,
//! or answered with more than `MAX_ANSWER_BYTES`; sending the same bytes again cannot help).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_core::dispatch::BackendKind;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::config::BackendSpec;
use cityops_store::ActionRow;

/// The header that carries the idempotency key on every HTTP backend.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header that carries the HMAC-SHA256 of the body on webhooks and alert hubs.
pub const SIGNATURE_HEADER: &str = "X-Cityops-Signature";
/// The longest backend answer kept as a reference or error.
const MAX_ANSWER: usize = 300;
/// The longest `Retry-After` honoured; a longer one is a misconfigured backend.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The most of a backend's answer that is read: an answer is a reference or an error, and a
/// backend that sends more is broken or hostile, so its answer is not allowed to fill memory.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The backend confirmed it (an HTTP 2xx, a device's reply, the TAK server's relay).
    Delivered(String),
    /// Written to the backend, which has no way to say it took it (a CoT tasking without a
    /// confirming client): it is not sent again, and not called delivered.
    Sent(String),
    /// `unreachable`: nothing reached the backend (connection refused, no route, broker down),
    /// which does not count against the retry budget.
    Retry {
        reason: String,
        after: Option<Duration>,
        unreachable: bool,
    },
    Rejected(String),
}

/// Why a backend's requests cannot be signed, and so cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable that should hold the backend's secret is not set.
    #[error("environment variable {env} (the backend's secret) is not set")]
    Unset {
        /// The variable's name.
        env: String,
    },
    /// The secret cannot key the signature (in words from the HMAC library).
    #[error("{0}")]
    Key(String),
}

/// A backend's connection and secret.
pub struct Link {
    pub spec: BackendSpec,
    secret: Result<Option<String>, SecretError>,
    /// TLS for MQTT and CoT, or why it cannot be set up (a missing certificate file, say).
    tls: Result<Option<cityops_net::tls::Tls>, String>,
    http: reqwest::Client,
    mqtt: Option<MqttLink>,
    cot_confirm: Option<CotConfirm>,
}

/// Replies awaited, by the action's key: the topic the reply must come on, and where to
/// hand it.
type Waiting = Arc<Mutex<HashMap<String, (String, oneshot::Sender<serde_json::Value>)>>>;

struct MqttLink {
    client: AsyncClient,
    connected: Arc<AtomicBool>,
    waiting: Waiting,
}

/// The outbox's own TAK client for a CoT backend with `confirm_callsign`: connected and
/// registered under that callsign, it sees each tasking the server relays to it.
struct CotConfirm {
    connected: Arc<AtomicBool>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
}

impl Link {
    /// Builds the link. In an exercise nothing connects: MQTT sessions are not opened and no
    /// request is ever made (the sender records instead of delivering).
    pub fn new(spec: BackendSpec, exercise: bool) -> Link {
        let secret = match (&spec.secret, &spec.password) {
            (Some(r), _) | (None, Some(r)) => std::env::var(&r.env)
                .map(Some)
                .map_err(|_| SecretError::Unset { env: r.env.clone() }),
            (None, None) => Ok(None),
        };
        let tls = spec
            .tls
            .as_ref()
            .map(|t| t.client(&spec.base))
            .transpose()
            .map_err(|e| format!("TLS: {e}"));
        let http = reqwest::Client::builder()
            // A redirect would carry the form (with its API key) or the signed body to whatever
            // origin the answer names, and record that origin's reference as delivery: the
            // outbox talks to the configured endpoint only, and a 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(2)
            .build()
            .unwrap_or_default();
        let live = !exercise && tls.is_ok();
        let mqtt = (spec.kind == BackendKind::Mqtt && live)
            .then(|| MqttLink::start(&spec, secret.clone().ok().flatten(), tls.clone().ok().flatten()));
        let cot_confirm = (spec.kind == BackendKind::Cot && live && spec.confirm_callsign.is_some())
            .then(|| CotConfirm::start(&spec, tls.clone().ok().flatten()));
        Link {
            spec,
            secret,
            tls,
            http,
            mqtt,
            cot_confirm,
        }
    }

    /// The signature header value of a body, for webhooks and alert hubs.
    pub fn signature(&self, body: &str) -> Result<Option<String>, SecretError> {
        if !matches!(self.spec.kind, BackendKind::Webhook | BackendKind::Cap) {
            return Ok(None);
        }
        let Some(secret) = self.secret.clone()? else {
            return Ok(None);
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| SecretError::Key(e.to_string()))?;
        mac.update(body.as_bytes());
        Ok(Some(format!("sha256={}", hex::encode(mac.finalize().into_bytes()))))
    }

    /// Why the backend cannot send, if it cannot: its secret is missing, or its TLS files.
    pub fn secret_error(&self) -> Option<String> {
        self.secret
            .as_ref()
            .err()
            .map(SecretError::to_string)
            .or_else(|| self.tls.as_ref().err().cloned())
    }

    /// One attempt.
    pub async fn deliver(&self, action: &ActionRow) -> Outcome {
        if let Err(e) = &self.secret {
            return Outcome::Rejected(e.to_string());
        }
        if let Err(e) = &self.tls {
            return Outcome::Rejected(e.clone());
        }
        match self.spec.kind {
            BackendKind::Open311 | BackendKind::Webhook | BackendKind::Cap => self.post(action).await,
            BackendKind::Mqtt => match &self.mqtt {
                Some(m) => m.command(&self.spec, action).await,
                None => Outcome::Rejected("no MQTT session (exercise link)".into()),
            },
            BackendKind::Cot => self.cot(action).await,
        }
    }

    async fn post(&self, action: &ActionRow) -> Outcome {
        let url = match self.spec.kind {
            BackendKind::Open311 => format!("{}/requests.json", self.spec.url.as_deref().unwrap_or_default()),
            _ => self.spec.url.clone().unwrap_or_default(),
        };
        let mut body = action.body.clone();
        if self.spec.kind == BackendKind::Open311 {
            // The API key is added only here, so it is never stored with the action or shown.
            if let Ok(Some(key)) = &self.secret {
                body.push_str("&api_key=");
                body.push_str(&cityops_core::dispatch::form_component(key));
            }
        }
        let mut req = self.http.post(&url).body(body);
        for h in &action.headers {
            req = req.header(&h.name, &h.value);
        }
        match req.send().await {
            Err(e) => Outcome::Retry {
                reason: describe(&e),
                after: None,
                unreachable: e.is_connect(),
            },
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let location = resp.headers().get(reqwest::header::LOCATION).map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(MAX_ANSWER)
                        .collect::<String>()
                });
                let text = match read_capped(resp, MAX_ANSWER_BYTES).await {
                    Ok(t) => t,
                    Err(Answer::TooLong) => {
                        // Whatever the status, an answer this size is not one a backend gives;
                        // the operator decides (a retry sends the same key).
                        return Outcome::Rejected(format!(
                            "HTTP {status}: the answer is longer than {} KiB and was not read",
                            MAX_ANSWER_BYTES / 1024
                        ));
                    }
                    Err(Answer::Broken(e)) if status.is_success() => {
                        // The backend said yes but the answer broke off: the key makes a resend
                        // safe, and only a full answer gives us its reference.
                        return Outcome::Retry {
                            reason: format!("HTTP {status}, answer cut short: {e}"),
                            after: None,
                            unreachable: false,
                        };
                    }
                    Err(Answer::Broken(_)) => String::new(),
                };
                let answer: String = text.trim().chars().take(MAX_ANSWER).collect();
                if status.is_success() {
                    Outcome::Delivered(self.reference(&answer, action))
                } else if status.is_redirection() {
                    let to = location.unwrap_or_else(|| "no Location".into());
                    Outcome::Rejected(format!(
                        "HTTP {status}: redirected to {to}; the outbox sends only to the configured URL"
                    ))
                } else if status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 429) {
                    // 409: the backend is still working on a request with this key (an earlier
                    // attempt whose answer we lost); asking again later gets its answer.
                    Outcome::Retry {
                        reason: format!("HTTP {status}: {answer}"),
                        after: retry_after,
                        unreachable: false,
                    }
                } else {
                    Outcome::Rejected(format!("HTTP {status}: {answer}"))
                }
            }
        }
    }

    /// The backend's id for a delivered action: an Open311 `service_request_id` (or `token`),
    /// else what the receiver answered, else the idempotency key.
    fn reference(&self, answer: &str, action: &ActionRow) -> String {
        if self.spec.kind == BackendKind::Open311 {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(answer) {
                let first = &v[0];
                for field in ["service_request_id", "token"] {
                    if let Some(id) = first[field].as_str().filter(|s| !s.is_empty()) {
                        return id.to_owned();
                    }
                }
            }
        }
        if answer.is_empty() {
            action.dto.key.clone()
        } else {
            answer.to_owned()
        }
    }

    /// The Open311 status (`open`, `closed`) of a delivered request.
    pub async fn poll_status(&self, reference: &str) -> Option<String> {
        let url = format!(
            "{}/requests/{}.json",
            self.spec.url.as_deref().unwrap_or_default(),
            percent_path(reference)
        );
        let resp = self.http.get(&url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&read_capped(resp, MAX_ANSWER_BYTES).await.ok()?).ok()?;
        v[0]["status"].as_str().map(|s| s.chars().take(32).collect())
    }

    async fn cot(&self, action: &ActionRow) -> Outcome {
        // The event's uid is derived from the key, so a TAK client that receives it twice
        // updates one marker: sending again after an unconfirmed attempt is safe.
        let uid = format!("cityops-{}", action.dto.key);
        let relayed = match &self.cot_confirm {
            Some(c) if !c.connected.load(Ordering::SeqCst) => {
                return Outcome::Retry {
                    reason: "the outbox's confirming TAK client is not connected".into(),
                    after: None,
                    unreachable: true,
                };
            }
            Some(c) => Some(c.expect(&uid)),
            None => None,
        };
        let host = self.spec.host.clone().unwrap_or_default();
        let port = self.spec.port.unwrap_or(8087);
        let tls = self.tls.as_ref().ok().and_then(Option::as_ref);
        let work = async {
            let mut stream = cityops_net::tls::Stream::connect(&host, port, tls).await?;
            stream.write_all(action.body.as_bytes()).await.map_err(|e| (e, false))?;
            stream.flush().await.map_err(|e| (e, false))?;
            stream.shutdown().await.map_err(|e| (e, false))?;
            // Under TLS 1.3 a server checks our certificate after we have written: a refusal
            // arrives as an alert on the read side. So read until the server closes (or a
            // moment passes): an error there means the event was refused.
            let mut sink = [0u8; 1024];
            let drained = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match stream.read(&mut sink).await {
                        Ok(0) => return Ok(()),
                        Ok(_) => {}
                        // Many servers just close the socket, without TLS's close_notify.
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            });
            if let Ok(Err(e)) = drained.await {
                return Err((e, false));
            }
            Ok::<_, (std::io::Error, bool)>(())
        };
        let written = match tokio::time::timeout(self.spec.timeout, work).await {
            Err(_) => {
                return Outcome::Retry {
                    reason: "timed out".into(),
                    after: None,
                    unreachable: false,
                }
            }
            Ok(Err((e, unreachable))) => {
                return Outcome::Retry {
                    reason: e.to_string(),
                    after: None,
                    unreachable,
                }
            }
            Ok(Ok(())) => uid,
        };
        let Some(relayed) = relayed else {
            // A finished write says the bytes left, not that the server read them.
            return Outcome::Sent(written);
        };
        match tokio::time::timeout(self.spec.timeout, relayed).await {
            Ok(Ok(())) => Outcome::Delivered(written),
            _ => {
                if let Some(c) = &self.cot_confirm {
                    c.forget(&written);
                }
                Outcome::Retry {
                    reason: format!(
                        "the TAK server did not relay the tasking back within {:?}",
                        self.spec.timeout
                    ),
                    after: None,
                    unreachable: false,
                }
            }
        }
    }
}

impl MqttLink {
    fn start(spec: &BackendSpec, password: Option<String>, tls: Option<cityops_net::tls::Tls>) -> MqttLink {
        let mut opts = MqttOptions::new(
            format!("cityops-outbox-{}", spec.id),
            spec.host.clone().unwrap_or_default(),
            spec.port.unwrap_or(1883),
        );
        opts.set_keep_alive(Duration::from_secs(30));
        if let Some(user) = &spec.username {
            opts.set_credentials(user.clone(), password.unwrap_or_default());
        }
        opts.set_transport(cityops_net::tls::mqtt_transport(tls.as_ref()));
        let (client, mut events) = AsyncClient::new(opts, 256);
        let connected = Arc::new(AtomicBool::new(false));
        let waiting: Waiting = Arc::default();
        let replies = spec.topic(&spec.response_topic, "+");
        let (c, w, sub) = (connected.clone(), waiting.clone(), client.clone());
        let id = spec.id.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        c.store(true, Ordering::SeqCst);
                        if let Err(e) = sub.try_subscribe(replies.clone(), QoS::AtLeastOnce) {
                            tracing::warn!(backend = %id, error = %e, "cannot subscribe to replies");
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                            continue;
                        };
                        let Some(key) = v["key"].as_str() else { continue };
                        // A reply counts only on the response topic of the device commanded:
                        // another device, or any client of the broker, cannot answer for it.
                        let waiter = w.lock().ok().and_then(|mut m| match m.get(key) {
                            Some((topic, _)) if *topic == p.topic => m.remove(key).map(|(_, tx)| tx),
                            _ => None,
                        });
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(v);
                            }
                            None => {
                                tracing::warn!(backend = %id, topic = %p.topic, "reply not on the commanded device's response topic, or for no waiting command; ignored")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if c.swap(false, Ordering::SeqCst) {
                            tracing::warn!(backend = %id, error = %e, "MQTT command link lost");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        MqttLink {
            client,
            connected,
            waiting,
        }
    }

    async fn command(&self, spec: &BackendSpec, action: &ActionRow) -> Outcome {
        if !self.connected.load(Ordering::SeqCst) {
            return Outcome::Retry {
                reason: "MQTT broker not connected".into(),
                after: None,
                unreachable: true,
            };
        }
        let device = action.device.clone().unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.waiting.lock() {
            m.insert(action.dto.key.clone(), (spec.topic(&spec.response_topic, &device), tx));
        }
        let topic = spec.topic(&spec.command_topic, &device);
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, action.body.clone().into_bytes())
            .await
        {
            return Outcome::Retry {
                reason: format!("publish: {e}"),
                after: None,
                unreachable: true,
            };
        }
        let reply = tokio::time::timeout(spec.timeout, rx).await;
        if let Ok(mut m) = self.waiting.lock() {
            m.remove(&action.dto.key);
        }
        match reply {
            Ok(Ok(v)) => {
                let status = v["status"].as_str().unwrap_or("").to_owned();
                let detail: String = v["detail"].as_str().unwrap_or("").chars().take(MAX_ANSWER).collect();
                if matches!(status.as_str(), "ok" | "done" | "accepted") {
                    Outcome::Delivered(if detail.is_empty() {
                        format!("{device}: {status}")
                    } else {
                        format!("{device}: {status}: {detail}")
                    })
                } else {
                    Outcome::Rejected(format!("{device} answered {status:?}: {detail}"))
                }
            }
            // The command may have arrived; the device sees the same key if it is sent again.
            _ => Outcome::Retry {
                reason: format!("no reply from {device} within {:?}", spec.timeout),
                after: None,
                unreachable: false,
            },
        }
    }
}

/// Why a backend's answer could not be read whole.
enum Answer {
    /// Longer than the cap.
    TooLong,
    /// The connection broke off while reading.
    Broken(String),
}

/// Reads an answer up to `cap` bytes, refusing a longer one as soon as it is known to be longer
/// (by its `Content-Length`, or once the bytes read pass the cap) instead of buffering it.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<String, Answer> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Answer::TooLong);
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(Answer::TooLong);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => return Err(Answer::Broken(describe(&e))),
        }
    }
}

impl CotConfirm {
    /// Keeps a connection to the TAK server registered as `confirm_callsign`, reconnecting
    /// after a pause when it drops, and hands each relayed tasking to whoever awaits its uid.
    fn start(spec: &BackendSpec, tls: Option<cityops_net::tls::Tls>) -> CotConfirm {
        let connected = Arc::new(AtomicBool::new(false));
        let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>> = Arc::default();
        let (c, w) = (connected.clone(), waiting.clone());
        let (host, port) = (spec.host.clone().unwrap_or_default(), spec.port.unwrap_or(8087));
        let callsign = spec.confirm_callsign.clone().unwrap_or_default();
        let id = spec.id.clone();
        tokio::spawn(async move {
            loop {
                match cityops_net::tls::Stream::connect(&host, port, tls.as_ref()).await {
                    Ok(mut stream) => {
                        let hello = registration(&callsign);
                        if stream.write_all(hello.as_bytes()).await.is_ok() && stream.flush().await.is_ok() {
                            c.store(true, Ordering::SeqCst);
                            let mut seen = Vec::new();
                            let mut buf = [0u8; 8192];
                            loop {
                                match stream.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        seen.extend_from_slice(&buf[..n]);
                                        relayed_uids(&mut seen, &w);
                                    }
                                }
                            }
                            c.store(false, Ordering::SeqCst);
                            tracing::warn!(backend = %id, "the confirming TAK client lost its connection");
                        }
                    }
                    Err((e, _)) => {
                        tracing::debug!(backend = %id, error = %e, "the confirming TAK client cannot connect")
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        CotConfirm { connected, waiting }
    }

    /// Resolves once the tasking with this uid has been relayed to the confirming client.
    fn expect(&self, uid: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.waiting.lock() {
            m.insert(uid.to_owned(), tx);
        }
        rx
    }

    fn forget(&self, uid: &str) {
        if let Ok(mut m) = self.waiting.lock() {
            m.remove(uid);
        }
    }
}

/// The event a TAK client sends to make itself known, so the server routes `<marti><dest
/// callsign>` taskings for its callsign to it.
fn registration(callsign: &str) -> String {
    let now = chrono::Utc::now();
    let (time, stale) = (
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let cs = cityops_core::dispatch::xml_escape(callsign);
    format!(
        "<?xml version=\"1.0\"?><event version=\"2.0\" uid=\"{cs}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{time}\" start=\"{time}\" stale=\"{stale}\">\
         <point lat=\"0\" lon=\"0\" hae=\"0\" ce=\"9999999\" le=\"9999999\"/><detail><takv device=\"cityops\" platform=\"cityops\" os=\"linux\" version=\"1\"/>\
         <contact callsign=\"{cs}\" endpoint=\"*:-1:stcp\"/><__group name=\"Cyan\" role=\"Team Member\"/></detail></event>"
    )
}

/// Hands each complete `<event ... uid="...">` start tag in `seen` to the waiter for its uid,
/// and keeps only what may still be the start of a tag cut across reads.
fn relayed_uids(seen: &mut Vec<u8>, waiting: &Mutex<HashMap<String, oneshot::Sender<()>>>) {
    let mut consumed = 0;
    while let Some(start) = memchr::memmem::find(&seen[consumed..], b"<event").map(|i| consumed + i) {
        let Some(end) = memchr::memchr(b'>', &seen[start..]).map(|i| start + i) else {
            break;
        };
        let tag = String::from_utf8_lossy(&seen[start..end]);
        if let Some(uid) = tag.split(" uid=\"").nth(1).and_then(|r| r.split('"').next()) {
            if let Some(tx) = waiting.lock().ok().and_then(|mut m| m.remove(uid)) {
                let _ = tx.send(());
            }
        }
        consumed = end + 1;
    }
    // What precedes an unfinished `<event` can go; a peer that never sends one is bounded.
    let keep_from = memchr::memmem::rfind(&seen[consumed..], b"<event")
        .map(|i| consumed + i)
        .unwrap_or_else(|| seen.len().saturating_sub(8))
        .max(consumed);
    seen.drain(..keep_from);
    if seen.len() > 1 << 20 {
        seen.clear();
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s.chars().take(MAX_ANSWER).collect()
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let d = if let Ok(s) = v.trim().parse::<u64>() {
        Duration::from_secs(s)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
        let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
        Duration::from_millis(ms.max(0) as u64)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Everything but RFC 3986's unreserved characters (letters, digits, `-._~`): a service request
/// id from a backend is put in a URL path segment, where it must not be able to add a segment
/// (`/`), a query (`?`) or anything else.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `s` as one URL path segment; every byte of its UTF-8 outside [`PATH_SEGMENT`]'s exceptions
/// is `%XX` in upper case.
fn percent_path(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates_and_is_bounded() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    /// The hand-written encoder `percent_path` was before it used `percent-encoding`.
    fn old_percent_path(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn path_segments_are_encoded_byte_for_byte_as_before() {
        assert_eq!(percent_path("a b*~+&=%/?#ä"), "a%20b%2A~%2B%26%3D%25%2F%3F%23%C3%A4");
        for s in [
            "",
            "SR-1234_x.y~z",
            "../etc",
            "%41",
            "Hämeentie ✓",
            "\u{0}\u{7f}\u{80}\u{10ffff}",
        ] {
            assert_eq!(percent_path(s), old_percent_path(s), "{s:?}");
        }
        for b in 0..=u8::MAX {
            let s = String::from_utf8_lossy(&[b]).into_owned();
            assert_eq!(percent_path(&s), old_percent_path(&s), "byte {b}");
        }
    }
}
