//! `cityops`: the headless command line. It runs on machines with no display.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cityops_core::model::Layer;
use cityops_core::scenario::FeedSpec;
use cityops_decoders::{self as feeds, MessageContext};
use cityops_engine::area_query::AreaAnswer;
use cityops_engine::headless;
use cityops_live::config::LiveConfig;
use cityops_live::{self as live, Health, LiveOptions};
use cityops_store::{AuditOutcome, Store};
use clap::{Parser, Subcommand};

mod site;
mod train;

/// mimalloc instead of the system allocator: a seek frees and rebuilds tens of thousands of
/// small allocations (observations, incident indexes), where glibc's malloc spent a fifth of
/// the time (BENCHMARKS.md, time travel).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cityops",
    version,
    about = "cityops without a window: replay scenarios, inspect stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks the audit trail: every entry's MAC under the audit key, the head against its
    /// anchor outside the database, and every row the trail vouches for. Opens the database
    /// read-only (a read-only evidence copy works) and never creates a file. Exits 0 when
    /// intact, 3 when it finds tampering (printing which entry, table and row, or which newest
    /// entries were deleted), 1 when it could not check (no such database, no key, no anchor).
    Verify {
        #[arg(long)]
        db: PathBuf,
        /// The directory holding the audit key and anchors (the config directory by default:
        /// $CITYOPS_CONFIG_DIR, else $XDG_CONFIG_HOME/cityops, else ~/.config/cityops).
        #[arg(long)]
        key_dir: Option<PathBuf>,
    },
}

/// `cityops audit verify` found signs of tampering: exit code 3, after the report.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail of {0} has been tampered with")]
struct Tampered(String);

/// Exit code of `cityops audit verify` when it finds tampering (1 is "could not check").
const EXIT_TAMPERED: u8 = 3;

