//! The engine of cityops: the [`Engine`] handle that the desktop shell and the `cityops` CLI
//! drive, over the crates of the data path (decoders, store, live, outbox; `ARCHITECTURE.md`).
//!
//! # Layout
//! - [`engine`]: the [`Engine`] handle: an actor task that paces the replay (or follows live
//!   feeds), takes typed requests in order and pushes coalesced diffs to subscribers.
//! - [`scenario`]: loading a scenario folder (manifest, tape, assets, rules).
//! - [`replay`]: the replay clock over a scenario, synchronous and clock-free, with the picture
//!   and its [`timeline`] index for seeking.
//! - [`live_mode`]: the engine on live feeds (`cityops-live`'s transports) instead of a tape.
//! - [`site_mode`]: the engine as a workstation of a site, folding the site's stream.
//! - [`incidents`]: the incident desk: the correlator driven by the replay clock, checkpoints for
//!   seeking, the operators' sign-in, lifecycle, SOP ticks and manual decisions.
//! - [`training`] and [`report`]: exercise scores, and the after-action report with its charts.
//! - [`tiles`]: offline basemap archives (MBTiles) served as plain vector tiles.
//! - [`headless`]: whole-scenario replays for the `cityops` CLI.
//! - [`area_query`]: what happened in a box and a time range (the map's box, `cityops query`).
//! - [`follow`]: a workstation of a site: the site's stream (`cityops-site`) folded in order
//!   through the same pipeline and desk into the local cache.
//! - [`trainer_clock`]: the trainer's clock of an exercise site, which publishes the scenario
//!   into it (`cityops train` and a trainer's window).
//! - [`error`]: the engine's errors and their flattening into `ApiError` at the IPC edge (the
//!   wire types are [`dto`], re-exported from `cityops-dto`).
//!
//! Modules depend downwards in this list's spirit and never in a circle: `replay` knows the
//! desk, the report and the timeline; `engine` and `live_mode` know `replay`, not the reverse.

pub mod area_query;
pub mod engine;
pub mod error;
pub mod follow;
pub mod headless;
pub mod incidents;
pub mod live_mode;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod site_mode;
pub mod tiles;
pub mod timeline;
pub mod trainer_clock;
pub mod training;

/// The wire types of the engine's API, from their own crate.
pub use cityops_dto as dto;
pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
pub use live_mode::LiveEngineConfig;
pub use site_mode::SiteEngineConfig;

/// Whether logs written to a stream are coloured: only on a terminal, and never when
/// `NO_COLOR` is set to something (no-color.org), so a log file or a pipe gets plain text.
pub fn log_colour(stream_is_terminal: bool) -> bool {
    colour_for(std::env::var_os("NO_COLOR").as_deref(), stream_is_terminal)
}

fn colour_for(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Drops a large structure (the picture or the incidents a seek replaced: tens of thousands
/// of allocations to free) on a thread of its own, so that freeing the old state does not
/// delay the answer that shows the new one.
pub(crate) fn drop_aside<T: Send + 'static>(value: T) {
    if let Err(e) = std::thread::Builder::new()
        .name("drop-aside".into())
        .spawn(move || drop(value))
    {
        // The failed spawn dropped the closure, and the value with it, on this thread.
        tracing::debug!(error = %e, "no thread to drop on; dropped in place");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        let set = std::ffi::OsStr::new("1");
        let empty = std::ffi::OsStr::new("");
        assert!(colour_for(None, true));
        assert!(colour_for(Some(empty), true), "an empty NO_COLOR asks for nothing");
        assert!(!colour_for(Some(set), true));
        assert!(!colour_for(None, false), "a pipe or a file gets plain text");
    }
}
