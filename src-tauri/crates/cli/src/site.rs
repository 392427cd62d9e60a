//! The site commands: `site init`, `publish`, `follow`, `act`, and `roster add --nats`. A site
//! is one control room's shared state on NATS JetStream (`cityops-site`); the credentials of
//! the NATS user come from `CITYOPS_NATS_USER` and `CITYOPS_NATS_PASSWORD`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cityops_core::model::GeoPoint;
use cityops_core::tape::TapeMessage;
use cityops_engine::dto::{ActionParams, ActionStatus, OperatorDto};
use cityops_engine::follow::{self, EventOutcome, Follower};
use cityops_engine::scenario::Scenario;
use cityops_live::config::LiveConfig;
use cityops_outbox::headless::Burst;
use cityops_outbox::site_worker::Worker;
use cityops_outbox::{BackendSpec, Outbox, SiteTarget};
use cityops_site::{Credentials, Op, Outgoing, Site, SiteConfig, SiteId};
use cityops_store::Store;
use clap::{Args, Subcommand};
use tokio::sync::mpsc;

/// Where the site is.
#[derive(Args, Clone)]
pub struct SiteArgs {
    /// The NATS server(s): nats://127.0.0.1:4222 (commas separate the nodes of a cluster).
    #[arg(long)]
    pub nats: String,
    /// The site's id (a-z, 0-9, - and _).
    #[arg(long)]
    pub site: String,
}

impl SiteArgs {
    pub(crate) fn id(&self) -> anyhow::Result<SiteId> {
        Ok(self.site.parse()?)
    }

    pub(crate) async fn connect(&self) -> anyhow::Result<Site> {
        Ok(Site::connect(&self.nats, self.id()?, Credentials::from_env()).await?)
    }
}

#[derive(Subcommand)]
pub enum SiteCommand {
    /// Creates the site's stream (idempotent: an existing one is left as it is).
    Init {
        #[command(flatten)]
        at: SiteArgs,
        /// Copies of the stream: 1 on one server, 3 on a cluster that must survive losing a node.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// An exercise site: its actions are recorded and never sent, whatever dispatch
        /// workers run. A site stays what it was made as.
        #[arg(long)]
        exercise: bool,
        /// How long a dispatch worker may hold an action without a sign of life before another
        /// takes it (set once, when the site's dispatch queue is made).
        #[arg(long, value_parser = crate::parse_duration, default_value = "30s")]
        ack_wait: Duration,
    },
}

/// One operator decision, as `cityops act` takes it.
#[derive(Subcommand)]
pub enum ActCommand {
    /// Acknowledges the incident.
    Acknowledge {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
    },
    /// Marks a crew or unit dispatched to it.
    MarkDispatched {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
    },
    /// Marks it resolved.
    Resolve {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        /// A supervisor resolves past required SOP steps still unticked, for this reason
        /// (recorded, audited and shown in the report).
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Closes it (a supervisor's or trainer's step).
    Close {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
    },
    /// Adds a note to it.
    Note {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        #[arg(long)]
        text: String,
    },
    /// Merges the incident `--from` into `--incident`.
    Merge {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        #[arg(long)]
        from: String,
    },
    /// Splits the member `--entity` out of `--incident` into an incident of its own.
    Split {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        #[arg(long)]
        entity: String,
    },
    /// Ticks (or with --untick, unticks) SOP step `--step` (counting from 1).
    Sop {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        #[arg(long)]
        step: u32,
        #[arg(long)]
        untick: bool,
    },
    /// Takes the incident (its owner is then the operator), or as a supervisor gives it to
    /// `--owner`.
    Take {
        /// The incident: its number (HEL-2026-000123) or its id.
        #[arg(long)]
        incident: String,
        #[arg(long)]
        owner: Option<String>,
    },
    /// Cancels an action of the site's outbox (by its idempotency key) that no dispatch
    /// worker has taken yet; refused, saying so, when one was already sending it.
    Cancel {
        #[arg(long)]
        action: String,
    },
    /// Changes the site's roster as a supervisor: gives operator `--name` a role (operator,
    /// supervisor or trainer; a supervisor or trainer with the PIN in `--new-pin-env`), or
    /// takes them off the roster (`--role removed`).
    Role {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// The environment variable holding the operator's new PIN.
        #[arg(long)]
        new_pin_env: Option<String>,
    },
}

impl ActCommand {
    fn op(self) -> anyhow::Result<Decision> {
        if let ActCommand::Cancel { action } = self {
            return Ok(Decision::Cancel(action));
        }
        self.event().map(Decision::Event)
    }

