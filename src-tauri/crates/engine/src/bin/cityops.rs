//! `cityops`: the headless command line. It runs on machines with no display.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cityops_engine::headless;

#[derive(Parser)]
#[command(name = "cityops", version, about = "cityops without a window: replay scenarios, inspect stores")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Replays a large generated tape through the pipeline and compares it with raw inserts.
    Bench {
        /// Observations in the generated tape.
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        /// Where the two benchmark databases go (a temporary folder by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cityops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay { scenario, db, speed, json } => {
            let summary = if speed == "max" {
                headless::replay_max(&scenario, &db)?
            } else {
                let factor: f64 = speed.parse().map_err(|_| anyhow::anyhow!("--speed {speed:?}: expected max or a number"))?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
                rt.block_on(headless::replay_paced(&scenario, &db, factor))?
            };
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{}: {} messages, {} observations accepted, {} rejected", summary.scenario, summary.messages, summary.accepted, summary.rejected);
                for layer in headless::layer_names() {
                    println!("  {layer:<10} {}", summary.per_layer.get(layer).copied().unwrap_or(0));
                }
                println!("  hash {}\n  {} ms", summary.observation_set_hash, summary.elapsed_ms);
            }
            Ok(())
        }
        Command::Bench { observations, dir } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            let r = cityops_engine::bench::run(observations, &dir)?;
            println!("{}", serde_json::to_string(&r)?);
            println!(
                "pipeline {:.0} obs/s, raw batched insert {:.0} rows/s, ratio {:.2}, peak RSS {:.0} MiB ({} observations)",
                r.pipeline_per_sec, r.raw_insert_per_sec, r.ratio, r.peak_rss_mib, r.observations
            );
            Ok(())
        }
    }
}
