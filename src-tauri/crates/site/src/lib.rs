//! A *site*: one control room's shared state, on NATS JetStream.
//!
//! **One stream, one order.** A site is one JetStream stream, `CITYOPS_<SITE>`, over the
//! subjects
//! - `cityops.<site>.feed.<feed-id>`: every message a feed delivered, exactly as a tape line
//!   (arrival time, feed, format, topic, body);
//! - `cityops.<site>.ops.<kind>`: the operators' decisions ([`OpEvent`]);
//! - `cityops.<site>.clock`: the site's clock ticks (a tape's end, a live ingest's seconds), so
//!   correlation can finish a second in which nothing more arrives;
//! - `cityops.<site>.config`: the feeds, rules and assets the site runs with ([`SiteConfig`]);
//! - `cityops.<site>.action.<key>` and `cityops.<site>.outcome.<key>.<by>`: operators' actions
//!   to backends and what became of them ([`dispatch`]).
//!
//! Feed messages and decisions share one stream on purpose: its sequence numbers are the one
//! total order every workstation applies, assigned by the server. Two streams would need a
//! merge rule, and none is safe against a workstation that publishes its decisions an hour
//! late: every follower would have to wait for it, or some would apply it elsewhere.
//!
//! **Nothing twice.** Every publish carries a `Nats-Msg-Id` derived from what it says (a tape
//! line's SHA-256; an event's id, made by its author), so a retried publish, or a second
//! ingest node on the same feeds, adds nothing within the stream's duplicate window; followers
//! also drop an event id they have already applied, which covers a publish retried later.

pub mod dispatch;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, message::PublishMessage, stream};
use bytes::Bytes;
use cityops_core::model::Millis;
use cityops_core::tape::{self, TapeMessage};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long the stream remembers a `Nats-Msg-Id` to drop a repeated publish.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Publishes in flight before their acknowledgements are awaited together.
pub const PUBLISH_BATCH: usize = 512;
/// How long a request to the stream is retried while it times out: a cluster that lost the
/// node leading the stream elects another within seconds, and the link may be coming back.
pub const RETRY_FOR: Duration = Duration::from_secs(30);
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The environment variables a workstation's NATS user and password come from.
pub const USER_ENV: &str = "CITYOPS_NATS_USER";
pub const PASSWORD_ENV: &str = "CITYOPS_NATS_PASSWORD";
/// The environment variable naming the JetStream domain the site's streams live in, for a
/// machine whose own NATS server is a leaf node of the site's (a field coordinator's laptop):
/// its requests then name the hub's domain (`$JS.<domain>.API`), which the leaf connection
/// carries to the hub, instead of the local `$JS.API`, which does not cross a leaf link.
pub const DOMAIN_ENV: &str = "CITYOPS_NATS_DOMAIN";

/// A failure to reach or use a site.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The server cannot be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server refused the credentials.
    #[error(
        "NATS at {url} refused user {user:?}: {reason} (the user and password come from {USER_ENV} and {PASSWORD_ENV})"
    )]
    Credentials { url: String, user: String, reason: String },
    /// The site's stream is missing or cannot be read or made.
    #[error("site {site}: {reason}")]
    Stream { site: String, reason: String },
    /// A publish was refused or not acknowledged.
    #[error("publishing to {subject} failed: {reason}")]
    Publish { subject: String, reason: String },
    /// A site id, feed id or event that cannot be used.
    #[error("{0}")]
    Invalid(String),
}

/// A site's id: 1 to 32 of `a-z`, `0-9`, `-` and `_`, so that it is one subject token and part
/// of a stream name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteId(String);

impl FromStr for SiteId {
    type Err = SiteError;