    fn event(self) -> anyhow::Result<Op> {
        let transition = |incident: String, to: &str| Op::Transition {
            incident,
            to: to.to_owned(),
        };
        Ok(match self {
            ActCommand::Acknowledge { incident } => transition(incident, "acknowledged"),
            ActCommand::MarkDispatched { incident } => transition(incident, "dispatched"),
            ActCommand::Resolve {
                incident,
                override_reason: Some(reason),
            } => Op::Override {
                incident,
                to: "resolved".into(),
                reason,
            },
            ActCommand::Resolve { incident, .. } => transition(incident, "resolved"),
            ActCommand::Close { incident } => transition(incident, "closed"),
            ActCommand::Note { incident, text } => Op::Note { incident, text },
            ActCommand::Merge { incident, from } => Op::Merge { into: incident, from },
            ActCommand::Split { incident, entity } => Op::Split { from: incident, entity },
            ActCommand::Take { incident, owner } => Op::Own { incident, owner },
            ActCommand::Cancel { .. } => unreachable!("a cancellation is not an event"),
            ActCommand::Role {
                name,
                role,
                new_pin_env,
            } => {
                let pin = new_pin_env.as_deref().map(crate::read_pin).transpose()?;
                Op::Role {
                    name,
                    pin_hash: roster_pin_hash(&role, pin.as_deref())?,
                    role,
                }
            }
            ActCommand::Sop { incident, step, untick } => {
                anyhow::ensure!(step >= 1, "--step counts from 1");
                Op::Sop {
                    incident,
                    step: step - 1,
                    ticked: !untick,
                }
            }
        })
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `cityops site init`.
pub fn init(at: SiteArgs, replicas: usize, exercise: bool, ack_wait: Duration) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let site = at.connect().await?;
        let summary = site.init(replicas, exercise, ack_wait).await?;
        println!("{}", serde_json::to_string(&summary)?);
        Ok(())
    })
}

/// `cityops publish`: the scenario's configuration, then its tape, then a clock tick at its
/// end, into the site. At `--speed max` the tape goes as fast as the server takes it; at a
/// factor, each message goes at its time (scaled), with a tick every scenario second.
pub fn publish(at: SiteArgs, scenario_dir: &Path, speed: &str) -> anyhow::Result<()> {
    let factor: Option<f64> = match speed {
        "max" => None,
        s => Some(
            s.parse()
                .ok()
                .filter(|f: &f64| *f > 0.0)
                .ok_or_else(|| anyhow::anyhow!("--speed {s:?}: expected max or a positive number"))?,
        ),
    };
    let scenario = Scenario::load(scenario_dir)?;
    for issue in &scenario.tape_issues {
        eprintln!(
            "{}:{}: {} (not published)",
            scenario.tape_path.display(),
            issue.line,
            issue.reason
        );
    }
    let config = Scenario::site_config(scenario_dir)?;
    let end = (scenario.end_ms().div_euclid(1000) + 1) * 1000;
    runtime()?.block_on(async {
        let site = at.connect().await?;
        let id = site.id().clone();
        let mut total = site.publish([Outgoing::config(&id, &config)]).await?;
        let mut add = |p: cityops_site::Published| {
            total.published += p.published;
            total.duplicates += p.duplicates;
            total.last_seq = total.last_seq.max(p.last_seq);
        };
        match factor {
            None => {
                let lines = scenario.messages.iter().map(|m| Outgoing::tape_line(&id, m));
                add(site.publish(lines).await?);
            }
            Some(factor) => {
                let started = tokio::time::Instant::now();
                let start = scenario.manifest.start_ms;
                let mut next_tick = (start.div_euclid(1000) + 1) * 1000;
                for m in &scenario.messages {
                    while next_tick <= m.time_ms {
                        add(site.publish([Outgoing::tick(&id, next_tick)]).await?);
                        next_tick += 1000;
                    }
                    let due = Duration::from_secs_f64(((m.time_ms - start).max(0) as f64 / 1000.0) / factor);
                    tokio::time::sleep_until(started + due).await;
                    add(site.publish([Outgoing::tape_line(&id, m)]).await?);
                }
            }
        }
        add(site.publish([Outgoing::tick(&id, end)]).await?);
        println!("{}", serde_json::to_string(&total)?);
        Ok(())
    })
}