#[derive(Subcommand)]
enum RosterCommand {
    /// Adds an operator to the roster, or changes their role or PIN. The supervisor and
    /// trainer roles need a PIN. Once the roster has a supervisor, another change needs one:
    /// `--by` and `--by-pin-env`.
    Add {
        /// The operator's name.
        name: String,
        /// operator, supervisor or trainer.
        #[arg(long)]
        role: String,
        /// The workstation's database whose roster to change (or --nats and --site).
        #[arg(long, required_unless_present = "nats")]
        db: Option<PathBuf>,
        /// The NATS server(s) of a site whose shared roster to change, instead of a database's.
        #[arg(long, requires = "site")]
        nats: Option<String>,
        /// The site's id.
        #[arg(long, requires = "nats")]
        site: Option<String>,
        /// The environment variable that holds the operator's new PIN (never on the command
        /// line, where other users and the shell history would see it).
        #[arg(long)]
        pin_env: Option<String>,
        /// The supervisor making the change.
        #[arg(long)]
        by: Option<String>,
        /// The environment variable that holds that supervisor's PIN.
        #[arg(long)]
        by_pin_env: Option<String>,
    },
    /// Lists the roster: names, roles, whether a PIN is set, locks.
    List {
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Replays a scenario through the real pipeline into a database and prints a summary.
    Replay {
        /// The scenario folder (holding scenario.toml).
        scenario: PathBuf,
        /// The SQLite database to write (created if missing; each replay is a new run).
        #[arg(long)]
        db: PathBuf,
        /// `max` for as fast as the pipeline goes, or a factor such as 60 (paced by the clock).
        #[arg(long, default_value = "max")]
        speed: String,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Runs the configured live feeds into a database, a site (`--nats`, `--site`), or both,
    /// without a window, until Ctrl-C or `--duration`; prints feed health every
    /// `--health-every`.
    Ingest {
        /// The feed configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The SQLite database to write (a temporary one when only a site is fed).
        #[arg(long, required_unless_present = "nats")]
        db: Option<PathBuf>,
        /// The NATS server(s) of a site to publish every message into, as a tape line.
        #[arg(long, requires = "site")]
        nats: Option<String>,
        /// The site's id.
        #[arg(long, requires = "nats")]
        site: Option<String>,
        /// Stop after this long (for example 90s, 10m, 2h); runs until Ctrl-C otherwise.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// How often to print feed health.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        health_every: Duration,
        /// Print health and the summary as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Records the configured live feeds as a tape (and a scenario.toml beside it) that
    /// `cityops replay` and the app can replay.
    Record {
        /// The feed configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The tape to write.
        #[arg(long)]
        out: PathBuf,
        /// Also keep the decoded observations in this database (a temporary one otherwise).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Stop after this long; runs until Ctrl-C otherwise.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decodes one payload file and prints the observations it yields, or why it is refused.
    Decode {
        /// The payload format.
        #[arg(long)]
        format: String,
        /// The payload file.
        file: PathBuf,
        /// The layer to give its observations.
        #[arg(long, default_value = "alerts")]
        layer: String,
        /// The topic it arrived on (MQTT).
        #[arg(long)]
        topic: Option<String>,
        /// A TOML file with the feed's mapping table.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// When the payload arrived (RFC 3339, for example 2025-10-26T22:50:32Z): its
        /// timestamps are judged against this. Without it, the payload's own header time where
        /// the format has one (GTFS-RT header.timestamp, CAP sent, CoT time), else now.
        #[arg(long, value_parser = parse_received)]
        received: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sustained live ingest over MQTT: publishes telemetry to a broker on 127.0.0.1 while a
    /// Lists the quarantine: every refused tape line, message, feature and transport failure,
    /// with its feed, place and reason.
    Quarantine {
        /// The database.
        #[arg(long)]
        db: PathBuf,
        /// Which run (the latest by default).
        #[arg(long)]
        run: Option<i64>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Prints the incidents of a run with their members and explanations.
    Incidents {
        /// The SQLite database a replay or the app wrote.
        #[arg(long)]
        db: PathBuf,
        /// The run (the newest by default).
        #[arg(long)]
        run: Option<i64>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// What happened here: every observation of a run observed in a box and a time range,
    /// across layers, with counts per kind (through the store's place-and-time index).
    Query {
        /// The SQLite database a replay, the app or a workstation wrote.
        #[arg(long)]
        db: PathBuf,
        /// The box: west,south,east,north in degrees.
        #[arg(long, value_parser = parse_bbox)]
        bbox: cityops_core::grid::BBox,
        /// The start of the range (RFC 3339, such as 2026-11-26T19:10:00Z).
        #[arg(long, value_parser = parse_received)]
        from: i64,
        /// The end of the range (RFC 3339).
        #[arg(long, value_parser = parse_received)]
        to: i64,
        /// Only this layer (transport, security, utility, alerts).
        #[arg(long)]
        layer: Option<cityops_core::model::Layer>,
        /// The run (the newest by default).
        #[arg(long)]
        run: Option<i64>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Prints a run's trainer injects as tape lines (NDJSON), ready to append to a scenario's
    /// tape (with the `inject.<layer>` feeds they name declared in its manifest).
    Injects {
        /// The SQLite database the app wrote.
        #[arg(long)]
        db: PathBuf,
        /// The run (the newest by default).
        #[arg(long)]
        run: Option<i64>,
    },
    /// Lists the outbox: every action, its status, attempts and the backend's reference.
    Outbox {
        /// The SQLite database the app or `cityops dispatch` wrote; with `--nats`, the
        /// workstation's cache the site is followed into (a temporary one without it).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The NATS server(s) of a site: show the site's outbox (every workstation's actions
        /// and what its dispatch workers did with them).
        #[arg(long, requires = "site")]
        nats: Option<String>,
        /// The site's id.
        #[arg(long, requires = "nats")]
        site: Option<String>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Sends a site's actions to its backends: takes them one at a time from the queue every
    /// dispatch worker of the site shares, and reports each outcome on the site. Runs until
    /// Ctrl-C; one killed mid-send leaves its action to another worker, with the same key.
    DispatchWorker {
        #[command(flatten)]
        at: site::SiteArgs,
        /// The backends file (fixtures/backends/README.md): the links this worker sends over.
        #[arg(long)]
        backends: PathBuf,
        /// This worker's name in the site's outbox (this machine's name by default).
        #[arg(long)]
        name: Option<String>,
    },
    /// Commits actions from the command line (each durably, its key printed once on disk), then
    /// delivers them.
    Dispatch {
        /// The backends file (fixtures/backends/README.md).
        #[arg(long)]
        backends: PathBuf,
        /// The outbox's database; with `--nats`, the workstation's cache (a temporary one
        /// without it).
        #[arg(long, required_unless_present = "nats")]
        db: Option<PathBuf>,
        /// The NATS server(s) of a site: commit the actions there, for the site's dispatch
        /// workers to send (the operator and role come from the site's roster).
        #[arg(long, requires = "site")]
        nats: Option<String>,
        /// The site's id.
        #[arg(long, requires = "nats")]
        site: Option<String>,
        /// The workstation the actions are made at, on a site (this machine's name by default).
        #[arg(long)]
        workstation: Option<String>,
        /// The backend id.
        #[arg(long)]
        backend: String,
        /// The action's parameters as JSON, for example
        /// '{"kind":"serviceRequest","serviceCode":"utility-crew","description":"Feeder trip"}'.
        #[arg(long)]
        params: String,
        /// Where: "lon,lat".
        #[arg(long)]
        at: String,
        /// The place's name.
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        incident: Option<String>,
        /// Who sends it (recorded in the audit trail).
        #[arg(long, default_value = "cli")]
        operator: String,
        /// operator, supervisor or trainer; the roster must give the operator that role.
        #[arg(long, default_value = "operator")]
        role: String,
        /// The environment variable that holds the operator's PIN, if the roster has one
        /// (always for supervisors and trainers).
        #[arg(long)]
        pin_env: Option<String>,
        /// How many actions to commit (a burst, each with its own key).
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Only commit; `cityops send` or the app delivers later.
        #[arg(long)]
        no_send: bool,
        /// Give up waiting for delivery after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Delivers what is queued in the outbox (resuming anything a crash left in flight).
    Send {
        #[arg(long)]
        backends: PathBuf,
        #[arg(long)]
        db: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Scores an exercise: a run of a scenario against the scenario's objectives.
    Score {
        /// The scenario folder (its manifest holds the objectives).
        scenario: PathBuf,
        /// The database the exercise was run in.
        #[arg(long)]
        db: PathBuf,
        /// The run (the newest by default).
        #[arg(long)]
        run: Option<i64>,
        /// Score what this trainee did (repeat for several, scored side by side): on an
        /// exercise site every trainee's cache holds everyone's decisions.
        #[arg(long)]
        operator: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Writes the after-action report of a run: score, timeline, charts (one HTML file).
    Report {
        #[arg(long)]
        db: PathBuf,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
        /// The run (the newest by default).
        #[arg(long)]
        run: Option<i64>,
        /// The scenario the run replayed, for its name and objectives.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Another trainee's run of the same scenario, scored side by side.
        #[arg(long)]
        versus: Option<i64>,
        /// A trainee of this run, scored by what they did (repeat for several, side by side):
        /// on an exercise site every trainee's cache holds everyone's decisions.
        #[arg(long)]
        operator: Vec<String>,
        /// Another team's run of the same scenario, as NAME=CACHE: the cache of its own site
        /// (its newest run), scored side by side (repeat for several teams).
        #[arg(long, value_parser = parse_team)]
        team: Vec<(String, PathBuf)>,
    },
    /// Checks a scenario: manifest, tape lines, feeds, assets, rules and objectives; prints every
    /// problem with its file and line, and exits 1 if there is one.
    Check {
        /// The scenario folder.
        scenario: PathBuf,
    },
    /// A site: one control room's shared state on NATS JetStream.
    Site {
        #[command(subcommand)]
        command: site::SiteCommand,
    },
    /// Publishes a scenario (its configuration, then its tape) into a site's stream: how a
    /// trainer runs a shared exercise. Publishing the same tape again adds nothing.
    Publish {
        #[command(flatten)]
        at: site::SiteArgs,
        /// The scenario folder (holding scenario.toml).
        #[arg(long)]
        scenario: PathBuf,
        /// `max` for as fast as the server takes it, or a factor such as 60.
        #[arg(long, default_value = "max")]
        speed: String,
    },
    /// The trainer's clock of an exercise site: publishes the scenario into it as the clock
    /// runs, with commands on standard input (pause, play, speed N, seek +S, inject ID LON LAT,
    /// end), so every trainee's workstation follows the trainer's clock.
    Train {
        #[command(flatten)]
        at: site::SiteArgs,
        /// The scenario folder (holding scenario.toml).
        #[arg(long)]
        scenario: PathBuf,
        /// The trainer (a trainer on the site's roster).
        #[arg(long)]
        trainer: String,
        /// The environment variable holding the trainer's PIN.
        #[arg(long)]
        pin_env: Option<String>,
        /// The trainer's workstation (this machine's name by default).
        #[arg(long)]
        workstation: Option<String>,
        /// The clock's speed: a factor of real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Start with the clock paused.
        #[arg(long)]
        paused: bool,
        /// The trainer's cache of the site (a temporary one without it).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// A headless workstation: applies the site's streams to its local cache, until Ctrl-C.
    Follow {
        #[command(flatten)]
        at: site::SiteArgs,
        /// The workstation's cache (SQLite; created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Exit once everything published so far is applied, and print the summary.
        #[arg(long)]
        until_idle: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Publishes one operator decision to a site and prints its outcome once applied:
    /// accepted, or refused with the reason (exit code 1).
    Act {
        #[command(flatten)]
        at: site::SiteArgs,
        /// The operator deciding (on the site's roster).
        #[arg(long)]
        operator: String,
        /// The environment variable holding the operator's PIN.
        #[arg(long)]
        pin_env: Option<String>,
        /// The workstation's cache: the decision is committed there first and waits there
        /// while the site cannot be reached. A temporary cache without it.
        #[arg(long)]
        db: Option<PathBuf>,
        /// The workstation the decision is made at (this machine's name by default).
        #[arg(long)]
        workstation: Option<String>,
        /// Print the outcome once committed (or published) instead of waiting for it.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the outcome.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: Duration,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        decision: site::ActCommand,
    },
    /// The operator roster: who may sign in with which role.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(cityops_engine::log_colour(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cityops: {e:#}");
            if e.is::<Tampered>() {
                ExitCode::from(EXIT_TAMPERED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A PIN from the environment variable `var`.
/// Prints the outbox's actions: one JSON array, or a line each.
fn print_actions(actions: Vec<cityops_engine::dto::ActionDto>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&actions)?);
        return Ok(());
    }
    for a in actions {
        let reference = a.reference.as_deref().unwrap_or("-");
        let error = a.last_error.as_deref().unwrap_or("");
        println!(
            "{:>5} {:<9} {:<12} {} attempts={} ref={reference} {error}",
            a.id,
            a.status.as_str(),
            a.backend,
            a.summary,
            a.attempts
        );
    }
    Ok(())
}

/// `cityops dispatch`'s parameters, place and place name, read from their flags.
fn action_where(
    params: &str,
    at: &str,
    label: String,
) -> anyhow::Result<(cityops_engine::dto::ActionParams, cityops_core::model::GeoPoint, String)> {
    let params = serde_json::from_str(params).map_err(|e| anyhow::anyhow!("--params: {e}"))?;
    let (lon, lat) = at
        .split_once(',')
        .ok_or_else(|| anyhow::anyhow!("--at {at:?}: expected lon,lat"))?;
    let at = cityops_core::model::GeoPoint::new(lon.trim().parse()?, lat.trim().parse()?)
        .ok_or_else(|| anyhow::anyhow!("--at {at:?}: out of range"))?;
    let label = if label.is_empty() {
        format!("{:.5}, {:.5}", at.lat, at.lon)
    } else {
        label
    };
    Ok((params, at, label))
}

fn read_pin(var: &str) -> anyhow::Result<String> {
    std::env::var(var).map_err(|_| anyhow::anyhow!("environment variable {var} (the PIN) is not set"))
}

/// Signs `name` in as `role` on the roster's authority, with the PIN from `pin_env`.
fn sign_in(
    store: &Store,
    name: &str,
    role: cityops_engine::dto::OperatorRole,
    pin_env: Option<&str>,
) -> anyhow::Result<()> {
    let pin = pin_env.map(read_pin).transpose()?;
    let outcome = store.sign_in(
        name,
        role.as_str(),
        pin.as_deref(),
        chrono::Utc::now().timestamp_millis(),
    )?;
    if outcome != cityops_store::SignIn::Accepted {
        anyhow::bail!("{}", cityops_engine::incidents::sign_in_refusal(name, role, &outcome));
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            scenario,
            db,
            speed,
            json,
        } => {
            let summary = if speed == "max" {
                headless::replay_max(&scenario, &db)?
            } else {
                let factor: f64 = speed
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--speed {speed:?}: expected max or a number"))?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
                rt.block_on(headless::replay_paced(&scenario, &db, factor))?
            };
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!(
                    "{}: {} messages, {} observations accepted, {} rejected",
                    summary.scenario, summary.messages, summary.accepted, summary.rejected
                );
                for layer in headless::layer_names() {
                    println!("  {layer:<10} {}", summary.per_layer.get(layer).copied().unwrap_or(0));
                }
                println!("  hash {}", summary.observation_set_hash);
                println!(
                    "  {} incidents, hash {}\n  {} ms",
                    summary.incidents, summary.incident_set_hash, summary.elapsed_ms
                );
            }
            Ok(())
        }
        Command::Ingest {
            config,
            db,
            nats,
            site,
            duration,
            health_every,
            json,
        } => {
            let config = LiveConfig::load(&config)?;
            let tmp = tempfile::tempdir()?;
            let store = Store::open(&db.unwrap_or_else(|| tmp.path().join("ingest.db")))?;
            let mut options = LiveOptions::default();
            let beside = match (nats, site) {
                (Some(nats), Some(site)) => {
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    options.tap = Some(tx);
                    let site_config = site::live_site_config(&config)?;
                    Some(site::feed_site(site::SiteArgs { nats, site }, site_config, rx))
                }
                _ => None,
            };
            live_run(config, store, options, duration, Some(health_every), json, beside)
        }
        Command::Record {
            config,
            out,
            db,
            duration,
            json,
        } => {
            let config = LiveConfig::load(&config)?;
            let tmp = tempfile::tempdir()?;
            let store = Store::open(&db.unwrap_or_else(|| tmp.path().join("record.db")))?;
            let options = LiveOptions {
                record: Some(out),
                ..LiveOptions::default()
            };
            live_run(
                config,
                store,
                options,
                duration,
                None,
                json,
                None::<std::future::Ready<anyhow::Result<()>>>,
            )
        }
        Command::Incidents { db, run, json } => incidents(&db, run, json),
        Command::Query {
            db,
            bbox,
            from,
            to,
            layer,
            run,
            json,
        } => query(&db, bbox, (from, to), layer, run, json),
        Command::Injects { db, run } => {
            let (store, run) = open_run(&db, run)?;
            for i in store.injects(run)? {
                println!("{}", i.line);
            }
            Ok(())
        }
        Command::Outbox {
            db,
            nats: Some(nats),
            site: Some(site),
            json,
        } => {
            let actions = site::outbox(site::SiteArgs { nats, site }, db.as_deref())?;
            print_actions(actions, json)
        }
        Command::Outbox { db, json, .. } => {
            let db = db.ok_or_else(|| anyhow::anyhow!("--db, or --nats and --site"))?;
            print_actions(Store::open(&db)?.actions(u32::MAX)?, json)
        }
        Command::DispatchWorker { at, backends, name } => {
            let specs = cityops_outbox::config::load(&backends)?;
            site::dispatch_worker(at, specs, name.unwrap_or_else(site::hostname))
        }
        Command::Dispatch {
            backends,
            db,
            nats: Some(nats),
            site: Some(site),
            workstation,
            backend,
            params,
            at,
            label,
            incident,
            operator,
            pin_env,
            count,
            no_send,
            timeout,
            ..
        } => {
            let specs = cityops_outbox::config::load(&backends)?;
            let (params, at, label) = action_where(&params, &at, label)?;
            let pin = pin_env.as_deref().map(read_pin).transpose()?;
            site::dispatch(
                site::SiteArgs { nats, site },
                site::SiteDispatch {
                    db,
                    specs,
                    workstation: workstation.unwrap_or_else(site::hostname),
                    operator,
                    pin,
                    backend,
                    params,
                    at,
                    label,
                    incident,
                    count,
                    wait: !no_send,
                    timeout: Duration::from_secs(timeout),
                },
            )
        }
        Command::Dispatch {
            backends,
            db,
            backend,
            params,
            at,
            label,
            incident,
            operator,
            role,
            pin_env,
            count,
            no_send,
            timeout,
            ..
        } => {
            let db = db.ok_or_else(|| anyhow::anyhow!("--db, or --nats and --site"))?;
            let specs = cityops_outbox::config::load(&backends)?;
            let (params, at, label) = action_where(&params, &at, label)?;
            let role = cityops_engine::dto::OperatorRole::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role {role:?}: operator, supervisor or trainer"))?;
            // The command line signs in like a window does: on the roster's authority.
            sign_in(&Store::open(&db)?, &operator, role, pin_env.as_deref())?;
            let burst = cityops_outbox::headless::Burst {
                backend,
                operator: cityops_engine::dto::OperatorDto { name: operator, role },
                params,
                at,
                label,
                incident,
                count,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async {
                let outbox = cityops_outbox::headless::commit_burst(
                    &db,
                    specs.clone(),
                    &burst,
                    !no_send,
                    &mut std::io::stdout().lock(),
                )?;
                if no_send {
                    return Ok(());
                }
                let (queued, failed) =
                    cityops_outbox::headless::send_until_idle(&db, Some(outbox), specs, Duration::from_secs(timeout))
                        .await?;
                eprintln!("cityops: {queued} actions still queued, {failed} failed");
                anyhow::ensure!(queued == 0, "{queued} actions still queued after {timeout} s");
                Ok(())
            })
        }
        Command::Send { backends, db, timeout } => {
            let specs = cityops_outbox::config::load(&backends)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let (queued, failed) = rt.block_on(cityops_outbox::headless::send_until_idle(
                &db,
                None,
                specs,
                Duration::from_secs(timeout),
            ))?;
            eprintln!("cityops: {queued} actions still queued, {failed} failed");
            anyhow::ensure!(queued == 0, "{queued} actions still queued after {timeout} s");
            Ok(())
        }
        Command::Score {
            scenario,
            db,
            run,
            operator,
            json,
        } if !operator.is_empty() => {
            let scenario = cityops_engine::scenario::Scenario::load(&scenario)?;
            let (store, run) = open_run(&db, run)?;
            let scoring = scoring_of(&scenario);
            let mut trainees = Vec::new();
            for name in &operator {
                let score = cityops_engine::training::score_run_of(&store, run, scoring, Some(name))?;
                trainees.push(serde_json::json!({ "operator": name, "score": score }));
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "scenario": scenario.manifest.name, "run": run, "trainees": trainees })
                );
            } else {
                println!("{}: run {run}, side by side", scenario.manifest.name);
                for t in &trainees {
                    println!(
                        "  {:<16} {} of {} points",
                        t["operator"].as_str().unwrap_or_default(),
                        t["score"]["points"],
                        t["score"]["maxPoints"]
                    );
                }
            }
            Ok(())
        }
        Command::Score {
            scenario,
            db,
            run,
            json,
            ..
        } => {
            let scenario = cityops_engine::scenario::Scenario::load(&scenario)?;
            let (store, run) = open_run(&db, run)?;
            let score = cityops_engine::training::score_run(&store, run, scoring_of(&scenario))?;
            if json {
                println!("{}", serde_json::to_string(&score)?);
            } else {
                println!(
                    "{}: run {run}, {} of {} points",
                    scenario.manifest.name, score.points, score.max_points
                );
                for o in &score.objectives {
                    println!(
                        "  {:<8} {:<4} {}: {}",
                        format!("{:?}", o.outcome).to_lowercase(),
                        o.points,
                        o.title,
                        o.detail
                    );
                }
            }
            Ok(())
        }
        Command::Report {
            db,
            out,
            run,
            scenario,
            versus,
            operator,
            team,
        } => {
            let (store, run) = open_run(&db, run)?;
            let scenario = scenario
                .map(|s| cityops_engine::scenario::Scenario::load(&s))
                .transpose()?;
            anyhow::ensure!(
                (operator.is_empty() && team.is_empty()) || scenario.is_some(),
                "scoring trainees or teams side by side needs the scenario (--scenario DIR) for its objectives"
            );
            let stores = team
                .iter()
                .map(|(_, db)| Store::open(db).map_err(anyhow::Error::from))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut teams = Vec::new();
            for ((name, db), store) in team.iter().zip(&stores) {
                let run = store
                    .latest_run()?
                    .ok_or_else(|| anyhow::anyhow!("team {name}: {} holds no runs", db.display()))?;
                teams.push(cityops_engine::report::Team {
                    name: name.clone(),
                    store,
                    run,
                });
            }
            let html = cityops_engine::report::render(&cityops_engine::report::ReportInput {
                store: &store,
                run,
                scenario: scenario.as_ref(),
                versus,
                trainees: &operator,
                teams: &teams,
                map_png: None,
            })?;
            std::fs::write(&out, html)?;
            println!("{}", out.display());
            Ok(())
        }
        Command::Check { scenario } => {
            let problems = cityops_engine::scenario::check(&scenario);
            for p in &problems {
                println!("{p}");
            }
            anyhow::ensure!(
                problems.is_empty(),
                "{} problems in {}",
                problems.len(),
                scenario.display()
            );
            println!("{}: no problems", scenario.display());
            Ok(())
        }
        Command::Site {
            command:
                site::SiteCommand::Init {
                    at,
                    replicas,
                    exercise,
                    ack_wait,
                },
        } => site::init(at, replicas, exercise, ack_wait),
        Command::Publish { at, scenario, speed } => site::publish(at, &scenario, &speed),
        Command::Train {
            at,
            scenario,
            trainer,
            pin_env,
            workstation,
            speed,
            paused,
            db,
        } => train::train(train::Train {
            at,
            scenario,
            trainer,
            pin: pin_env.as_deref().map(read_pin).transpose()?,
            workstation: workstation.unwrap_or_else(site::hostname),
            speed,
            paused,
            db,
        }),
        Command::Follow {
            at,
            db,
            until_idle,
            json,
        } => site::follow(at, &db, until_idle, json),
        Command::Act {
            at,
            operator,
            pin_env,
            db,
            workstation,
            no_wait,
            timeout,
            json,
            decision,
        } => site::act(
            site::Act {
                at,
                operator,
                pin_env,
                db,
                workstation: workstation.unwrap_or_else(site::hostname),
                no_wait,
                timeout,
                json,
            },
            decision,
        ),
        Command::Roster {
            command:
                RosterCommand::Add {
                    name,
                    role,
                    db: None,
                    nats: Some(nats),
                    site: Some(site),
                    pin_env,
                    ..
                },
        } => {
            let pin = pin_env.as_deref().map(read_pin).transpose()?;
            site::roster_add(site::SiteArgs { nats, site }, &name, &role, pin.as_deref())
        }
        Command::Roster {
            command:
                RosterCommand::Add {
                    name,
                    role,
                    db,
                    pin_env,
                    by,
                    by_pin_env,
                    ..
                },
        } => {
            let db = db.ok_or_else(|| anyhow::anyhow!("--db or --nats and --site"))?;
            let store = Store::open(&db)?;
            let pin = pin_env.as_deref().map(read_pin).transpose()?;
            let has_supervisor = store.roster()?.iter().any(|e| e.role == "supervisor");
            let (by, by_role) = match by {
                Some(by) => {
                    sign_in(
                        &store,
                        &by,
                        cityops_engine::dto::OperatorRole::Supervisor,
                        by_pin_env.as_deref(),
                    )?;
                    (by, "supervisor")
                }
                None if has_supervisor => {
                    anyhow::bail!("the roster has supervisors: a change needs one of them (--by NAME --by-pin-env VAR)")
                }
                // The first supervisor can only come from whoever holds the database file.
                None => ("cityops roster add".to_owned(), "system"),
            };
            store.roster_set(
                &name,
                &role,
                pin.as_deref(),
                &by,
                by_role,
                chrono::Utc::now().timestamp_millis(),
            )?;
            println!("{name}: {role}{}", if pin.is_some() { ", PIN set" } else { "" });
            Ok(())
        }
        Command::Roster {
            command: RosterCommand::List { db },
        } => {
            anyhow::ensure!(db.exists(), "{}: no such database", db.display());
            for e in Store::open(&db)?.roster()? {
                let locked = e
                    .locked_until_ms
                    .filter(|t| *t > chrono::Utc::now().timestamp_millis())
                    .map(|_| " (locked)")
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<10} {}{locked}",
                    e.name,
                    e.role,
                    if e.has_pin { "PIN" } else { "no PIN" }
                );
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { db, key_dir },
        } => {
            let store = Store::open_read_only(&db)?;
            let store = match key_dir {
                Some(dir) => store.with_audit_dir(dir),
                None => store,
            };
            let report = store.check_audit()?;
            println!("{report}");
            match report.outcome() {
                AuditOutcome::Intact => Ok(()),
                AuditOutcome::Tampered => Err(Tampered(db.display().to_string()).into()),
                AuditOutcome::Incomplete => {
                    anyhow::bail!("could not check the audit trail of {} completely", db.display())
                }
            }
        }
        Command::Decode {
            format,
            file,
            layer,
            topic,
            mapping,
            received,
            json,
        } => decode(
            &format,
            &file,
            &layer,
            topic.as_deref(),
            mapping.as_deref(),
            received,
            json,
        ),
        Command::Quarantine { db, run, json } => {
            let (store, run) = open_run(&db, run)?;
            for q in store.quarantine(run)? {
                let time = chrono::DateTime::from_timestamp_millis(q.received_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                if json {
                    let body = String::from_utf8_lossy(&q.body[..q.body.len().min(512)]).into_owned();
                    println!(
                        "{}",
                        serde_json::json!({"run": run, "feed": q.feed, "seq": q.seq, "place": q.place, "reason": q.reason, "received": time, "body": body})
                    );
                } else {
                    println!("{time} {} #{} {}: {}", q.feed, q.seq, q.place, q.reason);
                }
            }
            Ok(())
        }
    }
}

fn incidents(db: &Path, run: Option<i64>, json: bool) -> anyhow::Result<()> {
    let (store, run) = open_run(db, run)?;
    let incidents = store.stored_incidents(run)?;
    // Written through a locked handle so a closed pipe (`| head`) ends the command with an error
    // instead of a panic.
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run, "incidents": incidents}))?
        )?;
        return Ok(());
    }
    writeln!(out, "run {run}: {} incidents", incidents.len())?;
    for i in &incidents {
        writeln!(
            out,
            "{} [{} {} {}{}{}] {} ({} members)",
            i.number,
            i.severity,
            // "active" (still a problem) or "cleared"; whether anyone closed it is the lifecycle.
            match i.status.as_str() {
                "open" => "active",
                other => other,
            },
            i.lifecycle,
            i.acknowledged_by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default(),
            i.owner.as_deref().map(|o| format!(", {o}'s")).unwrap_or_default(),
            i.title,
            i.members.len()
        )?;
        for m in &i.members {
            writeln!(
                out,
                "  - {} {} [{} {:.2}] {}",
                m.entity, m.kind, m.rule, m.confidence, m.explanation
            )?;
        }
    }
    Ok(())
}

/// Opens a database a replay, the app or a workstation wrote, and picks a run of it: `run`,
/// or the newest.
fn open_run(db: &Path, run: Option<i64>) -> anyhow::Result<(Store, i64)> {
    anyhow::ensure!(db.exists(), "{}: no such database", db.display());
    let store = Store::open(db)?;
    let run = match run {
        Some(r) => r,
        None => store
            .latest_run()?
            .ok_or_else(|| anyhow::anyhow!("{} holds no runs", db.display()))?,
    };
    Ok((store, run))
}

/// What `cityops score` scores a run against: the scenario's objectives, and its rules for
/// escalations up to the scenario's end.
fn scoring_of(scenario: &cityops_engine::scenario::Scenario) -> cityops_engine::training::Scoring<'_> {
    cityops_engine::training::Scoring {
        objectives: &scenario.manifest.objectives,
        rules: scenario.rules.as_ref(),
        until_ms: scenario.end_ms(),
    }
}

/// `cityops query`: what happened in a box and a time range.
fn query(
    db: &Path,
    bbox: cityops_core::grid::BBox,
    (from, to): (i64, i64),
    layer: Option<cityops_core::model::Layer>,
    run: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(from <= to, "--from is after --to");
    let (store, run) = open_run(db, run)?;
    let AreaAnswer {
        observations: found,
        per_kind,
    } = cityops_engine::area_query::area(&store, run, bbox, (from, to), i64::MAX, layer)?;
    let per_kind: std::collections::BTreeMap<&str, usize> =
        per_kind.iter().map(|(kind, (_, n))| (kind.as_str(), *n)).collect();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "run": run,
            "bbox": [bbox.min.lon, bbox.min.lat, bbox.max.lon, bbox.max.lat],
            "fromMs": from,
            "toMs": to,
            "count": found.len(),
            "perKind": per_kind,
            "observations": found,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(out, "run {run}: {} observations", found.len())?;
    for (kind, n) in &per_kind {
        writeln!(out, "  {n:>6} {kind}")?;
    }
    for o in &found {
        let at = chrono::DateTime::from_timestamp_millis(o.observed_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        writeln!(out, "{at} {} {} {} {}", o.layer.as_str(), o.kind, o.entity, o.title)?;
    }
    Ok(())
}

/// A `--bbox` that is not `west,south,east,north` in degrees.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a box west,south,east,north in degrees (west < east, south < north)")]
struct BBoxError {
    text: String,
}

fn parse_bbox(text: &str) -> Result<cityops_core::grid::BBox, BBoxError> {
    let bad = || BBoxError { text: text.to_owned() };
    let v: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [w, s, e, n] = v[..] else { return Err(bad()) };
    cityops_core::grid::BBox::new(w, s, e, n).ok_or_else(bad)
}

/// A command-line duration that [`parse_duration`] cannot read.
#[derive(Debug, thiserror::Error)]
enum DurationError {
    /// The text does not start with a whole number.
    #[error("{text:?} is not a duration such as 90s, 10m or 2h")]
    NotANumber { text: String },
    /// The number is followed by something other than a known unit.
    #[error("{text:?}: unknown unit {unit:?} (s, m or h)")]
    UnknownUnit { text: String, unit: String },
}

/// Parses `90s`, `10m`, `2h` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let (number, unit) = text.trim().split_at(
        text.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.trim().len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| DurationError::NotANumber { text: text.to_owned() })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    Ok(Duration::from_secs(secs))
}

/// A `--received` time that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time such as 2025-10-26T22:50:32Z")]
struct ReceivedError {
    text: String,
}

/// Parses `--received` into milliseconds since the epoch.
fn parse_received(text: &str) -> Result<i64, ReceivedError> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| ReceivedError { text: text.to_owned() })
}