    fn from_str(s: &str) -> Result<SiteId, SiteError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(SiteId(s.to_owned()))
        } else {
            Err(SiteError::Invalid(format!(
                "site id {s:?}: use 1 to 32 of a-z, 0-9, - and _"
            )))
        }
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SiteId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The site's stream.
    pub fn stream(&self) -> String {
        format!("CITYOPS_{}", self.0.to_ascii_uppercase().replace('-', "_"))
    }

    /// The key-value bucket where workstations say who is signed in there and what they
    /// look at ([`Presence`]).
    pub fn presence_bucket(&self) -> String {
        format!("cityops_{}_presence", self.0.replace('-', "_"))
    }

    /// Every subject of the site.
    pub fn all_subjects(&self) -> String {
        format!("cityops.{}.>", self.0)
    }

    /// The subject of a feed's messages. A feed id that is not a plain subject token has its
    /// other characters replaced (the message itself names the feed exactly).
    pub fn feed_subject(&self, feed: &str) -> String {
        format!("cityops.{}.feed.{}", self.0, token(feed))
    }

    /// The subject of an operations event.
    pub fn ops_subject(&self, kind: &str) -> String {
        format!("cityops.{}.ops.{kind}", self.0)
    }

    /// What a subject of this site carries.
    pub fn kind_of(&self, subject: &str) -> Subject {
        let Some(rest) = subject
            .strip_prefix("cityops.")
            .and_then(|s| s.strip_prefix(self.0.as_str()))
            .and_then(|s| s.strip_prefix('.'))
        else {
            return Subject::Other;
        };
        match rest.split_once('.') {
            Some(("feed", _)) => Subject::Feed,
            Some(("ops", _)) => Subject::Ops,
            Some(("action", _)) => Subject::Action,
            Some(("outcome", _)) => Subject::Outcome,
            None if rest == "clock" => Subject::Clock,
            None if rest == "config" => Subject::Config,
            _ => Subject::Other,
        }
    }
}

/// What a message of the site's stream carries, by its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Feed,
    Ops,
    Clock,
    Config,
    /// An operator's action to a backend ([`dispatch::SiteAction`]).
    Action,
    /// A dispatch worker's outcome or an operator's cancellation of an action.
    Outcome,
    /// Not a subject cityops writes (quarantined by followers).
    Other,
}

/// A NATS user and password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The user and password from [`USER_ENV`] and [`PASSWORD_ENV`], if the user is set.
    pub fn from_env() -> Option<Credentials> {
        let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty())?;
        Some(Credentials {
            user,
            password: std::env::var(PASSWORD_ENV).unwrap_or_default(),
        })
    }
}

/// The feeds, rules and assets a site runs with, published on `cityops.<site>.config` before
/// its first feed message, so that a workstation needs nothing but the site to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteConfig {
    /// A scenario manifest (`scenario.toml`): the feeds, the start, the view. Its `rules` and
    /// `assets` entries are replaced by the texts below.
    pub manifest: String,
    /// The correlation rules (TOML), if the site correlates.
    pub rules: Option<String>,
    /// The assets (GeoJSON), if any.
    pub assets: Option<String>,
    /// The zones (GeoJSON polygons), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<String>,
}

/// What an operator decided, as published on `cityops.<site>.ops.<kind>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpEvent {
    /// Made by the author, unique: the event's `Nats-Msg-Id`.
    pub id: String,
    /// Who decided, and at which workstation.
    pub operator: String,
    pub workstation: String,
    /// The scenario time the decision was made at.
    pub at_ms: Millis,
    /// The author's wall time, for the audit trail only (never for ordering).
    pub wall_ms: Millis,
    /// What was decided.
    #[serde(flatten)]
    pub op: Op,
}

/// The decisions a site shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// A lifecycle step: `acknowledged`, `dispatched`, `resolved` or `closed`.
    Transition { incident: String, to: String },
    /// A SOP step ticked or unticked (steps count from 0).
    Sop { incident: String, step: u32, ticked: bool },
    /// A note on an incident.
    Note { incident: String, text: String },
    /// A supervisor's step to `to` (`resolved` or `closed`) past required SOP steps still
    /// unticked, for `reason`; it applies only if the author is a supervisor where the stream
    /// places it.
    Override {
        incident: String,
        to: String,
        reason: String,
    },
    /// Every member of `from` moves into `into`.
    Merge { into: String, from: String },
    /// One member of `from` becomes an incident of its own.
    Split { from: String, entity: String },
    /// One member moves from `from` to `to`.
    Reassign { from: String, entity: String, to: String },
    /// The author takes the incident (`owner` absent), or a supervisor gives it to `owner`.
    Own {
        incident: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// The latest decision still in effect is taken back.
    Undo,
    /// An operator joins the site's roster, changes role or PIN (an argon2id hash), or leaves
    /// it (`role` [`REMOVED`]), by the site's administration (the NATS user allowed to
    /// publish on `ops.roster`).
    Roster {
        name: String,
        role: String,
        pin_hash: Option<String>,
    },
    /// The same change made by a supervisor at a workstation (`ops.role`): it applies only if
    /// its author is a supervisor on the site's roster where the stream places it.
    Role {
        name: String,
        role: String,
        pin_hash: Option<String>,
    },
    /// A trainer's clock of an exercise site (`cityops train`): playing or paused, at a speed
    /// (a factor, as text), or moved ahead to `at_ms` (`seek`). The site's time itself follows
    /// from the tape the trainer publishes; this records the trainer's decision.
    Clock {
        playing: bool,
        speed: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seek_ms: Option<Millis>,
    },
    /// The trainer ends the exercise: every workstation's run is ended at the event's time.
    End,
    /// An operator enters a phone call or radio report as an incident
    /// (`cityops_core::call`): every workstation ingests it as the `n`th call of its run,
    /// numbered where the stream places it.
    Call {
        incident_type: String,
        layer: cityops_core::model::Layer,
        severity: cityops_core::model::Severity,
        description: String,
        lon: f64,
        lat: f64,
    },
}