/// `cityops follow`: applies the site's stream to the cache at `db`; with `until_idle`, stops
/// once everything published before it started is applied, and prints the summary.
pub fn follow(at: SiteArgs, db: &Path, until_idle: bool, json: bool) -> anyhow::Result<()> {
    let mut f = Follower::open(db, at.id()?)?;
    runtime()?.block_on(async {
        let site = at.connect().await?;
        if until_idle {
            let summary = follow::follow_until_idle(&site, &mut f).await?;
            print_summary(&summary, json)?;
            return Ok(());
        }
        tokio::select! {
            r = follow::follow_until(&site, &mut f, |_| false) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        f.settle()?;
        print_summary(&f.summary()?, json)
    })
}

fn print_summary(s: &follow::FollowSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        println!(
            "site {} at position {}: {} observations accepted, {} rejected\n  hash {}\n  {} incidents, hash {}\n  {} events accepted, {} refused, hash {}\n  {} decisions waiting",
            s.site,
            s.position,
            s.accepted,
            s.rejected,
            s.observation_set_hash,
            s.incidents,
            s.incident_set_hash,
            s.events_accepted,
            s.events_refused,
            s.decision_set_hash,
            s.waiting
        );
    }
    Ok(())
}

/// What `cityops act` was told to do.
pub struct Act {
    pub at: SiteArgs,
    pub operator: String,
    pub pin_env: Option<String>,
    pub db: Option<PathBuf>,
    pub workstation: String,
    pub no_wait: bool,
    pub timeout: Duration,
    pub json: bool,
}

/// What `cityops act` commits: an operators' event, or the cancellation of an action.
enum Decision {
    Event(Op),
    Cancel(String),
}

impl Decision {
    /// Commits the decision to the cache at `db` as `operator` (checked against the site's
    /// roster), to be published; returns the id its outcome is kept under.
    fn commit(&self, db: &Path, store: &Store, id: &SiteId, a: &Act, pin: Option<&str>) -> anyhow::Result<String> {
        let role = follow::check_operator(store, &a.operator, pin)?;
        match self {
            Decision::Event(op) => {
                let op = by_number(store, id, op.clone())?;
                Ok(follow::commit_decision(store, id, &a.operator, &a.workstation, op)?.id)
            }
            Decision::Cancel(key) => {
                let found = store.actions(u32::MAX)?.into_iter().find(|x| &x.key == key);
                let action = found.ok_or_else(|| anyhow::anyhow!("no action {key} in the site's outbox"))?;
                let target = SiteTarget {
                    site: id.clone(),
                    workstation: a.workstation.clone(),
                };
                let outbox = Outbox::for_site(db, Vec::new(), false, target)?;
                let operator = OperatorDto {
                    name: a.operator.clone(),
                    role,
                };
                outbox
                    .cancel(action.id, &operator)?
                    .ok_or_else(|| anyhow::anyhow!("the cancellation was not made for the site"))
            }
        }
    }
}

/// The decision with each incident it names by number (`HEL-2026-000123`, as the queue and
/// `cityops incidents` show them) named by its id, which is what the site's events carry.
fn by_number(store: &Store, site: &SiteId, op: Op) -> anyhow::Result<Op> {
    let run = store.site_run(site.as_str())?.map(|r| r.run);
    let id = |named: String| -> anyhow::Result<String> {
        if named.starts_with("inc/") {
            return Ok(named);
        }
        let found = match run {
            Some(run) => store.incident_by_number(run, &named)?,
            None => None,
        };
        found.ok_or_else(|| anyhow::anyhow!("site {site} has no incident numbered {named:?}"))
    };
    Ok(match op {
        Op::Transition { incident, to } => Op::Transition {
            incident: id(incident)?,
            to,
        },
        Op::Sop { incident, step, ticked } => Op::Sop {
            incident: id(incident)?,
            step,
            ticked,
        },
        Op::Note { incident, text } => Op::Note {
            incident: id(incident)?,
            text,
        },
        Op::Override { incident, to, reason } => Op::Override {
            incident: id(incident)?,
            to,
            reason,
        },
        Op::Merge { into, from } => Op::Merge {
            into: id(into)?,
            from: id(from)?,
        },
        Op::Split { from, entity } => Op::Split {
            from: id(from)?,
            entity,
        },
        Op::Reassign { from, entity, to } => Op::Reassign {
            from: id(from)?,
            entity,
            to: id(to)?,
        },
        Op::Own { incident, owner } => Op::Own {
            incident: id(incident)?,
            owner,
        },
        other => other,
    })
}

