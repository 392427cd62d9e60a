//! The cityops desktop shell: the only crate that knows Tauri.
//!
//! # Layout
//! - `run` builds the [`cityops_engine::Engine`] from the command line and hands it to Tauri.
//! - `run` starts a scenario replay, live mode with `--config <feeds.toml>`, or a workstation
//!   of a site with `--nats URL --site ID` (its wall display with `--wall`, or the trainer's
//!   window of an exercise site with `--train DIR`).
//! - [`commands`]: one module per domain; each declares its commands once, in one `commands!`
//!   invocation (one line onto the engine each), from which the handler, and in `build.rs` the
//!   permissions, the capabilities and the TypeScript client, are made.
//! - [`windows`]: the trainer view's and the wall display's windows.
//! - [`tiles`]: the `maptiles://` URI scheme that serves the offline basemap from the engine.
//!
//! Live data reaches the UI through `tauri::ipc::Channel` (see `subscribe` in `commands/replay.rs`),
//! never through global events: a channel is ordered, per subscriber, and cheap for small JSON.

mod commands;
mod tiles;
mod windows;

use std::path::PathBuf;

use cityops_engine::{Engine, EngineConfig};
use cityops_engine::{LiveEngineConfig, SiteEngineConfig};
use clap::Parser;
use tauri::Manager;

/// Command-line options of the desktop app.
#[derive(Parser, Debug)]
#[command(name = "cityops-desktop", about = "The cityops control-room window")]
struct Cli {
    /// The scenario folder to load (defaults to the demo storm scenario).
    #[arg(long, env = "CITYOPS_SCENARIO")]
    scenario: Option<PathBuf>,
    /// The SQLite database (defaults to live.db in the app's data folder in live mode, and to
    /// exercise.db for a replay: live and exercise never share an outbox).
    #[arg(long, env = "CITYOPS_DB")]
    db: Option<PathBuf>,
    /// The folder of basemap archives (defaults to the repository's maps/).
    #[arg(long, env = "CITYOPS_MAPS")]
    maps: Option<PathBuf>,
    /// The backends file operators' actions go to (defaults to the demo's; in a replayed
    /// scenario every action is an exercise and is recorded, never sent).
    #[arg(long, env = "CITYOPS_BACKENDS")]
    backends: Option<PathBuf>,
    /// A live feed configuration (fixtures/feeds/README.md): run its feeds on the wall clock
    /// instead of replaying a scenario.
    #[arg(long, env = "CITYOPS_CONFIG", conflicts_with = "scenario")]
    config: Option<PathBuf>,
    /// The NATS server(s) of a site: open as a workstation of the site (with --site) instead
    /// of replaying a scenario. The NATS user and password come from CITYOPS_NATS_USER and
    /// CITYOPS_NATS_PASSWORD.
    #[arg(long, env = "CITYOPS_NATS", requires = "site", conflicts_with_all = ["scenario", "config"])]
    nats: Option<String>,
    /// The site's id.
    #[arg(long, env = "CITYOPS_SITE", requires = "nats")]
    site: Option<String>,
    /// This workstation's name in the site (the machine's name by default).
    #[arg(long, env = "CITYOPS_WORKSTATION")]
    workstation: Option<String>,
    /// Open as the site's wall display: the read-only wall window, fullscreen, and nothing
    /// that decides (run it as a NATS user that may not publish, `wall` in fixtures/nats).
    #[arg(long, env = "CITYOPS_WALL", requires = "nats")]
    wall: bool,
    /// The monitor the wall display fills, counting from 0 (the primary one by default).
    #[arg(long, env = "CITYOPS_MONITOR", requires = "wall")]
    monitor: Option<usize>,
    /// Open as the trainer of an exercise site, with this scenario folder: the trainer view
    /// holds the exercise's clock (play, pause, speed, seek ahead), publishes the scenario into
    /// the site as it runs, and places injects, while the trainees work at their own
    /// workstations. The trainer signs in with a trainer's PIN from the site's roster.
    #[arg(long, env = "CITYOPS_TRAIN", requires = "nats", conflicts_with = "wall")]
    train: Option<PathBuf>,
}

/// The repository the binary was built from: development builds find the demo there.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Keeps every window on the app's own pages: a link or script in feed text that tries to
/// navigate a window elsewhere (a web page, a `javascript:` or `file:` URL) is refused, so no
/// remote page can ever run inside a window that holds IPC permissions. The report's sandboxed
/// frame loads `about:srcdoc`, which stays allowed.
fn navigation_guard<R: tauri::Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|webview, url| {
            let app_page = matches!((url.scheme(), url.host_str()), ("tauri", Some("localhost")) | ("http" | "https", Some("tauri.localhost")))
                // `tauri dev` serves the pages from Vite on this machine.
                || (tauri::is_dev() && url.scheme() == "http" && url.host_str() == Some("localhost"));
            let allowed = app_page || matches!(url.as_str(), "about:blank" | "about:srcdoc");
            if !allowed {
                tracing::warn!(window = webview.label(), %url, "navigation away from the app refused");
            }
            allowed
        })
        .build()
}

