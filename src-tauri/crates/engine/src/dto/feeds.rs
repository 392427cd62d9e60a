//! Wire types of the quarantine browser: what was refused, where and why. Feed health itself is
//! [`crate::live::FeedHealthDto`], which travels in the diff stream.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One refused piece of input of the current run. Every string here is untrusted feed text
/// (or derived from it) and must be shown as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineEntryDto {
    /// The feed it came from (`tape` for a tape line that named none).
    pub feed: String,
    /// The message's sequence number (the tape line in a replay).
    #[ts(type = "number")]
    pub seq: u64,
    /// Where in the message, for example `features[3].properties.kind`, or `transport`.
    pub place: String,
    /// Why it was refused.
    pub reason: String,
    /// When it arrived (scenario time in a replay, wall time live).
    #[ts(type = "number")]
    pub received_ms: i64,
    /// The start of the body, as UTF-8 with invalid bytes replaced; at most
    /// [`QUARANTINE_PREVIEW_BYTES`] bytes of it.
    pub preview: String,
    /// The body's whole size in bytes, so the UI can say the preview is cut.
    #[ts(type = "number")]
    pub body_bytes: u64,
}

/// How much of the quarantine one feed holds, for the browser's filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineFeedDto {
    pub feed: String,
    #[ts(type = "number")]
    pub count: u64,
}

/// A page of the quarantine: the newest entries first, filtered by feed if asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineDto {
    /// The newest matching entries, at most [`QUARANTINE_PAGE`].
    pub entries: Vec<QuarantineEntryDto>,
    /// How many entries match the filter in all.
    #[ts(type = "number")]
    pub total: u64,
    /// Every feed with refusals in this run, with its count, in feed order.
    pub feeds: Vec<QuarantineFeedDto>,
}

/// Entries one quarantine request returns at most: the browser shows the newest.
pub const QUARANTINE_PAGE: usize = 500;
/// Bytes of a refused body the browser previews: enough to recognise it, bounded so a 16 MiB
/// refusal cannot flood the IPC channel.
pub const QUARANTINE_PREVIEW_BYTES: usize = 512;