/// The event was refused: exit code 1, after its outcome was printed.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

/// `cityops act`: commits one decision to the workstation's cache, publishes it, and prints
/// its outcome once the site has applied it. When another process follows the cache (the
/// workstation is running), that process publishes and applies it, and this one waits for the
/// outcome in the cache.
pub fn act(a: Act, command: ActCommand) -> anyhow::Result<()> {
    let op = command.op()?;
    let pin = a.pin_env.as_deref().map(crate::read_pin).transpose()?;
    let id = a.at.id()?;
    let tmp = tempfile::tempdir()?;
    let db = a.db.clone().unwrap_or_else(|| tmp.path().join("act.db"));
    let out = match Follower::open(&db, id.clone()) {
        Ok(mut f) => runtime()?.block_on(async {
            match a.at.connect().await {
                Ok(site) => {
                    follow::follow_until_idle(&site, &mut f).await?;
                    let event_id = op.commit(&db, f.store(), &id, &a, pin.as_deref())?;
                    if let (_, Some(refused)) = follow::publish_waiting(&site, f.store()).await? {
                        return Err(
                            anyhow::Error::from(refused).context(format!("event {event_id} waits in {}", db.display()))
                        );
                    }
                    if a.no_wait {
                        return waiting(f.store(), &event_id);
                    }
                    let wait = follow::follow_until(&site, &mut f, |f| {
                        f.outcome(&event_id)
                            .ok()
                            .flatten()
                            .is_some_and(|o| o.outcome != "waiting")
                    });
                    tokio::time::timeout(a.timeout, wait).await.map_err(|_| {
                        anyhow::anyhow!(
                            "the site has not applied event {} within {:?}; it is published or waits in {}",
                            event_id,
                            a.timeout,
                            db.display()
                        )
                    })??;
                    f.outcome(&event_id)?
                        .ok_or_else(|| anyhow::anyhow!("event {} is neither applied nor waiting", event_id))
                }
                // Offline: the decision is committed and waits for the link.
                Err(e) if a.db.is_some() && !is_credentials(&e) => {
                    eprintln!("cityops: offline ({e:#}); the decision waits in {}", db.display());
                    let event_id = op.commit(&db, f.store(), &id, &a, pin.as_deref())?;
                    waiting(f.store(), &event_id)
                }
                Err(e) => Err(e),
            }
        })?,
        // A running workstation follows this cache: it publishes and applies the decision.
        Err(cityops_engine::EngineError::InvalidInput(m)) if m.contains("another process follows") => {
            let store = Store::open(&db)?;
            let event_id = op.commit(&db, &store, &id, &a, pin.as_deref())?;
            let deadline = std::time::Instant::now() + a.timeout;
            loop {
                let o = follow::outcome_in(&store, &event_id)?;
                match o {
                    Some(o) if o.outcome != "waiting" || a.no_wait => break o,
                    _ if std::time::Instant::now() >= deadline => break waiting(&store, &event_id)?,
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else if out.reason.is_empty() {
        println!("{}: {}", out.event_id, out.outcome);
    } else {
        println!("{}: {}: {}", out.event_id, out.outcome, out.reason);
    }
    if out.outcome == "refused" {
        return Err(Refused(out.reason).into());
    }
    Ok(())
}

fn is_credentials(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<cityops_site::SiteError>(),
        Some(cityops_site::SiteError::Credentials { .. })
    )
}

fn waiting(store: &Store, event_id: &str) -> anyhow::Result<EventOutcome> {
    follow::outcome_in(store, event_id)?.ok_or_else(|| anyhow::anyhow!("event {event_id} was not committed"))
}

/// `cityops roster add NAME --role ROLE [--pin-env VAR] --nats URL --site ID`: publishes the
/// change to the site's roster (the PIN as an argon2id hash; never the PIN itself).
pub fn roster_add(at: SiteArgs, name: &str, role: &str, pin: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        role != cityops_site::REMOVED,
        "roster add gives a role: operator, supervisor or trainer"
    );
    let pin_hash = roster_pin_hash(role, pin)?;
    runtime()?.block_on(async {
        let site = at.connect().await?;
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let event = cityops_site::OpEvent {
            id: format!("roster-{wall_ms}-{:016x}", rand::random::<u64>()),
            operator: "cityops roster add".into(),
            workstation: hostname(),
            at_ms: 0,
            wall_ms,
            op: Op::Roster {
                name: name.to_owned(),
                role: role.to_owned(),
                pin_hash,
            },
        };
        site.publish([Outgoing::event(site.id(), &event)]).await?;
        println!(
            "{name}: {role}{} (site {})",
            if pin.is_some() { ", PIN set" } else { "" },
            site.id()
        );
        Ok(())
    })
}

/// Checks a roster change's role, and hashes its PIN (argon2id): a supervisor or trainer needs
/// one; taking an operator off the roster (`removed`) carries none.
fn roster_pin_hash(role: &str, pin: Option<&str>) -> anyhow::Result<Option<String>> {
    if role == cityops_site::REMOVED {
        anyhow::ensure!(pin.is_none(), "an operator taken off the roster gets no PIN");
        return Ok(None);
    }
    anyhow::ensure!(
        cityops_engine::dto::OperatorRole::parse(role).is_some(),
        "--role {role:?}: expected operator, supervisor, trainer or removed"
    );
    anyhow::ensure!(
        pin.is_some() || !cityops_store::role_needs_pin(role),
        "a {role} needs a PIN"
    );
    Ok(pin.map(cityops_store::hash_pin).transpose()?)
}

/// This machine's name, for the workstation an event was made at.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "workstation".into())
}

/// The configuration a site runs live feeds with: the feeds of `config` (as a recording's
/// manifest), and the texts of the rules, assets and zones it names.
pub fn live_site_config(config: &LiveConfig) -> anyhow::Result<SiteConfig> {
    let base = config.base_dir();
    let read = |file: &String| {
        let path = base.join(file);
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    Ok(SiteConfig {
        manifest: cityops_live::recorded_manifest(
            config,
            Path::new("tape.ndjson"),
            chrono::Utc::now().timestamp_millis(),
        ),
        rules: config.rules.as_ref().map(read).transpose()?,
        assets: config.assets.as_ref().map(read).transpose()?,
        zones: config.zones.as_ref().map(read).transpose()?,
    })
}

/// How far behind the wall clock a live ingest's clock tick runs: a message stamped just
/// before a second ended may still be on its way through the ingest.
const TICK_LAG_MS: i64 = 1_000;

/// `cityops ingest --nats`: publishes the feeds' configuration into the site unless it has
/// one, then every message the ingest takes (from `rx`, in the ingest's order) and a clock
/// tick every second. What the site does not take is held and sent again (the messages' ids
/// make a repeat add nothing) until the ingest stops.
pub async fn feed_site(
    at: SiteArgs,
    config: SiteConfig,
    mut rx: mpsc::UnboundedReceiver<TapeMessage>,
) -> anyhow::Result<()> {
    let site = at.connect().await?;
    let id = site.id().clone();
    match site.config().await? {
        None => {
            site.publish([Outgoing::config(&id, &config)]).await?;
        }
        Some(_) => tracing::info!(site = %id, "the site has its configuration; its feeds go into it"),
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut held: Vec<Outgoing> = Vec::new();
    let mut open = true;
    while open || !held.is_empty() {
        tokio::select! {
            m = rx.recv(), if open => match m {
                Some(m) => {
                    held.push(Outgoing::tape_line(&id, &m));
                    while let Ok(m) = rx.try_recv() {
                        held.push(Outgoing::tape_line(&id, &m));
                    }
                }
                None => open = false,
            },
            _ = tick.tick() => {
                held.push(Outgoing::tick(&id, chrono::Utc::now().timestamp_millis() - TICK_LAG_MS));
            }
        }
        match site.publish(held.iter().cloned()).await {
            Ok(_) => held.clear(),
            Err(e) if open => {
                tracing::warn!(error = %e, held = held.len(), "the site did not take the feeds' messages; they are sent again")
            }
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!("{} messages did not reach the site", held.len())))
            }
        }
    }
    Ok(())
}

