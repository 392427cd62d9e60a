//! Everything in cityops that does IO.
//!
//! # Layout
//! - [`pipeline`]: decode, quarantine, group-commit into the store.
//! - [`config`] and [`live`]: the live feed configuration, one task per transport (HTTP poll,
//!   MQTT, TCP, drop folder), feed health, recording, and the engine's live mode.
//! - [`scenario`]: loading a scenario folder (manifest and tape).
//! - [`replay`]: the replay clock over a scenario, synchronous and clock-free.
//! - [`engine`]: the [`Engine`] handle: an async task that paces the replay and pushes coalesced
//!   diffs to subscribers; what the desktop shell and the CLI drive.
//! - [`tls`]: TLS for MQTT and TCP (CoT), one rustls stack.
//! - [`tiles`]: offline basemap archives (MBTiles) served as plain vector tiles.
//! - [`error`]: the engine's errors and their flattening into `ApiError` at the IPC edge
//!   (the wire types are [`dto`], re-exported from `cityops-dto`).
//! - [`incidents`]: the incident desk: the correlator driven by the replay clock, checkpoints for
//!   seeking, the operators' sign-in, lifecycle, SOP ticks and manual decisions.
//! - [`headless`]: whole-scenario replays for the `cityops` CLI.
//! - [`bench`]: the ingest benchmark (`cityops bench`).

pub mod bench;
pub mod engine;
pub mod error;
pub mod headless;
pub mod incidents;
pub mod live_mode;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod tiles;
pub mod timeline;
pub mod training;

/// The wire types of the engine's API, from their own crate.
pub use cityops_dto as dto;
pub use engine::{Engine, EngineConfig};
pub use live_mode::LiveEngineConfig;
pub use error::EngineError;

/// Drops a large structure (the picture or the incidents a seek replaced: tens of thousands
/// of allocations to free) on a thread of its own, so that freeing the old state does not
/// delay the answer that shows the new one.
pub(crate) fn drop_aside<T: Send + 'static>(value: T) {
    if let Err(e) = std::thread::Builder::new().name("drop-aside".into()).spawn(move || drop(value)) {
        // The failed spawn dropped the closure, and the value with it, on this thread.
        tracing::debug!(error = %e, "no thread to drop on; dropped in place");
    }
}