/// The `role` of a roster change that takes the operator off the roster.
pub const REMOVED: &str = "removed";

impl Op {
    /// Every kind of event, as [`Op::kind`] names them.
    pub const KINDS: [&'static str; 14] = [
        "transition",
        "sop",
        "note",
        "override",
        "merge",
        "split",
        "reassign",
        "own",
        "undo",
        "roster",
        "role",
        "clock",
        "end",
        "call",
    ];

    /// The subject token of this kind of event.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Transition { .. } => "transition",
            Op::Sop { .. } => "sop",
            Op::Note { .. } => "note",
            Op::Override { .. } => "override",
            Op::Merge { .. } => "merge",
            Op::Split { .. } => "split",
            Op::Reassign { .. } => "reassign",
            Op::Own { .. } => "own",
            Op::Undo => "undo",
            Op::Roster { .. } => "roster",
            Op::Role { .. } => "role",
            Op::Clock { .. } => "clock",
            Op::End => "end",
            Op::Call { .. } => "call",
        }
    }
}

/// A clock tick: the site's time has reached `time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub time_ms: Millis,
}

/// One message to publish: its subject, its `Nats-Msg-Id` and its body.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub id: String,
    pub payload: Vec<u8>,
}

fn digest_id(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}{}", hex::encode(&Sha256::digest(bytes)[..20]))
}

impl Outgoing {
    /// A feed message as its tape line; the id is the line's digest, so the same message
    /// (same arrival, feed, format, topic and body) is the same publish.
    pub fn tape_line(site: &SiteId, msg: &TapeMessage) -> Outgoing {
        let payload = tape::format_line(msg).into_bytes();
        Outgoing {
            subject: site.feed_subject(&msg.feed),
            id: digest_id("f-", &payload),
            payload,
        }
    }

    /// A clock tick.
    pub fn tick(site: &SiteId, time_ms: Millis) -> Outgoing {
        Outgoing {
            subject: format!("cityops.{site}.clock"),
            id: format!("t-{time_ms}"),
            payload: serde_json::to_vec(&Tick { time_ms }).expect("a tick serializes"),
        }
    }

    /// The site's configuration; the same configuration is the same publish.
    pub fn config(site: &SiteId, config: &SiteConfig) -> Outgoing {
        let payload = serde_json::to_vec(config).expect("a configuration serializes");
        Outgoing {
            subject: format!("cityops.{site}.config"),
            id: digest_id("c-", &payload),
            payload,
        }
    }

    /// An operator's event.
    pub fn event(site: &SiteId, event: &OpEvent) -> Outgoing {
        Outgoing {
            subject: site.ops_subject(event.op.kind()),
            id: event.id.clone(),
            payload: serde_json::to_vec(event).expect("an event serializes"),
        }
    }
}

/// What a batch of publishes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// Messages the stream took.
    pub published: u64,
    /// Messages it already had (same `Nats-Msg-Id`).
    pub duplicates: u64,
    /// The stream sequence of the last message taken or found.
    pub last_seq: u64,
}