/// `cityops dispatch-worker`: serves the site's dispatch queue until Ctrl-C, connecting again
/// whenever the link fails.
pub fn dispatch_worker(at: SiteArgs, specs: Vec<BackendSpec>, name: String) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let serve = async {
            loop {
                let reason = match at.connect().await {
                    Ok(site) => match Worker::new(&site, name.clone(), specs.clone()).await {
                        Ok(worker) => match worker.serve(&site).await {
                            Ok(()) => return Ok(()),
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    },
                    Err(e) if is_credentials(&e) => return Err(e),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(worker = %name, %reason, "the dispatch worker connects again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            r = serve => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// What `cityops dispatch --nats` was told to commit.
pub struct SiteDispatch {
    pub db: Option<PathBuf>,
    pub specs: Vec<BackendSpec>,
    pub workstation: String,
    pub operator: String,
    pub pin: Option<String>,
    pub backend: String,
    pub params: ActionParams,
    pub at: GeoPoint,
    pub label: String,
    pub incident: Option<String>,
    pub count: u32,
    /// Wait until the site's dispatch workers report each one done.
    pub wait: bool,
    pub timeout: Duration,
}

/// `cityops dispatch --nats`: follows the site into the workstation's cache (for its roster),
/// signs the operator in on the roster's authority, commits each action with its message to
/// the site (printing its key once on disk), publishes them, and waits until the site's
/// dispatch workers reported each done. Prints the site's outbox lines of these actions.
pub fn dispatch(at: SiteArgs, d: SiteDispatch) -> anyhow::Result<()> {
    let id = at.id()?;
    let tmp = tempfile::tempdir()?;
    let db = d.db.clone().unwrap_or_else(|| tmp.path().join("dispatch.db"));
    let mut f = Follower::open(&db, id.clone())?;
    runtime()?.block_on(async {
        let site = at.connect().await?;
        follow::follow_until_idle(&site, &mut f).await?;
        let role = follow::check_operator(f.store(), &d.operator, d.pin.as_deref())?;
        let exercise = site.exercise().await?;
        let target = SiteTarget {
            site: id.clone(),
            workstation: d.workstation.clone(),
        };
        let mut outbox = Outbox::for_site(&db, d.specs.clone(), exercise, target)?;
        let burst = Burst {
            backend: d.backend,
            operator: OperatorDto { name: d.operator, role },
            params: d.params,
            at: d.at,
            label: d.label,
            incident: d.incident,
            count: d.count,
        };
        let keys = cityops_outbox::headless::commit_into(&mut outbox, &burst, &mut std::io::stdout().lock())?;
        if let (_, Some(refused)) = follow::publish_waiting(&site, f.store()).await? {
            return Err(anyhow::Error::from(refused).context(format!("the actions wait in {}", db.display())));
        }
        if !d.wait {
            return Ok(());
        }
        let done = |f: &Follower| {
            f.store().actions(u32::MAX).is_ok_and(|all| {
                keys.iter().all(|k| {
                    all.iter().any(|a| {
                        &a.key == k
                            && matches!(
                                a.status,
                                ActionStatus::Delivered
                                    | ActionStatus::Sent
                                    | ActionStatus::Failed
                                    | ActionStatus::Cancelled
                            )
                    })
                })
            })
        };
        tokio::time::timeout(d.timeout, follow::follow_until(&site, &mut f, done))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the site's dispatch workers did not report every action within {:?}",
                    d.timeout
                )
            })??;
        let all = f.store().actions(u32::MAX)?;
        let failed = all
            .iter()
            .filter(|a| keys.contains(&a.key) && a.status == ActionStatus::Failed)
            .count();
        eprintln!("cityops: {} actions done on site {id}, {failed} failed", keys.len());
        Ok(())
    })
}

/// `cityops outbox --nats`: the site's outbox, as a workstation following it into `db` (a
/// temporary cache without it) sees it once caught up.
pub fn outbox(at: SiteArgs, db: Option<&Path>) -> anyhow::Result<Vec<cityops_engine::dto::ActionDto>> {
    let id = at.id()?;
    let tmp = tempfile::tempdir()?;
    let db = db.map(Path::to_owned).unwrap_or_else(|| tmp.path().join("outbox.db"));
    let mut f = Follower::open(&db, id)?;
    runtime()?.block_on(async {
        let site = at.connect().await?;
        follow::follow_until_idle(&site, &mut f).await?;
        Ok(f.store().actions(u32::MAX)?)
    })
}