/// This machine's name, for the workstation the operators' decisions are made at.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "workstation".into())
}

/// Starts the app; returns when the window closes.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(cityops_engine::log_colour(std::io::IsTerminal::is_terminal(
            &std::io::stdout(),
        )))
        .init();
    let cli = Cli::parse();
    let wall = cli.wall;
    let train = cli.train.is_some();
    tauri::Builder::default()
        .setup(move |app| {
            let db_path = match &cli.db {
                Some(p) => p.clone(),
                None => {
                    let dir = app.path().app_data_dir()?;
                    std::fs::create_dir_all(&dir)?;
                    // A replay's exercise outbox must never meet live actions, so each mode
                    // keeps its own database.
                    match &cli.site {
                        // A workstation's cache of its site, one per site.
                        Some(site) => dir.join(format!("site-{site}.db")),
                        None => dir.join(if cli.config.is_some() { "live.db" } else { "exercise.db" }),
                    }
                }
            };
            let maps_dir = cli.maps.clone().unwrap_or_else(|| PathBuf::from(REPO).join("maps"));
            let backends = Some(
                cli.backends
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(REPO).join("fixtures/backends/helsinki.toml")),
            );
            // The engine spawns its task on Tauri's tokio runtime, so it is started inside it.
            let engine = match (&cli.nats, &cli.site, &cli.config) {
                (Some(nats), Some(site), _) => {
                    let config = SiteEngineConfig {
                        nats: nats.clone(),
                        site: site.clone(),
                        db_path,
                        maps_dir,
                        backends,
                        workstation: cli.workstation.clone().unwrap_or_else(hostname),
                        read_only: cli.wall,
                        train: cli.train.clone(),
                    };
                    tracing::info!(?config, "starting as a workstation of a site");
                    tauri::async_runtime::block_on(Engine::start_site(config))
                }
                (_, _, Some(feeds)) => {
                    let config = LiveEngineConfig {
                        feeds: feeds.clone(),
                        db_path,
                        maps_dir,
                        backends,
                    };
                    tracing::info!(?config, "starting engine in live mode");
                    tauri::async_runtime::block_on(async { Engine::start_live(config) })
                }
                _ => {
                    let scenario_dir = cli
                        .scenario
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(REPO).join("fixtures/scenarios/helsinki-storm"));
                    let config = EngineConfig {
                        scenario_dir,
                        db_path,
                        maps_dir,
                        backends,
                    };
                    tracing::info!(?config, "starting engine");
                    tauri::async_runtime::block_on(async { Engine::start(config) })
                }
            }
            .inspect_err(|e| tracing::error!(error = ?e, "cannot start the engine"))?;
            if let Some(window) = app.get_webview_window("main") {
                let title = match (&cli.site, &cli.workstation) {
                    (Some(site), Some(ws)) => format!("cityops: {} · site {site} · {ws}", engine.scenario().name),
                    (Some(site), None) => format!("cityops: {} · site {site}", engine.scenario().name),
                    _ => format!("cityops: {}", engine.scenario().name),
                };
                window.set_title(&title)?;
            }
            if cli.wall {
                // The operator's window stays hidden (its capability could act); the wall
                // window, which can only follow, fills the chosen monitor.
                if let Some(main) = app.get_webview_window("main") {
                    main.hide()?;
                }
                windows::open_wall_display(app.handle(), &engine)?;
                if let Some(wall) = app.get_webview_window(windows::WALL) {
                    let monitors = wall.available_monitors()?;
                    if let Some(m) = cli.monitor.and_then(|i| monitors.get(i)) {
                        wall.set_position(*m.position())?;
                    }
                    wall.set_fullscreen(true)?;
                }
            }
            if cli.train.is_some() {
                // The trainer's machine shows the trainer view: the operator's window, whose
                // capability works incidents and dispatches, stays hidden.
                if let Some(main) = app.get_webview_window("main") {
                    main.hide()?;
                }
                windows::open_trainer_view(app.handle(), &engine)?;
            }
            app.manage(engine);
            Ok(())
        })
        .on_window_event(move |window, event| {
            // A wall display is its wall window: closing it ends the app, whose operator's
            // window is hidden.
            if wall && window.label() == windows::WALL && matches!(event, tauri::WindowEvent::Destroyed) {
                window.app_handle().exit(0);
            }
            // A trainer's machine is its trainer view: closing it ends the app.
            if train && window.label() == windows::TRAINER && matches!(event, tauri::WindowEvent::Destroyed) {
                window.app_handle().exit(0);
            }
            // Closing the trainer view hands the clock back to the trainee's window.
            if window.label() == windows::TRAINER && matches!(event, tauri::WindowEvent::Destroyed) {
                if let Some(engine) = window.try_state::<Engine>() {
                    if let Err(e) = engine.set_trainer_view(false) {
                        tracing::warn!(error = %e, "cannot hand the clock back from the trainer view");
                    }
                }
            }
        })
        .plugin(navigation_guard())
        .register_asynchronous_uri_scheme_protocol("maptiles", tiles::handle)
        .invoke_handler(commands::handler())
        .run(tauri::generate_context!())
        .expect("the Tauri application failed");
}