/// One message read from a site's stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its stream sequence: its place in the site's one order.
    pub seq: u64,
    pub subject: String,
    pub kind: Subject,
    pub payload: Bytes,
}

/// What a stream says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSummary {
    pub stream: String,
    /// An exercise site: its actions are recorded, never sent.
    pub exercise: bool,
    pub subjects: Vec<String>,
    pub replicas: usize,
    pub messages: u64,
    pub last_seq: u64,
}

/// `s` as one subject token (or key-value key): characters other than ASCII letters, digits,
/// `-` and `_` become `_`.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How long a workstation's presence lasts without being said again: the bucket's entries
/// expire after it, and readers drop older ones, so a workstation that vanishes drops out
/// within this long.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);

/// How often a workstation says its presence again.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(5);

/// Who is signed in at a workstation and which incident they have open, as the presence
/// bucket holds it under the workstation's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub workstation: String,
    pub operator: Option<String>,
    pub incident: Option<String>,
}

/// A presence read back, with when the server stored it (its wall clock, in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub presence: Presence,
    pub stored_ms: i64,
}

/// Every workstation's presence as it is said ([`Site::watch_presence`]).
pub struct PresenceWatch(std::pin::Pin<Box<dyn futures_util::Stream<Item = Seen> + Send>>);

impl PresenceWatch {
    /// The next presence said; `None` when the watch ended (the connection is gone).
    pub async fn next(&mut self) -> Option<Seen> {
        self.0.next().await
    }
}

/// A connection to one site.
pub struct Site {
    client: async_nats::Client,
    js: jetstream::Context,
    id: SiteId,
    url: String,
}

