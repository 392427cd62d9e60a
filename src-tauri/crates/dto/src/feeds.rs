//! Wire types of the quarantine browser: what was refused, where and why. And the health of each feed and
//! of the store, which travel in the diff stream.

use cityops_core::model::Layer;
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

/// The health of one feed as the UI and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FeedHealthDto {
    pub id: String,
    pub name: String,
    pub layer: Layer,
    pub format: String,
    /// `http-poll`, `mqtt`, `tcp` or `file-drop`.
    pub transport: String,
    /// The transport is connected (for polling: the last poll succeeded).
    pub connected: bool,
    /// When the last message arrived.
    #[ts(type = "number | null")]
    pub last_message_ms: Option<i64>,
    /// Messages in the last minute.
    pub messages_per_minute: u32,
    /// Received minus observed time of the newest message's latest observation.
    #[ts(type = "number | null")]
    pub lag_ms: Option<i64>,
    /// Pieces refused since the feed started.
    #[ts(type = "number")]
    pub rejected: u64,
    /// The latest refusal reasons, newest last.
    pub last_reasons: Vec<String>,
    /// Nothing arrived for longer than the feed's expected interval.
    pub stale: bool,
    /// Times the transport lost its connection (or a poll failed) since the feed started.
    #[ts(type = "number")]
    pub failures: u64,
    /// The last transport error, if the feed is not connected.
    pub last_error: Option<String>,
    /// The feed delivers faster than the ingest stores (or the store refuses): its transport
    /// waited to hand a message over in the last ten seconds. Nothing is dropped; the source
    /// is held back (a broker or a TCP peer keeps what is not yet read, a folder keeps files).
    pub overloaded: bool,
    /// How long, in total, the transport has waited for the ingest since the feed started.
    #[ts(type = "number")]
    pub held_back_ms: u64,
}

/// Whether the store takes what the feeds deliver, as the operator sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StorageHealthDto {
    /// Why commits fail, in a sentence for the operator; `None` while they succeed.
    pub fault: Option<String>,
    /// The database file.
    pub path: String,
    /// When commits started failing.
    #[ts(type = "number | null")]
    pub since_ms: Option<i64>,
    /// Observations and refusals received but not yet stored: held in memory, stored as soon
    /// as the disk takes them again.
    #[ts(type = "number")]
    pub held: u64,
    /// Times commits started failing since the engine started.
    #[ts(type = "number")]
    pub faults: u64,
}

/// A workstation's link to its site (a control room's shared state), as its header shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatusDto {
    /// The site's id.
    pub site: String,
    /// This workstation's name in the site.
    pub workstation: String,
    /// Whether the link to the site holds.
    pub connected: bool,
    /// Since when the link is down (this workstation's clock, for the operator only).
    #[ts(type = "number | null")]
    pub offline_since_ms: Option<i64>,
    /// Messages of the site not yet applied here (as last seen while connected).
    #[ts(type = "number")]
    pub behind: u64,
    /// Decisions made here that wait to reach the site.
    #[ts(type = "number")]
    pub waiting: u64,
    /// Why the site refused the latest decision made here, if it did (shown to its author).
    pub refused: Option<String>,
    /// Who is signed in at the site's other workstations, and what they have open (gone
    /// within the presence TTL after a workstation vanishes).
    pub presence: Vec<PresenceDto>,
}

/// Another workstation of the site: who is signed in there and which incident is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDto {
    pub workstation: String,
    pub operator: Option<String>,
    pub incident: Option<String>,
}