/// Runs the live feeds until Ctrl-C or `duration`, with `beside` (a site's publisher) running
/// next to them until the ingest has stopped and handed it everything.
#[allow(clippy::too_many_arguments)]
fn live_run<F>(
    config: LiveConfig,
    store: Store,
    options: LiveOptions,
    duration: Option<Duration>,
    health_every: Option<Duration>,
    json: bool,
    beside: Option<F>,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let health = Health::default();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let runner = tokio::spawn(live::run(config, store, options, health.clone(), stop_rx));
        let beside = beside.map(tokio::spawn);
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut report = tokio::time::interval(health_every.unwrap_or(Duration::from_secs(3600)));
        report.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = report.tick(), if health_every.is_some() => print_health(&health, json)?,
            }
        }
        let _ = stop_tx.send(true);
        let summary = runner.await??;
        if let Some(b) = beside {
            // The ingest dropped its tap: the publisher sends what it holds and ends.
            b.await??;
        }
        print_health(&health, json)?;
        let accepted: u64 = summary.stats.accepted.values().sum();
        if json {
            println!("{}", serde_json::json!({"run": summary.run, "messages": summary.stats.messages, "accepted": accepted, "rejected": summary.stats.rejected}));
        } else {
            println!("run {}: {} messages, {} observations accepted, {} rejected", summary.run, summary.stats.messages, accepted, summary.stats.rejected);
        }
        Ok(())
    })
}

