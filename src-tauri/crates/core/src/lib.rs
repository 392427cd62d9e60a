//! The pure domain of cityops.
//!
//! # Layout
//! - [`model`]: layers, severities and the normalized [`model::Observation`] every feed yields.
//! - [`tape`]: one line of a recorded tape (NDJSON) parsed into a [`tape::TapeMessage`].
//! - [`scenario`]: the scenario manifest (TOML) and its validation.
//! - [`picture`]: the operational picture, the latest observation per entity, and its diffs.
//! - [`grid`]: the time bucket and grid cell that index the observation log by place and time.
//! - [`digest`]: the canonical hash of an observation set, used to prove replays deterministic.
//! - [`geo`]: distances in metres and the uniform grid behind every "within r metres" query.
//! - [`assets`]: the city's assets and their supply dependencies (`fed_by`), by id and by place.
//! - [`rules`]: the correlation rules file (TOML): incident types, SOPs, grouping, escalation.
//! - [`dispatch`]: operator actions for backends: validation and the exact bytes they send.
//! - [`inject`]: trainer injects: the scenario's palette and the tape message of one inject.
//! - [`objectives`]: exercise objectives (manifest `[[objectives]]`) and scoring a trainee's record.
//! - [`correlate`]: the [`correlate::Correlator`], observations in, explained incidents out, with
//!   operator merge, split, reassign and undo.
//!
//! This crate does no IO and reads no clock: every time is a parameter, so the same inputs give
//! the same outputs whether they come from a live feed or a replayed tape at any speed.
#![warn(missing_docs)]

pub mod assets;
pub mod call;
pub mod correlate;
pub mod digest;
pub mod dispatch;
pub mod fields;
pub mod geo;
pub mod grid;
pub mod inject;
pub mod model;
pub mod objectives;
pub mod picture;
pub mod rules;
pub mod scenario;
pub mod shape;
pub mod tape;
pub mod workflow;
pub mod zones;

pub use fields::Fields;
pub use model::{GeoPoint, Layer, Observation, Severity};