impl Site {
    /// Connects to the NATS server(s) at `url` (commas separate several) as `credentials`.
    /// Once connected, the client reconnects by itself whenever the link drops.
    pub async fn connect(url: &str, id: SiteId, credentials: Option<Credentials>) -> Result<Site, SiteError> {
        let user = credentials.as_ref().map(|c| c.user.clone());
        let options = match credentials {
            Some(c) => async_nats::ConnectOptions::with_user_and_password(c.user, c.password),
            None => async_nats::ConnectOptions::new(),
        }
        .name(format!("cityops {id}"))
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
        let addrs: Vec<&str> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        let servers: Result<Vec<async_nats::ServerAddr>, _> = addrs.iter().map(|a| a.parse()).collect();
        let servers = servers.map_err(|e| SiteError::Connect {
            url: url.to_owned(),
            reason: format!("not a NATS URL: {e}"),
        })?;
        let client = options.connect(servers).await.map_err(|e| match e.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation | async_nats::ConnectErrorKind::Authentication => {
                SiteError::Credentials {
                    url: url.to_owned(),
                    user: user.unwrap_or_else(|| "(none)".into()),
                    reason: e.to_string(),
                }
            }
            _ => SiteError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            },
        })?;
        let js = match std::env::var(DOMAIN_ENV).ok().filter(|d| !d.is_empty()) {
            Some(domain) => jetstream::with_domain(client.clone(), domain),
            None => jetstream::new(client.clone()),
        };
        Ok(Site {
            client,
            js,
            id,
            url: url.to_owned(),
        })
    }

    /// The site's id.
    pub fn id(&self) -> &SiteId {
        &self.id
    }

    /// The server URL(s) given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True while the client holds a connection.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn stream_error(&self, reason: impl fmt::Display) -> SiteError {
        SiteError::Stream {
            site: self.id.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Creates the site's stream with `replicas` copies (1 on a single server, 3 on a cluster
    /// that must survive losing a node), marked as an exercise if `exercise` (nothing of an
    /// exercise site is ever sent to a backend), with its presence bucket and its dispatch
    /// queue. Idempotent: an existing stream is left as it is, but a live site is never
    /// turned into an exercise or back.
    pub async fn init(&self, replicas: usize, exercise: bool, ack_wait: Duration) -> Result<StreamSummary, SiteError> {
        let mut metadata = std::collections::HashMap::new();
        if exercise {
            metadata.insert(dispatch::EXERCISE_METADATA.to_owned(), "true".to_owned());
        }
        let config = stream::Config {
            name: self.id.stream(),
            subjects: vec![self.id.all_subjects()],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            metadata,
            ..Default::default()
        };
        let mut s = self
            .js
            .get_or_create_stream(config)
            .await
            .map_err(|e| self.stream_error(format!("cannot create stream {}: {e}", self.id.stream())))?;
        let was_exercise = s
            .info()
            .await
            .map_err(|e| self.stream_error(e))?
            .config
            .metadata
            .get(dispatch::EXERCISE_METADATA)
            .is_some_and(|v| v == "true");
        if was_exercise != exercise {
            let (is, asked) = if was_exercise {
                ("an exercise", "live")
            } else {
                ("live", "an exercise")
            };
            return Err(self.stream_error(format!(
                "the site exists and is {is}; it cannot become {asked} (use another site id)"
            )));
        }
        self.init_dispatch(ack_wait).await?;
        let presence = kv::Config {
            bucket: self.id.presence_bucket(),
            description: "who is signed in at which workstation, and what they look at".into(),
            history: 1,
            max_age: PRESENCE_TTL,
            num_replicas: replicas,
            storage: stream::StorageType::Memory,
            ..Default::default()
        };
        self.js
            .create_or_update_key_value(presence)
            .await
            .map_err(|e| self.stream_error(format!("cannot create the presence bucket: {e}")))?;
        let info = s.info().await.map_err(|e| self.stream_error(e))?;
        Ok(StreamSummary {
            exercise,
            stream: info.config.name.clone(),
            subjects: info.config.subjects.clone(),
            replicas: info.config.num_replicas,
            messages: info.state.messages,
            last_seq: info.state.last_sequence,
        })
    }

    /// Says who is signed in here and what they look at, under the workstation's name.
    pub async fn announce(&self, p: &Presence) -> Result<(), SiteError> {
        let kv = self.presence().await?;
        let key = token(&p.workstation);
        let body = serde_json::to_vec(p).expect("a presence serializes");
        kv.put(key, body.into())
            .await
            .map_err(|e| self.stream_error(format!("cannot say this workstation's presence: {e}")))?;
        Ok(())
    }

    /// Every workstation's presence as the bucket holds it now, then each one said again, as
    /// they come; an entry that cannot be read is skipped.
    pub async fn watch_presence(&self) -> Result<PresenceWatch, SiteError> {
        let kv = self.presence().await?;
        let watch = kv
            .watch_all()
            .await
            .map_err(|e| self.stream_error(format!("cannot watch the presence bucket: {e}")))?;
        Ok(PresenceWatch(Box::pin(watch.filter_map(|entry| async move {
            let entry = entry.ok()?;
            if entry.operation != kv::Operation::Put {
                return None;
            }
            let presence = serde_json::from_slice(&entry.value).ok()?;
            Some(Seen {
                presence,
                stored_ms: (entry.created.unix_timestamp_nanos() / 1_000_000) as i64,
            })
        }))))
    }

    async fn presence(&self) -> Result<kv::Store, SiteError> {
        self.js.get_key_value(self.id.presence_bucket()).await.map_err(|e| {
            self.stream_error(format!(
                "the presence bucket cannot be opened: {e} (cityops site init makes it)"
            ))
        })
    }

    /// Runs `op` again while it fails and [`RETRY_FOR`] has not passed.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, SiteError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SiteError>>,
    {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(site = %self.id, what, error = %e, "retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn stream(&self) -> Result<stream::Stream, SiteError> {
        self.retrying("open the stream", || async {
            self.js.get_stream(self.id.stream()).await.map_err(|e| {
                self.stream_error(format!(
                    "cannot open stream {} ({e}); create it with `cityops site init`",
                    self.id.stream()
                ))
            })
        })
        .await
    }

    /// The configuration the site runs with: the latest on its `config` subject, if any.
    pub async fn config(&self) -> Result<Option<SiteConfig>, SiteError> {
        let stream = self.stream().await?;
        let subject = format!("cityops.{}.config", self.id);
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => serde_json::from_slice(&m.payload)
                .map(Some)
                .map_err(|e| self.stream_error(format!("its configuration cannot be read: {e}"))),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(self.stream_error(format!("cannot read its configuration: {e}"))),
        }
    }

    /// The name of the server leading the site's stream in a cluster (`None` on a single
    /// server): the node whose loss makes the others elect a new leader.
    pub async fn leader(&self) -> Result<Option<String>, SiteError> {
        let mut s = self.stream().await?;
        let info = s.info().await.map_err(|e| self.stream_error(e))?;
        Ok(info.cluster.as_ref().and_then(|c| c.leader.clone()))
    }

    /// The sequence of the last message in the site's stream (0 when empty).
    pub async fn last_seq(&self) -> Result<u64, SiteError> {
        self.retrying("read the stream's state", || async {
            let mut s = self.stream().await?;
            let info = s.info().await.map_err(|e| self.stream_error(e))?;
            Ok(info.state.last_sequence)
        })
        .await
    }

    /// Publishes `messages` in order, up to [`PUBLISH_BATCH`] in flight, and waits for every
    /// acknowledgement. A batch that is not acknowledged is sent again while [`RETRY_FOR`]
    /// lasts (the ids make a repeat add nothing); then the first refusal stops it, and what
    /// went before is in the stream.
    pub async fn publish(&self, messages: impl IntoIterator<Item = Outgoing>) -> Result<Published, SiteError> {
        let mut out = Published::default();
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            batch.clear();
            batch.extend(messages.by_ref().take(PUBLISH_BATCH));
            let done = self.retrying("publish", || self.publish_batch(&batch)).await?;
            out.published += done.published;
            out.duplicates += done.duplicates;
            out.last_seq = out.last_seq.max(done.last_seq);
        }
        Ok(out)
    }

    /// Publishes `batch` once, without retrying: for a caller that keeps what did not go out
    /// and tries again later (a workstation's waiting decisions).
    pub async fn publish_batch(&self, batch: &[Outgoing]) -> Result<Published, SiteError> {
        let mut out = Published::default();
        let mut inflight = Vec::with_capacity(batch.len());
        for m in batch {
            let ack = self
                .js
                .send_publish(
                    m.subject.clone(),
                    PublishMessage::build()
                        .message_id(m.id.as_str())
                        .payload(Bytes::from(m.payload.clone())),
                )
                .await
                .map_err(|e| SiteError::Publish {
                    subject: m.subject.clone(),
                    reason: e.to_string(),
                })?;
            inflight.push((m.subject.clone(), ack));
        }
        settle(&mut inflight, &mut out).await?;
        Ok(out)
    }

    /// Reads the site's stream in order from the message after `after` (0: from the start),
    /// through an ordered consumer of this connection: the position lives with the follower's
    /// cache, committed with what the messages produced, so the two cannot drift apart.
    pub async fn read_after(&self, after: u64) -> Result<Reader, SiteError> {
        let s = self.stream().await?;
        let deliver_policy = if after == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let messages = self
            .retrying("read the stream", || async {
                let c = s
                    .create_consumer(consumer::pull::OrderedConfig {
                        deliver_policy,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| self.stream_error(format!("cannot read: {e}")))?;
                c.messages()
                    .await
                    .map_err(|e| self.stream_error(format!("cannot read: {e}")))
            })
            .await?;
        Ok(Reader {
            messages,
            id: self.id.clone(),
            stream: s,
            position: after,
        })
    }
}