fn print_health(health: &Health, json: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    for h in health.snapshot(now) {
        if json {
            println!("{}", serde_json::to_string(&serde_json::json!({"health": h}))?);
        } else {
            let age = h
                .last_message_ms
                .map(|t| format!("{:.1}s ago", (now - t) as f64 / 1000.0))
                .unwrap_or_else(|| "never".into());
            eprintln!(
                "{:<20} {:<10} {:<13} last {:<12} {:>5}/min lag {:>7} rejected {:<4} {}{}",
                h.id,
                h.transport,
                if h.connected { "connected" } else { "DISCONNECTED" },
                age,
                h.messages_per_minute,
                h.lag_ms.map(|l| format!("{l}ms")).unwrap_or_else(|| "-".into()),
                h.rejected,
                if h.stale { "STALE " } else { "" },
                h.last_error
                    .as_deref()
                    .or(h.last_reasons.last().map(String::as_str))
                    .unwrap_or(""),
            );
        }
    }
    Ok(())
}

fn decode(
    format: &str,
    file: &Path,
    layer: &str,
    topic: Option<&str>,
    mapping: Option<&Path>,
    received: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let format = format.parse().map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let layer: Layer = layer.parse().map_err(|e| anyhow::anyhow!("--layer: {e}"))?;
    let mapping = match mapping {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            serde_json::to_value(table)?
        }
        None => serde_json::Value::Null,
    };
    let body = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let spec = FeedSpec {
        id: "decode".into(),
        layer,
        format,
        name: String::new(),
        mapping,
    };
    let base = file.parent().unwrap_or(Path::new("."));
    // A file is a message received some time ago: its timestamps are judged against when it
    // arrived, not against today, or any archive older than the plausibility window would
    // decode to nothing. The payload's own header time stands in when no arrival is given.
    let (received_ms, source) = match (received, feeds::header_time(format, &body)) {
        (Some(ms), _) => (ms, "--received"),
        (None, Some(ms)) => (ms, "payload header"),
        (None, None) => (chrono::Utc::now().timestamp_millis(), "clock"),
    };
    let arrival = feeds::mapping::rfc3339(received_ms);
    let ctx = MessageContext {
        feed: "decode",
        layer,
        seq: 1,
        received_ms,
        topic,
    };
    match feeds::decode_once(&spec, base, ctx, &body) {
        Ok(decoded) => {
            if json {
                let rejected: Vec<_> = decoded
                    .rejected
                    .iter()
                    .map(|r| serde_json::json!({"place": r.place, "reason": r.reason}))
                    .collect();
                let received = serde_json::json!({"time": arrival, "from": source});
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"received": received, "observations": decoded.observations, "rejected": rejected})
                    )?
                );
            } else {
                println!("received {arrival} ({source})");
                for o in &decoded.observations {
                    println!(
                        "{} {} {} {} at {:.6},{:.6}: {}",
                        o.entity,
                        o.kind,
                        o.severity.as_str(),
                        o.observed_ms,
                        o.position.lat,
                        o.position.lon,
                        o.title
                    );
                }
                for r in &decoded.rejected {
                    println!("refused {}: {}", r.place, r.reason);
                }
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": {"place": e.place, "reason": e.reason}})
                );
            }
            anyhow::bail!("{}: refused at {}: {}", file.display(), e.place, e.reason)
        }
    }
}

/// `NAME=CACHE` of `cityops report --team`.
fn parse_team(s: &str) -> anyhow::Result<(String, PathBuf)> {
    match s.split_once('=') {
        Some((name, db)) if !name.trim().is_empty() && !db.is_empty() => {
            Ok((name.trim().to_owned(), PathBuf::from(db)))
        }
        _ => anyhow::bail!("{s:?} is not NAME=CACHE (for example red=team-red.db)"),
    }
}