async fn settle(
    inflight: &mut Vec<(String, async_nats::jetstream::context::PublishAckFuture)>,
    out: &mut Published,
) -> Result<(), SiteError> {
    for (subject, ack) in inflight.drain(..) {
        let ack = ack.await.map_err(|e| SiteError::Publish {
            subject,
            reason: e.to_string(),
        })?;
        if ack.duplicate {
            out.duplicates += 1;
        } else {
            out.published += 1;
        }
        out.last_seq = out.last_seq.max(ack.sequence);
    }
    Ok(())
}

/// How long a reader waits for a message before it asks whether the stream has newer ones.
const STALL_CHECK: Duration = Duration::from_secs(3);

/// The site's stream read in order.
pub struct Reader {
    messages: consumer::pull::Ordered,
    id: SiteId,
    /// The stream, to ask for its last sequence when nothing comes.
    stream: stream::Stream,
    /// The last sequence delivered.
    position: u64,
}

impl Reader {
    /// The next message, waiting for one; `None` when the consumer ended.
    ///
    /// An error, too, when nothing came for [`STALL_CHECK`] though the stream holds newer
    /// messages: the consumer was lost with the node holding it (a cluster that lost a node),
    /// and the client would take over a minute to give it up; the caller reads again at once.
    pub async fn next(&mut self) -> Option<Result<Delivery, SiteError>> {
        let m = loop {
            match tokio::time::timeout(STALL_CHECK, self.messages.next()).await {
                Ok(m) => break m?,
                Err(_) => {
                    // A stream that cannot answer now says nothing either way: keep waiting.
                    let asked = tokio::time::timeout(STALL_CHECK, self.stream.info()).await;
                    if let Ok(Ok(info)) = asked {
                        if info.state.last_sequence > self.position {
                            return Some(Err(SiteError::Stream {
                                site: self.id.to_string(),
                                reason: format!(
                                    "nothing read for {STALL_CHECK:?} though the stream holds messages up to {} \
                                     (this reader is at {}): its consumer was lost",
                                    info.state.last_sequence, self.position
                                ),
                            }));
                        }
                    }
                }
            }
        };
        if let Ok(Ok(info)) = m.as_ref().map(|m| m.info()) {
            self.position = info.stream_sequence;
        }
        Some(
            m.map_err(|e| SiteError::Stream {
                site: self.id.to_string(),
                reason: format!("reading: {e}"),
            })
            .and_then(|m| {
                let seq = m
                    .info()
                    .map_err(|e| SiteError::Stream {
                        site: self.id.to_string(),
                        reason: format!("a message without its stream position: {e}"),
                    })?
                    .stream_sequence;
                let subject = m.subject.to_string();
                Ok(Delivery {
                    seq,
                    kind: self.id.kind_of(&subject),
                    subject,
                    payload: m.payload.clone(),
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids_are_subject_tokens() {
        assert!("hel".parse::<SiteId>().is_ok());
        assert!("hel-2_b".parse::<SiteId>().is_ok());
        for bad in ["", "HEL", "hel.x", "hel>", "a b", &"x".repeat(33)] {
            let e = bad.parse::<SiteId>().unwrap_err().to_string();
            assert!(e.contains("a-z, 0-9"), "{bad:?}: {e}");
        }
        let site: SiteId = "hel-2".parse().unwrap();
        assert_eq!(site.stream(), "CITYOPS_HEL_2");
    }

    #[test]
    fn subjects_say_what_they_carry() {
        let site: SiteId = "hel".parse().unwrap();
        assert_eq!(site.feed_subject("hsl vehicles.x"), "cityops.hel.feed.hsl_vehicles_x");
        assert_eq!(site.kind_of("cityops.hel.feed.x"), Subject::Feed);
        assert_eq!(site.kind_of("cityops.hel.ops.transition"), Subject::Ops);
        assert_eq!(site.kind_of("cityops.hel.clock"), Subject::Clock);
        assert_eq!(site.kind_of("cityops.hel.config"), Subject::Config);
        assert_eq!(site.kind_of("cityops.hel.other"), Subject::Other);
        assert_eq!(site.kind_of("cityops.tku.clock"), Subject::Other);
    }

    #[test]
    fn the_same_message_is_the_same_publish() {
        let site: SiteId = "hel".parse().unwrap();
        let line = r#"{"time":"2026-11-26T19:00:00.833Z","feed":"a","format":"geojson","body":"{}"}"#;
        let msg = tape::parse_line(7, line).unwrap();
        let again = tape::parse_line(99, line).unwrap();
        assert_eq!(
            Outgoing::tape_line(&site, &msg).id,
            Outgoing::tape_line(&site, &again).id
        );
        let mut later = msg.clone();
        later.time_ms += 1;
        assert_ne!(
            Outgoing::tape_line(&site, &msg).id,
            Outgoing::tape_line(&site, &later).id
        );
    }

    #[test]
    fn events_read_back_and_refuse_unknown_kinds() {
        let e = OpEvent {
            id: "e1".into(),
            operator: "Aino".into(),
            workstation: "ws-a".into(),
            at_ms: 5,
            wall_ms: 6,
            op: Op::Transition {
                incident: "inc/x".into(),
                to: "acknowledged".into(),
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(r#""kind":"transition""#), "{text}");
        assert_eq!(serde_json::from_str::<OpEvent>(&text).unwrap(), e);
        let unknown = text.replace("\"transition\"", "\"launch\"");
        assert!(serde_json::from_str::<OpEvent>(&unknown).is_err());
    }
}
